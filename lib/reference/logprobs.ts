/**
 * Plain float64 oracle of the logprobs family (tests and benches only; not exported from the
 * package). Follows native/include/unigap/logprobs.h literally: two passes per row in double, no
 * online tricks, so it is an independent check of the kernels. Also bf16 / f16 encoders and decoders.
 */

export interface ReferenceLogprobsInput {
  /** N * V logits as plain numbers (decode bf16 / f16 first with {@link decodeLogits}). */
  logits: ArrayLike<number>;
  labels: ArrayLike<number>;
  nTokens: number;
  vocab: number;
  /** B + 1 row offsets; default one sequence of N rows. */
  offsets?: ArrayLike<number | bigint>;
  shift?: boolean;
  ignoreIndex?: number;
  mask?: ArrayLike<number>;
  temperature?: number;
  /** Upstream gradient (per sequence, per row); when either is given the gradient is computed. */
  gradSeq?: ArrayLike<number>;
  gradToken?: ArrayLike<number>;
}

export interface ReferenceLogprobsResult {
  tokenLogp: Float64Array;
  tokenLse: Float64Array;
  tokenEntropy: Float64Array;
  tokenCorrect: Uint8Array;
  /** Whether each row is counted. */
  counted: Uint8Array;
  seqSum: Float64Array;
  seqCount: Int32Array;
  seqMean: Float64Array;
  seqLogitSum: Float64Array;
  /** N * V gradient, when an upstream gradient was given. */
  grad?: Float64Array;
}

export function referenceLogprobs(inp: ReferenceLogprobsInput): ReferenceLogprobsResult {
  const { logits, labels, nTokens: n, vocab: v } = inp;
  const tau = inp.temperature ?? 1;
  const ignore = inp.ignoreIndex ?? -100;
  const shift = inp.shift ? 1 : 0;
  const off = inp.offsets ? Array.from(inp.offsets, Number) : [0, n];
  const ns = off.length - 1;
  const wantGrad = inp.gradSeq !== undefined || inp.gradToken !== undefined;
  const r: ReferenceLogprobsResult = {
    tokenLogp: new Float64Array(n),
    tokenLse: new Float64Array(n),
    tokenEntropy: new Float64Array(n),
    tokenCorrect: new Uint8Array(n),
    counted: new Uint8Array(n),
    seqSum: new Float64Array(ns),
    seqCount: new Int32Array(ns),
    seqMean: new Float64Array(ns),
    seqLogitSum: new Float64Array(ns),
  };
  if (wantGrad) r.grad = new Float64Array(n * v);
  for (let s = 0; s < ns; s++) {
    for (let t = off[s]; t + shift < off[s + 1]; t++) {
      const k = t + shift;
      const y = labels[k];
      if (y === ignore || (inp.mask && inp.mask[k] === 0)) continue;
      r.counted[t] = 1;
      const base = t * v;
      let m = -Infinity;
      let nan = false;
      let arg = 0;
      let best = -Infinity;
      let zsum = 0;
      for (let j = 0; j < v; j++) {
        const z = logits[base + j];
        if (Number.isNaN(z)) nan = true;
        m = Math.max(m, z / tau);
        if (z > best) {
          best = z;
          arg = j;
        }
        zsum += z;
      }
      let sum = 0;
      let su = 0;
      for (let j = 0; j < v; j++) {
        const u = logits[base + j] / tau;
        const e = Math.exp(u - m);
        sum += e;
        if (e > 0) su += e * u;
      }
      const lse = nan ? NaN : m + Math.log(sum);
      const logp = logits[base + y] / tau - lse;
      r.tokenLogp[t] = logp;
      r.tokenLse[t] = lse;
      r.tokenEntropy[t] = lse - su / sum;
      r.tokenCorrect[t] = !nan && arg === y ? 1 : 0;
      r.seqSum[s] += logp;
      r.seqCount[s]++;
      r.seqLogitSum[s] += zsum;
      if (r.grad) {
        const g = (inp.gradSeq ? inp.gradSeq[s] : 0) + (inp.gradToken ? inp.gradToken[t] : 0);
        for (let j = 0; j < v; j++) {
          const p = Math.exp(logits[base + j] / tau - lse);
          r.grad[base + j] = (g * ((j === y ? 1 : 0) - p)) / tau;
        }
      }
    }
    r.seqMean[s] = r.seqCount[s] ? r.seqSum[s] / r.seqCount[s] : 0;
  }
  return r;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits -> number. */
export function bf16ToNumber(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** number -> bf16 bits (round to nearest even; NaN stays NaN). */
export function numberToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f16 bits -> number. */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number -> f16 bits (round to nearest even through Math.fround first, as a float32 would). */
export function numberToF16(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) {
    // subnormal: units of 2^-24, round half to even
    const q = a / 2 ** -24;
    let r = Math.floor(q);
    const frac = q - r;
    if (frac > 0.5 || (frac === 0.5 && r & 1)) r++;
    return sign | r;
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = (a / 2 ** e - 1) * 1024;
  let m = Math.floor(q);
  const frac = q - m;
  if (frac > 0.5 || (frac === 0.5 && m & 1)) m++;
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

/** Encode numbers as bf16 or f16 bits. */
export function encodeHalf(x: ArrayLike<number>, dtype: 'bf16' | 'f16'): Uint16Array {
  const out = new Uint16Array(x.length);
  const enc = dtype === 'bf16' ? numberToBf16 : numberToF16;
  for (let i = 0; i < x.length; i++) out[i] = enc(x[i]);
  return out;
}

/** Logits of any supported dtype as float64 numbers. */
export function decodeLogits(data: Float32Array | Uint16Array, dtype: 'f32' | 'bf16' | 'f16'): Float64Array {
  if (dtype === 'f32') return Float64Array.from(data as Float32Array);
  const dec = dtype === 'bf16' ? bf16ToNumber : f16ToNumber;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = dec(data[i]);
  return out;
}
