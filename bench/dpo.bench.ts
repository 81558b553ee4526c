/**
 * DPO from logits: the fused path (two passes over the logits) vs scoreLogprobs' forward + backward on
 * the same logits, plus the composed native path and the composed float64 TS-reference path, in one
 * run. Shape from the issue: [2×8 sequences × 512 tokens, 32000 vocabulary] f32 (the TS reference runs
 * on a smaller shape: it is ~100× slower). `npm run bench -- dpo`; BENCH_DPO_SMALL=1 shrinks the
 * main shape for a quick look (not saved).
 */
import {
  backendInfo,
  dpoLoss,
  dpoLossFromLogits,
  logprobsBackward,
  scoreLogprobs,
  type DpoLossOptions,
} from '../lib/index.js';
import { dpoLossReference } from '../lib/reference/dpo.js';
import { referenceLogprobs } from '../lib/reference/logprobs.js';
import { printHeader, runCases, saveResults, type BenchCase, type BenchRow } from './common.js';

const small = process.env.BENCH_DPO_SMALL === '1';
const ROUNDS = small ? 1 : 3;

function batch(pairs: number, T: number, V: number, seed: number) {
  const S = 2 * pairs;
  const logits = new Float32Array(S * T * V);
  let x = seed >>> 0;
  for (let i = 0; i < logits.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    logits[i] = (x / 4294967296 - 0.5) * 8;
  }
  const labels = new Int32Array(S * T);
  const prompt = Math.floor(T / 8);
  for (let s = 0; s < S; s++)
    for (let t = 0; t < T; t++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      labels[s * T + t] = t < prompt ? -100 : x % V;
    }
  const ref = Float64Array.from({ length: pairs }, (_, i) => -3 * T + i);
  return { logits, labels, shape: [S, T, V], refC: ref, refR: Float64Array.from(ref, (v) => v - 1) };
}

const opts: DpoLossOptions = { beta: 0.1, lossType: ['sigmoid', 'sft'], lossWeights: [1, 1] };

