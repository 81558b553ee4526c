import { describe, expect, it } from 'vitest';

import { SHARED_PARAMS, WorldModel, localCosine } from '../../lib/world/model.js';
import { makeRng } from '../../lib/world/scene.js';

const tiny = { wordDim: 3, hidden: 5, imageDim: 4, genHidden: 5, matchHidden: 4, matchDim: 3, maxWords: 12, seed: 3 };
const p1 = { id: 'a', text: 'a red circle left of a blue square', category: 'spatial' };
const p2 = { id: 'b', text: 'two red stars', category: 'counting' };

function randomTokens(rng: () => number): Int32Array {
  return Int32Array.from({ length: 16 }, () => Math.floor(rng() * 21));
}

/** Central finite differences on a sample of every parameter tensor. */
function gradCheck(
  m: WorldModel,
  loss: () => number,
  backward: () => void,
  eps: number,
  tol: number,
  rng: () => number,
) {
  m.zeroGrad();
  backward();
  const analytic = Object.fromEntries(WorldModel.paramNames.map((n) => [n, Float64Array.from(m.grads[n])]));
  m.zeroGrad();
  let checked = 0;
  for (const n of WorldModel.paramNames) {
    const p = m.params[n];
    for (let s = 0; s < Math.min(p.length, 5); s++) {
      const i = Math.floor(rng() * p.length);
      const old = p[i];
      p[i] = old + eps;
      const lp = loss();
      p[i] = old - eps;
      const lm = loss();
      p[i] = old;
      m.zeroGrad();
      const fd = (lp - lm) / (2 * eps);
      expect(Math.abs(fd - analytic[n][i]), `${n}[${i}] fd=${fd} analytic=${analytic[n][i]}`).toBeLessThan(
        tol * Math.max(1, Math.abs(fd)),
      );
      checked++;
    }
  }
  return checked;
}

describe.each(['concat', 'conv'] as const)(
  'WorldModel gradients (finite differences, tiny size, %s encoder)',
  (encoder) => {
    it('generation: d(sum r*logits)/d(params) through forward/backward', () => {
      const rng = makeRng(11);
      const m = new WorldModel({ ...tiny, encoder });
      const batch = [
        { prompt: p1, tokens: randomTokens(rng) },
        { prompt: p2, tokens: randomTokens(rng) },
      ];
      const r = Float32Array.from({ length: 2 * 16 * 21 }, () => rng() - 0.5);
      const loss = () => {
        const out = m.forward(batch);
        let s = 0;
        for (let i = 0; i < r.length; i++) s += r[i] * out.logits[i];
        return s;
      };
      const n = gradCheck(m, loss, () => (m.forward(batch), m.backward(r)), 1e-3, 2e-3, rng);
      expect(n).toBeGreaterThan(40);
    });
    it('understanding: binary cross-entropy of p_yes', () => {
      const rng = makeRng(12);
      const m = new WorldModel({ ...tiny, encoder });
      // A non-zero Bayes-link weight, so the check covers the path through the generation branch.
      m.params['und.pmi'][0] = 0.7;
      const items = [
        { prompt: p1, tokens: randomTokens(rng), label: true },
        { prompt: p2, tokens: randomTokens(rng), label: false },
      ];
      const loss = () => m.judgeLossBackward(items);
      gradCheck(m, loss, () => m.judgeLossBackward(items), 1e-6, 1e-5, rng);
      // The understanding loss reaches the generation branch only through the Bayes link.
      m.zeroGrad();
      m.judgeLossBackward(items);
      expect(m.grads['gen.wo'].some((x) => x !== 0)).toBe(true);
    });
    it.each([null, 16])(
      'calibrateJudge fits scale and bias, and the Bayes-link weight unless fixed (bayesLinkWeight %s)',
      (bayesLinkWeight) => {
        const rng = makeRng(13);
        const m = new WorldModel({ ...tiny, encoder, bayesLinkWeight });
        const items = Array.from({ length: 40 }, (_, i) => ({
          prompt: i % 2 ? p1 : p2,
          tokens: randomTokens(rng),
          label: i % 3 === 0,
        }));
        const before = m.judgeLossBackward(items);
        m.zeroGrad();
        const after = m.calibrateJudge(items);
        expect(after).toBeLessThanOrEqual(before + 1e-9);
        expect(Math.abs(m.judgeLossBackward(items) - after)).toBeLessThan(1e-3);
        if (bayesLinkWeight === null) expect(m.params['und.pmi'][0]).not.toBe(0);
        else expect(m.params['und.pmi'][0]).toBe(bayesLinkWeight);
      },
    );
  },
);

