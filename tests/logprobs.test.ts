import { afterAll, describe, expect, it } from 'vitest';

import {
  backendInfo,
  logprobsBackward,
  logprobsBackwardAsync,
  scoreLogprobs,
  scoreLogprobsAsync,
  setIsa,
  type ScoreLogprobsOptions,
} from '../lib/index.js';
import {
  logprobsResultOf,
  prepareLogprobsCall,
  runLogprobsCall,
  type PrepareLogprobsOptions,
} from '../lib/kernels/logprobs.js';
import { loadNative } from '../lib/native.js';
import {
  decodeLogits,
  encodeHalf,
  referenceLogprobs,
  type ReferenceLogprobsInput,
  type ReferenceLogprobsResult,
} from '../lib/reference/logprobs.js';
import { randn, rng, tiersAvailable } from './helpers.js';

const info = backendInfo();
const best = info.cpu.bestIsa ?? 'scalar';
const TIERS = tiersAvailable(best);
const DTYPES = ['f32', 'bf16', 'f16'] as const;
type DT = (typeof DTYPES)[number];

afterAll(() => {
  setIsa(best);
});

/** Fresh random logits of a dtype, plus their exact values as numbers. */
function makeLogits(n: number, v: number, seed: number, dtype: DT, scale = 3) {
  const f = randn(n * v, seed, scale);
  const data = dtype === 'f32' ? f : encodeHalf(f, dtype);
  return { data, values: decodeLogits(data, dtype) };
}

function makeLabels(n: number, v: number, seed: number, ignoreEvery = 0): Int32Array {
  const r = rng(seed);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = ignoreEvery && i % ignoreEvery === ignoreEvery - 1 ? -100 : Math.floor(r() * v);
  return y;
}

const halfNaN = (dtype: DT) => (dtype === 'bf16' ? 0x7fc0 : 0x7e00);

/** Prepare, poison every output (NaN / 0xAA), run: so an element the kernel forgot shows up. */
function runPoisoned(logits: unknown, labels: Int32Array, options: PrepareLogprobsOptions) {
  const p = prepareLogprobsCall('test', logits, labels, options);
  const c = p.call;
  for (const a of [c.tokenLogp, c.tokenEntropy, c.tokenLse, c.seqSum, c.seqMean, c.seqLogitSum]) a?.fill(NaN);
  c.tokenCorrect?.fill(0xaa);
  c.seqCount?.fill(-7);
  if (c.gradOut && c.gradOut !== c.logits) {
    if (c.gradOut instanceof Float32Array) c.gradOut.fill(NaN);
    else c.gradOut.fill(halfNaN(p.dtype));
  }
  runLogprobsCall(p);
  return p;
}

function close(a: number, b: number, rtol: number, atol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= atol + rtol * Math.abs(b);
}

/** First index where got and want disagree, with a message; null when all agree. */
function firstMismatch(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  atol: number | ((i: number) => number),
): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    const at = typeof atol === 'function' ? atol(i) : atol;
    if (!close(got[i], want[i], rtol, at)) return `[${i}] ${got[i]} vs ${want[i]}`;
  }
  return null;
}

function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  atol: number | ((i: number) => number),
  what: string,
) {
  expect(firstMismatch(got, want, rtol, atol), what).toBeNull();
}

/** Compare a forward (and the fused gradient, when present) with the float64 reference. */
function checkAgainstReference(
  p: ReturnType<typeof runPoisoned>,
  ref: ReferenceLogprobsResult,
  tag: string,
  opts: { temperature?: number } = {},
) {
  const c = p.call;
  const tau = opts.temperature ?? 1;
  // fp32 statistics: absolute error grows with |lse| and with the log-sum of V terms
  const tol = (i: number) => 2e-5 * (1 + Math.abs(ref.tokenLse[i]));
  expectClose(c.tokenLogp!, ref.tokenLogp, 0, tol, `${tag} tokenLogp`);
  expectClose(
    c.tokenLse!,
    ref.tokenLse.map((x, i) => (ref.counted[i] ? x : 0)),
    0,
    tol,
    `${tag} tokenLse`,
  );
  if (c.tokenEntropy) expectClose(c.tokenEntropy, ref.tokenEntropy, 0, tol, `${tag} entropy`);
  if (c.tokenCorrect) expect(Array.from(c.tokenCorrect), `${tag} correct`).toEqual(Array.from(ref.tokenCorrect));
  expect(Array.from(c.seqCount!), `${tag} count`).toEqual(Array.from(ref.seqCount));
  const seqTol = (s: number) => 2e-5 * (1 + ref.seqCount[s]) * (1 + Math.abs(ref.seqMean[s]));
  expectClose(c.seqSum!, ref.seqSum, 1e-6, seqTol, `${tag} seqSum`);
  expectClose(c.seqMean!, ref.seqMean, 1e-6, (s) => 2e-5 * (1 + Math.abs(ref.seqMean[s])), `${tag} seqMean`);
  if (c.seqLogitSum)
    expectClose(c.seqLogitSum, ref.seqLogitSum, 1e-5, (s) => 1e-5 * (1 + ref.seqCount[s] * p.vocab), `${tag} logitSum`);
  if (c.gradOut && ref.grad) {
    const g = decodeLogits(c.gradOut, p.dtype);
    // rounding to the output dtype dominates for bf16 / f16
    const rtol = p.dtype === 'f32' ? 2e-5 : p.dtype === 'bf16' ? 8e-3 : 1e-3;
    const atol = p.dtype === 'f16' ? 1e-7 / tau : 1e-9;
    expectClose(g, ref.grad, rtol, (i) => atol + (2e-6 * Math.abs(ref.grad![i - (i % p.vocab)])) / tau, `${tag} grad`);
  }
}

