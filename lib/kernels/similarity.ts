/**
 * Image–prompt similarity: paired cosine, CLIPScore, the similarity matrix (open_clip logits), fused
 * top-k and retrieval ranks. Policy lives here (defaults, validation, typed errors before any native
 * call); the math is specified in native/include/unigap/similarity.h.
 */
import { assertIsaUsable } from '../backend.js';
import { InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../errors.js';
import { routeKernelDevice, type DeviceOption } from '../device.js';
import { loadNative } from '../native.js';
import {
  checkOptions,
  describe,
  requireArray,
  requireBoolean,
  requireEnum,
  requireInt,
  requireNumber,
  requireShape,
  resolveFloatInput,
  type Dtype,
  type FloatArray,
  type TensorLike,
} from '../validate.js';

/**
 * A row-major embedding matrix with an explicit shape. `data` may be a subarray view.
 * - Float32Array: f32; Float64Array: f64; Uint16Array: raw f16 or bf16 bits, `dtype` required.
 */
export interface Embeddings {
  /** N * D values, row-major (row i = embedding i). */
  data: FloatArray;
  /** [N, D]: rows and embedding width (D >= 1). */
  dims: readonly number[];
  /** What `data` holds; required for a Uint16Array ('bf16' | 'f16'), inferred otherwise. */
  dtype?: Dtype;
}

/** An {@link Embeddings} object or an onnxruntime-style tensor ({ type, data, dims }) of rank 2. */
export type EmbeddingsInput = Embeddings | TensorLike;

export interface SimilarityMatrixOptions extends DeviceOption {
  /** Divide each row by its L2 norm first (cosine similarity); false gives raw dot products. Default true. */
  normalize?: boolean;
  /** Multiplier applied to every score (open_clip's logit_scale.exp(), e.g. 100). Finite. Default 1. */
  scale?: number;
  /** Added after scaling (SigLIP-style logit_bias). Finite. Default 0. */
  bias?: number;
  /**
   * Write into this Float32Array of exactly N * M elements (e.g. reused across rounds, sparing a fresh
   * 64 MB allocation and its page faults at 4096²) instead of a new one. It is returned. Default: a
   * new array.
   */
  out?: Float32Array;
}

export interface TopkSimilarityOptions extends DeviceOption {
  /** Cosine (true) or raw dot-product (false) scores. Default true. */
  normalize?: boolean;
}

export interface TopkSimilarityResult {
  /** N * k candidate indices, row i best first (ties: lower index first; NaN scores last). */
  indices: Int32Array;
  /** N * k scores matching `indices`. */
  scores: Float32Array;
  /** Number of queries N. */
  n: number;
  /** k. */
  k: number;
}

export interface RetrievalRanksOptions extends DeviceOption {
  /** Cosine (true) or raw dot-product (false) scores; ranks are unchanged by a positive scale. Default true. */
  normalize?: boolean;
}

export interface RetrievalRanksResult {
  /**
   * Per query, the 1-based rank of its own candidate: 1 + the number of candidates with a strictly
   * greater score (a tie counts for the query). NaN when the own score is NaN.
   */
  ranks: Float64Array;
  /** Share of queries with rank <= 1 (a NaN rank is a miss). */
  recallAt1: number;
  /** Share of queries with rank <= 5. */
  recallAt5: number;
  /** Share of queries with rank <= 10. */
  recallAt10: number;
  /** Mean rank (1-based, open_clip's mean_rank + 1 convention); NaN if any rank is NaN. */
  meanRank: number;
  /** open_clip's median rank: floor(median(rank - 1)) + 1; NaN if any rank is NaN. */
  medianRank: number;
}

export interface ClipScoreOptions extends DeviceOption {
  /**
   * 'mean' (torchmetrics): max(mean over pairs of 100 cos, 0), clamped after averaging.
   * 'none': per pair max(100 cos, 0). NaN pairs stay NaN. Default 'mean'.
   */
  reduction?: 'mean' | 'none';
}

interface SimilarityNative {
  similarityPairedCosine(
    a: FloatArray,
    ad: Dtype,
    b: FloatArray,
    bd: Dtype,
    n: number,
    d: number,
    out: Float32Array,
  ): void;
  similarityMatrix(...args: unknown[]): void;
  similarityMatrixAsync(...args: unknown[]): Promise<void>;
  similarityTopk(...args: unknown[]): void;
  similarityTopkAsync(...args: unknown[]): Promise<void>;
  similarityRanks(...args: unknown[]): void;
  similarityRanksAsync(...args: unknown[]): Promise<void>;
}

const native = () => loadNative() as unknown as SimilarityNative;

/** Options of {@link pairedCosine}: only where it runs. */
export type PairedCosineOptions = DeviceOption;

/**
 * The device gate of every similarity call (before any native call): host arrays run on the CPU with
 * 'auto' / 'cpu'; DeviceTensor inputs (as the input or its `data`) are a typed error, since the CUDA
 * similarity kernels have no binding yet.
 */
function routeSimilarity(fn: string, path: string, device: unknown, a: unknown, b: unknown): void {
  const dataOf = (x: unknown) => (x !== null && typeof x === 'object' ? (x as { data?: unknown }).data : undefined);
  routeKernelDevice(fn, `similarity.${path}`, device, [a, b, dataOf(a), dataOf(b)], 'unwired');
}

/** Largest row count: indices are int32 and panels pad rows. */
const MAX_ROWS = 2 ** 31 - 64;

interface Resolved {
  data: FloatArray;
  dtype: Dtype;
  rows: number;
  d: number;
}

function resolve(fn: string, name: string, input: unknown): Resolved {
  if (input === null || typeof input !== 'object' || ArrayBuffer.isView(input))
    throw new InvalidTypeError(
      `${fn}: ${name} must be { data, dims: [N, D], dtype? } or a tensor { type, data, dims }, got ${describe(input)}`,
    );
  let data: FloatArray;
  let dtype: Dtype;
  let dims: number[];
  if ('type' in input) {
    const r = resolveFloatInput(fn, name, input, undefined, { allowF64: true });
    data = r.data;
    dtype = r.dtype;
    dims = requireShape(fn, `${name}.dims`, r.dims, [2]);
  } else {
    const e = input as Partial<Embeddings>;
    const r = resolveFloatInput(fn, `${name}.data`, e.data, e.dtype, { allowF64: true });
    data = r.data;
    dtype = r.dtype;
    dims = requireShape(fn, `${name}.dims`, e.dims, [2]);
  }
  const [rows, d] = dims;
  if (d < 1) throw new InvalidValueError(`${fn}: ${name}.dims[1] (D) must be >= 1, got ${d}`);
  if (rows > MAX_ROWS)
    throw new InvalidValueError(`${fn}: ${name} has ${rows} rows, at most ${MAX_ROWS}`, 'ERR_UNIGAP_OUT_OF_RANGE');
  if (data.length !== rows * d)
    throw new ShapeMismatchError(
      `${fn}: ${name}.data has ${data.length} elements, dims [${rows}, ${d}] need ${rows * d}`,
    );
  return { data, dtype, rows, d };
}

function sameD(fn: string, a: Resolved, b: Resolved, an: string, bn: string): void {
  if (a.d !== b.d) throw new ShapeMismatchError(`${fn}: ${an} have D = ${a.d} but ${bn} have D = ${b.d}`);
}

function sameN(fn: string, a: Resolved, b: Resolved, an: string, bn: string): void {
  if (a.rows !== b.rows)
    throw new ShapeMismatchError(
      `${fn}: ${an} have N = ${a.rows} rows but ${bn} have N = ${b.rows}; pairs need equal N`,
    );
}

function flag(fn: string, name: string, v: unknown, dflt: boolean): boolean {
  return v === undefined ? dflt : requireBoolean(fn, name, v);
}

// ------------------------------------------------------------------ paired cosine and CLIPScore

function pairedPrep(fn: string, images: EmbeddingsInput, texts: EmbeddingsInput) {
  const a = resolve(fn, 'images', images);
  const b = resolve(fn, 'texts', texts);
  sameD(fn, a, b, 'images', 'texts');
  sameN(fn, a, b, 'images', 'texts');
  return { a, b };
}

/**
 * Cosine similarity of each image with its own prompt: out[i] = cos(images[i], texts[i]).
 * A zero vector gives 0; a NaN in either row gives NaN for that pair only. f16/bf16 accumulate in f32;
 * two f64 inputs accumulate in f64.
 * @returns Float32Array of N.
 */
export function pairedCosine(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: PairedCosineOptions,
): Float32Array {
  const fn = 'pairedCosine';
  const o = checkOptions(fn, options, ['device']);
  routeSimilarity(fn, 'pairedCosine', o.device, images, texts);
  const { a, b } = pairedPrep(fn, images, texts);
  assertIsaUsable();
  const out = new Float32Array(a.rows);
  native().similarityPairedCosine(a.data, a.dtype, b.data, b.dtype, a.rows, a.d, out);
  return out;
}

/**
 * torchmetrics-compatible CLIPScore from embeddings: 100 · cos(image_i, text_i).
 * `reduction: 'mean'` (default) returns max(mean, 0), clamping after averaging as torchmetrics does;
 * `'none'` returns the per-pair scores, each clamped at 0. Unlike torchmetrics, a zero embedding
 * scores 0 instead of NaN.
 */
export function clipScore(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: { reduction?: 'mean' } & DeviceOption,
): number;
export function clipScore(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options: { reduction: 'none' } & DeviceOption,
): Float32Array;
export function clipScore(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: ClipScoreOptions,
): number | Float32Array;
export function clipScore(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: ClipScoreOptions,
): number | Float32Array {
  const fn = 'clipScore';
  const o = checkOptions(fn, options, ['reduction', 'device']);
  routeSimilarity(fn, 'pairedCosine', o.device, images, texts);
  const reduction = o.reduction === undefined ? 'mean' : requireEnum(fn, 'reduction', o.reduction, ['mean', 'none']);
  const { a, b } = pairedPrep(fn, images, texts);
  assertIsaUsable();
  const cos = new Float32Array(a.rows);
  native().similarityPairedCosine(a.data, a.dtype, b.data, b.dtype, a.rows, a.d, cos);
  if (reduction === 'none') {
    for (let i = 0; i < cos.length; i++) {
      const v = 100 * cos[i];
      cos[i] = v > 0 ? v : Number.isNaN(v) ? NaN : 0;
    }
    return cos;
  }
  let sum = 0;
  for (let i = 0; i < cos.length; i++) sum += 100 * cos[i];
  const mean = sum / cos.length;
  return Number.isNaN(mean) ? NaN : Math.max(mean, 0);
}

// ------------------------------------------------------------------ similarity matrix

function matrixPrep(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options: SimilarityMatrixOptions | undefined,
  fn: string,
) {
  const o = checkOptions(fn, options, ['normalize', 'scale', 'bias', 'out', 'device']);
  routeSimilarity(fn, 'matrix', o.device, images, texts);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const scale = o.scale === undefined ? 1 : requireNumber(fn, 'scale', o.scale);
  const bias = o.bias === undefined ? 0 : requireNumber(fn, 'bias', o.bias);
  const a = resolve(fn, 'images', images);
  const b = resolve(fn, 'texts', texts);
  sameD(fn, a, b, 'images', 'texts');
  if (a.rows * b.rows > 2 ** 32)
    throw new InvalidValueError(
      `${fn}: an ${a.rows} x ${b.rows} matrix is too large for one Float32Array; use topkSimilarity or retrievalRanks`,
      'ERR_UNIGAP_OUT_OF_RANGE',
    );
  let out: Float32Array;
  if (o.out === undefined) out = new Float32Array(a.rows * b.rows);
  else {
    out = requireArray<Float32Array>(fn, 'out', o.out, [Float32Array]);
    if (out.length !== a.rows * b.rows)
      throw new ShapeMismatchError(`${fn}: out has ${out.length} elements, expected N * M = ${a.rows * b.rows}`);
  }
  assertIsaUsable();
  return [a.data, a.dtype, a.rows, b.data, b.dtype, b.rows, a.d, normalize, scale, bias, out] as const;
}

/**
 * All-pairs scores S[i, j] = scale · cos(images[i], texts[j]) + bias (open_clip's logits with
 * scale = logit_scale.exp()), or raw dot products with `normalize: false`.
 * Blocked, packed, multithreaded GEMM (AVX-512 / AVX2 FMA). Zero rows score `bias`; a NaN row of
 * images poisons row i, a NaN row of texts column j.
 * @returns Float32Array of N * M, row-major (row i = image i).
 */
export function similarityMatrix(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: SimilarityMatrixOptions,
): Float32Array {
  const args = matrixPrep(images, texts, options, 'similarityMatrix');
  native().similarityMatrix(...args);
  return args[10];
}

/** {@link similarityMatrix} off the main thread (libuv pool); inputs must not change until it settles. */
export async function similarityMatrixAsync(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: SimilarityMatrixOptions,
): Promise<Float32Array> {
  const args = matrixPrep(images, texts, options, 'similarityMatrixAsync');
  await native().similarityMatrixAsync(...args);
  return args[10];
}

// ------------------------------------------------------------------ top-k

function topkPrep(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  k: unknown,
  options: TopkSimilarityOptions | undefined,
  fn: string,
) {
  const o = checkOptions(fn, options, ['normalize', 'device']);
  routeSimilarity(fn, 'topk', o.device, queries, candidates);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const a = resolve(fn, 'queries', queries);
  const b = resolve(fn, 'candidates', candidates);
  sameD(fn, a, b, 'queries', 'candidates');
  const kk = requireInt(fn, 'k', k, 1, Math.max(1, b.rows));
  if (b.rows < 1)
    throw new InvalidValueError(`${fn}: k = ${kk} but there are no candidates`, 'ERR_UNIGAP_OUT_OF_RANGE');
  assertIsaUsable();
  const indices = new Int32Array(a.rows * kk);
  const scores = new Float32Array(a.rows * kk);
  return {
    args: [a.data, a.dtype, a.rows, b.data, b.dtype, b.rows, a.d, kk, normalize, indices, scores] as const,
    result: { indices, scores, n: a.rows, k: kk },
  };
}

/**
 * The k best candidates per query, best first (ties: lower index; NaN scores last), computed blockwise
 * in the GEMM epilogue without materialising N × M (memory O((N + M)·D + N·k)).
 * @param k 1 <= k <= M.
 */
export function topkSimilarity(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): TopkSimilarityResult {
  const p = topkPrep(queries, candidates, k, options, 'topkSimilarity');
  native().similarityTopk(...p.args);
  return p.result;
}

/** {@link topkSimilarity} off the main thread. */
export async function topkSimilarityAsync(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): Promise<TopkSimilarityResult> {
  const p = topkPrep(queries, candidates, k, options, 'topkSimilarityAsync');
  await native().similarityTopkAsync(...p.args);
  return p.result;
}

// ------------------------------------------------------------------ retrieval ranks

function ranksPrep(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  options: RetrievalRanksOptions | undefined,
  fn: string,
) {
  const o = checkOptions(fn, options, ['normalize', 'device']);
  routeSimilarity(fn, 'ranks', o.device, queries, candidates);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const a = resolve(fn, 'queries', queries);
  const b = resolve(fn, 'candidates', candidates);
  sameD(fn, a, b, 'queries', 'candidates');
  sameN(fn, a, b, 'queries', 'candidates');
  assertIsaUsable();
  const ranks = new Float64Array(a.rows);
  return [a.data, a.dtype, b.data, b.dtype, a.rows, a.d, normalize, ranks] as const;
}

function metrics(ranks: Float64Array): RetrievalRanksResult {
  const n = ranks.length;
  let r1 = 0;
  let r5 = 0;
  let r10 = 0;
  let sum = 0;
  let nan = false;
  for (const r of ranks) {
    if (Number.isNaN(r)) nan = true;
    if (r <= 1) r1++;
    if (r <= 5) r5++;
    if (r <= 10) r10++;
    sum += r;
  }
  let median = NaN;
  if (n > 0 && !nan) {
    const s = Float64Array.from(ranks, (r) => r - 1).sort();
    const mid = n >> 1;
    median = Math.floor(n % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2) + 1;
  }
  return {
    ranks,
    recallAt1: n ? r1 / n : NaN,
    recallAt5: n ? r5 / n : NaN,
    recallAt10: n ? r10 / n : NaN,
    meanRank: n ? sum / n : NaN,
    medianRank: median,
  };
}

/**
 * For each query i, the rank of candidate i among all N candidates, plus open_clip's retrieval
 * metrics (R@1, R@5, R@10, mean and median rank). Blockwise in the GEMM epilogue; never N × N.
 * Ties count for the query: rank = 1 + #{j : s_ij > s_ii}.
 */
export function retrievalRanks(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  options?: RetrievalRanksOptions,
): RetrievalRanksResult {
  const args = ranksPrep(queries, candidates, options, 'retrievalRanks');
  native().similarityRanks(...args);
  return metrics(args[7]);
}

/** {@link retrievalRanks} off the main thread. */
export async function retrievalRanksAsync(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  options?: RetrievalRanksOptions,
): Promise<RetrievalRanksResult> {
  const args = ranksPrep(queries, candidates, options, 'retrievalRanksAsync');
  await native().similarityRanksAsync(...args);
  return metrics(args[7]);
}
