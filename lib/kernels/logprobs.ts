/**
 * Log-prob batch scoring (the logprobs family): per-token log-probabilities of target ids from a
 * policy's logits, per-sequence sums / counts / means, optional entropy, token accuracy and logit
 * sums, and the gradient back into the logits (fused with the forward, or as a separate backward).
 * Policy (defaults, validation, dtype coercion, errors) lives here; the math and its numerics are
 * written down in native/include/unigap/logprobs.h.
 *
 * Where it runs. Host arrays run the CPU kernels (AVX-512 / AVX2 / scalar). Logits that are a
 * DeviceTensor (or { data: DeviceTensor, dims }) run the CUDA kernels (native/cuda/logprobs.cu) with
 * `device: 'cuda'`, and with `'auto'` on a device of compute capability 9.x, where every log-prob path
 * was GPU-verified (lib/device.ts verifiedCudaPaths, verifiedCudaComputeCapabilities); elsewhere 'auto'
 * throws a typed error rather than read device memory on the CPU.
 * On the device route:
 *  - labels (i32, N), mask (u8, N), gradient.token / upstream.token (f32, N) and lse (f32, N) must be
 *    DeviceTensors on the logits' device: O(N) arrays are never copied behind the caller's back.
 *    Labels are NOT range-checked (that would download them): a counted label outside [0, V) makes
 *    that row's outputs and gradient row NaN (the kernels' contract, native/include/unigap/cuda.h),
 *    it never reads out of bounds;
 *  - offsets may be a host Int32Array / BigInt64Array (validated as on the CPU, uploaded as int64 into
 *    a temporary) or a DeviceTensor of i64 or i32 (B + 1): its B + 1 values are downloaded and
 *    validated before the kernel runs (i32 ones re-uploaded as int64); the default comes from the shape;
 *  - gradient.seq / upstream.seq (B values) may be a host Float32Array (uploaded) or an f32 DeviceTensor;
 *  - results are DeviceTensors (token arrays [N], sequence arrays [B], the gradient in the logits'
 *    shape and dtype: new, `out`, or the logits tensor itself with inPlace); `output: 'host'` brings
 *    the forward statistics back as the CPU's typed arrays (the gradient stays a DeviceTensor);
 *  - each call runs on its own CUDA stream and returns (the async twins resolve) when it is done.
 */
import { InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../errors.js';
import { assertIsaUsable } from '../backend.js';
import {
  DeviceTensor,
  cudaLogprobsRun,
  cudaLogprobsRunAsync,
  gpuFloatDtypeCode,
  isDeviceTensor,
  routeKernelDevice,
  type DeviceLogprobsCall,
  type DeviceOption,
} from '../device.js';
import { loadNative } from '../native.js';
import {
  checkOptions,
  describe,
  requireArray,
  requireBoolean,
  requireEnum,
  requireInt,
  requireLength,
  requireNumber,
  numel,
  requireShape,
  resolveFloatInput,
  type TensorLike,
} from '../validate.js';

/** Element types the logprobs kernels read (bf16 / f16 travel as raw bits in a Uint16Array). */
export type LogprobsDtype = 'f32' | 'bf16' | 'f16';

/** Logits: Float32Array (f32), Uint16Array of bf16 / f16 bits (with `dtype`), or an onnxruntime-like tensor. */
export type LogitsInput = Float32Array | Uint16Array | TensorLike;

/** Options every logprobs call shares: how to read the logits and which rows count. */
export interface LogprobsInputOptions {
  /**
   * Element type of `logits`. Default: 'f32' for a Float32Array, the tensor's type for a tensor-like;
   * required ('bf16' or 'f16') for a Uint16Array.
   */
  dtype?: LogprobsDtype;
  /**
   * `[N, V]` (N token rows of V scores) or `[B, T, V]` (B sequences of T tokens). Required for typed
   * arrays; for a tensor-like it defaults to the tensor's `dims` (and must equal them when given).
   */
  shape?: readonly number[];
  /**
   * Packed variable-length sequences: B + 1 non-decreasing row offsets, first 0, last N (a sequence
   * may be empty). Int32Array, or BigInt64Array when N ≥ 2^31. Default: from `shape` — `[B, T, V]`
   * gives B sequences of T rows, `[N, V]` one sequence of N rows. When given it overrides the
   * grouping implied by a `[B, T, V]` shape.
   */
  offsets?: Int32Array | BigInt64Array;
  /**
   * Pair the logits of row t with the label at t + 1 within each sequence (TRL / Cut Cross-Entropy),
   * without copying; the last row of each sequence is then not counted. Default false.
   */
  shift?: boolean;
  /** Label value that marks a target as not counted (PyTorch / TRL convention). Default -100. */
  ignoreIndex?: number;
  /** Uint8Array of N: `mask[i] === 0` excludes target i (as ignoreIndex does). Default: none. */
  mask?: Uint8Array;
  /** The logits are divided by it before the softmax; finite and > 0. Default 1. */
  temperature?: number;
}

/** Upstream gradient: d(loss)/d(seqSum) per sequence and/or d(loss)/d(tokenLogprobs) per row (summed). */
export interface LogprobsUpstream {
  /** Float32Array of B (one per sequence). Default: none (0). */
  seq?: Float32Array;
  /** Float32Array of N (one per row). Default: none (0). */
  token?: Float32Array;
}

/** Gradient requested on the same call as the forward (fused: each row's two sweeps share the cache). */
export interface ScoreLogprobsGradientOptions extends LogprobsUpstream {
  /**
   * Write the gradient over the logits (flash-attn / Liger-Kernel style; the result's `gradient` is
   * then the logits array itself). Default false: a new array of the logits' type.
   */
  inPlace?: boolean;
  /**
   * Write the gradient into this preallocated array (the logits' type and length; not the logits
   * themselves — use inPlace for that), e.g. to reuse one buffer across training steps. Default: a
   * new array. Giving both `out` and `inPlace: true` is an error.
   */
  out?: Float32Array | Uint16Array;
}

export interface ScoreLogprobsOptions extends LogprobsInputOptions, DeviceOption {
  /** Also return per-row entropy of softmax(z/τ) (`tokenEntropy`). Default false. */
  entropy?: boolean;
  /** Also return per-row argmax(z) === label (`tokenCorrect`, TRL's token accuracy). Default false. */
  accuracy?: boolean;
  /** Also return per-sequence sums of the raw logits over counted rows (`seqLogitSum`). Default false. */
  logitSums?: boolean;
  /** Compute d(loss)/d(logits) in the same pass, given the upstream gradient. Default: none. */
  gradient?: ScoreLogprobsGradientOptions;
  /**
   * Where the forward statistics of a DeviceTensor call land: 'device' (default) DeviceTensors,
   * 'host' the CPU's typed arrays (downloaded once the stream is done; the gradient stays a
   * DeviceTensor). Host-array calls return typed arrays whatever it says.
   */
  output?: LogprobsOutput;
}

/** Where a DeviceTensor call's forward statistics land (see {@link ScoreLogprobsOptions.output}). */
export type LogprobsOutput = 'device' | 'host';

export interface ScoreLogprobsResult {
  /** N per-row log p(label) (0 on rows that are not counted). */
  tokenLogprobs: Float32Array;
  /** N per-row log-sum-exp of z/τ (0 on rows not counted); pass it to logprobsBackward as `lse`. */
  tokenLse: Float32Array;
  /** B per-sequence sums of tokenLogprobs over counted rows (accumulated in double). */
  seqSum: Float32Array;
  /** B per-sequence counted-row counts. */
  seqCount: Int32Array;
  /** B per-sequence means: seqSum / seqCount, and 0 when the count is 0. */
  seqMean: Float32Array;
  /** With `entropy`: N per-row entropies (0 on rows not counted). */
  tokenEntropy?: Float32Array;
  /** With `accuracy`: N per-row 1 when argmax(z) (first on ties) equals the label, else 0. */
  tokenCorrect?: Uint8Array;
  /** With `logitSums`: B per-sequence sums of raw logits over counted rows (logits/chosen = this / (count·V)). */
  seqLogitSum?: Float64Array;
  /** With `gradient`: d(loss)/d(logits), the logits' shape and type (the logits array itself when inPlace). */
  gradient?: Float32Array | Uint16Array;
}

export interface LogprobsBackwardOptions extends LogprobsInputOptions, DeviceOption {
  /** `tokenLse` from a forward on the same inputs: the backward is then one sweep. Default: recomputed. */
  lse?: Float32Array;
  /** Write the gradient over the logits. Default false. */
  inPlace?: boolean;
  /** Write the gradient into this preallocated array (the logits' type and length). Default: a new array. */
  out?: Float32Array | Uint16Array;
}

export interface LogprobsBackwardResult {
  /** d(loss)/d(logits): g·(onehot(y) − softmax(z/τ))/τ on counted rows, 0 elsewhere; the logits' type. */
  gradient: Float32Array | Uint16Array;
}

/** The plain object the N-API binding (`logprobsRun`) takes; field names mirror unigap_logprobs_args. */
export interface NativeLogprobsCall {
  logits: Float32Array | Uint16Array;
  /** unigap_dtype: 0 f32, 2 bf16, 3 f16. */
  dtype: 0 | 2 | 3;
  nTokens: number;
  vocab: number;
  labels: Int32Array;
  mask: Uint8Array | null;
  ignoreIndex: number;
  offsets: Int32Array | BigInt64Array;
  nSeq: number;
  shift: boolean;
  temperature: number;
  tokenLogp: Float32Array | null;
  tokenEntropy: Float32Array | null;
  tokenCorrect: Uint8Array | null;
  tokenLse: Float32Array | null;
  seqSum: Float32Array | null;
  seqCount: Int32Array | null;
  seqMean: Float32Array | null;
  seqLogitSum: Float64Array | null;
  gradSeq: Float32Array | null;
  gradToken: Float32Array | null;
  /** Backward only: tokenLse of an earlier forward. */
  inputLse: Float32Array | null;
  gradOut: Float32Array | Uint16Array | null;
}

export type LogprobsMode = 'forward' | 'backward' | 'forwardBackward';

/** Options of {@link prepareLogprobsCall}: everything scoreLogprobs takes, plus the mode and `lse`. */
export interface PrepareLogprobsOptions extends Omit<ScoreLogprobsOptions, 'device' | 'output'> {
  /**
   * 'forward', 'backward' (needs `gradient` for the upstream; allocates no forward outputs) or
   * 'forwardBackward'. Default: 'forwardBackward' when `gradient` is given, else 'forward'.
   */
  mode?: LogprobsMode;
  /** Backward mode only: tokenLse of an earlier forward. Default: recomputed. */
  lse?: Float32Array;
}

/**
 * A validated, normalized logprobs call. `call` holds every input and every freshly allocated output
 * (null where not requested); nothing in it has been computed yet. Run it with
 * {@link runLogprobsCall} / {@link runLogprobsCallAsync}, then read the outputs from `call` (or build
 * the public result with {@link logprobsResultOf}).
 */
export interface PreparedLogprobsCall {
  /** 0 forward, 1 backward, 2 forward + backward (the `mode` argument of the binding). */
  mode: 0 | 1 | 2;
  call: NativeLogprobsCall;
  dtype: LogprobsDtype;
  /** N rows, V vocabulary, B sequences. */
  nTokens: number;
  vocab: number;
  nSeq: number;
  /** Normalized shape ([N, V] or [B, T, V]). */
  shape: number[];
}

declare module '../native.js' {
  interface NativeBinding {
    logprobsRun(mode: 0 | 1 | 2, call: NativeLogprobsCall): void;
    logprobsRunAsync(mode: 0 | 1 | 2, call: NativeLogprobsCall): Promise<void>;
  }
}

const INPUT_KEYS = ['dtype', 'shape', 'offsets', 'shift', 'ignoreIndex', 'mask', 'temperature'] as const;
const SCORE_BASE_KEYS = [...INPUT_KEYS, 'entropy', 'accuracy', 'logitSums', 'gradient'] as const;
const SCORE_KEYS = [...SCORE_BASE_KEYS, 'device', 'output'] as const;
const PREPARE_KEYS = [...SCORE_BASE_KEYS, 'mode', 'lse'] as const;
const BACKWARD_KEYS = [...INPUT_KEYS, 'lse', 'inPlace', 'out', 'device'] as const;
const DTYPE_CODE = { f32: 0, bf16: 2, f16: 3 } as const;
const INT32_MAX = 2147483647;

function offsetsFor(fn: string, o: LogprobsInputOptions, shape: number[], n: number): Int32Array | BigInt64Array {
  if (o.offsets !== undefined) {
    const off = requireArray<Int32Array | BigInt64Array>(fn, 'offsets', o.offsets, [
      Int32Array,
      BigInt64Array as unknown as Int32ArrayConstructor,
    ]);
    if (off.length < 1) throw new ShapeMismatchError(`${fn}: offsets must have B + 1 >= 1 entries`);
    let prev = -1;
    for (let i = 0; i < off.length; i++) {
      const x = Number(off[i]);
      if (i === 0 && x !== 0) throw new InvalidValueError(`${fn}: offsets[0] must be 0, got ${x}`);
      if (x < prev)
        throw new InvalidValueError(
          `${fn}: offsets must be non-decreasing; offsets[${i}] = ${x} < offsets[${i - 1}] = ${prev}`,
        );
      prev = x;
    }
    if (prev !== n) throw new ShapeMismatchError(`${fn}: the last offset is ${prev}, expected N = ${n}`);
    return off;
  }
  const big = n > INT32_MAX;
  if (shape.length === 3) {
    const [b, t] = shape;
    const off = big ? new BigInt64Array(b + 1) : new Int32Array(b + 1);
    for (let i = 0; i <= b; i++) off[i] = (big ? BigInt(i * t) : i * t) as never;
    return off;
  }
  return big ? BigInt64Array.of(0n, BigInt(n)) : Int32Array.of(0, n);
}

/**
 * Validate and normalize a logprobs call (used by scoreLogprobs, logprobsBackward and the fused DPO
 * path). Every bad input raises a typed error with a code before any native code runs; outputs are
 * allocated here (the binding allocates nothing). `fnName` prefixes error messages.
 */
export function prepareLogprobsCall(
  fnName: string,
  logits: unknown,
  labels: unknown,
  options?: PrepareLogprobsOptions,
): PreparedLogprobsCall {
  const fn = fnName;
  const o = checkOptions(fn, options, PREPARE_KEYS);
  if (o.dtype !== undefined && o.dtype !== 'f32' && o.dtype !== 'bf16' && o.dtype !== 'f16')
    throw new InvalidTypeError(
      `${fn}: dtype must be 'f32', 'bf16' or 'f16', got ${describe(o.dtype)}`,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
  const r = resolveFloatInput(fn, 'logits', logits, o.dtype);
  if (r.dtype === 'f64')
    throw new InvalidTypeError(`${fn}: logits must be f32, bf16 or f16 (got f64)`, 'ERR_UNIGAP_INVALID_DTYPE');
  const dtype = r.dtype as LogprobsDtype;
  const data = r.data as Float32Array | Uint16Array;
  let shape: number[];
  if (o.shape !== undefined) {
    shape = requireShape(fn, 'shape', o.shape, [2, 3]);
    if (r.dims && (r.dims.length !== shape.length || r.dims.some((d, i) => d !== shape[i])))
      throw new ShapeMismatchError(
        `${fn}: shape [${shape.join(', ')}] disagrees with the tensor dims [${r.dims.join(', ')}]`,
      );
  } else if (r.dims) {
    shape = requireShape(fn, 'logits.dims', r.dims, [2, 3]);
  } else {
    throw new InvalidValueError(`${fn}: pass shape: [N, V] or [B, T, V] (a typed array carries no shape)`);
  }
  const vocab = shape[shape.length - 1];
  if (vocab < 1)
    throw new InvalidValueError(`${fn}: the vocabulary size V (last dim of the shape) must be >= 1, got 0`);
  if (vocab > INT32_MAX) throw new InvalidValueError(`${fn}: V must be < 2^31 (labels are int32), got ${vocab}`);
  const nTokens = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  requireLength(fn, 'logits', data, nTokens * vocab);
  const lab = requireArray<Int32Array>(fn, 'labels', labels, [Int32Array]);
  requireLength(fn, 'labels', lab, nTokens);
  const shift = o.shift === undefined ? false : requireBoolean(fn, 'shift', o.shift);
  const ignoreIndex =
    o.ignoreIndex === undefined ? -100 : requireInt(fn, 'ignoreIndex', o.ignoreIndex, -INT32_MAX - 1, INT32_MAX);
  const temperature =
    o.temperature === undefined ? 1 : requireNumber(fn, 'temperature', o.temperature, { min: 0, minExclusive: true });
  let mask: Uint8Array | null = null;
  if (o.mask !== undefined) {
    mask = requireArray<Uint8Array>(fn, 'mask', o.mask, [Uint8Array]);
    requireLength(fn, 'mask', mask, nTokens);
  }
  const offsets = offsetsFor(fn, o, shape, nTokens);
  const nSeq = offsets.length - 1;
  // Labels of counted targets must lie in [0, V): checked here so the kernel never reads outside a row.
  for (let s = 0; s < nSeq; s++) {
    const lo = Number(offsets[s]);
    const hi = Number(offsets[s + 1]) - (shift ? 1 : 0);
    for (let t = lo; t < hi; t++) {
      const k = shift ? t + 1 : t;
      const y = lab[k];
      if (y === ignoreIndex || (mask !== null && mask[k] === 0)) continue;
      if (y < 0 || y >= vocab)
        throw new InvalidValueError(
          `${fn}: labels[${k}] = ${y} is outside [0, ${vocab}) and is not ignoreIndex (${ignoreIndex})`,
          'ERR_UNIGAP_OUT_OF_RANGE',
        );
    }
  }
  const mode: LogprobsMode =
    o.mode === undefined
      ? o.gradient !== undefined
        ? 'forwardBackward'
        : 'forward'
      : o.mode === 'forward' || o.mode === 'backward' || o.mode === 'forwardBackward'
        ? o.mode
        : (() => {
            throw new InvalidValueError(
              `${fn}: mode must be 'forward', 'backward' or 'forwardBackward', got ${describe(o.mode)}`,
            );
          })();
  const fwd = mode !== 'backward';
  const bwd = mode !== 'forward';
  let gradSeq: Float32Array | null = null;
  let gradToken: Float32Array | null = null;
  let gradOut: Float32Array | Uint16Array | null = null;
  let inputLse: Float32Array | null = null;
  if (bwd) {
    if (o.gradient === undefined)
      throw new InvalidValueError(`${fn}: a gradient needs the upstream gradient (gradient: { seq } and/or { token })`);
    const g = checkOptions(`${fn}: gradient`, o.gradient, ['seq', 'token', 'inPlace', 'out']);
    if (g.seq === undefined && g.token === undefined)
      throw new InvalidValueError(`${fn}: the upstream gradient needs seq (B values) and/or token (N values)`);
    if (g.seq !== undefined) {
      gradSeq = requireArray<Float32Array>(fn, 'gradient.seq', g.seq, [Float32Array]);
      requireLength(fn, 'gradient.seq', gradSeq, nSeq);
    }
    if (g.token !== undefined) {
      gradToken = requireArray<Float32Array>(fn, 'gradient.token', g.token, [Float32Array]);
      requireLength(fn, 'gradient.token', gradToken, nTokens);
    }
    const inPlace = g.inPlace === undefined ? false : requireBoolean(fn, 'gradient.inPlace', g.inPlace);
    if (g.out !== undefined) {
      if (inPlace) throw new InvalidValueError(`${fn}: give gradient.out or gradient.inPlace, not both`);
      const out = requireArray<Float32Array | Uint16Array>(fn, 'gradient.out', g.out, [
        dtype === 'f32' ? Float32Array : Uint16Array,
      ]);
      requireLength(fn, 'gradient.out', out, data.length);
      const overlap =
        out.buffer === data.buffer &&
        out.byteOffset < data.byteOffset + data.byteLength &&
        data.byteOffset < out.byteOffset + out.byteLength;
      if (overlap)
        throw new InvalidValueError(`${fn}: gradient.out overlaps the logits; use inPlace: true to overwrite them`);
      gradOut = out;
    } else {
      gradOut = inPlace ? data : dtype === 'f32' ? new Float32Array(data.length) : new Uint16Array(data.length);
    }
    if (mode === 'backward' && o.lse !== undefined) {
      inputLse = requireArray<Float32Array>(fn, 'lse', o.lse, [Float32Array]);
      requireLength(fn, 'lse', inputLse, nTokens);
    }
  } else if (o.gradient !== undefined) {
    throw new InvalidValueError(`${fn}: gradient was given but mode is 'forward'`);
  }
  if (o.lse !== undefined && mode !== 'backward') throw new InvalidValueError(`${fn}: lse is only used by a backward`);
  const flag = (name: 'entropy' | 'accuracy' | 'logitSums') =>
    o[name] === undefined ? false : requireBoolean(fn, name, o[name]);
  const wantEntropy = flag('entropy');
  const wantAccuracy = flag('accuracy');
  const wantLogitSums = flag('logitSums');
  const call: NativeLogprobsCall = {
    logits: data,
    dtype: DTYPE_CODE[dtype],
    nTokens,
    vocab,
    labels: lab,
    mask,
    ignoreIndex,
    offsets,
    nSeq,
    shift,
    temperature,
    tokenLogp: fwd ? new Float32Array(nTokens) : null,
    tokenEntropy: fwd && wantEntropy ? new Float32Array(nTokens) : null,
    tokenCorrect: fwd && wantAccuracy ? new Uint8Array(nTokens) : null,
    tokenLse: fwd ? new Float32Array(nTokens) : null,
    seqSum: fwd ? new Float32Array(nSeq) : null,
    seqCount: fwd ? new Int32Array(nSeq) : null,
    seqMean: fwd ? new Float32Array(nSeq) : null,
    seqLogitSum: fwd && wantLogitSums ? new Float64Array(nSeq) : null,
    gradSeq,
    gradToken,
    inputLse,
    gradOut,
  };
  return {
    mode: mode === 'forward' ? 0 : mode === 'backward' ? 1 : 2,
    call,
    dtype,
    nTokens,
    vocab,
    nSeq,
    shape,
  };
}

/** Run a prepared call on the calling thread (the kernels themselves use the unigap thread pool). */
export function runLogprobsCall(p: PreparedLogprobsCall): void {
  assertIsaUsable();
  loadNative().logprobsRun(p.mode, p.call);
}

/** Run a prepared call off the main thread; the Promise keeps every array of `p.call` alive until done. */
export function runLogprobsCallAsync(p: PreparedLogprobsCall): Promise<void> {
  assertIsaUsable();
  return loadNative().logprobsRunAsync(p.mode, p.call);
}

/** The public forward result (plus the gradient, if computed) of a call that has run. */
export function logprobsResultOf(p: PreparedLogprobsCall): ScoreLogprobsResult {
  const c = p.call;
  if (p.mode === 1) throw new InvalidValueError('logprobsResultOf: a backward-only call has no forward result');
  const out: ScoreLogprobsResult = {
    tokenLogprobs: c.tokenLogp as Float32Array,
    tokenLse: c.tokenLse as Float32Array,
    seqSum: c.seqSum as Float32Array,
    seqCount: c.seqCount as Int32Array,
    seqMean: c.seqMean as Float32Array,
  };
  if (c.tokenEntropy) out.tokenEntropy = c.tokenEntropy;
  if (c.tokenCorrect) out.tokenCorrect = c.tokenCorrect;
  if (c.seqLogitSum) out.seqLogitSum = c.seqLogitSum;
  if (c.gradOut) out.gradient = c.gradOut;
  return out;
}

// ------------------------------------------------------------------ the device route (DeviceTensors)

/** Logits on a CUDA device: `data` a DeviceTensor of f32 / bf16 / f16 holding `dims` ([N, V] or [B, T, V]). */
export interface DeviceLogits {
  data: DeviceTensor;
  dims: readonly number[];
  /** Must equal data.dtype when given. */
  dtype?: LogprobsDtype;
}

/**
 * Device logits: a DeviceTensor of shape [N, V] / [B, T, V] (any shape with the same element count
 * when the `shape` option says how to read it, e.g. a flat `fromPointer` tensor), or {@link DeviceLogits}.
 */
export type DeviceLogitsInput = DeviceTensor | DeviceLogits;

/** {@link LogprobsInputOptions} of a DeviceTensor call (see the top of this file for what lives where). */
export interface LogprobsDeviceInputOptions extends Omit<LogprobsInputOptions, 'mask' | 'offsets'> {
  /** u8 DeviceTensor of N on the logits' device: `mask[i] === 0` excludes target i. Default: none. */
  mask?: DeviceTensor;
  /**
   * B + 1 row offsets: a host Int32Array / BigInt64Array (uploaded as int64), or an i64 / i32
   * DeviceTensor on the logits' device (its B + 1 values are downloaded and validated first).
   * Default: from the shape.
   */
  offsets?: Int32Array | BigInt64Array | DeviceTensor;
}

/** The upstream gradient of a DeviceTensor call. */
export interface LogprobsDeviceUpstream {
  /** B values: an f32 DeviceTensor, or a host Float32Array (uploaded into a temporary). */
  seq?: Float32Array | DeviceTensor;
  /** N values: an f32 DeviceTensor on the logits' device. */
  token?: DeviceTensor;
}

/** {@link ScoreLogprobsGradientOptions} of a DeviceTensor call. */
export interface ScoreLogprobsDeviceGradientOptions extends LogprobsDeviceUpstream {
  /** Write the gradient over the logits tensor (it is then the result's `gradient`). Default false. */
  inPlace?: boolean;
  /** Write into this DeviceTensor (the logits' dtype and size, on their device, not overlapping them). */
  out?: DeviceTensor;
}

/** {@link ScoreLogprobsOptions} of a DeviceTensor call. */
export interface ScoreLogprobsDeviceOptions extends LogprobsDeviceInputOptions, DeviceOption {
  entropy?: boolean;
  accuracy?: boolean;
  logitSums?: boolean;
  gradient?: ScoreLogprobsDeviceGradientOptions;
  /** 'device' (default): DeviceTensor results; 'host': the forward statistics as typed arrays. */
  output?: LogprobsOutput;
}

/** {@link ScoreLogprobsResult} on the device: token arrays [N], sequence arrays [B], same dtypes as on the host. */
export interface ScoreLogprobsDeviceResult {
  tokenLogprobs: DeviceTensor;
  tokenLse: DeviceTensor;
  seqSum: DeviceTensor;
  seqCount: DeviceTensor;
  seqMean: DeviceTensor;
  tokenEntropy?: DeviceTensor;
  tokenCorrect?: DeviceTensor;
  seqLogitSum?: DeviceTensor;
  /** The logits' shape and dtype: a new tensor, `gradient.out`, or the logits tensor itself (inPlace). */
  gradient?: DeviceTensor;
}

/** A DeviceTensor call with `output: 'host'`: the CPU's typed arrays, the gradient still on the device. */
export type ScoreLogprobsHostOutputResult = Omit<ScoreLogprobsResult, 'gradient'> & { gradient?: DeviceTensor };

/** {@link LogprobsBackwardOptions} of a DeviceTensor call. */
export interface LogprobsBackwardDeviceOptions extends LogprobsDeviceInputOptions, DeviceOption {
  /** tokenLse of a forward (an f32 DeviceTensor of N): the backward is then one sweep. */
  lse?: DeviceTensor;
  /** Write the gradient over the logits tensor. Default false. */
  inPlace?: boolean;
  /** Write the gradient into this DeviceTensor (the logits' dtype and size). */
  out?: DeviceTensor;
}

export interface LogprobsBackwardDeviceResult {
  gradient: DeviceTensor;
}

/** What {@link prepareDeviceLogprobsCall} reads: the device input options plus the forward flags, gradient and lse. */
export interface PrepareDeviceLogprobsOptions extends LogprobsDeviceInputOptions {
  entropy?: boolean;
  accuracy?: boolean;
  logitSums?: boolean;
  gradient?: ScoreLogprobsDeviceGradientOptions;
  lse?: DeviceTensor;
}

/**
 * A validated DeviceTensor call, its outputs allocated: run it with {@link runDeviceLogprobs}.
 * `fresh` are the outputs allocated for it (freed if it fails), `temps` the uploaded offsets /
 * upstream (freed when it settles).
 * @internal
 */
export interface PreparedDeviceLogprobs {
  mode: 0 | 1 | 2;
  call: DeviceLogprobsCall;
  fresh: DeviceTensor[];
  temps: DeviceTensor[];
  dtype: LogprobsDtype;
  nTokens: number;
  vocab: number;
  nSeq: number;
  shape: number[];
}

const OUTPUTS = ['device', 'host'] as const;

/** The fields of an object argument that may hold DeviceTensors (for the device gate). */
function fieldsOf(x: unknown, keys: readonly string[]): unknown[] {
  if (x === null || typeof x !== 'object' || ArrayBuffer.isView(x)) return [];
  return keys.map((k) => (x as Record<string, unknown>)[k]);
}

/** A DeviceTensor argument: live, of `dtype` and `size`, on `device`. */
function onDevice(fn: string, name: string, t: unknown, dtype: string, size: number, device: number): DeviceTensor {
  if (!isDeviceTensor(t))
    throw new InvalidTypeError(
      `${fn}: ${name} must be a DeviceTensor (${dtype}, ${size} elements) like the logits, got ${describe(t)}; upload it with DeviceTensor.upload`,
    );
  if (t.disposed) throw new InvalidValueError(`${fn}: ${name} was disposed`);
  if (t.dtype !== dtype)
    throw new InvalidTypeError(`${fn}: ${name} must hold ${dtype}, got ${t.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
  if (t.size !== size) throw new ShapeMismatchError(`${fn}: ${name} has ${t.size} elements, expected ${size}`);
  if (t.device !== device)
    throw new InvalidValueError(`${fn}: ${name} is on device ${t.device}, the logits on device ${device}`);
  return t;
}

function deviceLogits(fn: string, logits: unknown, o: PrepareDeviceLogprobsOptions) {
  let tensor: DeviceTensor;
  let shape: number[];
  if (isDeviceTensor(logits)) {
    tensor = logits;
    if (o.shape !== undefined) {
      shape = requireShape(fn, 'shape', o.shape, [2, 3]);
      if (numel(shape) !== tensor.size)
        throw new ShapeMismatchError(
          `${fn}: shape [${shape.join(', ')}] holds ${numel(shape)} elements, the logits DeviceTensor ${tensor.size}`,
        );
    } else shape = requireShape(fn, 'logits.shape', [...tensor.shape], [2, 3]);
  } else if (logits !== null && typeof logits === 'object' && isDeviceTensor((logits as { data?: unknown }).data)) {
    const e = logits as DeviceLogits;
    tensor = e.data;
    shape = requireShape(fn, 'logits.dims', e.dims, [2, 3]);
    if (o.shape !== undefined) {
      const s = requireShape(fn, 'shape', o.shape, [2, 3]);
      if (s.length !== shape.length || s.some((d, i) => d !== shape[i]))
        throw new ShapeMismatchError(`${fn}: shape [${s.join(', ')}] disagrees with logits.dims [${shape.join(', ')}]`);
    }
    if (e.dtype !== undefined && e.dtype !== tensor.dtype)
      throw new InvalidTypeError(
        `${fn}: logits.dtype is '${String(e.dtype)}' but logits.data holds ${tensor.dtype}`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
    if (tensor.size !== numel(shape))
      throw new ShapeMismatchError(
        `${fn}: logits.data holds ${tensor.size} elements, dims [${shape.join(', ')}] need ${numel(shape)}`,
      );
  } else
    throw new InvalidTypeError(
      `${fn}: logits must be a DeviceTensor (or { data: DeviceTensor, dims }) when another input is one, got ${describe(logits)}; a device call takes its arrays on the device`,
    );
  if (tensor.disposed) throw new InvalidValueError(`${fn}: logits was disposed`);
  if (o.dtype !== undefined && o.dtype !== tensor.dtype)
    throw new InvalidTypeError(
      `${fn}: dtype '${String(o.dtype)}' disagrees with the logits DeviceTensor (${tensor.dtype})`,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
  gpuFloatDtypeCode(fn, 'logits', tensor);
  const vocab = shape[shape.length - 1];
  if (vocab < 1)
    throw new InvalidValueError(`${fn}: the vocabulary size V (last dim of the shape) must be >= 1, got 0`);
  if (vocab > INT32_MAX) throw new InvalidValueError(`${fn}: V must be < 2^31 (labels are int32), got ${vocab}`);
  const nTokens = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  return { tensor, shape, vocab, nTokens, dtype: tensor.dtype as LogprobsDtype };
}

/**
 * Offsets of a device call: the i64 DeviceTensor to pass as is, or int64 host values to upload. A
 * DeviceTensor's B + 1 values are downloaded and validated as host offsets are.
 */
function deviceOffsets(
  fn: string,
  off: unknown,
  shape: number[],
  n: number,
  device: number,
): DeviceTensor | BigInt64Array {
  let host: Int32Array | BigInt64Array;
  if (isDeviceTensor(off)) {
    if (off.disposed) throw new InvalidValueError(`${fn}: offsets was disposed`);
    if (off.dtype !== 'i64' && off.dtype !== 'i32')
      throw new InvalidTypeError(`${fn}: offsets must hold i64 or i32, got ${off.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
    if (off.device !== device)
      throw new InvalidValueError(`${fn}: offsets is on device ${off.device}, the logits on device ${device}`);
    if (off.size < 1) throw new ShapeMismatchError(`${fn}: offsets must have B + 1 >= 1 entries`);
    host = offsetsFor(fn, { offsets: off.download() as Int32Array | BigInt64Array }, shape, n);
    if (off.dtype === 'i64') return off;
  } else host = offsetsFor(fn, { offsets: off as Int32Array | BigInt64Array | undefined }, shape, n);
  return host instanceof BigInt64Array ? host : BigInt64Array.from(host, (x) => BigInt(x));
}

type GradTarget = 'new' | 'inPlace' | DeviceTensor | null;

/**
 * Validate a DeviceTensor logprobs call (every check before any allocation or kernel; the only native
 * call is the download of DeviceTensor offsets) and allocate its outputs. `outputs: false` allocates no
 * forward outputs (the fused DPO keeps its own); `beforeAlloc(nSeq)` runs a caller's own checks after
 * these and before any allocation. Labels are not range-checked: see the top of this file.
 * @internal
 */
export function prepareDeviceLogprobsCall(
  fn: string,
  logits: unknown,
  labels: unknown,
  o: PrepareDeviceLogprobsOptions,
  mode: LogprobsMode,
  outputs = true,
  beforeAlloc?: (nSeq: number) => void,
): PreparedDeviceLogprobs {
  const lg = deviceLogits(fn, logits, o);
  const device = lg.tensor.device;
  const n = lg.nTokens;
  const lab = onDevice(fn, 'labels', labels, 'i32', n, device);
  const shift = o.shift === undefined ? false : requireBoolean(fn, 'shift', o.shift);
  const ignoreIndex =
    o.ignoreIndex === undefined ? -100 : requireInt(fn, 'ignoreIndex', o.ignoreIndex, -INT32_MAX - 1, INT32_MAX);
  const temperature =
    o.temperature === undefined ? 1 : requireNumber(fn, 'temperature', o.temperature, { min: 0, minExclusive: true });
  const mask = o.mask === undefined ? null : onDevice(fn, 'mask', o.mask, 'u8', n, device);
  const offsets = deviceOffsets(fn, o.offsets, lg.shape, n, device);
  const nSeq = offsets instanceof BigInt64Array ? offsets.length - 1 : offsets.size - 1;
  const fwd = mode !== 'backward';
  const bwd = mode !== 'forward';
  let gradSeq: DeviceTensor | Float32Array | null = null;
  let gradToken: DeviceTensor | null = null;
  let inputLse: DeviceTensor | null = null;
  let grad: GradTarget = null;
  if (bwd) {
    if (o.gradient === undefined)
      throw new InvalidValueError(`${fn}: a gradient needs the upstream gradient (gradient: { seq } and/or { token })`);
    const g = checkOptions(`${fn}: gradient`, o.gradient, ['seq', 'token', 'inPlace', 'out']);
    if (g.seq === undefined && g.token === undefined)
      throw new InvalidValueError(`${fn}: the upstream gradient needs seq (B values) and/or token (N values)`);
    if (g.seq !== undefined) {
      if (isDeviceTensor(g.seq)) gradSeq = onDevice(fn, 'gradient.seq', g.seq, 'f32', nSeq, device);
      else if (g.seq instanceof Float32Array) {
        gradSeq = requireArray<Float32Array>(fn, 'gradient.seq', g.seq, [Float32Array]);
        requireLength(fn, 'gradient.seq', gradSeq, nSeq);
      } else
        throw new InvalidTypeError(
          `${fn}: gradient.seq must be a Float32Array or an f32 DeviceTensor, got ${describe(g.seq)}`,
        );
    }
    if (g.token !== undefined) gradToken = onDevice(fn, 'gradient.token', g.token, 'f32', n, device);
    const inPlace = g.inPlace === undefined ? false : requireBoolean(fn, 'gradient.inPlace', g.inPlace);
    if (g.out !== undefined) {
      if (inPlace) throw new InvalidValueError(`${fn}: give gradient.out or gradient.inPlace, not both`);
      const out = onDevice(fn, 'gradient.out', g.out, lg.dtype, lg.tensor.size, device);
      const bytes = BigInt(lg.tensor.byteLength);
      const overlap =
        out === lg.tensor ||
        (bytes > 0n && out.pointer < lg.tensor.pointer + bytes && lg.tensor.pointer < out.pointer + bytes);
      if (overlap)
        throw new InvalidValueError(`${fn}: gradient.out overlaps the logits; use inPlace: true to overwrite them`);
      grad = out;
    } else grad = inPlace ? 'inPlace' : 'new';
    if (mode === 'backward' && o.lse !== undefined) inputLse = onDevice(fn, 'lse', o.lse, 'f32', n, device);
  } else if (o.gradient !== undefined) {
    throw new InvalidValueError(`${fn}: gradient was given but mode is 'forward'`);
  }
  if (o.lse !== undefined && mode !== 'backward') throw new InvalidValueError(`${fn}: lse is only used by a backward`);
  const flag = (name: 'entropy' | 'accuracy' | 'logitSums') =>
    o[name] === undefined ? false : requireBoolean(fn, name, o[name]);
  const wantEntropy = flag('entropy');
  const wantAccuracy = flag('accuracy');
  const wantLogitSums = flag('logitSums');
  beforeAlloc?.(nSeq);

  // Everything is valid: allocate (a failure frees what was allocated).
  const fresh: DeviceTensor[] = [];
  const temps: DeviceTensor[] = [];
  try {
    const upload = (data: BigInt64Array | Float32Array) => {
      const t = DeviceTensor.upload(data, { device });
      temps.push(t);
      return t;
    };
    const make = (shape: number[], dtype: 'f32' | 'f64' | 'i32' | 'u8' | LogprobsDtype) => {
      const t = DeviceTensor.empty(shape, dtype, { device });
      fresh.push(t);
      return t;
    };
    const stats = fwd && outputs;
    const call: DeviceLogprobsCall = {
      logits: lg.tensor,
      nTokens: n,
      vocab: lg.vocab,
      labels: lab,
      mask,
      ignoreIndex,
      offsets: offsets instanceof BigInt64Array ? upload(offsets) : offsets,
      nSeq,
      shift,
      temperature,
      tokenLogp: stats ? make([n], 'f32') : null,
      tokenEntropy: stats && wantEntropy ? make([n], 'f32') : null,
      tokenCorrect: stats && wantAccuracy ? make([n], 'u8') : null,
      tokenLse: stats ? make([n], 'f32') : null,
      seqSum: stats ? make([nSeq], 'f32') : null,
      seqCount: stats ? make([nSeq], 'i32') : null,
      seqMean: stats ? make([nSeq], 'f32') : null,
      seqLogitSum: stats && wantLogitSums ? make([nSeq], 'f64') : null,
      gradSeq: gradSeq instanceof Float32Array ? upload(gradSeq) : gradSeq,
      gradToken,
      inputLse,
      gradOut: grad === null ? null : grad === 'inPlace' ? lg.tensor : grad === 'new' ? make(lg.shape, lg.dtype) : grad,
    };
    return {
      mode: mode === 'forward' ? 0 : mode === 'backward' ? 1 : 2,
      call,
      fresh,
      temps,
      dtype: lg.dtype,
      nTokens: n,
      vocab: lg.vocab,
      nSeq,
      shape: lg.shape,
    };
  } catch (e) {
    for (const t of [...fresh, ...temps]) t.dispose();
    throw e;
  }
}

/**
 * Run a prepared device call (sync, or async: resolves when its stream is done), then `done()`. The
 * temporaries are freed when it settles; the fresh outputs too when it (or `done`) fails.
 * @internal
 */
export function runDeviceLogprobs<T>(
  p: { fresh: DeviceTensor[]; temps: DeviceTensor[] },
  run: () => void,
  runAsync: () => Promise<void>,
  done: () => T,
  isAsync: boolean,
): T | Promise<T> {
  const release = () => {
    for (const t of p.temps) t.dispose();
  };
  const fail = (e: unknown): never => {
    release();
    for (const t of p.fresh) t.dispose();
    throw e;
  };
  const finish = (): T => {
    release();
    try {
      return done();
    } catch (e) {
      return fail(e);
    }
  };
  if (isAsync) {
    let pending: Promise<void>;
    try {
      pending = runAsync();
    } catch (e) {
      return Promise.reject(e).catch(fail);
    }
    return pending.then(finish, fail);
  }
  try {
    run();
  } catch (e) {
    fail(e);
  }
  return finish();
}

function runPrepared<T>(p: PreparedDeviceLogprobs, done: () => T, isAsync: boolean): T | Promise<T> {
  return runDeviceLogprobs(
    p,
    () => cudaLogprobsRun(p.mode, p.call),
    () => cudaLogprobsRunAsync(p.mode, p.call),
    done,
    isAsync,
  );
}

/** Copies a device result to the host and frees it. */
function take<T>(t: DeviceTensor): T {
  try {
    return t.download() as T;
  } finally {
    t.dispose();
  }
}

function deviceResultOf(
  p: PreparedDeviceLogprobs,
  output: LogprobsOutput,
): ScoreLogprobsDeviceResult | ScoreLogprobsHostOutputResult {
  const c = p.call as Required<DeviceLogprobsCall>;
  const gradient = c.gradOut ?? undefined;
  if (output === 'device') {
    const r: ScoreLogprobsDeviceResult = {
      tokenLogprobs: c.tokenLogp as DeviceTensor,
      tokenLse: c.tokenLse as DeviceTensor,
      seqSum: c.seqSum as DeviceTensor,
      seqCount: c.seqCount as DeviceTensor,
      seqMean: c.seqMean as DeviceTensor,
    };
    if (c.tokenEntropy) r.tokenEntropy = c.tokenEntropy;
    if (c.tokenCorrect) r.tokenCorrect = c.tokenCorrect;
    if (c.seqLogitSum) r.seqLogitSum = c.seqLogitSum;
    if (gradient) r.gradient = gradient;
    return r;
  }
  const r: ScoreLogprobsHostOutputResult = {
    tokenLogprobs: take<Float32Array>(c.tokenLogp as DeviceTensor),
    tokenLse: take<Float32Array>(c.tokenLse as DeviceTensor),
    seqSum: take<Float32Array>(c.seqSum as DeviceTensor),
    seqCount: take<Int32Array>(c.seqCount as DeviceTensor),
    seqMean: take<Float32Array>(c.seqMean as DeviceTensor),
  };
  if (c.tokenEntropy) r.tokenEntropy = take<Float32Array>(c.tokenEntropy);
  if (c.tokenCorrect) r.tokenCorrect = take<Uint8Array>(c.tokenCorrect);
  if (c.seqLogitSum) r.seqLogitSum = take<Float64Array>(c.seqLogitSum);
  if (gradient) r.gradient = gradient;
  return r;
}

// ------------------------------------------------------------------ the public calls

type ScorePlan =
  | { where: 'cpu'; plan: PreparedLogprobsCall }
  | { where: 'cuda'; plan: PreparedDeviceLogprobs; output: LogprobsOutput };

function prepareScore(fn: string, logits: unknown, labels: unknown, options: unknown): ScorePlan {
  const { device, output, ...o } = checkOptions(fn, options as ScoreLogprobsDeviceOptions | undefined, SCORE_KEYS);
  const where = routeKernelDevice(
    fn,
    o.gradient === undefined ? 'logprobs.forward' : 'logprobs.forwardBackward',
    device,
    [
      logits,
      labels,
      o.mask,
      o.offsets,
      ...fieldsOf(logits, ['data']),
      ...fieldsOf(o.gradient, ['seq', 'token', 'out']),
    ],
    'wired',
  );
  const out = output === undefined ? 'device' : requireEnum(fn, 'output', output, OUTPUTS);
  if (where === 'cuda')
    return {
      where,
      output: out,
      plan: prepareDeviceLogprobsCall(fn, logits, labels, o, o.gradient === undefined ? 'forward' : 'forwardBackward'),
    };
  return { where, plan: prepareLogprobsCall(fn, logits, labels, o as PrepareLogprobsOptions) };
}

type BackwardPlan = { where: 'cpu'; plan: PreparedLogprobsCall } | { where: 'cuda'; plan: PreparedDeviceLogprobs };

function prepareBackward(
  fn: string,
  logits: unknown,
  labels: unknown,
  upstream: unknown,
  options: unknown,
): BackwardPlan {
  const { device, ...o } = checkOptions(fn, options as LogprobsBackwardDeviceOptions | undefined, BACKWARD_KEYS);
  const where = routeKernelDevice(
    fn,
    'logprobs.backward',
    device,
    [
      logits,
      labels,
      o.mask,
      o.offsets,
      o.lse,
      o.out,
      ...fieldsOf(logits, ['data']),
      ...fieldsOf(upstream, ['seq', 'token']),
    ],
    'wired',
  );
  if (upstream === null || typeof upstream !== 'object' || ArrayBuffer.isView(upstream))
    throw new InvalidTypeError(`${fn}: upstream must be an object { seq?, token? }, got ${describe(upstream)}`);
  const u = checkOptions(`${fn}: upstream`, upstream as LogprobsDeviceUpstream, ['seq', 'token']);
  const { lse, inPlace, out, ...input } = o;
  const opts = {
    ...input,
    ...(lse !== undefined ? { lse } : {}),
    gradient: { ...u, ...(inPlace !== undefined ? { inPlace } : {}), ...(out !== undefined ? { out } : {}) },
  };
  if (where === 'cuda') return { where, plan: prepareDeviceLogprobsCall(fn, logits, labels, opts, 'backward') };
  return {
    where,
    plan: prepareLogprobsCall(fn, logits, labels, { ...opts, mode: 'backward' } as PrepareLogprobsOptions),
  };
}

/**
 * Score target ids under the logits: per-row log-softmax at the label, summed per sequence, with
 * optional entropy / accuracy / logit sums and, with `gradient`, d(loss)/d(logits) fused in the same
 * pass. fp32 statistics whatever the input dtype; multithreaded; AVX-512 / AVX2 / scalar picked at run time.
 * DeviceTensor logits (with `device: 'cuda'`) run the CUDA kernels on a stream of their own: labels,
 * mask and gradient.token must then be DeviceTensors too, and the results are DeviceTensors (or, with
 * `output: 'host'`, typed arrays for the statistics); see the top of this file.
 *
 * @example
 * const r = scoreLogprobs(logits, labels, { shape: [B, T, V], shift: true });
 * r.seqSum; // B summed log-probs
 */
export function scoreLogprobs(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options: ScoreLogprobsDeviceOptions & { output: 'host' },
): ScoreLogprobsHostOutputResult;
export function scoreLogprobs(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options?: ScoreLogprobsDeviceOptions,
): ScoreLogprobsDeviceResult;
export function scoreLogprobs(
  logits: LogitsInput,
  labels: Int32Array,
  options?: ScoreLogprobsOptions,
): ScoreLogprobsResult;
export function scoreLogprobs(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  options?: ScoreLogprobsOptions | ScoreLogprobsDeviceOptions,
): ScoreLogprobsResult | ScoreLogprobsDeviceResult | ScoreLogprobsHostOutputResult {
  const p = prepareScore('scoreLogprobs', logits, labels, options);
  if (p.where === 'cuda')
    return runPrepared(p.plan, () => deviceResultOf(p.plan, p.output), false) as ScoreLogprobsDeviceResult;
  runLogprobsCall(p.plan);
  return logprobsResultOf(p.plan);
}

/** {@link scoreLogprobs} off the main thread (a DeviceTensor call resolves when its stream is done); keeps its inputs alive until the Promise settles. */
export async function scoreLogprobsAsync(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options: ScoreLogprobsDeviceOptions & { output: 'host' },
): Promise<ScoreLogprobsHostOutputResult>;
export async function scoreLogprobsAsync(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options?: ScoreLogprobsDeviceOptions,
): Promise<ScoreLogprobsDeviceResult>;
export async function scoreLogprobsAsync(
  logits: LogitsInput,
  labels: Int32Array,
  options?: ScoreLogprobsOptions,
): Promise<ScoreLogprobsResult>;
export async function scoreLogprobsAsync(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  options?: ScoreLogprobsOptions | ScoreLogprobsDeviceOptions,
): Promise<ScoreLogprobsResult | ScoreLogprobsDeviceResult | ScoreLogprobsHostOutputResult> {
  const p = prepareScore('scoreLogprobsAsync', logits, labels, options);
  if (p.where === 'cuda') return runPrepared(p.plan, () => deviceResultOf(p.plan, p.output), true);
  await runLogprobsCallAsync(p.plan);
  return logprobsResultOf(p.plan);
}

/**
 * d(loss)/d(logits) = g·(onehot(y) − softmax(z/τ))/τ on counted rows (0 elsewhere), with
 * g = upstream.seq[sequence] + upstream.token[row]. Pass `lse` (tokenLse of the forward) to skip
 * recomputing the statistics. DeviceTensor logits (with `device: 'cuda'`): the CUDA backward; labels,
 * mask, upstream.token and lse are DeviceTensors, upstream.seq a DeviceTensor or a Float32Array, and
 * the gradient a DeviceTensor (new, `out`, or the logits tensor with inPlace).
 */
export function logprobsBackward(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  upstream: LogprobsDeviceUpstream,
  options?: LogprobsBackwardDeviceOptions,
): LogprobsBackwardDeviceResult;
export function logprobsBackward(
  logits: LogitsInput,
  labels: Int32Array,
  upstream: LogprobsUpstream,
  options?: LogprobsBackwardOptions,
): LogprobsBackwardResult;
export function logprobsBackward(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  upstream: LogprobsUpstream | LogprobsDeviceUpstream,
  options?: LogprobsBackwardOptions | LogprobsBackwardDeviceOptions,
): LogprobsBackwardResult | LogprobsBackwardDeviceResult {
  const p = prepareBackward('logprobsBackward', logits, labels, upstream, options);
  if (p.where === 'cuda')
    return runPrepared(
      p.plan,
      () => ({ gradient: p.plan.call.gradOut as DeviceTensor }),
      false,
    ) as LogprobsBackwardDeviceResult;
  runLogprobsCall(p.plan);
  return { gradient: p.plan.call.gradOut as Float32Array | Uint16Array };
}

/** {@link logprobsBackward} off the main thread; keeps its inputs alive until the Promise settles. */
export async function logprobsBackwardAsync(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  upstream: LogprobsDeviceUpstream,
  options?: LogprobsBackwardDeviceOptions,
): Promise<LogprobsBackwardDeviceResult>;
export async function logprobsBackwardAsync(
  logits: LogitsInput,
  labels: Int32Array,
  upstream: LogprobsUpstream,
  options?: LogprobsBackwardOptions,
): Promise<LogprobsBackwardResult>;
export async function logprobsBackwardAsync(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  upstream: LogprobsUpstream | LogprobsDeviceUpstream,
  options?: LogprobsBackwardOptions | LogprobsBackwardDeviceOptions,
): Promise<LogprobsBackwardResult | LogprobsBackwardDeviceResult> {
  const p = prepareBackward('logprobsBackwardAsync', logits, labels, upstream, options);
  if (p.where === 'cuda') return runPrepared(p.plan, () => ({ gradient: p.plan.call.gradOut as DeviceTensor }), true);
  await runLogprobsCallAsync(p.plan);
  return { gradient: p.plan.call.gradOut as Float32Array | Uint16Array };
}