function refInput(values: Float64Array, labels: Int32Array, n: number, v: number, o: ScoreLogprobsOptions) {
  const r: ReferenceLogprobsInput = { logits: values, labels, nTokens: n, vocab: v };
  if (o.offsets) r.offsets = o.offsets;
  else if (o.shape?.length === 3) r.offsets = Array.from({ length: o.shape[0] + 1 }, (_, i) => i * o.shape![1]);
  if (o.shift !== undefined) r.shift = o.shift;
  if (o.ignoreIndex !== undefined) r.ignoreIndex = o.ignoreIndex;
  if (o.mask) r.mask = o.mask;
  if (o.temperature !== undefined) r.temperature = o.temperature;
  if (o.gradient?.seq) r.gradSeq = o.gradient.seq;
  if (o.gradient?.token) r.gradToken = o.gradient.token;
  return r;
}

interface Case {
  name: string;
  n: number;
  v: number;
  options: (n: number, v: number) => ScoreLogprobsOptions;
}

const CASES: Case[] = [
  { name: 'V=1', n: 5, v: 1, options: (n, v) => ({ shape: [n, v] }) },
  {
    name: 'V=7 odd N, temperature 0.7, mask',
    n: 9,
    v: 7,
    options: (n, v) => ({
      shape: [n, v],
      temperature: 0.7,
      mask: Uint8Array.from({ length: n }, (_, i) => (i % 4 ? 1 : 0)),
    }),
  },
  {
    name: '[3, 11, 1037] shift, ignoreIndex',
    n: 33,
    v: 1037,
    options: (n, v) => ({ shape: [3, 11, v], shift: true }),
  },
  {
    name: 'packed offsets with empty sequences, shift, temperature 1.9, custom ignoreIndex',
    n: 23,
    v: 531,
    options: (n, v) => ({
      shape: [n, v],
      offsets: Int32Array.of(0, 0, 5, 5, 6, 17, 23, 23),
      shift: true,
      temperature: 1.9,
    }),
  },
  { name: 'odd N=13, V=2053 (blocks + tails), no shift', n: 13, v: 2053, options: (n, v) => ({ shape: [n, v] }) },
];

describe('scoreLogprobs vs the float64 reference', () => {
  for (const tier of TIERS)
    for (const dtype of DTYPES)
      for (const cs of CASES)
        it(`${tier} ${dtype} ${cs.name}`, () => {
          setIsa(tier);
          const seed = cs.n * 1000 + cs.v + DTYPES.indexOf(dtype);
          const { data, values } = makeLogits(cs.n, cs.v, seed, dtype);
          const labels = makeLabels(cs.n, cs.v, seed + 1, 5);
          const base = cs.options(cs.n, cs.v);
          const nSeq = base.offsets ? base.offsets.length - 1 : base.shape!.length === 3 ? base.shape![0] : 1;
          const gradient = { seq: randn(nSeq, seed + 2), token: randn(cs.n, seed + 3, 0.5) };
          const o: ScoreLogprobsOptions = { ...base, dtype, entropy: true, accuracy: true, logitSums: true };
          const ref = referenceLogprobs(refInput(values, labels, cs.n, cs.v, { ...o, gradient }));
          // forward only
          checkAgainstReference(runPoisoned(data, labels, o), { ...ref, grad: undefined }, `${tier} fwd`, o);
          // fused forward + backward
          const fused = runPoisoned(data, labels, { ...o, gradient });
          checkAgainstReference(fused, ref, `${tier} fused`, o);
          // separate backward, with and without the forward's lse: same as the fused gradient
          const { entropy: _e, accuracy: _a, logitSums: _l, ...input } = o;
          for (const lse of [undefined, fused.call.tokenLse!]) {
            const b = runPoisoned(data, labels, { ...input, mode: 'backward', gradient, ...(lse ? { lse } : {}) });
            const tol = dtype === 'f32' ? 2e-5 : dtype === 'bf16' ? 8e-3 : 1.5e-3; // lse round-trips through fp32
            expectClose(
              decodeLogits(b.call.gradOut!, dtype),
              decodeLogits(fused.call.gradOut!, dtype),
              tol,
              1e-9,
              `backward (lse ${lse ? 'given' : 'recomputed'})`,
            );
          }
        });
});

