import { describe, expect, it } from 'vitest';

import {
  dpoLoss,
  DPO_LOSS_TYPES,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  type DpoInputs,
  type DpoLossOptions,
  type DpoLossType,
} from '../lib/index.js';
import { dpoLossReference, type RefDpoOptions } from '../lib/reference/dpo.js';
import { randn, rng } from './helpers.js';

/** Fresh pairs: reference log-probs around -60, policy = reference + N(0, spread). */
function pairs(B: number, seed: number, spread = 2) {
  const qc = Float64Array.from(randn(B, seed, 8), (v) => v - 60);
  const qr = Float64Array.from(randn(B, seed + 1, 8), (v) => v - 60);
  const pc = Float64Array.from(randn(B, seed + 2, spread), (v, i) => qc[i] + v);
  const pr = Float64Array.from(randn(B, seed + 3, spread), (v, i) => qr[i] + v);
  const r = rng(seed + 4);
  const ct = Int32Array.from({ length: B }, () => 1 + Math.floor(r() * 40));
  const rt = Int32Array.from({ length: B }, () => 1 + Math.floor(r() * 40));
  return {
    policyChosen: pc,
    policyRejected: pr,
    referenceChosen: qc,
    referenceRejected: qr,
    chosenTokens: ct,
    rejectedTokens: rt,
  };
}

function refOptions(o: DpoLossOptions, B: number): RefDpoOptions {
  const types = (
    o.lossType === undefined ? ['sigmoid'] : typeof o.lossType === 'string' ? [o.lossType] : [...o.lossType]
  ) as DpoLossType[];
  return {
    beta: o.beta ?? 0.1,
    lossTypes: types,
    lossWeights: o.lossWeights ? [...o.lossWeights] : undefined,
    labelSmoothing: o.labelSmoothing,
    discopopTau: o.discopopTau,
    fDivergence: o.fDivergence,
    alpha: o.alpha,
    bcoDelta: o.bcoDelta,
    weights: o.weights ?? new Float64Array(B).fill(1),
  };
}

function reference(inputs: DpoInputs, o: DpoLossOptions) {
  const B = inputs.policyChosen.length;
  return dpoLossReference(
    {
      ...inputs,
      referenceChosen: inputs.referenceFree ? undefined : inputs.referenceChosen,
      referenceRejected: inputs.referenceFree ? undefined : inputs.referenceRejected,
    },
    refOptions(o, B),
  );
}

const close = (a: number, b: number, rtol: number, atol: number) => Math.abs(a - b) <= atol + rtol * Math.abs(b);

function expectArrayClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!close(got[i], want[i], rtol, atol)) expect.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Native vs float64 reference (values), and native gradients vs central differences of the reference. */
function checkAgainstReference(inputs: DpoInputs, o: DpoLossOptions) {
  const got = dpoLoss(inputs, o);
  const want = reference(inputs, o);
  expect(Number.isFinite(got.loss)).toBe(true);
  expect(close(got.loss, want.loss, 1e-10, 1e-12), `loss ${got.loss} vs ${want.loss}`).toBe(true);
  expectArrayClose(got.losses, want.losses, 1e-10, 1e-12, 'losses');
  expectArrayClose(got.chosenRewards, want.chosenRewards, 1e-12, 1e-12, 'chosenRewards');
  expectArrayClose(got.rejectedRewards, want.rejectedRewards, 1e-12, 1e-12, 'rejectedRewards');
  expectArrayClose(got.margins, want.margins, 1e-12, 1e-12, 'margins');
  expect(got.rewardAccuracy).toBe(want.rewardAccuracy);
  // Finite differences of the reference's mean loss.
  const B = inputs.policyChosen.length;
  for (const side of ['policyChosen', 'policyRejected'] as const) {
    const grad = side === 'policyChosen' ? got.gradChosen : got.gradRejected;
    for (let i = 0; i < B; i++) {
      const base = inputs[side] as Float64Array;
      const h = 1e-5 * Math.max(1, Math.abs(base[i]));
      const at = (d: number) => {
        const x = Float64Array.from(base);
        x[i] += d;
        return reference({ ...inputs, [side]: x }, o).loss;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      if (!close(grad[i], fd, 1e-5, 1e-8))
        expect.fail(`d loss / d ${side}[${i}]: got ${grad[i]}, finite difference ${fd}`);
    }
  }
  return got;
}

describe('dpoLoss: every loss type against the float64 TRL reference, gradients against finite differences', () => {
  const B = 9;
  for (const [k, t] of DPO_LOSS_TYPES.entries()) {
    it(`${t}`, () => {
      const p = pairs(B, 100 + k * 10);
      checkAgainstReference(p, { lossType: t, beta: 0.1 });
      checkAgainstReference(p, { lossType: t, beta: 0.5 });
      // reference-free and per-pair weights
      const w = Float64Array.from(randn(B, 7 + k), (v) => 0.5 + Math.abs(v));
      checkAgainstReference({ ...p, referenceFree: true }, { lossType: t, beta: 0.02, weights: w });
    });
  }

  it('label smoothing: cDPO sigmoid, robust, exo_pair, aot, aot_unpaired', () => {
    const p = pairs(B, 300);
    for (const t of ['sigmoid', 'robust', 'exo_pair', 'aot', 'aot_unpaired'] as const)
      for (const ls of [0, 0.1, 0.3, 0.49]) checkAgainstReference(p, { lossType: t, labelSmoothing: ls, beta: 0.2 });
    // Ignored by the others, as TRL: same result with and without.
    for (const t of ['hinge', 'ipo', 'bco_pair', 'sppo_hard', 'nca_pair', 'apo_zero', 'apo_down', 'discopop'] as const)
      expect(dpoLoss(p, { lossType: t, labelSmoothing: 0.2 }).loss).toBe(dpoLoss(p, { lossType: t }).loss);
  });

  it('exo_pair with labelSmoothing 0 uses TRL’s EXO default 1e-3', () => {
    const p = pairs(B, 310);
    expect(dpoLoss(p, { lossType: 'exo_pair' }).loss).toBeCloseTo(
      dpoLoss(p, { lossType: 'exo_pair', labelSmoothing: 1e-3 }).loss,
      14,
    );
  });

  it('f-divergences (forward_kl, js, alpha with its clamp) for every loss type that uses the scores', () => {
    const p = pairs(B, 400, 1.5);
    for (const t of DPO_LOSS_TYPES) {
      checkAgainstReference(p, { lossType: t, fDivergence: 'forward_kl', beta: 0.1 });
      checkAgainstReference(p, { lossType: t, fDivergence: 'js', beta: 0.3 });
      checkAgainstReference(p, { lossType: t, fDivergence: 'alpha', alpha: 0.5, beta: 0.1 });
      checkAgainstReference(p, { lossType: t, fDivergence: 'alpha', alpha: 1.7, beta: 0.1 });
    }
    // alpha = 1 is reverse_kl (TRL's limit case)
    expect(dpoLoss(p, { fDivergence: 'alpha', alpha: 1 }).loss).toBe(dpoLoss(p).loss);
    // The clamp: (alpha - 1) * logratio > 80 is capped and has zero gradient, as torch.clamp.
    const q = pairs(3, 410);
    q.policyChosen[1] = q.referenceChosen[1] + 120;
    const r = checkAgainstReference(q, { fDivergence: 'alpha', alpha: 2, beta: 0.01 });
    expect(r.gradChosen[1]).toBe(0);
  });

  it("combined losses: ['sigmoid', 'sft'] with lossWeights (the paper's DPO + NLL) and a 3-way mix", () => {
    const p = pairs(B, 500);
    const r = checkAgainstReference(p, { lossType: ['sigmoid', 'sft'], lossWeights: [1, 0.5] });
    // The NLL part: token mean over every chosen completion token of the batch.
    const dpo = dpoLoss(p, { lossType: 'sigmoid' }).loss;
    let s = 0;
    let n = 0;
    for (let i = 0; i < B; i++) {
      s += p.policyChosen[i];
      n += p.chosenTokens[i];
    }
    expect(r.loss).toBeCloseTo(dpo + 0.5 * (-s / n), 12);
    checkAgainstReference(p, {
      lossType: ['sigmoid', 'bco_pair', 'sft'],
      lossWeights: [0.8, 0.2, 1.0],
      weights: Float64Array.from(randn(B, 9), Math.abs),
    });
  });

  it('rewards, margins and accuracy are on the raw log-ratios whatever the loss and f-divergence', () => {
    const p = pairs(B, 600);
    const r = dpoLoss(p, { lossType: 'ipo', fDivergence: 'js', beta: 0.25 });
    for (let i = 0; i < B; i++) {
      expect(r.chosenRewards[i]).toBeCloseTo(0.25 * (p.policyChosen[i] - p.referenceChosen[i]), 12);
      expect(r.margins[i]).toBeCloseTo(r.chosenRewards[i] - r.rejectedRewards[i], 12);
    }
    const acc = Array.from(r.margins).filter((m) => m > 0).length / B;
    expect(r.rewardAccuracy).toBe(acc);
  });

  it('accepts Float32Array inputs (widened to float64)', () => {
    const p = pairs(5, 700);
    const f32 = {
      policyChosen: Float32Array.from(p.policyChosen),
      policyRejected: Float32Array.from(p.policyRejected),
      referenceChosen: Float32Array.from(p.referenceChosen),
      referenceRejected: Float32Array.from(p.referenceRejected),
    };
    const a = dpoLoss(f32);
    const b = dpoLoss({
      policyChosen: Float64Array.from(f32.policyChosen),
      policyRejected: Float64Array.from(f32.policyRejected),
      referenceChosen: Float64Array.from(f32.referenceChosen),
      referenceRejected: Float64Array.from(f32.referenceRejected),
    });
    expect(a.loss).toBe(b.loss);
  });
});

describe('dpoLoss: extreme inputs stay finite', () => {
  for (const fDivergence of ['reverse_kl', 'js', 'alpha'] as const) {
    it(`margins of ±1e4 (${fDivergence}) give finite losses and gradients for every loss type`, () => {
      const B = 4;
      const z = new Float64Array(B);
      const pc = Float64Array.from([1e4, -1e4, 5e3, -5e3]);
      const pr = Float64Array.from([-1e4, 1e4, -5e3, 5e3]);
      const ct = Int32Array.from([1, 3, 0, 7]);
      for (const t of DPO_LOSS_TYPES)
        for (const beta of [0.1, 1, 10]) {
          const r = dpoLoss(
            {
              policyChosen: pc,
              policyRejected: pr,
              referenceChosen: z,
              referenceRejected: z,
              chosenTokens: ct,
              rejectedTokens: ct,
            },
            { lossType: t, beta, fDivergence, alpha: 0.5, labelSmoothing: 0.1 },
          );
          const all = [r.loss, ...r.losses, ...r.gradChosen, ...r.gradRejected, ...r.margins];
          if (!all.every(Number.isFinite)) expect.fail(`${t} beta ${beta}: ${JSON.stringify(all)}`);
        }
    });
  }

  it('discopop: exp(-x) is guarded where TRL gives inf * 0 = NaN, and exact where TRL is finite', () => {
    const z = new Float64Array(2);
    const r = dpoLoss(
      {
        policyChosen: Float64Array.from([-1e4, 3]),
        policyRejected: Float64Array.from([1e4, 1]),
        referenceChosen: z,
        referenceRejected: z,
      },
      { lossType: 'discopop', beta: 0.1 },
    );
    expect(Number.isFinite(r.loss)).toBe(true);
    // Pair 0: x = -2000: the logistic part softplus(2000) * (1 - m) = 2000 dominates.
    expect(r.losses[0]).toBeCloseTo(2000, 6);
  });

  it('counts of 0 are clamped to 1 (TRL clamp(min=1)) for ipo and sigmoid_norm', () => {
    const p = pairs(3, 800);
    p.chosenTokens[0] = 0;
    p.rejectedTokens[2] = 0;
    checkAgainstReference(p, { lossType: 'ipo' });
    checkAgainstReference(p, { lossType: 'sigmoid_norm' });
  });
});

describe('dpoLoss: bad input is a typed error with a code, before native access', () => {
  const p = pairs(4, 900);
  const code = (f: () => unknown, cls: unknown, c: string) => {
    expect(f).toThrow(cls as never);
    try {
      f();
    } catch (e) {
      expect((e as { code: string }).code).toBe(c);
    }
  };

  it('B = 0', () => {
    const e = new Float64Array(0);
    code(
      () => dpoLoss({ policyChosen: e, policyRejected: e, referenceChosen: e, referenceRejected: e }),
      ShapeMismatchError,
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
  });

  it('length mismatches', () => {
    const short = new Float64Array(3);
    code(() => dpoLoss({ ...p, policyRejected: short }), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH');
    code(() => dpoLoss({ ...p, referenceChosen: short }), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH');
    code(() => dpoLoss({ ...p, referenceRejected: short }), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH');
    code(
      () => dpoLoss({ ...p, chosenTokens: new Int32Array(5) }, { lossType: 'ipo' }),
      ShapeMismatchError,
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
  });

  it('missing token counts for ipo, sigmoid_norm, sft; negative counts', () => {
    const { chosenTokens: _c, rejectedTokens: _r, ...noCounts } = p;
    for (const t of ['ipo', 'sigmoid_norm', 'sft'] as const)
      code(() => dpoLoss(noCounts, { lossType: t }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(
      () => dpoLoss({ ...noCounts, chosenTokens: p.chosenTokens }, { lossType: 'ipo' }),
      InvalidTypeError,
      'ERR_UNIGAP_INVALID_TYPE',
    );
    expect(() =>
      dpoLoss({ ...noCounts, chosenTokens: p.chosenTokens }, { lossType: ['sigmoid', 'sft'] }),
    ).not.toThrow();
    code(
      () => dpoLoss({ ...p, chosenTokens: Int32Array.from([1, -1, 2, 3]) }, { lossType: 'ipo' }),
      InvalidValueError,
      'ERR_UNIGAP_INVALID_VALUE',
    );
    code(
      () => dpoLoss({ ...p, chosenTokens: new Float64Array(4) as never }, { lossType: 'ipo' }),
      InvalidTypeError,
      'ERR_UNIGAP_INVALID_TYPE',
    );
  });

  it('beta <= 0 or not finite; label smoothing outside [0, 0.5); tau <= 0; alpha not finite', () => {
    for (const beta of [0, -0.1, NaN, Infinity])
      code(() => dpoLoss(p, { beta }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { beta: '0.1' as never }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    for (const labelSmoothing of [-0.01, 0.5, 0.7, NaN])
      code(() => dpoLoss(p, { labelSmoothing, lossType: 'robust' }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { discopopTau: 0, lossType: 'discopop' }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { fDivergence: 'alpha', alpha: Infinity }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { bcoDelta: NaN }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
  });

  it('unknown loss types, f-divergences and misspelled option or input names (with did-you-mean)', () => {
    expect(() => dpoLoss(p, { lossType: 'sigmoid_nrom' as never })).toThrow(/did you mean 'sigmoid_norm'/);
    code(() => dpoLoss(p, { lossType: 'kto_pair' as never }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { lossType: ['sigmoid', 'nll'] as never }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { lossType: [] }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLoss(p, { lossType: 3 as never }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(() => dpoLoss(p, { fDivergence: 'kl' as never }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expect(() => dpoLoss(p, { lable_smoothing: 0.1 } as never)).toThrow(UnknownOptionError);
    expect(() => dpoLoss(p, { labelSmooting: 0.1 } as never)).toThrow(/did you mean 'labelSmoothing'/);
    code(
      () => dpoLoss({ ...p, referenceChoosen: p.referenceChosen } as never),
      UnknownOptionError,
      'ERR_UNIGAP_UNKNOWN_OPTION',
    );
    code(() => dpoLoss(p, 'sigmoid' as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(() => dpoLoss(null as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
  });

  it('weights and lossWeights of the wrong length or values', () => {
    code(() => dpoLoss(p, { weights: new Float64Array(3) }), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH');
    code(
      () => dpoLoss(p, { weights: Float64Array.from([1, NaN, 1, 1]) }),
      InvalidValueError,
      'ERR_UNIGAP_INVALID_VALUE',
    );
    code(() => dpoLoss(p, { weights: [1, 1, 1, 1] as never }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(
      () => dpoLoss(p, { lossType: ['sigmoid', 'sft'], lossWeights: [1] }),
      ShapeMismatchError,
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
    code(() => dpoLoss(p, { lossType: 'sigmoid', lossWeights: [NaN] }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
  });

  it('missing references without referenceFree; wrong array types', () => {
    const { referenceChosen: _a, referenceRejected: _b, ...noRef } = p;
    code(() => dpoLoss(noRef), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    expect(Number.isFinite(dpoLoss({ ...noRef, referenceFree: true }).loss)).toBe(true);
    code(() => dpoLoss({ ...p, referenceFree: 1 as never }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(() => dpoLoss({ ...p, policyChosen: [1, 2, 3, 4] as never }), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    code(
      () => dpoLoss({ ...p, policyChosen: new Uint16Array(4) as never }),
      InvalidTypeError,
      'ERR_UNIGAP_INVALID_TYPE',
    );
  });

  it('the N-API layer re-checks (a caller bypassing the facade gets a typed error, not a crash)', async () => {
    const { loadNative } = await import('../lib/native.js');
    const n = loadNative() as unknown as { dpoLoss(a: unknown): void };
    expect(() => n.dpoLoss({ policyChosen: new Float32Array(2) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_TYPE' }),
    );
    const B = 2;
    const f = () => new Float64Array(B);
    const args = {
      policyChosen: f(),
      policyRejected: new Float64Array(3),
      lossTypes: Int32Array.from([0]),
      beta: 0.1,
      labelSmoothing: 0,
      discopopTau: 0.05,
      fDivergence: 0,
      alpha: 1,
      bcoDelta: 0,
      losses: f(),
      chosenRewards: f(),
      rejectedRewards: f(),
      margins: f(),
      gradChosen: f(),
      gradRejected: f(),
      scalars: new Float64Array(2),
    };
    expect(() => n.dpoLoss(args)).toThrow(expect.objectContaining({ code: 'ERR_UNIGAP_SHAPE_MISMATCH' }));
    expect(() => n.dpoLoss({ ...args, policyRejected: f(), beta: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_VALUE' }),
    );
    expect(() => n.dpoLoss({ ...args, policyRejected: f(), lossTypes: Int32Array.from([2]) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_VALUE' }),
    );
  });
});
