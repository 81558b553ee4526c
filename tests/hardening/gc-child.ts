/**
 * Child process for the GC-while-in-flight checks (run with --expose-gc by concurrency.test.ts).
 *  1. drop: every async kernel is started on freshly built inputs that JS drops at once (only the
 *     Promise is kept), then GC is forced over and over, with garbage allocated to reuse the freed
 *     memory, until the calls settle; every result must equal the sequential baseline bit for bit.
 *  2. native (argv 'native'): the same through the raw binding, where nothing in JS references the
 *     inputs at all (the facade's own async frame otherwise keeps them reachable);
 *  3. transfer (argv 'transfer'): the input's ArrayBuffer is transferred away (detached) while the call
 *     is in flight and the receiving copy dropped and collected; the result must still be right.
 * Prints one JSON line.
 */
import * as api from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import { diffResults, inputs, runAsync, runSync, S } from './workload.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const mode = process.argv[2] ?? 'drop';

let stop = false;
let forced = 0;
// Force GC continuously while calls are in flight, and churn the allocator.
async function churn() {
  while (!stop) {
    gc!();
    forced++;
    const junk: Float32Array[] = [];
    for (let i = 0; i < 16; i++) junk.push(new Float32Array(4096).fill(i));
    await new Promise((r) => setImmediate(r));
  }
}

const out: Record<string, unknown> = { mode };
if (mode === 'drop') {
  const seeds = [11, 12, 13, 14];
  const baseline = seeds.map((s) => runSync(api, inputs(s)));
  const mismatches: string[] = [];
  const c = churn();
  for (let round = 0; round < 5; round++) {
    // inputs(s) is built inside the call expression: nothing but the Promise keeps it alive.
    const pending = Promise.all(seeds.map((s) => runAsync(api, inputs(s))));
    for (let i = 0; i < 4; i++) {
      gc();
      forced++;
    }
    const results = await pending;
    results.forEach((r, i) =>
      mismatches.push(...diffResults(baseline[i], r).map((k) => `round ${round} seed ${seeds[i]}: ${k}`)),
    );
  }
  stop = true;
  await c;
  Object.assign(out, { rounds: 5, calls: 5 * seeds.length * 6, forcedGc: forced, mismatches });
} else if (mode === 'native') {
  // The facade's async frame keeps its inputs reachable anyway; here the raw binding is called with
  // inputs that nothing in JS references (only the outputs are kept), so only the N-API worker's
  // references keep them alive while the kernel reads them.
  const native = loadNative() as unknown as Record<string, (...a: unknown[]) => Promise<void>>;
  const N = 192;
  const M = 160;
  const D = 128;
  const V = 509;
  const T = 96;
  const mk = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
  const labels = () => Int32Array.from({ length: T }, (_, i) => (i * 31) % V);
  const expMat = api.similarityMatrix({ data: mk(N * D, 1), dims: [N, D] }, { data: mk(M * D, 2), dims: [M, D] });
  const expTopk = api.topkSimilarity({ data: mk(N * D, 1), dims: [N, D] }, { data: mk(M * D, 2), dims: [M, D] }, 7);
  const expLp = api.scoreLogprobs(mk(T * V, 3), labels(), { shape: [T, V] });
  const mismatches: string[] = [];
  const c = churn();
  for (let round = 0; round < 8; round++) {
    const mat = new Float32Array(N * M);
    const idx = new Int32Array(N * 7);
    const sc = new Float32Array(N * 7);
    const logp = new Float32Array(T);
    const seqSum = new Float32Array(1);
    const pending = [
      native.similarityMatrixAsync(mk(N * D, 1), 'f32', N, mk(M * D, 2), 'f32', M, D, true, 1, 0, mat),
      native.similarityTopkAsync(mk(N * D, 1), 'f32', N, mk(M * D, 2), 'f32', M, D, 7, true, idx, sc),
      native.logprobsRunAsync(0, {
        logits: mk(T * V, 3),
        dtype: 0,
        nTokens: T,
        vocab: V,
        labels: labels(),
        mask: null,
        ignoreIndex: -100,
        offsets: Int32Array.of(0, T),
        nSeq: 1,
        shift: false,
        temperature: 1,
        tokenLogp: logp,
        tokenEntropy: null,
        tokenCorrect: null,
        tokenLse: new Float32Array(T),
        seqSum,
        seqCount: new Int32Array(1),
        seqMean: new Float32Array(1),
        seqLogitSum: null,
        gradSeq: null,
        gradToken: null,
        inputLse: null,
        gradOut: null,
      }),
    ];
    for (let i = 0; i < 4; i++) {
      gc();
      forced++;
      void new Float32Array(N * D).fill(1e30); // reuse freed memory with poison
    }
    await Promise.all(pending);
    const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
    if (!same(mat, expMat)) mismatches.push(`round ${round}: similarityMatrixAsync`);
    if (!same(idx, expTopk.indices) || !same(sc, expTopk.scores))
      mismatches.push(`round ${round}: similarityTopkAsync`);
    if (!same(logp, expLp.tokenLogprobs) || !same(seqSum, expLp.seqSum))
      mismatches.push(`round ${round}: logprobsRunAsync`);
  }
  stop = true;
  await c;
  Object.assign(out, { rounds: 8, forcedGc: forced, mismatches });
} else {
  // transfer: similarityMatrixAsync on inputs big enough to be in flight for a while.
  const N = 512;
  const D = 256;
  const mk = (seed: number) => Float32Array.from({ length: N * D }, (_, i) => Math.sin(i * 0.37 + seed));
  const expected = api.similarityMatrix({ data: mk(1), dims: [N, D] }, { data: mk(2), dims: [N, D] });
  let wrong = 0;
  let detachedSeen = 0;
  for (let round = 0; round < 6; round++) {
    const a = mk(1);
    const p = api.similarityMatrixAsync({ data: a, dims: [N, D] }, { data: mk(2), dims: [N, D] });
    // Move the backing store away and drop the receiver, then overwrite freed memory.
    let moved: ArrayBuffer | null = structuredClone(a.buffer, { transfer: [a.buffer] });
    if (a.length === 0) detachedSeen++;
    moved = null;
    void moved;
    for (let i = 0; i < 8; i++) {
      gc();
      const junk = new Float32Array(N * D).fill(1e30);
      void junk;
    }
    const got = await p;
    for (let i = 0; i < got.length; i++) if (!(Math.abs(got[i] - expected[i]) <= 1e-4)) wrong++;
  }
  Object.assign(out, { rounds: 6, detachedSeen, wrongValues: wrong });
}
void S;
console.log(JSON.stringify(out));