// The plain forward (no entropy, accuracy or logit sums) takes its own software-pipelined sweep in the
// AVX-512 tier, whose bf16 clamp works on the raw bits; the matrix above always asks for every
// statistic. Rows far from zero and cold temperatures, where that clamp once clamped the large logits
// themselves (bf16 logp off by up to 2.3, or +inf), against the float64 reference.
describe('plain forward far from zero and at low temperature', () => {
  const FAR = [
    { mean: 150, spread: 3, temperature: 1 },
    { mean: 12, spread: 3, temperature: 0.1 },
    { mean: 0, spread: 3, temperature: 0.01 },
    { mean: -30000, spread: 500, temperature: 1 },
  ];
  for (const tier of TIERS)
    for (const dtype of DTYPES)
      it(`${tier} ${dtype}`, () => {
        setIsa(tier);
        const [n, v] = [4, 8229];
        for (const [k, { mean, spread, temperature }] of FAR.entries()) {
          const f = randn(n * v, 70 + k, spread).map((x) => x + mean);
          const data = dtype === 'f32' ? f : encodeHalf(f, dtype);
          const labels = makeLabels(n, v, 80 + k);
          const o: ScoreLogprobsOptions = { shape: [n, v], dtype, temperature };
          const ref = referenceLogprobs(refInput(decodeLogits(data, dtype), labels, n, v, o));
          const p = runPoisoned(data, labels, o);
          const tol = (i: number) => 2e-5 * (1 + Math.abs(ref.tokenLse[i]));
          expectClose(p.call.tokenLogp!, ref.tokenLogp, 0, tol, `mean ${mean} tau ${temperature} logp`);
          expectClose(p.call.tokenLse!, ref.tokenLse, 0, tol, `mean ${mean} tau ${temperature} lse`);
        }
      });
});

describe('big batch [3, 423, 32000]', () => {
  it(`${best} f32 forward + fused gradient with shift (sampled rows for the gradient)`, () => {
    setIsa(best);
    const [b, t, v] = [3, 423, 32000];
    const n = b * t;
    const logits = randn(n * v, 77, 4);
    const labels = makeLabels(n, v, 78, 9);
    const o: ScoreLogprobsOptions = { shape: [b, t, v], shift: true, entropy: true, accuracy: true };
    const ref = referenceLogprobs(refInput(logits as unknown as Float64Array, labels, n, v, o));
    const p = runPoisoned(logits, labels, o);
    checkAgainstReference(p, ref, 'big fwd');
    const seq = Float32Array.of(0.5, -1, 2);
    const copy = logits.slice();
    const f = runPoisoned(copy, labels, { ...o, gradient: { seq, inPlace: true } });
    expect(f.call.gradOut).toBe(copy);
    // out of place (≥ 64 MB: non-temporal stores), into a buffer 4 bytes past a 64-byte boundary
    const outBuf = new Float32Array(n * v + 1).fill(NaN);
    const out = outBuf.subarray(1);
    runPoisoned(logits, labels, { ...o, gradient: { seq, out } });
    expect(firstMismatch(out, copy, 0, 0), 'streamed out-of-place == in place').toBeNull();
    expectClose(f.call.tokenLogp!, p.call.tokenLogp!, 0, 0, 'fused forward == forward');
    for (const row of [0, 421, 422, 500, n - 2, n - 1]) {
      const s = Math.floor(row / t);
      const y = labels[row + 1];
      const counted = ref.counted[row];
      for (const j of [0, 1, 17, v - 1, counted ? y : 5]) {
        const pj = Math.exp(logits[row * v + j] - ref.tokenLse[row]);
        const want = counted ? seq[s] * ((j === y ? 1 : 0) - pj) : 0;
        expect(close(copy[row * v + j], want, 1e-4, 1e-9), `grad[${row}, ${j}] ${copy[row * v + j]} vs ${want}`).toBe(
          true,
        );
      }
    }
  });
});

