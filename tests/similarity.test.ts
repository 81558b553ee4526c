import { afterAll, describe, expect, it } from 'vitest';

import {
  backendInfo,
  clipScore,
  pairedCosine,
  retrievalRanks,
  retrievalRanksAsync,
  setIsa,
  similarityMatrix,
  similarityMatrixAsync,
  topkSimilarity,
  topkSimilarityAsync,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  type Embeddings,
} from '../lib/index.js';
import { loadNative } from '../lib/native.js';
import {
  clipScoreRef,
  pairedCosineRef,
  ranksRef,
  retrievalMetricsRef,
  similarityMatrixRef,
  toFloat64,
  topkRef,
} from '../lib/reference/similarity.js';
import { poison, randn, rng, tiersAvailable } from './helpers.js';

// Fresh data every run; the seed is printed so a failure reproduces with UNIGAP_SEED.
const SEED = Number(process.env.UNIGAP_SEED ?? Math.floor(Math.random() * 1e9));
console.log(`similarity tests: UNIGAP_SEED=${SEED}`);
let seedCounter = SEED;
const nextSeed = () => ++seedCounter;

const info = backendInfo();
const tiers = tiersAvailable(info.cpu.bestIsa);
afterAll(() => {
  setIsa(info.cpu.bestIsa ?? 'scalar');
});

type Dt = 'f32' | 'f64' | 'bf16' | 'f16';

function f32ToBf16(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  const u = b.getUint32(0);
  if (Number.isNaN(x)) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function f32ToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  let mant = Math.round((a / 2 ** e - 1) * 1024);
  if (mant === 1024) {
    e++;
    mant = 0;
  }
  return sign | ((e + 15) << 10) | mant;
}

/** Embeddings of `dt` from f32 values, plus the float64 values the kernel actually sees. */
function make(values: Float32Array, rows: number, d: number, dt: Dt): { e: Embeddings; ref: Float64Array } {
  let data: Float32Array | Float64Array | Uint16Array;
  if (dt === 'f32') data = values;
  else if (dt === 'f64') data = Float64Array.from(values);
  else data = Uint16Array.from(values, dt === 'bf16' ? f32ToBf16 : f32ToF16);
  const e: Embeddings = { data, dims: [rows, d], ...(dt === 'bf16' || dt === 'f16' ? { dtype: dt } : {}) };
  return { e, ref: toFloat64(data, dt) };
}

function randEmb(rows: number, d: number, dt: Dt, opts: { zeroRow?: number; nanRow?: number } = {}) {
  const v = randn(rows * d, nextSeed());
  if (opts.zeroRow !== undefined && opts.zeroRow < rows) v.fill(0, opts.zeroRow * d, opts.zeroRow * d + d);
  if (opts.nanRow !== undefined && opts.nanRow < rows) v[opts.nanRow * d + Math.floor(d / 2)] = NaN;
  return make(v, rows, d, dt);
}

/** Small integers: every f32 dot product is exact, so scores, ties and orders match the reference. */
function intEmb(rows: number, d: number, dt: Dt = 'f32', nanRow?: number) {
  const r = rng(nextSeed());
  const v = Float32Array.from({ length: rows * d }, () => Math.floor(r() * 5) - 2);
  if (nanRow !== undefined && nanRow < rows) v[nanRow * d] = NaN;
  return make(v, rows, d, dt);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) expect.fail(`${what}[${i}]: got ${g}, want ${w} (seed ${SEED})`);
      continue;
    }
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w)))
      expect.fail(`${what}[${i}]: got ${g}, want ${w} (seed ${SEED})`);
  }
}

/**
 * Ranks vs the reference, allowing a rank to move only by candidates whose reference score is within
 * 1e-5 of the own score (f32 rounding can order those either way).
 */
