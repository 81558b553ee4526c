/**
 * Image–prompt similarity: paired cosine, CLIPScore, the similarity matrix (open_clip logits), fused
 * top-k and retrieval ranks. Policy lives here (defaults, validation, typed errors before any native
 * call); the math is specified in native/include/unigap/similarity.h.
 *
 * On the GPU. Inputs that are DeviceTensors (a DeviceTensor of shape [N, D], or { data: DeviceTensor,
 * dims: [N, D] }) run the CUDA kernels (native/cuda/similarity.cu) with `device: 'cuda'`, and with
 * `'auto'` on a device of compute capability 9.x, where every similarity path was GPU-verified
 * (lib/device.ts verifiedCudaPaths, verifiedCudaComputeCapabilities); elsewhere 'auto' throws a typed
 * error rather than read device memory on the CPU. Both inputs must then be DeviceTensors on one
 * device, of f32 / bf16 / f16 (f64: a typed
 * ERR_UNIGAP_INVALID_DTYPE error, UNSUPPORTED_DTYPE on the GPU). Array results stay on the device
 * (pairedCosine, similarityMatrix, topkSimilarity return DeviceTensors); metric results are reductions
 * and come back to the host (clipScore's number or per-pair Float32Array, retrievalRanks' ranks and
 * recalls), as their CPU versions return them.
 */
import { assertIsaUsable } from '../backend.js';
import { InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../errors.js';
import {
  DeviceTensor,
  SIM_FLAG_ALLOW_TF32,
  cudaSimilarityRun,
  cudaSimilarityRunAsync,
  gpuFloatDtypeCode,
  isDeviceTensor,
  routeKernelDevice,
  type DeviceOption,
  type DeviceSimilarityCall,
  type SimilarityOp,
} from '../device.js';
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

/** Embeddings on a CUDA device: `data` a DeviceTensor of f32 / bf16 / f16 with N * D elements. */
export interface DeviceEmbeddings {
  data: DeviceTensor;
  /** [N, D]. */
  dims: readonly number[];
  /** Must equal data.dtype when given. */
  dtype?: Dtype;
}

/** Device inputs: a DeviceTensor of shape [N, D], or {@link DeviceEmbeddings}. */
export type DeviceEmbeddingsInput = DeviceTensor | DeviceEmbeddings;

/**
 * Precision of the products (similarityMatrix, topkSimilarity, retrievalRanks).
 * - 'exact' (default): no input is rounded below its own dtype. f32 inputs run exact f32 FMA; bf16 /
 *   f16 inputs may run on tensor cores, whose bf16 x bf16 / f16 x f16 products are exact in the f32
 *   accumulator, so only the summation order differs from the CPU.
 * - 'tf32': ALLOWS rounding f32 inputs to TF32 (10-bit mantissa, relative error up to ~5e-4 per
 *   input) for tensor cores on GPUs that have them (sm_80+). It is a permission, not a demand: the
 *   CPU, older GPUs and non-f32 inputs ignore it and compute as 'exact' (as torch's allow_tf32 does),
 *   so the same options work whichever device a call lands on.
 */
export type SimilarityPrecision = 'exact' | 'tf32';

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
  /** See {@link SimilarityPrecision}. Default 'exact'. */
  precision?: SimilarityPrecision;
}

/** {@link SimilarityMatrixOptions} for DeviceTensor inputs: `out` is a DeviceTensor (f32, N * M elements). */
export interface SimilarityMatrixDeviceOptions extends Omit<SimilarityMatrixOptions, 'out'> {
  /** Write into this f32 DeviceTensor of N * M elements instead of a new one. It is returned. */
  out?: DeviceTensor;
}

