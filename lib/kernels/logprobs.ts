/**
 * Log-prob batch scoring (the logprobs family): per-token log-probabilities of target ids from a
 * policy's logits, per-sequence sums / counts / means, optional entropy, token accuracy and logit
 * sums, and the gradient back into the logits (fused with the forward, or as a separate backward).
 * Policy (defaults, validation, dtype coercion, errors) lives here; the math and its numerics are
 * written down in native/include/unigap/logprobs.h.
 */
import { InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../errors.js';
import { assertIsaUsable } from '../backend.js';
import { routeKernelDevice, type DeviceOption } from '../device.js';
import { loadNative } from '../native.js';
import {
  checkOptions,
  describe,
  requireArray,
  requireBoolean,
  requireInt,
  requireLength,
  requireNumber,
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
}

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
export interface PrepareLogprobsOptions extends Omit<ScoreLogprobsOptions, 'device'> {
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
const SCORE_KEYS = [...SCORE_BASE_KEYS, 'device'] as const;
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

function prepareScore(fn: string, logits: LogitsInput, labels: Int32Array, options?: ScoreLogprobsOptions) {
  const { device, ...o } = checkOptions(fn, options, SCORE_KEYS);
  routeKernelDevice(
    fn,
    o.gradient === undefined ? 'logprobs.forward' : 'logprobs.forwardBackward',
    device,
    [logits, labels, o.mask, o.offsets],
    'pending',
  );
  return prepareLogprobsCall(fn, logits, labels, o);
}

function prepareBackward(
  fn: string,
  logits: LogitsInput,
  labels: Int32Array,
  upstream: LogprobsUpstream,
  options?: LogprobsBackwardOptions,
) {
  const { device, ...o } = checkOptions(fn, options, BACKWARD_KEYS);
  routeKernelDevice(fn, 'logprobs.backward', device, [logits, labels, o.mask, o.offsets], 'pending');
  if (upstream === null || typeof upstream !== 'object' || ArrayBuffer.isView(upstream))
    throw new InvalidTypeError(`${fn}: upstream must be an object { seq?, token? }, got ${describe(upstream)}`);
  const u = checkOptions(`${fn}: upstream`, upstream, ['seq', 'token']);
  const { lse, inPlace, out, ...input } = o;
  return prepareLogprobsCall(fn, logits, labels, {
    ...input,
    mode: 'backward',
    ...(lse !== undefined ? { lse } : {}),
    gradient: { ...u, ...(inPlace !== undefined ? { inPlace } : {}), ...(out !== undefined ? { out } : {}) },
  });
}

/**
 * Score target ids under the logits: per-row log-softmax at the label, summed per sequence, with
 * optional entropy / accuracy / logit sums and, with `gradient`, d(loss)/d(logits) fused in the same
 * pass. fp32 statistics whatever the input dtype; multithreaded; AVX-512 / AVX2 / scalar picked at run time.
 *
 * @example
 * const r = scoreLogprobs(logits, labels, { shape: [B, T, V], shift: true });
 * r.seqSum; // B summed log-probs
 */
export function scoreLogprobs(
  logits: LogitsInput,
  labels: Int32Array,
  options?: ScoreLogprobsOptions,
): ScoreLogprobsResult {
  const p = prepareScore('scoreLogprobs', logits, labels, options);
  runLogprobsCall(p);
  return logprobsResultOf(p);
}

/** {@link scoreLogprobs} off the main thread; keeps its inputs alive until the Promise settles. */
export async function scoreLogprobsAsync(
  logits: LogitsInput,
  labels: Int32Array,
  options?: ScoreLogprobsOptions,
): Promise<ScoreLogprobsResult> {
  const p = prepareScore('scoreLogprobsAsync', logits, labels, options);
  await runLogprobsCallAsync(p);
  return logprobsResultOf(p);
}

/**
 * d(loss)/d(logits) = g·(onehot(y) − softmax(z/τ))/τ on counted rows (0 elsewhere), with
 * g = upstream.seq[sequence] + upstream.token[row]. Pass `lse` (tokenLse of the forward) to skip
 * recomputing the statistics.
 */
export function logprobsBackward(
  logits: LogitsInput,
  labels: Int32Array,
  upstream: LogprobsUpstream,
  options?: LogprobsBackwardOptions,
): LogprobsBackwardResult {
  const p = prepareBackward('logprobsBackward', logits, labels, upstream, options);
  runLogprobsCall(p);
  return { gradient: p.call.gradOut as Float32Array | Uint16Array };
}

/** {@link logprobsBackward} off the main thread; keeps its inputs alive until the Promise settles. */
export async function logprobsBackwardAsync(
  logits: LogitsInput,
  labels: Int32Array,
  upstream: LogprobsUpstream,
  options?: LogprobsBackwardOptions,
): Promise<LogprobsBackwardResult> {
  const p = prepareBackward('logprobsBackwardAsync', logits, labels, upstream, options);
  await runLogprobsCallAsync(p);
  return { gradient: p.call.gradOut as Float32Array | Uint16Array };
}