function expectRanks(got: Float64Array, q: Float64Array, c: Float64Array, n: number, d: number, what: string) {
  const want = ranksRef(q, c, n, d, true);
  const s = similarityMatrixRef(q, n, c, n, d);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(want[i])) {
      expect(got[i], `${what} rank ${i}`).toBeNaN();
      continue;
    }
    let near = 0;
    for (let j = 0; j < n; j++) if (j !== i && Math.abs(s[i * n + j] - s[i * n + i]) < 1e-5) near++;
    if (Math.abs(got[i] - want[i]) > near)
      expect.fail(`${what} rank ${i}: got ${got[i]}, want ${want[i]} (seed ${SEED})`);
  }
}

const DTYPES: Dt[] = ['f32', 'f64', 'bf16', 'f16'];

describe.each(tiers)('similarity on tier %s', (tier) => {
  it('pairedCosine matches float64 for every dtype, D = 1, 3, 768, zero and NaN rows', () => {
    setIsa(tier);
    for (const dt of DTYPES)
      for (const [n, d] of [
        [5, 1],
        [9, 3],
        [33, 768],
      ]) {
        const a = randEmb(n, d, dt, { zeroRow: 1 });
        const b = randEmb(n, d, dt, { nanRow: 2 });
        const got = pairedCosine(a.e, b.e);
        const want = pairedCosineRef(a.ref, b.ref, n, d);
        expectClose(got, want, 2e-6, 1e-5, `${tier} ${dt} [${n},${d}]`);
        expect(got[1]).toBe(0);
        expect(got[2]).toBeNaN();
        if (n > 3) expect(Number.isNaN(got[3])).toBe(false);
      }
  });

  it('similarityMatrix matches float64 (cosine with scale/bias, raw dot), N != M, mixed dtypes', () => {
    setIsa(tier);
    const shapes = [
      [1, 1, 1],
      [7, 3, 3],
      [19, 37, 768],
      [45, 30, 65],
      [5, 33, 2100], // D > 1024: the k-blocked path
      [250, 40, 24], // more than one row block: B packed up front instead of streamed
    ];
    for (const dt of DTYPES)
      for (const [n, m, d] of shapes) {
        const a = randEmb(n, d, dt, { zeroRow: 2, nanRow: 4 });
        const b = randEmb(m, d, dt === 'f64' ? 'bf16' : dt, { zeroRow: 1, nanRow: 5 });
        const got = similarityMatrix(a.e, b.e, { scale: 100, bias: -10 });
        const want = similarityMatrixRef(a.ref, n, b.ref, m, d, { scale: 100, bias: -10 });
        expectClose(got, want, 2e-3, 1e-5, `${tier} ${dt} cos [${n},${m},${d}]`);
        if (n > 2 && m > 3) expect(got[2 * m + 3]).toBe(-10); // zero row scores the bias
        const raw = similarityMatrix(a.e, b.e, { normalize: false });
        const rawRef = similarityMatrixRef(a.ref, n, b.ref, m, d, { normalize: false });
        expectClose(raw, rawRef, 2e-5 * Math.sqrt(d) * 10, 1e-5, `${tier} ${dt} dot [${n},${m},${d}]`);
      }
  });

  it('topkSimilarity equals the full reference matrix (ties to the lower index, NaN last, k = M)', () => {
    setIsa(tier);
    for (const [n, m, d] of [
      [1, 1, 1],
      [6, 9, 3],
      [23, 70, 33],
      [40, 300, 768],
      [7, 50, 2100],
      [250, 40, 24],
    ]) {
      const q = intEmb(n, d, 'f32', 3);
      const c = intEmb(m, d, 'bf16', 1);
      for (const k of new Set([1, Math.min(5, m), m])) {
        const got = topkSimilarity(q.e, c.e, k, { normalize: false });
        const want = topkRef(q.ref, n, c.ref, m, d, k, false);
        expect(Array.from(got.indices), `${tier} [${n},${m},${d}] k=${k}`).toEqual(Array.from(want.indices));
        expectClose(got.scores, want.scores, 0, 0, `${tier} topk scores k=${k}`);
        expect(got.n).toBe(n);
        expect(got.k).toBe(k);
      }
    }
    // Random cosine data: the scores are the reference's k best, and each index carries its score.
    const [n, m, d] = [30, 257, 768];
    const q = randEmb(n, d, 'f32', { zeroRow: 0 });
    const c = randEmb(m, d, 'f16', { nanRow: 7 });
    const k = 10;
    const got = topkSimilarity(q.e, c.e, k);
    const full = similarityMatrixRef(q.ref, n, c.ref, m, d);
    const want = topkRef(q.ref, n, c.ref, m, d, k);
    expectClose(got.scores, want.scores, 1e-5, 0, 'random topk scores');
    for (let i = 0; i < n; i++)
      for (let r = 0; r < k; r++) {
        const j = got.indices[i * k + r];
        expect(j).not.toBe(7);
        expect(Math.abs(full[i * m + j] - got.scores[i * k + r])).toBeLessThan(1e-5);
      }
    // Zero query: every score is 0, so the order is 0, 1, 2, ... (NaN candidate 7 excluded).
    expect(Array.from(got.indices.subarray(0, k))).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);
  });

  it('retrievalRanks equals the full reference matrix and open_clip metrics', async () => {
    setIsa(tier);
    for (const [n, d] of [
      [1, 1],
      [12, 3],
      [150, 40],
      [64, 768],
    ]) {
      const q = intEmb(n, d, 'f32', 5);
      const c = intEmb(n, d, 'f16');
      // Duplicate candidates make exact ties with the own candidate: they count for the query.
      if (n > 3) {
        c.e.data.copyWithin(0, d, 2 * d);
        c.ref.copyWithin(0, d, 2 * d);
      }
      for (const normalize of [false, true]) {
        const got = retrievalRanks(q.e, c.e, { normalize });
        const want = ranksRef(q.ref, c.ref, n, d, normalize);
        if (!normalize) expect(Array.from(got.ranks), `${tier} [${n},${d}]`).toEqual(Array.from(want));
        else expectRanks(got.ranks, q.ref, c.ref, n, d, `${tier} cos [${n},${d}]`);
        const m = retrievalMetricsRef(got.ranks);
        expect(got.recallAt1).toBe(m.recallAt1);
        expect(got.recallAt5).toBe(m.recallAt5);
        expect(got.recallAt10).toBe(m.recallAt10);
        expect(Object.is(got.meanRank, m.meanRank)).toBe(true);
        expect(Object.is(got.medianRank, m.medianRank)).toBe(true);
      }
      if (n > 5) expect(retrievalRanks(q.e, c.e).ranks[5]).toBeNaN();
    }
    // Random data with a signal: query i is near candidate i.
    const n = 200;
    const d = 64;
    const c = randEmb(n, d, 'f32');
    const noise = randn(n * d, nextSeed(), 1.5);
    const q = make(
      Float32Array.from(c.e.data as Float32Array, (v, i) => v + noise[i]),
      n,
      d,
      'f32',
    );
    const got = await retrievalRanksAsync(q.e, c.e);
    expectRanks(got.ranks, q.ref, c.ref, n, d, `${tier} random`);
    expect(got.recallAt1).toBeGreaterThan(0.05);
    expect(got.recallAt10).toBeGreaterThanOrEqual(got.recallAt5);
  });
});