describe('big bf16 gradient (non-temporal stores)', () => {
  it(`${best} bf16 [3, 423, 32000]: out of place == in place, forward == forward-only`, () => {
    setIsa(best);
    const [b, t, v] = [3, 423, 32000];
    const n = b * t;
    const bits = encodeHalf(randn(n * v, 81, 4), 'bf16');
    const labels = makeLabels(n, v, 82, 9);
    const o: ScoreLogprobsOptions = { shape: [b, t, v], dtype: 'bf16', shift: true };
    const seq = Float32Array.of(1, -0.5, 2);
    const outBuf = new Uint16Array(n * v + 3);
    const out = outBuf.subarray(3);
    const r = scoreLogprobs(bits, labels, { ...o, gradient: { seq, out } });
    const fwd = scoreLogprobs(bits, labels, o);
    expect(firstMismatch(r.tokenLogprobs, fwd.tokenLogprobs, 0, 0)).toBeNull();
    scoreLogprobs(bits, labels, { ...o, gradient: { seq, inPlace: true } });
    expect(firstMismatch(out, bits, 0, 0), 'streamed == in place').toBeNull();
  });
});

describe('numerics', () => {
  for (const tier of TIERS)
    it(`${tier}: NaN and -inf rows; all-ignored sequence`, () => {
      setIsa(tier);
      const [n, v] = [8, 300];
      const logits = randn(n * v, 5, 2);
      const labels = makeLabels(n, v, 6);
      logits[1 * v + 123] = NaN; // row 1: NaN -> NaN outputs
      for (let j = 0; j < v; j += 3) logits[2 * v + j] = -Infinity; // row 2: some -inf (not the label)
      if (labels[2] % 3 === 0) labels[2] = 1;
      for (let j = 0; j < v; j++) logits[3 * v + j] = -Infinity; // row 3: all -inf -> NaN
      logits[4 * v + labels[4]] = -Infinity; // row 4: the label at -inf -> logp -inf
      labels[6] = -100; // sequence 3 = rows 6..7 all ignored
      labels[7] = -100;
      const offsets = Int32Array.of(0, 2, 4, 6, 8);
      const gradient = { seq: Float32Array.of(1, 1, 1, 1) };
      const p = runPoisoned(logits, labels, { shape: [n, v], offsets, entropy: true, gradient });
      const c = p.call;
      const ref = referenceLogprobs({ logits, labels, nTokens: n, vocab: v, offsets, gradSeq: gradient.seq });
      expect(c.tokenLogp![1]).toBeNaN();
      expect(c.tokenEntropy![1]).toBeNaN();
      expect(c.tokenLogp![0]).toBeCloseTo(ref.tokenLogp[0], 4);
      expect(c.seqSum![0]).toBeNaN(); // the NaN row enters sequence 0
      expect(Number.isFinite(c.tokenLogp![2])).toBe(true);
      expect(c.tokenLogp![2]).toBeCloseTo(ref.tokenLogp[2], 4);
      expect(c.tokenLogp![3]).toBeNaN();
      expect(c.tokenLogp![4]).toBe(-Infinity);
      expect(c.tokenLogp![5]).toBeCloseTo(ref.tokenLogp[5], 4);
      expect([c.seqSum![3], c.seqCount![3], c.seqMean![3]]).toEqual([0, 0, 0]);
      const g = c.gradOut as Float32Array;
      // -inf logits have probability exactly 0; NaN row's gradient is NaN; the ignored rows' are 0
      expect(g[2 * v] === 0).toBe(true);
      expect(g[1 * v + 5]).toBeNaN();
      expect(g.subarray(6 * v, 8 * v).every((x) => x === 0)).toBe(true);
      expectClose(g.subarray(2 * v, 3 * v), ref.grad!.subarray(2 * v, 3 * v), 1e-5, 1e-9, 'grad with -inf logits');
      // without entropy the -inf handling takes another path in the SIMD kernels: same results
      const plain = runPoisoned(logits, labels, { shape: [n, v], offsets });
      expect(firstMismatch(plain.call.tokenLogp!, c.tokenLogp!, 0, 0), 'no-entropy path').toBeNull();
      expect(firstMismatch(plain.call.tokenLse!, c.tokenLse!, 0, 0), 'no-entropy lse').toBeNull();
      // rows of other sequences do not see the NaN
      expectClose(c.tokenLogp!.subarray(4, 6), ref.tokenLogp.subarray(4, 6), 1e-5, 1e-5, 'other rows');
    });

  it('gradients match finite differences of the float64 reference', () => {
    for (const tier of TIERS) {
      setIsa(tier);
      const [n, v] = [6, 7];
      const logits = randn(n * v, 91, 1.5);
      const labels = makeLabels(n, v, 92);
      labels[3] = -100;
      const offsets = Int32Array.of(0, 4, 6);
      const seq = Float32Array.of(0.7, -1.3);
      const token = randn(n, 93, 0.5);
      const o = { shape: [n, v], offsets, shift: true, temperature: 0.8 };
      const g = scoreLogprobs(logits, labels, { ...o, gradient: { seq, token } }).gradient as Float32Array;
      const x = Float64Array.from(logits);
      const loss = (vals: Float64Array) => {
        const r = referenceLogprobs({
          logits: vals,
          labels,
          nTokens: n,
          vocab: v,
          offsets,
          shift: true,
          temperature: 0.8,
        });
        let l = 0;
        for (let s = 0; s < 2; s++) l += seq[s] * r.seqSum[s];
        for (let t = 0; t < n; t++) l += token[t] * r.tokenLogp[t];
        return l;
      };
      const h = 1e-5;
      for (let i = 0; i < n * v; i++) {
        const xp = x.slice();
        const xm = x.slice();
        xp[i] += h;
        xm[i] -= h;
        const fd = (loss(xp) - loss(xm)) / (2 * h);
        expect(close(g[i], fd, 1e-4, 1e-6), `${tier} grad[${i}] ${g[i]} vs fd ${fd}`).toBe(true);
      }
    }
  });

  it('a confident row: the label column keeps its relative accuracy (computed in fp32, not 1 - rounded p)', () => {
    for (const dtype of DTYPES) {
      const v = 64;
      const f = new Float32Array(v).fill(-2);
      f[5] = 9; // p(label) ~ 0.999
      const data = dtype === 'f32' ? f : encodeHalf(f, dtype);
      const vals = decodeLogits(data, dtype);
      const g = decodeLogits(
        scoreLogprobs(data, Int32Array.of(5), { shape: [1, v], dtype, gradient: { seq: Float32Array.of(1) } })
          .gradient!,
        dtype,
      );
      const ref = referenceLogprobs({ logits: vals, labels: [5], nTokens: 1, vocab: v, gradSeq: [1] });
      expect(close(g[5], ref.grad![5], dtype === 'f32' ? 1e-3 : 1e-2, 0), `${dtype} ${g[5]} vs ${ref.grad![5]}`).toBe(
        true,
      );
    }
  });
});