export interface TopkSimilarityOptions extends DeviceOption {
  /** Cosine (true) or raw dot-product (false) scores. Default true. */
  normalize?: boolean;
  /** See {@link SimilarityPrecision}. Default 'exact'. */
  precision?: SimilarityPrecision;
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

/** {@link TopkSimilarityResult} of DeviceTensor inputs: indices (i32) and scores (f32), shape [N, k], on the device. */
export interface DeviceTopkSimilarityResult {
  indices: DeviceTensor;
  scores: DeviceTensor;
  n: number;
  k: number;
}

export interface RetrievalRanksOptions extends DeviceOption {
  /** Cosine (true) or raw dot-product (false) scores; ranks are unchanged by a positive scale. Default true. */
  normalize?: boolean;
  /** See {@link SimilarityPrecision}. Default 'exact'. */
  precision?: SimilarityPrecision;
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
 * 'auto' / 'cpu'; DeviceTensor inputs (as the input or its `data`) run the CUDA kernels with an explicit
 * 'cuda' (or 'auto' once the path is GPU-verified) and are a typed error otherwise (lib/device.ts
 * routeKernelDevice), never read on the CPU.
 */
function routeSimilarity(fn: string, path: string, device: unknown, a: unknown, b: unknown): 'cpu' | 'cuda' {
  const dataOf = (x: unknown) => (x !== null && typeof x === 'object' ? (x as { data?: unknown }).data : undefined);
  return routeKernelDevice(fn, `similarity.${path}`, device, [a, b, dataOf(a), dataOf(b)], 'wired');
}

function precisionFlags(fn: string, v: unknown): number {
  const p = v === undefined ? 'exact' : requireEnum(fn, 'precision', v, ['exact', 'tf32'] as const);
  return p === 'tf32' ? SIM_FLAG_ALLOW_TF32 : 0;
}

interface OnDevice {
  tensor: DeviceTensor;
  rows: number;
  d: number;
}

/** A device input: a rank-2 DeviceTensor, or { data: DeviceTensor, dims: [N, D], dtype? }; f32 / bf16 / f16. */
function resolveOnDevice(fn: string, name: string, input: unknown): OnDevice {
  let tensor: DeviceTensor;
  let dims: number[];
  if (isDeviceTensor(input)) {
    tensor = input;
    dims = requireShape(fn, `${name}.shape`, [...input.shape], [2]);
  } else if (input !== null && typeof input === 'object' && isDeviceTensor((input as { data?: unknown }).data)) {
    const e = input as DeviceEmbeddings;
    tensor = e.data;
    dims = requireShape(fn, `${name}.dims`, e.dims, [2]);
    if (e.dtype !== undefined && e.dtype !== tensor.dtype)
      throw new InvalidTypeError(
        `${fn}: ${name}.dtype is '${String(e.dtype)}' but ${name}.data holds ${tensor.dtype}`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
  } else
    throw new InvalidTypeError(
      `${fn}: ${name} must be a DeviceTensor (or { data: DeviceTensor, dims }) like the other input, got ${describe(input)}; both inputs must be on the device`,
    );
  if (tensor.disposed) throw new InvalidValueError(`${fn}: ${name} was disposed`);
  gpuFloatDtypeCode(fn, name, tensor);
  const [rows, d] = dims;
  if (d < 1) throw new InvalidValueError(`${fn}: ${name} D must be >= 1, got ${d}`);
  if (rows > MAX_ROWS)
    throw new InvalidValueError(`${fn}: ${name} has ${rows} rows, at most ${MAX_ROWS}`, 'ERR_UNIGAP_OUT_OF_RANGE');
  if (tensor.size !== rows * d)
    throw new ShapeMismatchError(`${fn}: ${name} holds ${tensor.size} elements, dims [${rows}, ${d}] need ${rows * d}`);
  return { tensor, rows, d };
}

function devicePair(fn: string, an: string, bn: string, a: unknown, b: unknown, pairs: boolean) {
  const x = resolveOnDevice(fn, an, a);
  const y = resolveOnDevice(fn, bn, b);
  if (x.d !== y.d) throw new ShapeMismatchError(`${fn}: ${an} have D = ${x.d} but ${bn} have D = ${y.d}`);
  if (pairs && x.rows !== y.rows)
    throw new ShapeMismatchError(
      `${fn}: ${an} have N = ${x.rows} rows but ${bn} have N = ${y.rows}; pairs need equal N`,
    );
  if (x.tensor.device !== y.tensor.device)
    throw new InvalidValueError(`${fn}: ${an} are on device ${x.tensor.device}, ${bn} on device ${y.tensor.device}`);
  return { x, y };
}

/** A call skeleton for cudaSimilarityRun. */
function simCall(x: OnDevice, y: OnDevice, extra: Partial<DeviceSimilarityCall>): DeviceSimilarityCall {
  return {
    a: x.tensor,
    b: y.tensor,
    n: x.rows,
    m: y.rows,
    d: x.d,
    normalize: true,
    scale: 1,
    bias: 0,
    k: 0,
    flags: 0,
    ...extra,
  };
}

/** Runs op (sync or async) with fresh outputs; disposes them when the run fails. */
function runOnDevice<T>(
  op: SimilarityOp,
  call: DeviceSimilarityCall,
  fresh: DeviceTensor[],
  done: () => T,
  isAsync: false,
): T;
function runOnDevice<T>(
  op: SimilarityOp,
  call: DeviceSimilarityCall,
  fresh: DeviceTensor[],
  done: () => T,
  isAsync: true,
): Promise<T>;
function runOnDevice<T>(
  op: SimilarityOp,
  call: DeviceSimilarityCall,
  fresh: DeviceTensor[],
  done: () => T,
  isAsync: boolean,
): T | Promise<T> {
  const fail = (e: unknown): never => {
    for (const t of fresh) t.dispose();
    throw e;
  };
  if (isAsync) return cudaSimilarityRunAsync(op, call).then(done, fail);
  try {
    cudaSimilarityRun(op, call);
  } catch (e) {
    fail(e);
  }
  return done();
}

/** Copies a small device result to the host and frees it. */
function take<T extends Float32Array | Float64Array>(t: DeviceTensor): T {
  try {
    return t.download() as T;
  } finally {
    t.dispose();
  }
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
 * two f64 inputs accumulate in f64. DeviceTensor inputs (with `device: 'cuda'`): a DeviceTensor [N] f32.
 * @returns Float32Array of N.
 */
export function pairedCosine(
  images: DeviceEmbeddingsInput,
  texts: DeviceEmbeddingsInput,
  options?: PairedCosineOptions,
): DeviceTensor;
export function pairedCosine(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: PairedCosineOptions,
): Float32Array;
export function pairedCosine(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: PairedCosineOptions,
): Float32Array | DeviceTensor {
  const fn = 'pairedCosine';
  const o = checkOptions(fn, options, ['device']);
  if (routeSimilarity(fn, 'pairedCosine', o.device, images, texts) === 'cuda') {
    const { x, y } = devicePair(fn, 'images', 'texts', images, texts, true);
    const out = DeviceTensor.empty([x.rows], 'f32', { device: x.tensor.device });
    return runOnDevice(0, simCall(x, y, { out }), [out], () => out, false);
  }
  const { a, b } = pairedPrep(fn, images as EmbeddingsInput, texts as EmbeddingsInput);
  assertIsaUsable();
  const out = new Float32Array(a.rows);
  native().similarityPairedCosine(a.data, a.dtype, b.data, b.dtype, a.rows, a.d, out);
  return out;
}

/** CLIPScore from the cosines: per pair max(100 cos, 0) ('none'), or max(mean of 100 cos, 0). */
function clipFromCos(cos: Float32Array, reduction: 'mean' | 'none'): number | Float32Array {
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

/**
 * torchmetrics-compatible CLIPScore from embeddings: 100 · cos(image_i, text_i).
 * `reduction: 'mean'` (default) returns max(mean, 0), clamping after averaging as torchmetrics does;
 * `'none'` returns the per-pair scores, each clamped at 0. Unlike torchmetrics, a zero embedding
 * scores 0 instead of NaN. DeviceTensor inputs (with `device: 'cuda'`) run the paired cosine on the GPU
 * and reduce the N cosines on the host; the result is a host value as on the CPU.
 */
export function clipScore(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: { reduction?: 'mean' } & DeviceOption,
): number;
export function clipScore(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options: { reduction: 'none' } & DeviceOption,
): Float32Array;
export function clipScore(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: ClipScoreOptions,
): number | Float32Array;
export function clipScore(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: ClipScoreOptions,
): number | Float32Array {
  const fn = 'clipScore';
  const o = checkOptions(fn, options, ['reduction', 'device']);
  const where = routeSimilarity(fn, 'pairedCosine', o.device, images, texts);
  const reduction = o.reduction === undefined ? 'mean' : requireEnum(fn, 'reduction', o.reduction, ['mean', 'none']);
  if (where === 'cuda') {
    const { x, y } = devicePair(fn, 'images', 'texts', images, texts, true);
    const out = DeviceTensor.empty([x.rows], 'f32', { device: x.tensor.device });
    const cos = runOnDevice(0, simCall(x, y, { out }), [out], () => take<Float32Array>(out), false);
    return clipFromCos(cos, reduction);
  }
  const { a, b } = pairedPrep(fn, images as EmbeddingsInput, texts as EmbeddingsInput);
  assertIsaUsable();
  const cos = new Float32Array(a.rows);
  native().similarityPairedCosine(a.data, a.dtype, b.data, b.dtype, a.rows, a.d, cos);
  return clipFromCos(cos, reduction);
}

// ------------------------------------------------------------------ similarity matrix

/** What a prepared call runs: the CPU binding's arguments, or a CUDA call and its result. */
interface CpuPlan<A> {
  where: 'cpu';
  args: A;
}
interface CudaPlan<R> {
  where: 'cuda';
  op: SimilarityOp;
  call: DeviceSimilarityCall;
  fresh: DeviceTensor[];
  done: () => R;
}

function matrixPrep(
  images: unknown,
  texts: unknown,
  options: SimilarityMatrixOptions | SimilarityMatrixDeviceOptions | undefined,
  fn: string,
) {
  const o = checkOptions(fn, options, ['normalize', 'scale', 'bias', 'out', 'device', 'precision']);
  const where = routeSimilarity(fn, 'matrix', o.device, images, texts);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const scale = o.scale === undefined ? 1 : requireNumber(fn, 'scale', o.scale);
  const bias = o.bias === undefined ? 0 : requireNumber(fn, 'bias', o.bias);
  const flags = precisionFlags(fn, o.precision);
  if (where === 'cuda') {
    const { x, y } = devicePair(fn, 'images', 'texts', images, texts, false);
    let out: DeviceTensor;
    const fresh: DeviceTensor[] = [];
    if (o.out === undefined) {
      out = DeviceTensor.empty([x.rows, y.rows], 'f32', { device: x.tensor.device });
      fresh.push(out);
    } else {
      if (!isDeviceTensor(o.out))
        throw new InvalidTypeError(`${fn}: out must be a DeviceTensor (f32) when the inputs are DeviceTensors`);
      out = o.out;
      if (out.dtype !== 'f32')
        throw new InvalidTypeError(`${fn}: out must be f32, got ${out.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
      if (out.size !== x.rows * y.rows)
        throw new ShapeMismatchError(`${fn}: out has ${out.size} elements, expected N * M = ${x.rows * y.rows}`);
    }
    const call = simCall(x, y, { out, normalize, scale, bias, flags });
    return { where, op: 1, call, fresh, done: () => out } as CudaPlan<DeviceTensor>;
  }
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
  const args = [a.data, a.dtype, a.rows, b.data, b.dtype, b.rows, a.d, normalize, scale, bias, out] as const;
  return { where, args } as CpuPlan<typeof args>;
}

/**
 * All-pairs scores S[i, j] = scale · cos(images[i], texts[j]) + bias (open_clip's logits with
 * scale = logit_scale.exp()), or raw dot products with `normalize: false`.
 * Blocked, packed, multithreaded GEMM (AVX-512 / AVX2 FMA). Zero rows score `bias`; a NaN row of
 * images poisons row i, a NaN row of texts column j. DeviceTensor inputs (with `device: 'cuda'`): the
 * CUDA GEMM (tensor cores for bf16 / f16 pairs on sm_80+, and for f32 with `precision: 'tf32'`), and
 * the result is a DeviceTensor [N, M] f32 (or `out`).
 * @returns Float32Array of N * M, row-major (row i = image i).
 */
export function similarityMatrix(
  images: DeviceEmbeddingsInput,
  texts: DeviceEmbeddingsInput,
  options?: SimilarityMatrixDeviceOptions,
): DeviceTensor;
export function similarityMatrix(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: SimilarityMatrixOptions,
): Float32Array;
export function similarityMatrix(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: SimilarityMatrixOptions | SimilarityMatrixDeviceOptions,
): Float32Array | DeviceTensor {
  const p = matrixPrep(images, texts, options, 'similarityMatrix');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, false);
  native().similarityMatrix(...p.args);
  return p.args[10];
}

/** {@link similarityMatrix} off the main thread (libuv pool); inputs must not change until it settles. */
export async function similarityMatrixAsync(
  images: DeviceEmbeddingsInput,
  texts: DeviceEmbeddingsInput,
  options?: SimilarityMatrixDeviceOptions,
): Promise<DeviceTensor>;
export async function similarityMatrixAsync(
  images: EmbeddingsInput,
  texts: EmbeddingsInput,
  options?: SimilarityMatrixOptions,
): Promise<Float32Array>;
export async function similarityMatrixAsync(
  images: EmbeddingsInput | DeviceEmbeddingsInput,
  texts: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: SimilarityMatrixOptions | SimilarityMatrixDeviceOptions,
): Promise<Float32Array | DeviceTensor> {
  const p = matrixPrep(images, texts, options, 'similarityMatrixAsync');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, true);
  await native().similarityMatrixAsync(...p.args);
  return p.args[10];
}

// ------------------------------------------------------------------ top-k

function topkPrep(
  queries: unknown,
  candidates: unknown,
  k: unknown,
  options: TopkSimilarityOptions | undefined,
  fn: string,
) {
  const o = checkOptions(fn, options, ['normalize', 'device', 'precision']);
  const where = routeSimilarity(fn, 'topk', o.device, queries, candidates);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const flags = precisionFlags(fn, o.precision);
  if (where === 'cuda') {
    const { x, y } = devicePair(fn, 'queries', 'candidates', queries, candidates, false);
    const kk = requireInt(fn, 'k', k, 1, Math.max(1, y.rows));
    if (y.rows < 1)
      throw new InvalidValueError(`${fn}: k = ${kk} but there are no candidates`, 'ERR_UNIGAP_OUT_OF_RANGE');
    const device = x.tensor.device;
    const indices = DeviceTensor.empty([x.rows, kk], 'i32', { device });
    let scores: DeviceTensor;
    try {
      scores = DeviceTensor.empty([x.rows, kk], 'f32', { device });
    } catch (e) {
      indices.dispose();
      throw e;
    }
    const call = simCall(x, y, { indices, scores, k: kk, normalize, flags });
    const result: DeviceTopkSimilarityResult = { indices, scores, n: x.rows, k: kk };
    return { where, op: 2, call, fresh: [indices, scores], done: () => result } as CudaPlan<DeviceTopkSimilarityResult>;
  }
  const a = resolve(fn, 'queries', queries);
  const b = resolve(fn, 'candidates', candidates);
  sameD(fn, a, b, 'queries', 'candidates');
  const kk = requireInt(fn, 'k', k, 1, Math.max(1, b.rows));
  if (b.rows < 1)
    throw new InvalidValueError(`${fn}: k = ${kk} but there are no candidates`, 'ERR_UNIGAP_OUT_OF_RANGE');
  assertIsaUsable();
  const indices = new Int32Array(a.rows * kk);
  const scores = new Float32Array(a.rows * kk);
  const args = [a.data, a.dtype, a.rows, b.data, b.dtype, b.rows, a.d, kk, normalize, indices, scores] as const;
  return { where, args, result: { indices, scores, n: a.rows, k: kk } } as CpuPlan<typeof args> & {
    result: TopkSimilarityResult;
  };
}

/**
 * The k best candidates per query, best first (ties: lower index; NaN scores last), computed blockwise
 * in the GEMM epilogue without materialising N × M (memory O((N + M)·D + N·k)). DeviceTensor inputs
 * (with `device: 'cuda'`): the CUDA kernel, and indices / scores are DeviceTensors [N, k].
 * @param k 1 <= k <= M.
 */
export function topkSimilarity(
  queries: DeviceEmbeddingsInput,
  candidates: DeviceEmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): DeviceTopkSimilarityResult;
export function topkSimilarity(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): TopkSimilarityResult;
export function topkSimilarity(
  queries: EmbeddingsInput | DeviceEmbeddingsInput,
  candidates: EmbeddingsInput | DeviceEmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): TopkSimilarityResult | DeviceTopkSimilarityResult {
  const p = topkPrep(queries, candidates, k, options, 'topkSimilarity');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, false);
  native().similarityTopk(...p.args);
  return p.result;
}

/** {@link topkSimilarity} off the main thread. */
export async function topkSimilarityAsync(
  queries: DeviceEmbeddingsInput,
  candidates: DeviceEmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): Promise<DeviceTopkSimilarityResult>;
export async function topkSimilarityAsync(
  queries: EmbeddingsInput,
  candidates: EmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): Promise<TopkSimilarityResult>;
export async function topkSimilarityAsync(
  queries: EmbeddingsInput | DeviceEmbeddingsInput,
  candidates: EmbeddingsInput | DeviceEmbeddingsInput,
  k: number,
  options?: TopkSimilarityOptions,
): Promise<TopkSimilarityResult | DeviceTopkSimilarityResult> {
  const p = topkPrep(queries, candidates, k, options, 'topkSimilarityAsync');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, true);
  await native().similarityTopkAsync(...p.args);
  return p.result;
}

// ------------------------------------------------------------------ retrieval ranks

function ranksPrep(queries: unknown, candidates: unknown, options: RetrievalRanksOptions | undefined, fn: string) {
  const o = checkOptions(fn, options, ['normalize', 'device', 'precision']);
  const where = routeSimilarity(fn, 'ranks', o.device, queries, candidates);
  const normalize = flag(fn, 'normalize', o.normalize, true);
  const flags = precisionFlags(fn, o.precision);
  if (where === 'cuda') {
    const { x, y } = devicePair(fn, 'queries', 'candidates', queries, candidates, true);
    const ranks = DeviceTensor.empty([x.rows], 'f64', { device: x.tensor.device });
    const call = simCall(x, y, { ranks, normalize, flags });
    return {
      where,
      op: 3,
      call,
      fresh: [ranks],
      done: () => metrics(take<Float64Array>(ranks)),
    } as CudaPlan<RetrievalRanksResult>;
  }
  const a = resolve(fn, 'queries', queries);
  const b = resolve(fn, 'candidates', candidates);
  sameD(fn, a, b, 'queries', 'candidates');
  sameN(fn, a, b, 'queries', 'candidates');
  assertIsaUsable();
  const ranks = new Float64Array(a.rows);
  const args = [a.data, a.dtype, b.data, b.dtype, a.rows, a.d, normalize, ranks] as const;
  return { where, args } as CpuPlan<typeof args>;
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
 * Ties count for the query: rank = 1 + #{j : s_ij > s_ii}. DeviceTensor inputs (with
 * `device: 'cuda'`): the CUDA kernel; the N ranks come back to the host with the metrics.
 */
export function retrievalRanks(
  queries: EmbeddingsInput | DeviceEmbeddingsInput,
  candidates: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: RetrievalRanksOptions,
): RetrievalRanksResult {
  const p = ranksPrep(queries, candidates, options, 'retrievalRanks');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, false);
  native().similarityRanks(...p.args);
  return metrics(p.args[7]);
}

/** {@link retrievalRanks} off the main thread. */
export async function retrievalRanksAsync(
  queries: EmbeddingsInput | DeviceEmbeddingsInput,
  candidates: EmbeddingsInput | DeviceEmbeddingsInput,
  options?: RetrievalRanksOptions,
): Promise<RetrievalRanksResult> {
  const p = ranksPrep(queries, candidates, options, 'retrievalRanksAsync');
  if (p.where === 'cuda') return runOnDevice(p.op, p.call, p.fresh, p.done, true);
  await native().similarityRanksAsync(...p.args);
  return metrics(p.args[7]);
}