describe('similarity API', () => {
  it('clipScore follows torchmetrics: 100 cos, mean then clamp; per-pair clamp for none', () => {
    const n = 64;
    const d = 512;
    const a = randEmb(n, d, 'f32');
    const b = randEmb(n, d, 'f16');
    // Pairs 0..7 strongly aligned, so the mean is positive while many pairs are negative.
    for (let i = 0; i < 8; i++)
      (b.e.data as Uint16Array).set(Uint16Array.from(a.e.data.subarray(i * d, i * d + d), f32ToF16), i * d);
    b.ref.set(toFloat64(b.e.data, 'f16'));
    const mean = clipScore(a.e, b.e);
    expect(mean).toBeCloseTo(clipScoreRef(a.ref, b.ref, n, d, 'mean') as number, 3);
    const none = clipScore(a.e, b.e, { reduction: 'none' });
    expectClose(none, clipScoreRef(a.ref, b.ref, n, d, 'none') as Float64Array, 2e-4, 1e-5, 'clip none');
    expect(none.some((v) => v === 0)).toBe(true);
    const clampedMean = none.reduce((x, y) => x + y, 0) / n;
    expect(clampedMean).toBeGreaterThan(mean); // clamp after averaging, not before
    const neg = make(
      Float32Array.from(a.e.data as Float32Array, (v) => -v),
      n,
      d,
      'f32',
    );
    expect(clipScore(a.e, neg.e)).toBe(0);
  });

  it('subarray views work, and async twins equal the sync results', async () => {
    const d = 48;
    const big = randn(40 * d, nextSeed());
    const a: Embeddings = { data: big.subarray(3 * d, 13 * d), dims: [10, d] };
    const b: Embeddings = { data: big.subarray(20 * d, 37 * d), dims: [17, d] };
    const want = similarityMatrixRef(Float64Array.from(a.data), 10, Float64Array.from(b.data), 17, d);
    expectClose(similarityMatrix(a, b), want, 1e-5, 1e-5, 'views');
    expect(Array.from(await similarityMatrixAsync(a, b, { scale: 3 }))).toEqual(
      Array.from(similarityMatrix(a, b, { scale: 3 })),
    );
    const t1 = topkSimilarity(a, b, 4);
    const t2 = await topkSimilarityAsync(a, b, 4);
    expect(Array.from(t2.indices)).toEqual(Array.from(t1.indices));
    expect(Array.from(t2.scores)).toEqual(Array.from(t1.scores));
    const c: Embeddings = { data: big.subarray(25 * d, 35 * d), dims: [10, d] };
    expect(Array.from((await retrievalRanksAsync(a, c)).ranks)).toEqual(Array.from(retrievalRanks(a, c).ranks));
    // onnxruntime-style tensors are accepted too.
    const t = { type: 'float32', data: a.data, dims: [10, d] };
    expect(Array.from(pairedCosine(t, c))).toEqual(Array.from(pairedCosine(a, c)));
    // A caller-owned output is filled and returned (poisoned first: every element is written).
    const out = poison(new Float32Array(10 * 17));
    expect(similarityMatrix(a, b, { out })).toBe(out);
    expectClose(out, want, 1e-5, 1e-5, 'out option');
    expect(await similarityMatrixAsync(a, b, { out, scale: 2 })).toBe(out);
    expectClose(
      out,
      Array.from(want, (v) => 2 * v),
      2e-5,
      1e-5,
      'out option async',
    );
    // N = 0 queries.
    expect(similarityMatrix({ data: new Float32Array(0), dims: [0, d] }, b).length).toBe(0);
  });

  it('native layer writes every output element (poisoned outputs)', () => {
    const nat = loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const [n, m, d, k] = [13, 29, 17, 29];
    const a = randn(n * d, nextSeed());
    const b = randn(m * d, nextSeed());
    for (const tier of tiers) {
      setIsa(tier);
      const out = poison(new Float32Array(n * m));
      nat.similarityMatrix(a, 'f32', n, b, 'f32', m, d, true, 1, 0, out);
      expect(out.every((v) => !Number.isNaN(v))).toBe(true);
      const idx = new Int32Array(n * k).fill(-1);
      const sc = poison(new Float32Array(n * k));
      nat.similarityTopk(a, 'f32', n, b, 'f32', m, d, k, true, idx, sc);
      expect(sc.every((v) => !Number.isNaN(v))).toBe(true);
      for (let i = 0; i < n; i++) expect(new Set(idx.subarray(i * k, i * k + k)).size).toBe(k);
      const rk = poison(new Float64Array(n));
      nat.similarityRanks(a, 'f32', b.subarray(0, n * d), 'f32', n, d, true, rk);
      expect(rk.every((v) => Number.isInteger(v) && v >= 1 && v <= n)).toBe(true);
      const pc = poison(new Float32Array(n));
      nat.similarityPairedCosine(a, 'f32', b.subarray(0, n * d), 'f32', n, d, pc);
      expect(pc.every((v) => !Number.isNaN(v))).toBe(true);
    }
    setIsa(info.cpu.bestIsa ?? 'scalar');
    // N-API re-checks: wrong lengths and types are refused with codes even without the facade.
    expect(() => nat.similarityMatrix(a, 'f32', n, b, 'f32', m, d + 1, true, 1, 0, new Float32Array(n * m))).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_SHAPE_MISMATCH' }),
    );
    expect(() => nat.similarityMatrix(a, 'f64', n, b, 'f32', m, d, true, 1, 0, new Float32Array(n * m))).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_TYPE' }),
    );
    expect(() =>
      nat.similarityTopk(a, 'f32', n, b, 'f32', m, d, m + 1, true, idx0(n, m + 1), new Float32Array(n * (m + 1))),
    ).toThrow(expect.objectContaining({ code: 'ERR_UNIGAP_OUT_OF_RANGE' }));
    expect(() => nat.similarityMatrix(a, 'f32', n, b, 'f32', m, d, true, NaN, 0, new Float32Array(n * m))).toThrow(
      expect.objectContaining({ code: 'ERR_UNIGAP_INVALID_VALUE' }),
    );
  });

  it('bad inputs throw typed errors with codes before native access', () => {
    const d = 8;
    const a: Embeddings = { data: randn(4 * d, nextSeed()), dims: [4, d] };
    const b: Embeddings = { data: randn(6 * d, nextSeed()), dims: [6, d] };
    const b9: Embeddings = { data: randn(6 * 9, nextSeed()), dims: [6, 9] };
    const cases: [() => unknown, unknown, string][] = [
      [() => similarityMatrix(a, b9), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [() => pairedCosine(a, b), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [() => clipScore(a, b), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [() => retrievalRanks(a, b), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [() => topkSimilarity(a, b, 0), InvalidValueError, 'ERR_UNIGAP_OUT_OF_RANGE'],
      [() => topkSimilarity(a, b, 7), InvalidValueError, 'ERR_UNIGAP_OUT_OF_RANGE'],
      [() => topkSimilarity(a, b, 1.5), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE'],
      [() => similarityMatrix(a, b, { scale: Infinity }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE'],
      [() => similarityMatrix(a, b, { bias: NaN }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE'],
      [() => similarityMatrix(a, b, { scael: 2 } as never), UnknownOptionError, 'ERR_UNIGAP_UNKNOWN_OPTION'],
      [() => similarityMatrix(a, b, { normalize: 1 } as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE'],
      [() => clipScore(a, a, { reduction: 'sum' } as never), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE'],
      [
        () => similarityMatrix({ data: new Int32Array(32) as never, dims: [4, 8] }, b),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
      ],
      [
        () => similarityMatrix({ data: new Uint16Array(32), dims: [4, 8] }, b),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
      ],
      [
        () => similarityMatrix({ data: new Float32Array(32), dims: [4, 8], dtype: 'bf16' }, b),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
      ],
      [
        () => similarityMatrix({ data: new Float32Array(31), dims: [4, 8] }, b),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
      ],
      [
        () => similarityMatrix({ data: new Float32Array(0), dims: [4, 0] }, b),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
      ],
      [
        () => similarityMatrix({ data: new Float32Array(32), dims: [32] }, b),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
      ],
      [() => similarityMatrix(new Float32Array(32) as never, b), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE'],
      [() => pairedCosine(a, null as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE'],
      [() => similarityMatrix(a, b, { out: new Float32Array(23) }), ShapeMismatchError, 'ERR_UNIGAP_SHAPE_MISMATCH'],
      [
        () => similarityMatrix(a, b, { out: new Float64Array(24) as never }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
      ],
    ];
    for (const [fn, cls, code] of cases) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, code).toBeInstanceOf(cls as never);
      expect((err as { code: string }).code).toBe(code);
    }
  });
});

function idx0(n: number, k: number) {
  return new Int32Array(n * k);
}