describe('gradient buffers', () => {
  for (const dtype of DTYPES)
    it(`in place == out of place, every tier (${dtype})`, () => {
      for (const tier of TIERS) {
        setIsa(tier);
        const [n, v] = [7, 777];
        const { data } = makeLogits(n, v, 31, dtype);
        const labels = makeLabels(n, v, 32, 3);
        const o: ScoreLogprobsOptions = { shape: [n, v], dtype, shift: true, gradient: { seq: Float32Array.of(1.5) } };
        const out = scoreLogprobs(data, labels, o);
        const copy = data.slice();
        const inPlace = scoreLogprobs(copy, labels, { ...o, gradient: { seq: Float32Array.of(1.5), inPlace: true } });
        expect(inPlace.gradient).toBe(copy);
        expect(Array.from(copy)).toEqual(Array.from(out.gradient!));
        expect(Array.from(inPlace.tokenLogprobs)).toEqual(Array.from(out.tokenLogprobs));
        const copy2 = data.slice();
        const b = logprobsBackward(
          copy2,
          labels,
          { seq: Float32Array.of(1.5) },
          { shape: [n, v], dtype, shift: true, inPlace: true },
        );
        expect(b.gradient).toBe(copy2);
        expect(Array.from(copy2)).toEqual(Array.from(out.gradient!));
      }
    });
});

