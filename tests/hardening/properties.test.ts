/**
 * Property-based tests (fast-check) of shapes and values against the float64 references in
 * lib/reference/*: random shapes (including V = 1, T = 1, empty sequences, N = 0 rows), dtypes, ISA
 * tiers, options and values. Deterministic by default (seed 20261126); UNIGAP_FC_SEED=<n> or
 * UNIGAP_FC_RUNS=<n> explore further. A failure prints the seed and the shrunk counterexample.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import {
  backendInfo,
  clipScore,
  dpoLoss,
  logprobsBackward,
  pairedCosine,
  retrievalRanks,
  scoreLogprobs,
  setIsa,
  similarityMatrix,
  topkSimilarity,
  DPO_LOSS_TYPES,
  type DpoLossType,
} from '../../lib/index.js';
import { dpoLossReference, type RefLossType } from '../../lib/reference/dpo.js';
import { decodeLogits, encodeHalf, referenceLogprobs } from '../../lib/reference/logprobs.js';
import { pairedCosineRef, similarityMatrixRef, toFloat64 } from '../../lib/reference/similarity.js';
import { randn, tiersAvailable } from '../helpers.js';

const seed = Number(process.env.UNIGAP_FC_SEED ?? 20261126);
const numRuns = Number(process.env.UNIGAP_FC_RUNS ?? 80);
const params = { seed, numRuns };
const tiers = tiersAvailable(backendInfo().cpu.bestIsa);
const initialIsa = backendInfo().cpu.isa ?? 'scalar';
afterAll(() => void setIsa(initialIsa));

const close = (a: number, b: number, rtol: number, atol: number) =>
  (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= atol + rtol * Math.abs(b);
function allClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number) {
  if (got.length !== want.length) throw new Error(`${name}: length ${got.length} vs ${want.length}`);
  for (let i = 0; i < got.length; i++)
    if (!close(got[i], want[i], rtol, atol)) throw new Error(`${name}[${i}]: ${got[i]} vs reference ${want[i]}`);
}
const f32 = (min: number, max: number) =>
  fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true, noDefaultInfinity: true });

describe('logprobs properties', () => {
  const arb = fc
    .record({
      B: fc.integer({ min: 1, max: 4 }),
      T: fc.integer({ min: 1, max: 6 }),
      V: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 9, max: 90 })),
      shift: fc.boolean(),
      temperature: fc.constantFrom(1, 0.5, 2.3),
      dtype: fc.constantFrom('f32', 'bf16', 'f16'),
      tier: fc.constantFrom(...tiers),
      packed: fc.boolean(),
      useMask: fc.boolean(),
      scale: fc.constantFrom(1, 8),
    })
    .chain((s) =>
      fc.record({
        s: fc.constant(s),
        logits: fc.array(f32(-1, 1), { minLength: s.B * s.T * s.V, maxLength: s.B * s.T * s.V }),
        labels: fc.array(fc.oneof(fc.integer({ min: 0, max: s.V - 1 }), fc.constant(-100)), {
          minLength: s.B * s.T,
          maxLength: s.B * s.T,
        }),
        mask: fc.array(fc.constantFrom(0, 1, 1, 1), { minLength: s.B * s.T, maxLength: s.B * s.T }),
        cuts: fc.array(fc.integer({ min: 0, max: s.B * s.T }), { minLength: s.B - 1, maxLength: s.B - 1 }),
        gradSeq: fc.array(f32(-2, 2), { minLength: s.B, maxLength: s.B }),
      }),
    );

  it('scoreLogprobs (forward + fused gradient) matches the float64 reference on every tier and dtype', () => {
    fc.assert(
      fc.property(arb, ({ s, logits, labels, mask, cuts, gradSeq }) => {
        setIsa(s.tier);
        const N = s.B * s.T;
        const raw = Float32Array.from(logits, (x) => x * s.scale);
        const data = s.dtype === 'f32' ? raw : encodeHalf(raw, s.dtype as 'bf16' | 'f16');
        const decoded = decodeLogits(data, s.dtype as 'f32' | 'bf16' | 'f16');
        // packed: arbitrary (possibly empty) sequences from sorted cut points; else [B, T, V].
        const offsets = s.packed ? Int32Array.from([0, ...[...cuts].sort((a, b) => a - b), N]) : undefined;
        const lab = Int32Array.from(labels);
        const m = s.useMask ? Uint8Array.from(mask) : undefined;
        const r = scoreLogprobs(data, lab, {
          shape: [s.B, s.T, s.V],
          ...(offsets ? { offsets } : {}),
          ...(m ? { mask: m } : {}),
          shift: s.shift,
          temperature: s.temperature,
          ...(s.dtype === 'f32' ? {} : { dtype: s.dtype as 'bf16' | 'f16' }),
          entropy: true,
          accuracy: true,
          gradient: { seq: Float32Array.from(gradSeq) },
        });
        const ref = referenceLogprobs({
          logits: decoded,
          labels: lab,
          nTokens: N,
          vocab: s.V,
          offsets: offsets ?? Int32Array.from({ length: s.B + 1 }, (_, i) => i * s.T),
          shift: s.shift,
          mask: m,
          temperature: s.temperature,
          gradSeq,
        });
        const tol = (2e-5 * s.scale * (1 + Math.log2(s.V + 1))) / s.temperature;
        allClose('tokenLogprobs', r.tokenLogprobs, ref.tokenLogp, 1e-5, tol);
        allClose('tokenEntropy', r.tokenEntropy!, ref.tokenEntropy, 1e-4, tol);
        allClose('seqSum', r.seqSum, ref.seqSum, 1e-5, tol * (s.T + 1));
        expect(Array.from(r.seqCount)).toEqual(Array.from(ref.seqCount));
        // argmax ties in bf16/f16 decode identically, so accuracy must agree exactly where counted
        for (let t = 0; t < N; t++) if (ref.counted[t]) expect(r.tokenCorrect![t]).toBe(ref.tokenCorrect[t]);
        const g =
          s.dtype === 'f32'
            ? (r.gradient as Float32Array)
            : decodeLogits(r.gradient as Uint16Array, s.dtype as 'bf16' | 'f16');
        const gtol = s.dtype === 'f32' ? 1e-5 : s.dtype === 'f16' ? 2e-3 : 1.6e-2;
        allClose('gradient', g, ref.grad!, gtol, 1e-6 + (gtol * 2.5) / s.temperature);
      }),
      params,
    );
  });
});

describe('logprobs properties on long rows', () => {
  // Rows long enough for the SIMD tiers' blocked sweeps (AVX-512: blocks of 2048, the plain forward
  // software-pipelined), logits at any offset (to +-1e30) and spread (0.01 to 1e6), temperatures from
  // 1e-8 to 1e4, with and without the extra statistics (they take different kernels), with and without
  // the fused gradient: logp and lse within a few fp32 ulps of |lse| of the float64 reference.
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 3 }),
    V: fc.integer({ min: 4096, max: 12000 }),
    mean: fc.oneof(
      fc.constant(0),
      fc.double({ min: -3e4, max: 3e4, noNaN: true }),
      fc.double({ min: -1e30, max: 1e30, noNaN: true }),
    ),
    spread: fc.oneof(fc.double({ min: 0.01, max: 300, noNaN: true }), fc.double({ min: 300, max: 1e6, noNaN: true })),
    logTemperature: fc.double({ min: -8, max: 4, noNaN: true }),
    dtype: fc.constantFrom('f32', 'bf16', 'f16'),
    tier: fc.constantFrom(...tiers),
    stats: fc.boolean(),
    gradient: fc.boolean(),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
  });
  it('the forward and the fused gradient match the float64 reference at any offset and temperature', () => {
    fc.assert(
      fc.property(arb, (s) => {
        setIsa(s.tier);
        const temperature = 10 ** s.logTemperature;
        const raw = randn(s.N * s.V, s.seed, s.spread).map((x) => x + s.mean);
        const dtype = s.dtype as 'f32' | 'bf16' | 'f16';
        const data = dtype === 'f32' ? raw : encodeHalf(raw, dtype);
        const decoded = decodeLogits(data, dtype);
        if (decoded.some((x) => !Number.isFinite(x))) return; // beyond f16's range
        const lab = Int32Array.from({ length: s.N }, (_, i) => (s.seed * (i + 7)) % s.V);
        const gradSeq = [0.75];
        const r = scoreLogprobs(data, lab, {
          shape: [s.N, s.V],
          temperature,
          ...(dtype === 'f32' ? {} : { dtype }),
          ...(s.stats ? { entropy: true, accuracy: true, logitSums: true } : {}),
          ...(s.gradient ? { gradient: { seq: Float32Array.from(gradSeq) } } : {}),
        });
        const ref = referenceLogprobs({
          logits: decoded,
          labels: lab,
          nTokens: s.N,
          vocab: s.V,
          temperature,
          ...(s.gradient ? { gradSeq } : {}),
        });
        for (let t = 0; t < s.N; t++) {
          const tol = 2e-5 * (1 + Math.abs(ref.tokenLse[t]));
          if (!close(r.tokenLogprobs[t], ref.tokenLogp[t], 0, tol) || !close(r.tokenLse[t], ref.tokenLse[t], 0, tol))
            throw new Error(
              `row ${t}: logp ${r.tokenLogprobs[t]} vs ${ref.tokenLogp[t]}, lse ${r.tokenLse[t]} vs ${ref.tokenLse[t]}`,
            );
        }
        // The gradient carries the fp32 rounding of z / tau - lse: a few ulp(max |z / tau|) in the
        // exponent, so its tolerance grows with that; past 2^14 there is nothing left to compare.
        const xmax = decoded.reduce((m, x) => Math.max(m, Math.abs(x)), 0) / temperature;
        if (s.gradient && xmax < 2 ** 14) {
          const g = dtype === 'f32' ? (r.gradient as Float32Array) : decodeLogits(r.gradient as Uint16Array, dtype);
          const gtol = (dtype === 'f32' ? 1e-5 : dtype === 'f16' ? 2e-3 : 1.6e-2) + 6 * xmax * 2 ** -23;
          allClose('gradient', g, ref.grad!, gtol, 1e-6 + (gtol * 2.5) / temperature);
          // the separate backward, given the forward's lse (one sweep), is the same gradient
          const b = logprobsBackward(
            data,
            lab,
            { seq: Float32Array.from(gradSeq) },
            { shape: [s.N, s.V], temperature, lse: r.tokenLse, ...(dtype === 'f32' ? {} : { dtype }) },
          ).gradient;
          const bg = dtype === 'f32' ? (b as Float32Array) : decodeLogits(b as Uint16Array, dtype);
          allClose('backward gradient', bg, ref.grad!, gtol, 1e-6 + (gtol * 2.5) / temperature);
        }
      }),
      { seed, numRuns: Math.max(10, Math.round(numRuns / 2)) },
    );
  });
});

describe('dpo properties', () => {
  const types = DPO_LOSS_TYPES as readonly DpoLossType[];
  const SMOOTH: DpoLossType[] = types.filter((t) => !['hinge', 'aot', 'aot_unpaired'].includes(t));
  const arb = fc
    .record({
      B: fc.integer({ min: 1, max: 8 }),
      lossTypes: fc.uniqueArray(fc.constantFrom(...types), { minLength: 1, maxLength: 3 }),
      beta: fc.double({ min: 0.01, max: 2, noNaN: true }),
      labelSmoothing: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.45, noNaN: true })),
      fDivergence: fc.constantFrom('reverse_kl', 'forward_kl', 'js', 'alpha'),
      alpha: fc.double({ min: 0.2, max: 2, noNaN: true }),
      referenceFree: fc.boolean(),
      weighted: fc.boolean(),
    })
    .chain((s) => {
      // forward_kl and alpha exponentiate the log-ratios: keep them where double differences stay
      // well conditioned (|l| <= 6), so finite differences of the reference remain a fair oracle.
      const lo = s.fDivergence === 'forward_kl' || s.fDivergence === 'alpha' ? -3 : -30;
      const vals = fc.array(fc.double({ min: lo, max: 0, noNaN: true }), { minLength: s.B, maxLength: s.B });
      const counts = fc.array(fc.integer({ min: 0, max: 20 }), { minLength: s.B, maxLength: s.B });
      return fc.record({
        s: fc.constant(s),
        pc: vals,
        pr: vals,
        qc: vals,
        qr: vals,
        nc: counts,
        nr: counts,
        w: fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: s.B, maxLength: s.B }),
        lw: fc.array(fc.double({ min: 0.1, max: 2, noNaN: true }), {
          minLength: s.lossTypes.length,
          maxLength: s.lossTypes.length,
        }),
      });
    });

  it('dpoLoss matches the float64 TRL reference, and its gradients match finite differences of it', () => {
    fc.assert(
      fc.property(arb, ({ s, pc, pr, qc, qr, nc, nr, w, lw }) => {
        const inputs = {
          policyChosen: Float64Array.from(pc),
          policyRejected: Float64Array.from(pr),
          ...(s.referenceFree
            ? { referenceFree: true }
            : { referenceChosen: Float64Array.from(qc), referenceRejected: Float64Array.from(qr) }),
          chosenTokens: Int32Array.from(nc),
          rejectedTokens: Int32Array.from(nr),
        };
        const opts = {
          beta: s.beta,
          lossType: s.lossTypes,
          lossWeights: lw,
          labelSmoothing: s.labelSmoothing,
          fDivergence: s.fDivergence as 'reverse_kl',
          alpha: s.alpha,
          ...(s.weighted ? { weights: Float64Array.from(w) } : {}),
        };
        const r = dpoLoss(inputs, opts);
        const refOpts = {
          beta: s.beta,
          lossTypes: s.lossTypes as RefLossType[],
          lossWeights: lw,
          labelSmoothing: s.labelSmoothing,
          fDivergence: s.fDivergence as 'reverse_kl',
          alpha: s.alpha,
          ...(s.weighted ? { weights: w } : {}),
        };
        const refIn = {
          policyChosen: pc,
          policyRejected: pr,
          ...(s.referenceFree ? {} : { referenceChosen: qc, referenceRejected: qr }),
          chosenTokens: nc,
          rejectedTokens: nr,
        };
        const ref = dpoLossReference(refIn, refOpts);
        // discopop: TRL's literal exp(-x) * m is inf * 0 = NaN for x << 0; the kernel's capped form is
        // finite there and equal wherever TRL is finite (dpo.h). Where the reference is NaN for that
        // reason, the kernel must be finite instead.
        const disco = s.lossTypes.includes('discopop');
        const lossOk = (got: number, want: number) =>
          disco && Number.isNaN(want) ? Number.isFinite(got) : close(got, want, 1e-9, 1e-10);
        expect(lossOk(r.loss, ref.loss), `loss ${r.loss} vs ${ref.loss}`).toBe(true);
        r.losses.forEach((x, i) =>
          expect(lossOk(x, ref.losses[i]), `losses[${i}] ${x} vs ${ref.losses[i]}`).toBe(true),
        );
        allClose('chosenRewards', r.chosenRewards, ref.chosenRewards, 1e-12, 1e-12);
        allClose('margins', r.margins, ref.margins, 1e-12, 1e-12);
        expect(r.rewardAccuracy).toBe(ref.rewardAccuracy);
        if (!s.lossTypes.every((t) => SMOOTH.includes(t))) return;
        // central differences of the reference loss w.r.t. each policy log-prob
        // Central differences of the reference loss at several steps: the quotient's rounding noise
        // follows the intermediate magnitudes (alpha / forward_kl scores reach 1e10 and cancel), so the
        // gradient must agree with the difference quotient at one of the steps.
        for (const [key, grad] of [
          ['policyChosen', r.gradChosen],
          ['policyRejected', r.gradRejected],
        ] as const) {
          for (let i = 0; i < s.B; i++) {
            const at = (d: number) => {
              const arr = [...(key === 'policyChosen' ? pc : pr)];
              arr[i] += d;
              return dpoLossReference({ ...refIn, [key]: arr }, refOpts).loss;
            };
            const fds = [1e-3, 1e-4, 1e-5, 1e-6].map((h) => (at(h) - at(-h)) / (2 * h));
            // TRL's literal discopop / forward_kl overflow to NaN where the kernel stays finite (dpo.h)
            if (!fds.every(Number.isFinite)) continue;
            const noise = (8 * Number.EPSILON * Math.abs(ref.loss) * s.B) / 1e-6;
            expect(
              fds.some((fd) => close(grad[i], fd, 1e-4, 1e-7 + noise)),
              `${key}[${i}] ${grad[i]} vs finite differences ${fds.join(', ')}`,
            ).toBe(true);
          }
        }
      }),
      params,
    );
  });

  it('dpoLoss matches the TRL reference at sequence log-probs of any magnitude', () => {
    // Summed over hundreds of image tokens, sequence log-probs reach -1e4 and beyond; the loss family
    // sees only differences of them, which stay large. No finite differences here: at these scales
    // they measure the reference's rounding, not its slope.
    const big = fc.double({ min: -3e4, max: 0, noNaN: true });
    const arbBig = fc
      .record({
        B: fc.integer({ min: 1, max: 8 }),
        lossType: fc.constantFrom(...types),
        beta: fc.double({ min: 0.01, max: 2, noNaN: true }),
        fDivergence: fc.constantFrom('reverse_kl', 'js'),
      })
      .chain((s) =>
        fc.record({
          s: fc.constant(s),
          v: fc.array(fc.tuple(big, big, big, big), { minLength: s.B, maxLength: s.B }),
          n: fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: s.B, maxLength: s.B }),
        }),
      );
    fc.assert(
      fc.property(arbBig, ({ s, v, n }) => {
        const [pc, pr, qc, qr] = [0, 1, 2, 3].map((k) => v.map((t) => t[k]));
        const refIn = {
          policyChosen: pc,
          policyRejected: pr,
          referenceChosen: qc,
          referenceRejected: qr,
          chosenTokens: n,
          rejectedTokens: n,
        };
        const r = dpoLoss(
          {
            policyChosen: Float64Array.from(pc),
            policyRejected: Float64Array.from(pr),
            referenceChosen: Float64Array.from(qc),
            referenceRejected: Float64Array.from(qr),
            chosenTokens: Int32Array.from(n),
            rejectedTokens: Int32Array.from(n),
          },
          { beta: s.beta, lossType: [s.lossType], fDivergence: s.fDivergence as 'reverse_kl' },
        );
        const ref = dpoLossReference(refIn, {
          beta: s.beta,
          lossTypes: [s.lossType as RefLossType],
          fDivergence: s.fDivergence as 'reverse_kl',
        });
        // discopop: TRL's literal form is NaN where the kernel's capped one stays finite (dpo.h)
        const ok = (got: number, want: number) =>
          s.lossType === 'discopop' && Number.isNaN(want) ? Number.isFinite(got) : close(got, want, 1e-9, 1e-9);
        expect(ok(r.loss, ref.loss), `loss ${r.loss} vs ${ref.loss}`).toBe(true);
        r.losses.forEach((x, i) => expect(ok(x, ref.losses[i]), `losses[${i}] ${x} vs ${ref.losses[i]}`).toBe(true));
        allClose('chosenRewards', r.chosenRewards, ref.chosenRewards, 1e-12, 1e-9);
        allClose('margins', r.margins, ref.margins, 1e-12, 1e-9);
        expect(r.gradChosen.every(Number.isFinite) && r.gradRejected.every(Number.isFinite)).toBe(true);
      }),
      params,
    );
  });
});

describe('similarity properties', () => {
  const dtypes = ['f32', 'f64', 'bf16', 'f16'] as const;
  type Dt = (typeof dtypes)[number];
  // Rows scaled by 2^e (cosine only: raw dot products of such rows overflow f32 by design): tiny rows
  // whose f32 squares underflow (down to f32 denormals) and huge ones whose squares overflow; the
  // cosine family must still match the float64 reference (its norms fall back to f64 there).
  // f16 cannot hold such values, so its rows keep e = 0.
  const EXPS = [0, 0, 0, -140, -100, -70, 70, 100, 120];
  const embed = (vals: number[], n: number, d: number, dtype: Dt, exps: number[]) => {
    const x = Float32Array.from(vals, (v, i) => v * 2 ** (dtype === 'f16' ? 0 : exps[Math.floor(i / d)]));
    const data = dtype === 'f32' ? x : dtype === 'f64' ? Float64Array.from(x) : encodeHalf(x, dtype);
    return {
      emb: { data, dims: [n, d], ...(dtype === 'bf16' || dtype === 'f16' ? { dtype } : {}) },
      f64: toFloat64(data, dtype),
    };
  };
  const arb = fc
    .record({
      N: fc.integer({ min: 0, max: 9 }),
      M: fc.integer({ min: 1, max: 40 }),
      D: fc.integer({ min: 1, max: 40 }),
      da: fc.constantFrom(...dtypes),
      db: fc.constantFrom(...dtypes),
      tier: fc.constantFrom(...tiers),
      normalize: fc.boolean(),
      k: fc.integer({ min: 1, max: 40 }),
    })
    .chain((s) =>
      fc.record({
        s: fc.constant(s),
        a: fc.array(f32(-4, 4), { minLength: s.N * s.D, maxLength: s.N * s.D }),
        b: fc.array(f32(-4, 4), { minLength: s.M * s.D, maxLength: s.M * s.D }),
        ea: fc.array(fc.constantFrom(...(s.normalize ? EXPS : [0])), { minLength: s.N, maxLength: s.N }),
        eb: fc.array(fc.constantFrom(...(s.normalize ? EXPS : [0])), { minLength: s.M, maxLength: s.M }),
      }),
    );

  it('matrix, top-k, ranks, paired cosine and CLIPScore match the float64 reference', () => {
    fc.assert(
      fc.property(arb, ({ s, a, b, ea, eb }) => {
        setIsa(s.tier);
        const A = embed(a, s.N, s.D, s.da, ea);
        const Bm = embed(b, s.M, s.D, s.db, eb);
        const ref = similarityMatrixRef(A.f64, s.N, Bm.f64, s.M, s.D, { normalize: s.normalize });
        // f32 accumulation: |error| <= ~D * eps * sum|a_i b_i| (raw) or ~D * eps (cosine)
        const atol = (s.normalize ? 1 : 16 * s.D) * s.D * 2e-7 + 1e-6;
        const mat = similarityMatrix(A.emb, Bm.emb, { normalize: s.normalize });
        allClose('matrix', mat, ref, 1e-5, atol);
        const k = Math.min(s.k, s.M);
        const t = topkSimilarity(A.emb, Bm.emb, k, { normalize: s.normalize });
        for (let i = 0; i < s.N; i++) {
          const row = Array.from(ref.subarray(i * s.M, (i + 1) * s.M));
          const picked = new Set<number>();
          for (let j = 0; j < k; j++) {
            const c = t.indices[i * k + j];
            expect(c >= 0 && c < s.M && !picked.has(c)).toBe(true);
            picked.add(c);
            expect(close(t.scores[i * k + j], row[c], 1e-5, atol)).toBe(true);
            if (j > 0) expect(t.scores[i * k + j]).toBeLessThanOrEqual(t.scores[i * k + j - 1]);
          }
          // nothing left out beats the k-th pick by more than the rounding tolerance
          const kth = row[t.indices[i * k + k - 1]];
          for (let c = 0; c < s.M; c++) if (!picked.has(c)) expect(row[c]).toBeLessThanOrEqual(kth + 2 * atol);
        }
        if (s.M >= s.N) {
          const Bn = { ...Bm.emb, data: Bm.emb.data.subarray(0, s.N * s.D), dims: [s.N, s.D] };
          const refN = similarityMatrixRef(A.f64, s.N, Bm.f64.subarray(0, s.N * s.D), s.N, s.D, {
            normalize: s.normalize,
          });
          const rr = retrievalRanks(A.emb, Bn, { normalize: s.normalize });
          for (let i = 0; i < s.N; i++) {
            const own = refN[i * s.N + i];
            let lo = 1;
            let hi = 1;
            for (let j = 0; j < s.N; j++) {
              if (refN[i * s.N + j] > own + 2 * atol) lo++;
              if (refN[i * s.N + j] > own - 2 * atol) hi++;
            }
            expect(rr.ranks[i] >= lo && rr.ranks[i] <= Math.min(hi, s.N)).toBe(true);
          }
          const pcos = pairedCosine(A.emb, Bn);
          const pref = pairedCosineRef(A.f64, Bm.f64.subarray(0, s.N * s.D), s.N, s.D);
          allClose('pairedCosine', pcos, pref, 1e-5, 2e-6 * s.D + 1e-6);
          if (s.N > 0) {
            const cs = clipScore(A.emb, Bn);
            const want = Math.max(0, (100 * pref.reduce((x, y) => x + y, 0)) / s.N);
            expect(close(cs, want, 1e-4, 1e-3 * s.D)).toBe(true);
          }
        }
      }),
      params,
    );
  });
});