async function main() {
  printHeader('dpo');
  const isa = backendInfo().cpu.isa ?? '-';
  const [P, T, V] = small ? [2, 256, 32000] : [8, 512, 32000];
  const b = batch(P, T, V, 1);
  const shapeStr = `2×${P}×${T}×${V}`;
  const bytes = b.logits.byteLength * 2; // the logits read once, the gradient written once
  const common = { shape: b.shape, shift: true };
  const seq = new Float32Array(2 * P).fill(-0.01);
  // In place everywhere: no GB-sized allocation per iteration (values drift to gradients; cost does not).
  const cases: BenchCase[] = [
    {
      op: 'dpoLossFromLogits fwd+bwd',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: shapeStr,
      bytes,
      fn: () =>
        dpoLossFromLogits(b.logits, b.labels, {
          ...common,
          ...opts,
          referenceChosen: b.refC,
          referenceRejected: b.refR,
          inPlace: true,
        }),
    },
    {
      op: 'scoreLogprobs fwd+bwd (fused)',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: shapeStr,
      bytes,
      fn: () => scoreLogprobs(b.logits, b.labels, { ...common, gradient: { seq, inPlace: true } }),
    },
    {
      op: 'scoreLogprobs fwd + logprobsBackward',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: shapeStr,
      bytes,
      fn: () => {
        const r = scoreLogprobs(b.logits, b.labels, common);
        logprobsBackward(b.logits, b.labels, { seq }, { ...common, lse: r.tokenLse, inPlace: true });
      },
    },
    {
      op: 'composed: score → dpoLoss → backward',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: shapeStr,
      bytes,
      fn: () => {
        const r = scoreLogprobs(b.logits, b.labels, { ...common, entropy: true, accuracy: true, logitSums: true });
        const d = dpoLoss(
          {
            policyChosen: r.seqSum.subarray(0, P),
            policyRejected: r.seqSum.subarray(P),
            referenceChosen: b.refC,
            referenceRejected: b.refR,
            chosenTokens: r.seqCount.slice(0, P),
          },
          opts,
        );
        const g = new Float32Array(2 * P);
        g.set(d.gradChosen, 0);
        g.set(d.gradRejected, P);
        logprobsBackward(b.logits, b.labels, { seq: g }, { ...common, lse: r.tokenLse, inPlace: true });
      },
    },
  ];

  // The float64 TS reference on a smaller shape (the same code path a user would write in plain JS),
  // with the fused kernel beside it on that shape.
  const [p2, t2, v2] = [2, 64, 32000];
  const s = batch(p2, t2, v2, 2);
  const sShape = `2×${p2}×${t2}×${v2}`;
  const sBytes = s.logits.byteLength * 2;
  const offsets = Array.from({ length: 2 * p2 + 1 }, (_, i) => i * t2);
  cases.push(
    {
      op: 'dpoLossFromLogits fwd+bwd',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: sShape,
      bytes: sBytes,
      fn: () =>
        dpoLossFromLogits(s.logits, s.labels, {
          shape: s.shape,
          shift: true,
          ...opts,
          referenceChosen: s.refC,
          referenceRejected: s.refR,
          inPlace: true,
        }),
    },
    {
      op: 'composed TS reference fwd+bwd',
      provider: 'reference (TS f64)',
      dtype: 'f32',
      shape: sShape,
      bytes: sBytes,
      iterations: 3,
      time: 500,
      fn: () => {
        const base = { logits: s.logits, labels: s.labels, nTokens: 2 * p2 * t2, vocab: v2, offsets, shift: true };
        const r = referenceLogprobs(base);
        const d = dpoLossReference(
          {
            policyChosen: r.seqSum.subarray(0, p2),
            policyRejected: r.seqSum.subarray(p2),
            referenceChosen: s.refC,
            referenceRejected: s.refR,
            chosenTokens: r.seqCount.subarray(0, p2),
          },
          { beta: 0.1, lossTypes: ['sigmoid', 'sft'], lossWeights: [1, 1] },
        );
        // The reference has no gradient of its own for the pair loss: take the native pair gradients
        // (cheap, O(B)) so the row times the float64 backward over the logits, as a composed path would.
        const g = dpoLoss(
          {
            policyChosen: r.seqSum.subarray(0, p2),
            policyRejected: r.seqSum.subarray(p2),
            referenceChosen: s.refC,
            referenceRejected: s.refR,
            chosenTokens: r.seqCount.slice(0, p2),
          },
          opts,
        );
        const gradSeq = [...g.gradChosen, ...g.gradRejected];
        referenceLogprobs({ ...base, gradSeq });
        return d.loss;
      },
    },
  );

  // The machine is shared and drifts: run the full-shape cases in 3 interleaved rounds and take the
  // median of the per-round ratios (every round's rows are kept).
  const main = cases.slice(0, 4);
  const rest = cases.slice(4);
  const rows: BenchRow[] = [];
  const perRound: Record<string, number>[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`-- round ${round}/${ROUNDS}`);
    const r = await runCases(main, { time: 2000, iterations: 8 });
    for (const row of r) rows.push({ ...row, op: `${row.op} [round ${round}]` });
    const m = (op: string) => r.find((x) => x.op === op)!.p50Ms;
    const fused = m('dpoLossFromLogits fwd+bwd');
    perRound.push({
      fusedVsScoreFusedFwdBwd: fused / m('scoreLogprobs fwd+bwd (fused)'),
      fusedVsScoreFwdThenBackward: fused / m('scoreLogprobs fwd + logprobsBackward'),
      fusedVsComposedNative: fused / m('composed: score → dpoLoss → backward'),
    });
  }
  const small2 = await runCases(rest, { time: 2000, iterations: 8 });
  rows.push(...small2);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ratios: Record<string, number> = {};
  for (const k of Object.keys(perRound[0])) ratios[k] = median(perRound.map((p) => p[k]));
  ratios.referenceVsFusedSmallShape = small2[1].p50Ms / small2[0].p50Ms;
  console.log('\nratios (median over rounds):', JSON.stringify(ratios, null, 2));
  if (!small) saveResults('dpo', rows, { ratios, perRound, target: 'fused fwd+bwd <= 1.3x scoreLogprobs fwd+bwd' });
}

await main();