describe('gradient.out', () => {
  it('writes into a preallocated buffer (fused and backward) and rejects a wrong or overlapping one', () => {
    setIsa(best);
    const [n, v] = [5, 300];
    const logits = randn(n * v, 41);
    const labels = makeLabels(n, v, 42);
    const seq = Float32Array.of(2);
    const fresh = scoreLogprobs(logits, labels, { shape: [n, v], gradient: { seq } }).gradient!;
    const out = new Float32Array(n * v).fill(NaN);
    const r = scoreLogprobs(logits, labels, { shape: [n, v], gradient: { seq, out } });
    expect(r.gradient).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(fresh));
    out.fill(NaN);
    expect(logprobsBackward(logits, labels, { seq }, { shape: [n, v], out }).gradient).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(fresh));
    const bad: [unknown, string][] = [
      [new Uint16Array(n * v), 'ERR_UNIGAP_INVALID_TYPE'],
      [new Float32Array(n * v - 1), 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [logits, 'ERR_UNIGAP_INVALID_VALUE'],
    ];
    for (const [o, code] of bad)
      expect(() => scoreLogprobs(logits, labels, { shape: [n, v], gradient: { seq, out: o as Float32Array } })).toThrow(
        expect.objectContaining({ code }),
      );
    const both = () => scoreLogprobs(logits, labels, { shape: [n, v], gradient: { seq, out, inPlace: true } });
    expect(both).toThrow(expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_VALUE' }));
    const buf = randn(n * v + 8, 43);
    const over = () =>
      scoreLogprobs(buf.subarray(0, n * v), labels, { shape: [n, v], gradient: { seq, out: buf.subarray(8) } });
    expect(over).toThrow(expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_VALUE' }));
  });
});

describe('inputs', () => {
  it('accepts subarray views, tensor-likes and [B, T, V] with explicit offsets', () => {
    setIsa(best);
    const [n, v] = [6, 50];
    const big = randn(n * v + 13, 3);
    const view = big.subarray(13);
    const labBuf = makeLabels(n + 3, v, 4);
    const labels = labBuf.subarray(3);
    const plain = scoreLogprobs(view.slice(), labels.slice(), { shape: [n, v] });
    const viaView = scoreLogprobs(view, labels, { shape: [n, v] });
    expect(Array.from(viaView.tokenLogprobs)).toEqual(Array.from(plain.tokenLogprobs));
    const viaTensor = scoreLogprobs({ type: 'float32', data: view, dims: [2, 3, v] }, labels);
    expect(Array.from(viaTensor.seqSum)).toHaveLength(2);
    expect(viaTensor.seqSum[0] + viaTensor.seqSum[1]).toBeCloseTo(plain.seqSum[0], 4);
    const bits = encodeHalf(view, 'bf16');
    const bfT = scoreLogprobs({ type: 'bfloat16', data: bits, dims: [n, v] }, labels);
    const bfA = scoreLogprobs(bits, labels, { shape: [n, v], dtype: 'bf16' });
    expect(Array.from(bfT.tokenLogprobs)).toEqual(Array.from(bfA.tokenLogprobs));
    const packed = scoreLogprobs(view, labels, { shape: [2, 3, v], offsets: Int32Array.of(0, 1, 6) });
    expect(Array.from(packed.seqCount)).toEqual([1, 5]);
    const big64 = scoreLogprobs(view, labels, { shape: [n, v], offsets: BigInt64Array.of(0n, 1n, 6n) });
    expect(Array.from(big64.seqSum)).toEqual(Array.from(packed.seqSum));
  });

  it('N·V > 2^31: rows more than 4 GiB into bf16 logits (a sparse 4.3 GB array only the counted rows touch)', () => {
    setIsa(best);
    const v = 32003;
    const rs = Math.floor(2 ** 31 / v); // the row that straddles element 2^31
    const n = rs + 6;
    const rows = [0, rs, rs + 1, n - 1];
    const logits = new Uint16Array(n * v); // zero pages until written
    expect(n * v).toBeGreaterThan(2 ** 31);
    const { data: compact, values } = makeLogits(rows.length, v, 31, 'bf16');
    const labels = new Int32Array(n).fill(-100);
    const compactLabels = makeLabels(rows.length, v, 32);
    rows.forEach((r, k) => {
      logits.set((compact as Uint16Array).subarray(k * v, (k + 1) * v), r * v);
      labels[r] = compactLabels[k];
    });
    const opts = { entropy: true, accuracy: true, logitSums: true, temperature: 0.9 } as const;
    const got = scoreLogprobs(logits, labels, {
      ...opts,
      shape: [n, v],
      dtype: 'bf16',
      offsets: Int32Array.of(0, rs + 1, n),
    });
    const want = scoreLogprobs(compact, compactLabels, {
      ...opts,
      shape: [rows.length, v],
      dtype: 'bf16',
      offsets: Int32Array.of(0, 2, 4),
    });
    const ref = referenceLogprobs({
      logits: values,
      labels: compactLabels,
      nTokens: rows.length,
      vocab: v,
      temperature: 0.9,
    });
    rows.forEach((r, k) => {
      expect(got.tokenLogprobs[r]).toBe(want.tokenLogprobs[k]);
      expect(got.tokenEntropy![r]).toBe(want.tokenEntropy![k]);
      expect(got.tokenCorrect![r]).toBe(want.tokenCorrect![k]);
      expect(got.tokenLogprobs[r]).toBeCloseTo(ref.tokenLogp[k], 4);
    });
    expect(got.tokenLogprobs[1]).toBe(0);
    expect(got.tokenLogprobs[rs + 2]).toBe(0);
    expect(Array.from(got.seqCount)).toEqual([2, 2]);
    expect(Array.from(got.seqSum)).toEqual(Array.from(want.seqSum));
    expect(Array.from(got.seqLogitSum!)).toEqual(Array.from(want.seqLogitSum!));
  });

  it('N = 0 returns empty results', () => {
    const r = scoreLogprobs(new Float32Array(0), new Int32Array(0), { shape: [0, 10] });
    expect(r.tokenLogprobs).toHaveLength(0);
    expect(Array.from(r.seqSum)).toEqual([0]);
    const b = scoreLogprobs(new Float32Array(0), new Int32Array(0), {
      shape: [2, 0, 10],
      gradient: { seq: new Float32Array(2) },
    });
    expect(Array.from(b.seqCount)).toEqual([0, 0]);
    expect(b.gradient).toHaveLength(0);
  });

  it('async variants agree with the sync ones', async () => {
    setIsa(best);
    const [n, v] = [9, 333];
    const logits = randn(n * v, 8);
    const labels = makeLabels(n, v, 9);
    const o: ScoreLogprobsOptions = {
      shape: [3, 3, v],
      shift: true,
      entropy: true,
      gradient: { seq: Float32Array.of(1, 2, 3) },
    };
    const s = scoreLogprobs(logits, labels, o);
    const a = await scoreLogprobsAsync(logits, labels, o);
    expect(Array.from(a.tokenLogprobs)).toEqual(Array.from(s.tokenLogprobs));
    expect(Array.from(a.gradient!)).toEqual(Array.from(s.gradient!));
    const b = await logprobsBackwardAsync(
      logits,
      labels,
      { seq: Float32Array.of(1, 2, 3) },
      { shape: [3, 3, v], shift: true, lse: s.tokenLse },
    );
    expect(Array.from(b.gradient)).toEqual(Array.from(s.gradient!));
  });
});

describe('bad input: typed errors with codes, before any native call', () => {
  const [n, v] = [4, 10];
  const logits = randn(n * v, 1);
  const labels = Int32Array.of(1, 2, 3, 4);
  const shape = [n, v];
  const cases: [string, () => unknown, string][] = [
    ['label >= V', () => scoreLogprobs(logits, Int32Array.of(1, 10, 3, 4), { shape }), 'ERR_UNIGAP_OUT_OF_RANGE'],
    [
      'label < 0 (not ignoreIndex)',
      () => scoreLogprobs(logits, Int32Array.of(1, -1, 3, 4), { shape }),
      'ERR_UNIGAP_OUT_OF_RANGE',
    ],
    ['logits length', () => scoreLogprobs(logits.subarray(1), labels, { shape }), 'ERR_UNIGAP_SHAPE_MISMATCH'],
    ['labels length', () => scoreLogprobs(logits, Int32Array.of(1, 2, 3), { shape }), 'ERR_UNIGAP_SHAPE_MISMATCH'],
    ['shape rank', () => scoreLogprobs(logits, labels, { shape: [n * v] }), 'ERR_UNIGAP_SHAPE_MISMATCH'],
    ['no shape', () => scoreLogprobs(logits, labels), 'ERR_UNIGAP_INVALID_VALUE'],
    [
      'Float64Array logits',
      () => scoreLogprobs(Float64Array.from(logits) as never, labels, { shape }),
      'ERR_UNIGAP_INVALID_TYPE',
    ],
    [
      'Uint16Array without dtype',
      () => scoreLogprobs(new Uint16Array(n * v), labels, { shape }),
      'ERR_UNIGAP_INVALID_DTYPE',
    ],
    [
      'dtype bf16 on Float32Array',
      () => scoreLogprobs(logits, labels, { shape, dtype: 'bf16' }),
      'ERR_UNIGAP_INVALID_DTYPE',
    ],
    [
      'labels Float32Array',
      () => scoreLogprobs(logits, Float32Array.of(1, 2, 3, 4) as never, { shape }),
      'ERR_UNIGAP_INVALID_TYPE',
    ],
    [
      'mask wrong type',
      () => scoreLogprobs(logits, labels, { shape, mask: new Int8Array(4) as never }),
      'ERR_UNIGAP_INVALID_TYPE',
    ],
    [
      'mask length',
      () => scoreLogprobs(logits, labels, { shape, mask: new Uint8Array(3) }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    ],
    [
      'offsets decreasing',
      () => scoreLogprobs(logits, labels, { shape, offsets: Int32Array.of(0, 3, 2, 4) }),
      'ERR_UNIGAP_INVALID_VALUE',
    ],
    [
      'offsets not ending at N',
      () => scoreLogprobs(logits, labels, { shape, offsets: Int32Array.of(0, 2, 3) }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    ],
    [
      'offsets not starting at 0',
      () => scoreLogprobs(logits, labels, { shape, offsets: Int32Array.of(1, 4) }),
      'ERR_UNIGAP_INVALID_VALUE',
    ],
    [
      'offsets wrong type',
      () => scoreLogprobs(logits, labels, { shape, offsets: [0, 4] as never }),
      'ERR_UNIGAP_INVALID_TYPE',
    ],
    ['temperature 0', () => scoreLogprobs(logits, labels, { shape, temperature: 0 }), 'ERR_UNIGAP_INVALID_VALUE'],
    ['temperature < 0', () => scoreLogprobs(logits, labels, { shape, temperature: -1 }), 'ERR_UNIGAP_INVALID_VALUE'],
    ['temperature NaN', () => scoreLogprobs(logits, labels, { shape, temperature: NaN }), 'ERR_UNIGAP_INVALID_VALUE'],
    [
      'temperature Infinity',
      () => scoreLogprobs(logits, labels, { shape, temperature: Infinity }),
      'ERR_UNIGAP_INVALID_VALUE',
    ],
    [
      'V = 0',
      () => scoreLogprobs(new Float32Array(0), new Int32Array(4), { shape: [4, 0] }),
      'ERR_UNIGAP_INVALID_VALUE',
    ],
    [
      'unknown option',
      () => scoreLogprobs(logits, labels, { shape, temprature: 2 } as never),
      'ERR_UNIGAP_UNKNOWN_OPTION',
    ],
    [
      'gradient.seq length',
      () => scoreLogprobs(logits, labels, { shape, gradient: { seq: new Float32Array(2) } }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    ],
    [
      'gradient without upstream',
      () => scoreLogprobs(logits, labels, { shape, gradient: {} }),
      'ERR_UNIGAP_INVALID_VALUE',
    ],
    [
      'backward lse length',
      () => logprobsBackward(logits, labels, { seq: Float32Array.of(1) }, { shape, lse: new Float32Array(3) }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    ],
    [
      'backward upstream typo',
      () => logprobsBackward(logits, labels, { sq: Float32Array.of(1) } as never, { shape }),
      'ERR_UNIGAP_UNKNOWN_OPTION',
    ],
    [
      'tensor dims disagree',
      () => scoreLogprobs({ type: 'float32', data: logits, dims: [4, 10] }, labels, { shape: [2, 20] }),
      'ERR_UNIGAP_SHAPE_MISMATCH',
    ],
    [
      'tensor type',
      () => scoreLogprobs({ type: 'int32', data: logits, dims: [4, 10] }, labels),
      'ERR_UNIGAP_INVALID_DTYPE',
    ],
  ];
  for (const [name, f, code] of cases)
    it(name, () => {
      expect(f).toThrow();
      try {
        f();
      } catch (e) {
        expect((e as { code: string }).code).toBe(code);
      }
    });

  it('a detached buffer', () => {
    const l = randn(n * v, 2);
    structuredClone(l.buffer, { transfer: [l.buffer as ArrayBuffer] });
    expect(() => scoreLogprobs(l, labels, { shape })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_DETACHED_BUFFER' }),
    );
  });

  it('a label that is masked out or ignored may be anything; with shift the first label is not a target', () => {
    const r = scoreLogprobs(logits, Int32Array.of(99, -100, 3, 4), { shape, shift: true, ignoreIndex: -100 });
    expect(r.seqCount[0]).toBe(2);
    const m = scoreLogprobs(logits, Int32Array.of(1, 99, 3, 4), { shape, mask: Uint8Array.of(1, 0, 1, 1) });
    expect(m.seqCount[0]).toBe(3);
    expect(m.tokenLogprobs[1]).toBe(0);
  });

  it('the N-API layer re-checks lengths and the core re-checks labels', () => {
    const native = loadNative();
    const p = prepareLogprobsCall('t', logits, labels, { shape });
    expect(() => native.logprobsRun(0, { ...p.call, labels: Int32Array.of(1, 2) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_SHAPE_MISMATCH' }),
    );
    expect(() => native.logprobsRun(0, { ...p.call, logits: new Uint16Array(n * v) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_TYPE' }),
    );
    expect(() => native.logprobsRun(0, { ...p.call, labels: Int32Array.of(1, 2, 30, 4) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_OUT_OF_RANGE' }),
    );
    expect(() => native.logprobsRun(0, { ...p.call, offsets: Int32Array.of(0, 3) })).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_SHAPE_MISMATCH' }),
    );
    // and the prepared call still runs as is
    runLogprobsCall(p);
    expect(logprobsResultOf(p).seqCount[0]).toBe(4);
  });
});
