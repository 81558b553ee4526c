/**
 * One deterministic workload that touches every kernel (async forms where they exist), shared by the
 * worker-thread test, the GC-in-flight child and the leak check. `inputs()` builds fresh arrays (so a
 * caller can drop them); `run*` return every output as bytes for bit-exact comparison.
 */
import type * as Api from '../../lib/index.js';

export interface Inputs {
  logits: Float32Array;
  labels: Int32Array;
  upSeq: Float32Array;
  pairLogits: Float32Array;
  pairLabels: Int32Array;
  refC: Float64Array;
  refR: Float64Array;
  img: Float32Array;
  txt: Float32Array;
  pc: Float64Array;
  pr: Float64Array;
}

// Sizes big enough that each async call spends real time on the pool, small enough for 2 cores.
export const S = { B: 4, T: 24, V: 701, PB: 3, PT: 12, PV: 257, N: 48, M: 56, D: 96 } as const;

function gen(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = scale * ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1);
  }
  return out;
}

export function inputs(seed = 1): Inputs {
  const { B, T, V, PB, PT, PV, N, M, D } = S;
  const labels = Int32Array.from(gen(B * T, seed + 1), (x, i) => (i % 7 === 3 ? -100 : Math.floor(Math.abs(x) * V)));
  const pairLabels = Int32Array.from(gen(2 * PB * PT, seed + 2), (x) => Math.floor(Math.abs(x) * PV));
  return {
    logits: gen(B * T * V, seed + 3, 4),
    labels,
    upSeq: gen(B, seed + 4),
    pairLogits: gen(2 * PB * PT * PV, seed + 5, 3),
    pairLabels,
    refC: Float64Array.from(gen(PB, seed + 6), (x) => -30 + x),
    refR: Float64Array.from(gen(PB, seed + 7), (x) => -31 + x),
    img: gen(N * D, seed + 8),
    txt: gen(M * D, seed + 9),
    pc: Float64Array.from(gen(8, seed + 10), (x) => -20 + 3 * x),
    pr: Float64Array.from(gen(8, seed + 11), (x) => -21 + 3 * x),
  };
}

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const num = (x: number) => new Uint8Array(Float64Array.of(x).buffer);

/** Every kernel once, async forms concurrently; outputs as named byte arrays. */
export async function runAsync(api: typeof Api, x: Inputs): Promise<Record<string, Uint8Array>> {
  const { B, T, V, PB, PT, PV, N, M, D } = S;
  const [lp, bw, dpo, mat, topk, ranks] = await Promise.all([
    api.scoreLogprobsAsync(x.logits, x.labels, { shape: [B, T, V], shift: true, entropy: true, accuracy: true }),
    api.logprobsBackwardAsync(x.logits, x.labels, { seq: x.upSeq }, { shape: [B, T, V], shift: true }),
    api.dpoLossFromLogitsAsync(x.pairLogits, x.pairLabels, {
      shape: [2 * PB, PT, PV],
      shift: true,
      referenceChosen: x.refC,
      referenceRejected: x.refR,
      lossType: ['sigmoid', 'sft'],
    }),
    api.similarityMatrixAsync({ data: x.img, dims: [N, D] }, { data: x.txt, dims: [M, D] }, { scale: 100 }),
    api.topkSimilarityAsync({ data: x.img, dims: [N, D] }, { data: x.txt, dims: [M, D] }, 5),
    api.retrievalRanksAsync({ data: x.img, dims: [N, D] }, { data: x.txt.subarray(0, N * D), dims: [N, D] }),
  ]);
  return {
    ...common(api, x),
    'scoreLogprobs.tokenLogprobs': bytes(lp.tokenLogprobs),
    'scoreLogprobs.seqSum': bytes(lp.seqSum),
    'scoreLogprobs.tokenEntropy': bytes(lp.tokenEntropy!),
    'logprobsBackward.gradient': bytes(bw.gradient),
    'dpoLossFromLogits.loss': num(dpo.loss),
    'dpoLossFromLogits.gradient': bytes(dpo.gradient!),
    'dpoLossFromLogits.policyChosen': bytes(dpo.policyChosen),
    similarityMatrix: bytes(mat),
    'topkSimilarity.indices': bytes(topk.indices),
    'topkSimilarity.scores': bytes(topk.scores),
    'retrievalRanks.ranks': bytes(ranks.ranks),
  };
}

/** The same with the sync forms (the sequential baseline). */
export function runSync(api: typeof Api, x: Inputs): Record<string, Uint8Array> {
  const { B, T, V, PB, PT, PV, N, M, D } = S;
  const lp = api.scoreLogprobs(x.logits, x.labels, { shape: [B, T, V], shift: true, entropy: true, accuracy: true });
  const bw = api.logprobsBackward(x.logits, x.labels, { seq: x.upSeq }, { shape: [B, T, V], shift: true });
  const dpo = api.dpoLossFromLogits(x.pairLogits, x.pairLabels, {
    shape: [2 * PB, PT, PV],
    shift: true,
    referenceChosen: x.refC,
    referenceRejected: x.refR,
    lossType: ['sigmoid', 'sft'],
  });
  const mat = api.similarityMatrix({ data: x.img, dims: [N, D] }, { data: x.txt, dims: [M, D] }, { scale: 100 });
  const topk = api.topkSimilarity({ data: x.img, dims: [N, D] }, { data: x.txt, dims: [M, D] }, 5);
  const ranks = api.retrievalRanks({ data: x.img, dims: [N, D] }, { data: x.txt.subarray(0, N * D), dims: [N, D] });
  return {
    ...common(api, x),
    'scoreLogprobs.tokenLogprobs': bytes(lp.tokenLogprobs),
    'scoreLogprobs.seqSum': bytes(lp.seqSum),
    'scoreLogprobs.tokenEntropy': bytes(lp.tokenEntropy!),
    'logprobsBackward.gradient': bytes(bw.gradient),
    'dpoLossFromLogits.loss': num(dpo.loss),
    'dpoLossFromLogits.gradient': bytes(dpo.gradient!),
    'dpoLossFromLogits.policyChosen': bytes(dpo.policyChosen),
    similarityMatrix: bytes(mat),
    'topkSimilarity.indices': bytes(topk.indices),
    'topkSimilarity.scores': bytes(topk.scores),
    'retrievalRanks.ranks': bytes(ranks.ranks),
  };
}

/** Kernels with no async form (run synchronously in both). */
function common(api: typeof Api, x: Inputs): Record<string, Uint8Array> {
  const { N, D } = S;
  const d = api.dpoLoss(
    { policyChosen: x.pc, policyRejected: x.pr, referenceChosen: x.pr, referenceRejected: x.pc },
    { beta: 0.2, lossType: ['sigmoid', 'hinge', 'nca_pair'] },
  );
  const pairs = { data: x.img, dims: [N, D] };
  const texts = { data: x.txt.subarray(0, N * D), dims: [N, D] };
  return {
    'dpoLoss.losses': bytes(d.losses),
    'dpoLoss.gradChosen': bytes(d.gradChosen),
    pairedCosine: bytes(api.pairedCosine(pairs, texts)),
    clipScore: num(api.clipScore(pairs, texts)),
  };
}

/** Names whose bytes differ between two result sets (missing keys count). */
export function diffResults(a: Record<string, Uint8Array>, b: Record<string, Uint8Array>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (!x || !y || x.length !== y.length || !x.every((v, i) => v === y[i])) out.push(k);
  }
  return out;
}
