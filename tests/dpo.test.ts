import { afterAll, describe, expect, it } from 'vitest';

import {
  backendInfo,
  dpoLoss,
  dpoLossFromLogits,
  dpoLossFromLogitsAsync,
  logprobsBackward,
  scoreLogprobs,
  setIsa,
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
import { decodeLogits, encodeHalf, referenceLogprobs } from '../lib/reference/logprobs.js';
import { randn, rng, tiersAvailable } from './helpers.js';

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

// ------------------------------------------------------------------------------ fused from logits

type DT = 'f32' | 'bf16' | 'f16';

/** [chosen; rejected] logits of 2B sequences of T rows, labels with a prompt of -100 and some padding. */
function fusedBatch(B: number, T: number, V: number, seed: number, dtype: DT, scale = 3) {
  const vals = randn(2 * B * T * V, seed, scale);
  const logits = dtype === 'f32' ? vals : encodeHalf(vals, dtype);
  const r = rng(seed + 1);
  const labels = new Int32Array(2 * B * T);
  for (let s = 0; s < 2 * B; s++) {
    const prompt = 1 + Math.floor(r() * 3);
    const pad = Math.floor(r() * 2);
    for (let t = 0; t < T; t++) labels[s * T + t] = t < prompt || t >= T - pad ? -100 : Math.floor(r() * V);
  }
  const rc = Float64Array.from(randn(B, seed + 2, 3), (v) => v - 20);
  const rr = Float64Array.from(randn(B, seed + 3, 3), (v) => v - 20);
  return { logits, labels, rc, rr, shape: [2 * B, T, V] as number[] };
}

/** scoreLogprobs → dpoLoss → logprobsBackward: the composed path the fused one must equal. */
function composed(b: ReturnType<typeof fusedBatch>, dtype: DT, o: DpoLossOptions & { shift?: boolean }) {
  const { shift, ...dpoOpts } = o;
  const B = b.rc.length;
  const lp = scoreLogprobs(b.logits, b.labels, {
    shape: b.shape,
    dtype,
    shift,
    entropy: true,
    accuracy: true,
    logitSums: true,
  });
  const d = dpoLoss(
    {
      policyChosen: lp.seqSum.subarray(0, B),
      policyRejected: lp.seqSum.subarray(B),
      referenceChosen: b.rc,
      referenceRejected: b.rr,
      chosenTokens: lp.seqCount.slice(0, B),
      rejectedTokens: lp.seqCount.slice(B),
    },
    dpoOpts,
  );
  const seq = new Float32Array(2 * B);
  seq.set(d.gradChosen, 0);
  seq.set(d.gradRejected, B);
  const g = logprobsBackward(b.logits, b.labels, { seq }, { shape: b.shape, dtype, shift, lse: lp.tokenLse });
  // TRL's metrics from the per-token outputs.
  const T = b.shape[1];
  const V = b.shape[2];
  let ent = 0;
  let hits = 0;
  let lc = 0;
  let lr = 0;
  let tc = 0;
  let tr = 0;
  for (let s = 0; s < 2 * B; s++) {
    for (let t = s * T; t < (s + 1) * T; t++) {
      ent += lp.tokenEntropy![t];
      if (s < B) hits += lp.tokenCorrect![t];
    }
    if (s < B) {
      tc += lp.seqCount[s];
      lc += lp.seqLogitSum![s];
    } else {
      tr += lp.seqCount[s];
      lr += lp.seqLogitSum![s];
    }
  }
  const metrics = {
    logitsChosen: tc ? lc / (tc * V) : 0,
    logitsRejected: tr ? lr / (tr * V) : 0,
    entropy: tc + tr ? ent / (tc + tr) : 0,
    tokenAccuracy: tc ? hits / tc : 0,
  };
  return { lp, d, gradient: g.gradient, metrics };
}

describe('dpoLossFromLogits: fused equals the composed path on every ISA tier and dtype', () => {
  const info = backendInfo();
  const tiers = tiersAvailable(info.cpu.bestIsa);
  afterAll(() => {
    if (info.cpu.bestIsa) setIsa(info.cpu.bestIsa);
  });
  for (const tier of tiers)
    for (const dtype of ['f32', 'bf16', 'f16'] as const)
      it(`${tier} ${dtype}`, () => {
        setIsa(tier);
        const B = 3;
        const T = 9;
        const V = 37;
        for (const [k, o] of [
          { lossType: ['sigmoid', 'sft'], lossWeights: [1, 0.5], shift: true, beta: 0.1 },
          { lossType: 'ipo', shift: false, beta: 0.3, weights: Float64Array.from([0.5, 2, 1]) },
          { lossType: 'aot_unpaired', labelSmoothing: 0.1, shift: true, beta: 0.2 },
        ].entries()) {
          const b = fusedBatch(B, T, V, 1000 + k, dtype);
          const want = composed(b, dtype, o as DpoLossOptions & { shift: boolean });
          const got = dpoLossFromLogits(b.logits, b.labels, {
            ...(o as DpoLossOptions & { shift: boolean }),
            shape: b.shape,
            dtype,
            referenceChosen: b.rc,
            referenceRejected: b.rr,
          });
          expect(got.loss).toBeCloseTo(want.d.loss, 12);
          expectArrayClose(got.losses, want.d.losses, 1e-12, 1e-12, 'losses');
          expectArrayClose(got.gradChosen, want.d.gradChosen, 1e-12, 1e-14, 'gradChosen');
          expectArrayClose(got.gradRejected, want.d.gradRejected, 1e-12, 1e-14, 'gradRejected');
          expectArrayClose(got.margins, want.d.margins, 1e-12, 1e-12, 'margins');
          expect(got.rewardAccuracy).toBe(want.d.rewardAccuracy);
          expectArrayClose(got.policyChosen, want.lp.seqSum.subarray(0, B), 0, 0, 'policyChosen');
          expect(Array.from(got.chosenTokens)).toEqual(Array.from(want.lp.seqCount.subarray(0, B)));
          expect(Array.from(got.rejectedTokens)).toEqual(Array.from(want.lp.seqCount.subarray(B)));
          // d loss / d logits: same kernels, same upstream → equal within fp32 (bitwise in practice).
          const gg = decodeLogits(got.gradient!, dtype);
          const wg = decodeLogits(want.gradient, dtype);
          expectArrayClose(gg, wg, dtype === 'f32' ? 1e-6 : 1e-2, 1e-9, 'gradient');
          expect(got.metrics.logitsChosen).toBeCloseTo(want.metrics.logitsChosen, 6);
          expect(got.metrics.logitsRejected).toBeCloseTo(want.metrics.logitsRejected, 6);
          expect(got.metrics.entropy).toBeCloseTo(want.metrics.entropy, 5);
          expect(got.metrics.tokenAccuracy).toBeCloseTo(want.metrics.tokenAccuracy, 12);
        }
      });
});

describe('dpoLossFromLogits: against the float64 pipeline and finite differences', () => {
  it('loss, rewards and d loss / d logits match float64 log-softmax + the TRL reference', () => {
    const B = 2;
    const T = 6;
    const V = 11;
    const b = fusedBatch(B, T, V, 2000, 'f32', 2);
    const o: DpoLossOptions = { lossType: ['sigmoid', 'sft'], lossWeights: [1, 1], beta: 0.5 };
    const got = dpoLossFromLogits(b.logits, b.labels, {
      ...o,
      shape: b.shape,
      shift: true,
      referenceChosen: b.rc,
      referenceRejected: b.rr,
    });
    const offsets = Array.from({ length: 2 * B + 1 }, (_, i) => i * T);
    const pipeline = (logits: ArrayLike<number>) => {
      const lp = referenceLogprobs({ logits, labels: b.labels, nTokens: 2 * B * T, vocab: V, offsets, shift: true });
      return dpoLossReference(
        {
          policyChosen: lp.seqSum.subarray(0, B),
          policyRejected: lp.seqSum.subarray(B),
          referenceChosen: b.rc,
          referenceRejected: b.rr,
          chosenTokens: lp.seqCount.subarray(0, B),
        },
        refOptions(o, B),
      ).loss;
    };
    const x = Float64Array.from(b.logits as Float32Array);
    expect(close(got.loss, pipeline(x), 1e-6, 1e-7)).toBe(true);
    // Finite differences over a handful of logits of counted rows, chosen and rejected.
    const r = rng(7);
    for (let k = 0; k < 24; k++) {
      const i = Math.floor(r() * x.length);
      const h = 1e-4;
      const up = Float64Array.from(x);
      up[i] += h;
      const dn = Float64Array.from(x);
      dn[i] -= h;
      const fd = (pipeline(up) - pipeline(dn)) / (2 * h);
      const g = (got.gradient as Float32Array)[i];
      if (!close(g, fd, 1e-3, 1e-6)) expect.fail(`d loss / d logits[${i}]: got ${g}, finite difference ${fd}`);
    }
  });

  it('in place, async, gradient: false, referenceFree and offsets give consistent results', async () => {
    const B = 2;
    const T = 5;
    const V = 19;
    const b = fusedBatch(B, T, V, 3000, 'bf16');
    const base = {
      shape: b.shape,
      dtype: 'bf16' as const,
      shift: true,
      referenceChosen: b.rc,
      referenceRejected: b.rr,
    };
    const a = dpoLossFromLogits(b.logits, b.labels, base);
    const asy = await dpoLossFromLogitsAsync(b.logits, b.labels, base);
    expect(asy.loss).toBe(a.loss);
    expect(Array.from(asy.gradient!)).toEqual(Array.from(a.gradient!));
    const fwd = dpoLossFromLogits(b.logits, b.labels, { ...base, gradient: false });
    expect(fwd.gradient).toBeUndefined();
    expect(fwd.loss).toBe(a.loss);
    const copy = Uint16Array.from(b.logits as Uint16Array);
    const ip = dpoLossFromLogits(copy, b.labels, { ...base, inPlace: true });
    expect(ip.gradient).toBe(copy);
    expect(Array.from(copy)).toEqual(Array.from(a.gradient!));
    const off = Int32Array.from({ length: 2 * B + 1 }, (_, i) => i * T);
    const viaOffsets = dpoLossFromLogits(b.logits, b.labels, { ...base, shape: [2 * B * T, V], offsets: off });
    expect(viaOffsets.loss).toBe(a.loss);
    const rf = dpoLossFromLogits(b.logits, b.labels, {
      shape: b.shape,
      dtype: 'bf16',
      shift: true,
      referenceFree: true,
    });
    expect(rf.chosenRewards[0]).toBeCloseTo(0.1 * rf.policyChosen[0], 12);
  });

  it('a sequence with no completion tokens (all ignored) counts 0 and keeps everything finite', () => {
    const B = 2;
    const T = 5;
    const V = 13;
    const b = fusedBatch(B, T, V, 3500, 'f32');
    b.labels.fill(-100, 0, T); // pair 0's chosen sequence
    for (const lossType of ['ipo', 'sigmoid_norm', 'sft'] as const) {
      const o = { lossType, shift: true, beta: 0.2 };
      const want = composed(b, 'f32', o);
      const got = dpoLossFromLogits(b.logits, b.labels, {
        ...o,
        shape: b.shape,
        referenceChosen: b.rc,
        referenceRejected: b.rr,
      });
      expect(got.chosenTokens[0]).toBe(0);
      expect(Number.isFinite(got.loss)).toBe(true);
      expect(got.loss).toBeCloseTo(want.d.loss, 12);
      expect(Array.from((got.gradient as Float32Array).subarray(0, T * V)).every((g) => g === 0)).toBe(true);
    }
  });

  it('bf16 logits of large magnitude give finite results', () => {
    const B = 2;
    const b = fusedBatch(B, 4, 33, 4000, 'f32', 300);
    const bits = encodeHalf(b.logits as Float32Array, 'bf16');
    for (const lossType of DPO_LOSS_TYPES) {
      const r = dpoLossFromLogits(bits, b.labels, {
        shape: b.shape,
        dtype: 'bf16',
        referenceChosen: b.rc,
        referenceRejected: b.rr,
        lossType,
        beta: 1,
      });
      const all = [r.loss, ...r.gradChosen, ...r.gradRejected, ...decodeLogits(r.gradient!, 'bf16')];
      if (!all.every(Number.isFinite)) expect.fail(`${lossType}: non-finite output`);
    }
  });

  it('bad input: typed errors with codes before native access', () => {
    const b = fusedBatch(2, 4, 7, 5000, 'f32');
    const ok = { shape: b.shape, referenceChosen: b.rc, referenceRejected: b.rr };
    const code = (f: () => unknown, c: string) => expect(f).toThrow(expect.objectContaining({ code: c }));
    code(
      () => dpoLossFromLogits(b.logits, b.labels, { ...ok, shape: [3, 4, 7], referenceChosen: b.rc }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
    code(
      () => dpoLossFromLogits(b.logits.subarray(0, 3 * 4 * 7), b.labels.subarray(0, 12), { ...ok, shape: [3, 4, 7] }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
    code(
      () => dpoLossFromLogits(b.logits, b.labels, { ...ok, referenceChosen: new Float64Array(3) }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
    code(() => dpoLossFromLogits(b.logits, b.labels, { shape: b.shape }), 'ERR_UNIGAP_INVALID_TYPE');
    code(() => dpoLossFromLogits(b.logits, b.labels, { ...ok, beta: 0 }), 'ERR_UNIGAP_INVALID_VALUE');
    code(() => dpoLossFromLogits(b.logits, b.labels, { ...ok, lossType: 'dpo' as never }), 'ERR_UNIGAP_INVALID_VALUE');
    expect(() => dpoLossFromLogits(b.logits, b.labels, { ...ok, temprature: 2 } as never)).toThrow(
      /did you mean 'temperature'/,
    );
    code(
      () => dpoLossFromLogits(b.logits, b.labels, { ...ok, inPlace: true, gradient: false }),
      'ERR_UNIGAP_INVALID_VALUE',
    );
    const badLabels = Int32Array.from(b.labels);
    badLabels[5] = 7;
    code(() => dpoLossFromLogits(b.logits, badLabels, ok), 'ERR_UNIGAP_OUT_OF_RANGE');
    code(() => dpoLossFromLogits(new Float64Array(b.logits) as never, b.labels, ok), 'ERR_UNIGAP_INVALID_TYPE');
    code(
      () => dpoLossFromLogits(b.logits, b.labels, { ...ok, weights: new Float64Array(5) }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
  });
});