describe('WorldModel contract', () => {
  it('logits layout: [rows, vocab], labels are the tokens, offsets per sequence', () => {
    const m = new WorldModel(tiny);
    const rng = makeRng(1);
    const t = randomTokens(rng);
    const out = m.forward([
      { prompt: p1, tokens: t },
      { prompt: p2, tokens: t },
    ]);
    expect(out.vocab).toBe(21);
    expect(out.logits).toHaveLength(2 * 16 * 21);
    expect(Array.from(out.offsets)).toEqual([0, 16, 32]);
    expect(Array.from(out.labels.subarray(16))).toEqual(Array.from(t));
  });
  it('generation is deterministic in (weights, seed) and varies with the seed', () => {
    const m = new WorldModel();
    const a = m.generate(p1, 3, { temperature: 1, seed: 5 });
    const b = m.generate(p1, 3, { temperature: 1, seed: 5 });
    const c = m.generate(p1, 3, { temperature: 1, seed: 6 });
    expect(a.map((x) => Array.from(x.tokens))).toEqual(b.map((x) => Array.from(x.tokens)));
    expect(a.map((x) => Array.from(x.tokens))).not.toEqual(c.map((x) => Array.from(x.tokens)));
    for (const im of a) for (const tok of im.tokens) expect(tok >= 0 && tok < 21).toBe(true);
  });
  it("the judge's matching runs on unigap's pairedCosine kernel and agrees with a plain TS cosine", () => {
    const rng = makeRng(4);
    const m = new WorldModel();
    m.params['und.pmi'][0] = 0.5;
    const items = Array.from({ length: 12 }, (_, i) => ({ prompt: i % 2 ? p1 : p2, tokens: randomTokens(rng) }));
    const viaKernel = m.judgeMany(items);
    m.setCosine(localCosine);
    const viaTs = m.judgeMany(items);
    for (let i = 0; i < items.length; i++) expect(viaKernel[i]).toBeCloseTo(viaTs[i], 5);
  });
  it('snapshot is a copy and restore is exact', () => {
    const m = new WorldModel(tiny);
    const s = m.snapshot();
    const before = m.judge(p1, { tokens: new Int32Array(16) }, '').pYes;
    const out = m.forward([{ prompt: p1, tokens: new Int32Array(16) }]);
    m.step(
      out.logits.map(() => 0.1),
      { learningRate: 0.05 },
    );
    expect(m.judge(p1, { tokens: new Int32Array(16) }, '').pYes).not.toBe(before);
    m.restore(s);
    expect(m.judge(p1, { tokens: new Int32Array(16) }, '').pYes).toBe(before);
    expect(m.snapshot()).toEqual(s);
    expect(() => m.restore({})).toThrow(RangeError);
  });
  it('coupling: a generation-only step moves the understanding branch through the shared trunk', () => {
    const m = new WorldModel();
    const rng = makeRng(2);
    const img = { tokens: randomTokens(rng) };
    const und0 = m.snapshot();
    const before = m.judge(p1, img, '').pYes;
    const out = m.forward([{ prompt: p1, tokens: img.tokens }]);
    const g = new Float32Array(out.logits.length);
    for (let r = 0; r < 16; r++) g[r * 21 + out.labels[r]] = -1 / 16;
    m.step(g, { learningRate: 0.01 });
    const after = m.snapshot();
    // Only the generation branch and the shared parameters changed...
    for (const n of WorldModel.paramNames) {
      const changed = after[n].some((x, i) => x !== und0[n][i]);
      // (the encoder's weights are all shared, but a 'conv' trunk does not read posEmb, a 'concat' one not the convolution)
      const unused = n.startsWith(m.config.encoder === 'conv' ? 'trunk.posEmb' : 'trunk.conv.');
      expect(changed, n).toBe(n.startsWith('gen.') || (SHARED_PARAMS.includes(n) && !unused));
    }
    // ...and yet the self-judgment moved.
    expect(m.judge(p1, img, '').pYes).not.toBe(before);
  });
  it('freezing the shared parameters cuts the coupling (without the Bayes link the judge stays put)', () => {
    const m = new WorldModel({ bayesLink: false });
    m.freeze(SHARED_PARAMS);
    const img = { tokens: randomTokens(makeRng(2)) };
    const before = m.judge(p1, img, '').pYes;
    const out = m.forward([{ prompt: p1, tokens: img.tokens }]);
    m.step(
      out.logits.map(() => 0.01),
      { learningRate: 0.01 },
    );
    expect(m.judge(p1, img, '').pYes).toBe(before);
    expect(m.snapshot()['gen.wo']).not.toEqual(new WorldModel({ bayesLink: false }).snapshot()['gen.wo']);
  });
});
