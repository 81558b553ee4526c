/**
 * The gradient the loop hands to the model is d(loss)/d(logits) of the documented losses: checked
 * against a float64 softmax written here (the loop itself only calls unigap's kernels).
 */
import { describe, expect, it } from 'vitest';

import { DEFAULT_LOOP_CONFIG } from '../../lib/loop/config.js';
import { trainRound } from '../../lib/loop/train.js';
import type { LogitsBatch, LoopConfig, TrainSequence } from '../../lib/loop/types.js';
import { ps } from './fixtures.js';
import { ToyModel } from './toy.js';

/** The toy model, with step() capturing the gradient instead of updating. */
class Capture extends ToyModel {
  batches: { lb: LogitsBatch; seqs: TrainSequence[] }[] = [];
  grads: Float32Array[] = [];
  override forward(batch: TrainSequence[]): LogitsBatch {
    const lb = super.forward(batch);
    this.batches.push({ lb: { ...lb, logits: lb.logits.slice() }, seqs: batch });
    return lb;
  }
  override step(grad: Float32Array): void {
    this.grads.push(grad.slice());
  }
}

function logSoftmax(z: ArrayLike<number>, off: number, V: number): number[] {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, z[off + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(z[off + v] - m);
  const lse = m + Math.log(s);
  return Array.from({ length: V }, (_, v) => z[off + v] - lse);
}

/** Sequence log-probs from packed logits, float64. */
function seqLogps(z: ArrayLike<number>, lb: LogitsBatch): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < lb.offsets.length; i++) {
    let s = 0;
    for (let r = lb.offsets[i]; r < lb.offsets[i + 1]; r++) s += logSoftmax(z, r * lb.vocab, lb.vocab)[lb.labels[r]];
    out.push(s);
  }
  return out;
}

// Tokens are [x0, x1] in the toy (8 values); prompt ids p-a0-a1.
function sample(id: string, specs: [number, number, number, boolean][]) {
  const d = ps(
    id,
    'color',
    specs.map(([, , p, a]) => [p, a]),
  );
  d.samples.forEach((s, i) => (s.image.tokens = Int32Array.of(specs[i][0], specs[i][1])));
  return d;
}
const data = [
  sample('p-1-2', [
    [1, 2, 0.9, true],
    [3, 2, 0.2, false],
    [1, 5, 0.3, false],
  ]),
  sample('p-4-0', [
    [4, 0, 0.8, true],
    [4, 1, 0.7, true],
    [6, 6, 0.1, false],
  ]),
];
const cfg = (over: Partial<LoopConfig>) =>
  ({ ...DEFAULT_LOOP_CONFIG, guard: false, batchSize: 1000, epochsPerRound: 1, ...over }) as LoopConfig;

describe('training gradients', () => {
  it('SFT: image-token NLL, mean per token, gradient (softmax - onehot) / tokens', async () => {
    const m = new Capture();
    const stats = await trainRound(m, data, cfg({ strategy: 'sft' }), 1, () => {});
    expect(stats).toMatchObject({ sftExamples: 3, dpoPairs: 0, trainingPrompts: 2, steps: 1 });
    const { lb } = m.batches[0];
    const tokens = lb.labels.length; // 3 sequences x 2 tokens
    const V = lb.vocab;
    let nll = 0;
    for (let r = 0; r < tokens; r++) {
      const lp = logSoftmax(lb.logits, r * V, V);
      nll -= lp[lb.labels[r]];
      for (let v = 0; v < V; v++) {
        const want = (Math.exp(lp[v]) - (v === lb.labels[r] ? 1 : 0)) / tokens;
        expect(m.grads[0][r * V + v]).toBeCloseTo(want, 6);
      }
    }
    expect(stats.meanLoss).toBeCloseTo(nll / tokens, 5);
  });

  it("DPO: ['sigmoid', 'sft'] against finite differences of the loss, reference = round-start policy", async () => {
    const beta = 0.5;
    const w = 0.7;
    const m = new Capture();
    const stats = await trainRound(m, data, cfg({ strategy: 'dpo', beta, nllWeight: w }), 1, () => {});
    expect(stats).toMatchObject({ dpoPairs: 2, sftExamples: 0, steps: 1 });
    // batches[0] is the reference pass, batches[1] the training step (same weights: nothing trained yet).
    const { lb, seqs } = m.batches[1];
    expect(seqs.map((s) => Array.from(s.tokens))).toEqual([
      [1, 2],
      [4, 0],
      [3, 2],
      [6, 6],
    ]);
    const ref = seqLogps(m.batches[0].lb.logits, m.batches[0].lb);
    const B = 2;
    const loss = (z: ArrayLike<number>) => {
      const lp = seqLogps(z, lb);
      let sig = 0;
      for (let i = 0; i < B; i++) {
        const margin = beta * (lp[i] - ref[i] - (lp[B + i] - ref[B + i]));
        sig += Math.log1p(Math.exp(-margin));
      }
      const chosenTokens = 2 * B;
      return sig / B + (w * -(lp[0] + lp[1])) / chosenTokens;
    };
    const z = Float64Array.from(lb.logits);
    expect(stats.meanLoss).toBeCloseTo(loss(z), 5);
    expect(stats.meanLoss).toBeCloseTo(Math.log(2) + (w * -(ref[0] + ref[1])) / 4, 5);
    const h = 1e-5;
    for (let k = 0; k < z.length; k++) {
      const zp = z.slice();
      const zm = z.slice();
      zp[k] += h;
      zm[k] -= h;
      expect(m.grads[0][k]).toBeCloseTo((loss(zp) - loss(zm)) / (2 * h), 5);
    }
  });
});
