/**
 * Plain float64 oracles for the similarity family (tests and benches only). They follow the spec in
 * native/include/unigap/similarity.h: zero vector -> cosine 0, a non-finite input row -> NaN outputs
 * for that row, one total order for top-k (numbers beat NaN, larger wins, lower index on ties) and
 * ranks counting strictly greater scores.
 */

/** Decode bf16 bits to a number. */
export function bf16ToNumber(h: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, (h & 0xffff) << 16);
  return b.getFloat32(0);
}

/** Decode IEEE f16 bits to a number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Any supported input as float64 values. */
export function toFloat64(data: Float32Array | Float64Array | Uint16Array, dtype: string): Float64Array {
  if (data instanceof Uint16Array) {
    const dec = dtype === 'bf16' ? bf16ToNumber : f16ToNumber;
    return Float64Array.from(data, dec);
  }
  return Float64Array.from(data);
}

function cosOrDot(a: Float64Array, i: number, b: Float64Array, j: number, d: number, normalize: boolean): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < d; k++) {
    const x = a[i * d + k];
    const y = b[j * d + k];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (!normalize) return ab;
  if (Number.isNaN(ab) || !Number.isFinite(aa) || !Number.isFinite(bb)) return NaN;
  if (aa === 0 || bb === 0) return 0;
  return ab / (Math.sqrt(aa) * Math.sqrt(bb));
}

export function pairedCosineRef(a: Float64Array, b: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = cosOrDot(a, i, b, i, d, true);
  return out;
}

export function similarityMatrixRef(
  a: Float64Array,
  n: number,
  b: Float64Array,
  m: number,
  d: number,
  opts: { normalize?: boolean; scale?: number; bias?: number } = {},
): Float64Array {
  const { normalize = true, scale = 1, bias = 0 } = opts;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) out[i * m + j] = scale * cosOrDot(a, i, b, j, d, normalize) + bias;
  return out;
}

/** true when (sa, ia) comes before (sb, ib) in the top-k order. */
export function better(sa: number, ia: number, sb: number, ib: number): boolean {
  const an = Number.isNaN(sa);
  const bn = Number.isNaN(sb);
  if (an !== bn) return bn;
  if (an || sa === sb) return ia < ib;
  return sa > sb;
}

/** Top-k from the full matrix (sorted by the total order). */
export function topkRef(
  a: Float64Array,
  n: number,
  b: Float64Array,
  m: number,
  d: number,
  k: number,
  normalize = true,
): { indices: Int32Array; scores: Float64Array } {
  const s = similarityMatrixRef(a, n, b, m, d, { normalize });
  const indices = new Int32Array(n * k);
  const scores = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const order = Array.from({ length: m }, (_, j) => j);
    order.sort((x, y) => (better(s[i * m + x], x, s[i * m + y], y) ? -1 : 1));
    for (let r = 0; r < k; r++) {
      indices[i * k + r] = order[r];
      scores[i * k + r] = s[i * m + order[r]];
    }
  }
  return { indices, scores };
}

/** Rank of each query's own candidate: 1 + #{j : s_ij > s_ii}; NaN when s_ii is NaN. */
export function ranksRef(a: Float64Array, b: Float64Array, n: number, d: number, normalize = true): Float64Array {
  const s = similarityMatrixRef(a, n, b, n, d, { normalize });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const own = s[i * n + i];
    if (Number.isNaN(own)) {
      out[i] = NaN;
      continue;
    }
    let g = 0;
    for (let j = 0; j < n; j++) if (s[i * n + j] > own) g++;
    out[i] = g + 1;
  }
  return out;
}

/** open_clip's retrieval metrics from 1-based ranks. */
export function retrievalMetricsRef(ranks: ArrayLike<number>): {
  recallAt1: number;
  recallAt5: number;
  recallAt10: number;
  meanRank: number;
  medianRank: number;
} {
  const n = ranks.length;
  const r = Array.from(ranks);
  const at = (k: number) => (n ? r.filter((x) => x <= k).length / n : NaN);
  const mean = n ? r.reduce((x, y) => x + y, 0) / n : NaN;
  let median = NaN;
  if (n && !r.some(Number.isNaN)) {
    const s = r.map((x) => x - 1).sort((x, y) => x - y);
    const mid = n >> 1;
    median = Math.floor(n % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2) + 1;
  }
  return { recallAt1: at(1), recallAt5: at(5), recallAt10: at(10), meanRank: mean, medianRank: median };
}

/** torchmetrics CLIPScore: 100 cos per pair; 'mean' clamps the mean at 0, 'none' each pair. */
export function clipScoreRef(
  a: Float64Array,
  b: Float64Array,
  n: number,
  d: number,
  reduction: 'mean' | 'none' = 'mean',
): number | Float64Array {
  const c = pairedCosineRef(a, b, n, d).map((x) => 100 * x);
  if (reduction === 'none') return c.map((x) => (Number.isNaN(x) ? NaN : Math.max(x, 0)));
  const mean = c.reduce((x, y) => x + y, 0) / n;
  return Number.isNaN(mean) ? NaN : Math.max(mean, 0);
}
