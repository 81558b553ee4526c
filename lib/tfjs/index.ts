/**
 * unigap/tfjs: unigap's fused native kernels as differentiable TensorFlow.js ops.
 *
 * - `logprobsOp(logits, labels, options)`: per-sequence summed (or mean, or per-token) log-probs of
 *   the labels under the logits, as tf.Tensor.
 * - `dpoLossOp(logits, labels, referenceLogprobs, options)`: the DPO loss family (TRL semantics) of a
 *   [chosen; rejected] batch straight from the policy logits, as a tf.Scalar.
 *
 * Both are `tf.customGrad` ops whose gradient w.r.t. the logits comes from the native kernel.
 * Gradient design: when tfjs is recording a tape (inside tf.grad / variableGrads / optimizer.minimize),
 * the forward asks the kernel for the gradient in the same native call — logprobs: the fused
 * forward+backward with a unit upstream (each row's log-sum-exp sweep and gradient sweep share the
 * cache); DPO: dpoLossFromLogits' second pass from the kept LSE — and keeps it as a plain
 * Float32Array. The backward then only scales it by dy (a scalar for DPO, one factor per row for
 * logprobs; skipped when dy is 1) and hands it to tfjs. Outside a tape the forward computes no
 * gradient at all. `logprobsOp(..., { backward: 'lse' })` instead keeps the forward's LSE and runs the
 * native backward (one sweep, upstream = dy) in the backward: no N×V buffer between the two, one more
 * exp per logit.
 *
 * tfjs is an optional peer: types are imported at compile time only, and @tensorflow/tfjs-core is
 * required on the first op call (TfjsUnavailableError if missing; setTfjs(tf) to pass one explicitly).
 * Ops run synchronously (tfjs kernels are synchronous) on the logits' data read with dataSync(): zero
 * copy on the CPU backend, one copy out of (and the gradient one copy into) the WASM heap.
 */
import type { Scalar, Tensor } from '@tensorflow/tfjs-core';

import {
  dpoLossFromLogits,
  logprobsBackward,
  scoreLogprobs,
  InvalidTypeError,
  ShapeMismatchError,
  type DpoFromLogitsResult,
  type DpoLossOptions,
  type LogprobsInputOptions,
} from '../index.js';
import { checkOptions, requireEnum } from '../validate.js';
import {
  gradientWanted,
  labelsArray,
  maskArray,
  requireLogitsTensor,
  rowSequences,
  tfjs,
  type Tfjs,
} from './runtime.js';

export { setTfjs, TfjsUnavailableError } from './runtime.js';
export type { Tfjs } from './runtime.js';

/** How to read the logits and which rows count (as scoreLogprobs; the shape comes from the tensor). */
export interface TfjsInputOptions {
  /**
   * Packed variable-length sequences over [N, V] logits: B + 1 non-decreasing row offsets, first 0,
   * last N. Default: [B, T, V] logits give B sequences of T rows, [N, V] logits one sequence of N rows.
   */
  offsets?: Int32Array;
  /** Pair the logits of row t with the label at t + 1 within each sequence (causal LM). Default false. */
  shift?: boolean;
  /** Label value of targets that are not counted. Default -100. */
  ignoreIndex?: number;
  /** N values (Uint8Array or a tensor): 0 excludes the target at that row. Default: none. */
  mask?: Uint8Array | Tensor;
  /** Logits are divided by it before the softmax (> 0). Default 1. */
  temperature?: number;
}

/** 'sum' (default): [B] summed log-probs; 'mean': [B] per-sequence means; 'none': per-row, logits.shape[:-1]. */
export type LogprobsReduction = 'sum' | 'mean' | 'none';

export interface LogprobsOpOptions extends TfjsInputOptions {
  /** Default 'sum' (the sequence log-likelihood DPO uses). */
  reduction?: LogprobsReduction;
  /**
   * 'fused' (default): the forward computes the gradient in the same native call (when a tape is
   * recording) and the backward scales it by dy. 'lse': the forward keeps the LSE, the backward runs
   * the native backward with dy as upstream.
   */
  backward?: 'fused' | 'lse';
}

/** What dpoLossOp reports about a forward (everything dpoLossFromLogits returns but the gradient). */
export type DpoOpResult = Omit<DpoFromLogitsResult, 'gradient'>;

export interface DpoLossOpOptions extends TfjsInputOptions, DpoLossOptions {
  /** Called synchronously after each forward with the loss, rewards, margins, accuracy and TRL's metrics. */
  onResult?: (result: DpoOpResult) => void;
}

const INPUT_KEYS = ['offsets', 'shift', 'ignoreIndex', 'mask', 'temperature'] as const;
const LOGPROBS_KEYS = [...INPUT_KEYS, 'reduction', 'backward'] as const;
const DPO_KEYS = [
  ...INPUT_KEYS,
  'beta',
  'lossType',
  'lossWeights',
  'labelSmoothing',
  'discopopTau',
  'fDivergence',
  'alpha',
  'bcoDelta',
  'weights',
  'onResult',
] as const;

/** Normalized kernel input options, plus what the ops need to map rows to sequences. */
function kernelInput(tf: Tfjs, fn: string, logits: Tensor, o: TfjsInputOptions) {
  const shape = logits.shape.slice();
  let offsets: Int32Array | undefined;
  if (o.offsets !== undefined) {
    if (!(o.offsets instanceof Int32Array))
      throw new InvalidTypeError(`${fn}: offsets must be an Int32Array (B + 1 row offsets)`);
    if (shape.length !== 2) throw new ShapeMismatchError(`${fn}: offsets need [N, V] logits (packed rows)`);
    offsets = o.offsets;
  }
  const input: LogprobsInputOptions = { shape, dtype: 'f32' };
  if (offsets) input.offsets = offsets;
  if (o.shift !== undefined) input.shift = o.shift;
  if (o.ignoreIndex !== undefined) input.ignoreIndex = o.ignoreIndex;
  if (o.temperature !== undefined) input.temperature = o.temperature;
  if (o.mask !== undefined) input.mask = maskArray(tf, fn, o.mask);
  const nTokens = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  const nSeq = offsets ? offsets.length - 1 : shape.length === 3 ? shape[0] : 1;
  return { input, shape, offsets, nTokens, nSeq };
}

/** dy as plain numbers (float32 tensors read synchronously; tiny next to the logits). */
const values = (t: Tensor) => t.dataSync() as Float32Array;

/**
 * Log-probabilities of `labels` under `logits`, differentiable w.r.t. the logits.
 *
 * @param logits float32 tensor, [B, T, V] (B sequences of T rows) or [N, V] (one sequence, or packed
 *   sequences with `offsets`).
 * @param labels int32 tensor or Int32Array of N = B·T (or N) target ids; `ignoreIndex` (-100) skips one.
 * @returns 'sum' / 'mean': a [B] tensor; 'none': per-row log-probs shaped like logits without the
 *   last dim (0 where a row is not counted; with `shift`, row t holds log p(labels[t + 1])).
 *
 * @example
 * const seqLogp = logprobsOp(model.apply(x), labels, { shift: true }); // [B]
 * const loss = tf.neg(tf.mean(seqLogp));
 */
export function logprobsOp(logits: Tensor, labels: Tensor | Int32Array, options?: LogprobsOpOptions): Tensor {
  const fn = 'logprobsOp';
  const tf = tfjs();
  const o = checkOptions(fn, options, LOGPROBS_KEYS);
  requireLogitsTensor(tf, fn, logits);
  const reduction =
    o.reduction === undefined ? 'sum' : requireEnum(fn, 'reduction', o.reduction, ['sum', 'mean', 'none']);
  const backward = o.backward === undefined ? 'fused' : requireEnum(fn, 'backward', o.backward, ['fused', 'lse']);
  const { input, shape, offsets, nTokens, nSeq } = kernelInput(tf, fn, logits, o);
  const lab = labelsArray(tf, fn, labels, nTokens);

  const op = tf.customGrad((...args) => {
    const x = args[0] as Tensor;
    const save = args[1] as (tensors: Tensor[]) => void;
    const data = x.dataSync() as Float32Array;
    const fused = backward === 'fused' && gradientWanted(tf);
    const r = scoreLogprobs(data, lab, fused ? { ...input, gradient: { seq: new Float32Array(nSeq).fill(1) } } : input);
    // A clone sharing the logits' data (tfjs keeps it only while a tape records): the 'lse' backward
    // reads it, and so does the fallback should a gradient be asked for that the forward did not make.
    save([x]);
    let unitGrad = fused ? (r.gradient as Float32Array) : null;
    const { tokenLse, seqCount } = r;
    const value =
      reduction === 'sum'
        ? tf.tensor1d(r.seqSum)
        : reduction === 'mean'
          ? tf.tensor1d(r.seqMean)
          : tf.tensor(r.tokenLogprobs, shape.slice(0, -1));
    const gradFunc = (dy: Tensor, saved: Tensor[]): Tensor => {
      const d = values(dy);
      if (unitGrad) {
        // d(out)/d(logits) with a unit upstream per sequence: row r scales by dy of what it feeds.
        const g = unitGrad;
        unitGrad = null; // handed to tfjs below (zero copy on the CPU backend): never touched again
        scaleRows(g, shape[shape.length - 1], rowFactors(reduction, d, rowSequences(shape, offsets), seqCount));
        return tf.tensor(g, shape);
      }
      const upstream =
        reduction === 'none'
          ? { token: Float32Array.from(d) }
          : {
              seq: Float32Array.from(d, (v, s) => (reduction === 'mean' ? (seqCount[s] > 0 ? v / seqCount[s] : 0) : v)),
            };
      const { gradient } = logprobsBackward(saved[0].dataSync() as Float32Array, lab, upstream, {
        ...input,
        lse: tokenLse,
      });
      return tf.tensor(gradient as Float32Array, shape);
    };
    return { value, gradFunc };
  });
  return op(logits);
}

/** Per-row factor of the unit gradient, or null when every factor is 1. */
function rowFactors(
  reduction: LogprobsReduction,
  dy: Float32Array,
  rowSeq: Int32Array,
  seqCount: Int32Array,
): Float32Array | null {
  if (reduction === 'none') return dy.every((v) => v === 1) ? null : dy;
  const perSeq = reduction === 'sum' ? dy : Float32Array.from(dy, (v, s) => (seqCount[s] > 0 ? v / seqCount[s] : 0));
  if (perSeq.every((v) => v === 1)) return null;
  return Float32Array.from(rowSeq, (s) => perSeq[s]);
}

/** g[r, :] *= f[r] in place (rows whose factor is 1 are left alone). */
function scaleRows(g: Float32Array, vocab: number, f: Float32Array | null): void {
  if (!f) return;
  for (let r = 0; r < f.length; r++) {
    const k = f[r];
    if (k === 1) continue;
    const end = (r + 1) * vocab;
    for (let i = r * vocab; i < end; i++) g[i] *= k;
  }
}

/** Reference log-probs as the kernel's two halves: a [2B] tensor / array ([chosen; rejected]) or null. */
function referenceHalves(tf: Tfjs, fn: string, ref: unknown, nSeq: number) {
  if (ref === null) return { referenceFree: true as const };
  let a: Float32Array | Float64Array;
  if (ref instanceof Float32Array || ref instanceof Float64Array) a = ref;
  else if (ref instanceof tf.Tensor) {
    if (ref.dtype !== 'float32')
      throw new InvalidTypeError(
        `${fn}: referenceLogprobs must be float32, got ${ref.dtype}`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
    a = ref.dataSync() as Float32Array;
  } else
    throw new InvalidTypeError(
      `${fn}: referenceLogprobs must be a [2B] tf.Tensor, a Float32Array / Float64Array, or null (reference-free)`,
    );
  if (a.length !== nSeq)
    throw new ShapeMismatchError(
      `${fn}: referenceLogprobs has ${a.length} elements, expected ${nSeq} (one per sequence: [chosen; rejected])`,
    );
  const b = nSeq / 2;
  return { referenceChosen: a.subarray(0, b), referenceRejected: a.subarray(b) };
}

/**
 * The DPO loss (TRL's DPOTrainer family: every `lossType`, combined losses, f-divergences, weights)
 * of a batch of 2B sequences [chosen_1..chosen_B; rejected_1..rejected_B], from the policy logits,
 * differentiable w.r.t. the logits. The reference log-probs are constants (no gradient).
 *
 * @param logits float32 [2B, T, V] (or [N, V] with `offsets` for 2B packed sequences).
 * @param labels int32 tensor or Int32Array of N target ids (prompt rows: ignoreIndex).
 * @param referenceLogprobs summed log-probs of the 2B sequences under the reference model (e.g.
 *   `logprobsOp(refLogits, labels)`), or null for reference-free DPO.
 * @returns the mean loss over pairs, a scalar.
 *
 * @example
 * const loss = dpoLossOp(policy.apply(x), labels, refLogp, { shift: true, beta: 0.1 });
 */
export function dpoLossOp(
  logits: Tensor,
  labels: Tensor | Int32Array,
  referenceLogprobs: Tensor | Float32Array | Float64Array | null,
  options?: DpoLossOpOptions,
): Scalar {
  const fn = 'dpoLossOp';
  const tf = tfjs();
  const o = checkOptions(fn, options, DPO_KEYS);
  requireLogitsTensor(tf, fn, logits);
  const { input, shape, nTokens, nSeq } = kernelInput(tf, fn, logits, o);
  if (nSeq < 2 || nSeq % 2 !== 0)
    throw new ShapeMismatchError(`${fn}: the logits must hold 2B sequences ([chosen; rejected]), got ${nSeq}`);
  const lab = labelsArray(tf, fn, labels, nTokens);
  const refs = referenceHalves(tf, fn, referenceLogprobs, nSeq);
  const { onResult, offsets: _o, shift: _s, ignoreIndex: _i, mask: _m, temperature: _t, ...dpo } = o;
  if (onResult !== undefined && typeof onResult !== 'function')
    throw new InvalidTypeError(`${fn}: onResult must be a function`);
  const run = (data: Float32Array, gradient: boolean) =>
    dpoLossFromLogits(data, lab, { ...input, ...dpo, ...refs, gradient });

  const op = tf.customGrad((...args) => {
    const x = args[0] as Tensor;
    const save = args[1] as (tensors: Tensor[]) => void;
    const want = gradientWanted(tf);
    const r = run(x.dataSync() as Float32Array, want);
    save([x]);
    let unitGrad = (r.gradient as Float32Array | undefined) ?? null;
    if (onResult) {
      const { gradient: _g, ...rest } = r;
      onResult(rest);
    }
    const value = tf.scalar(r.loss);
    const gradFunc = (dy: Tensor, saved: Tensor[]): Tensor => {
      const k = values(dy)[0];
      // The gradient of the mean loss from the forward; recomputed only if the forward made none.
      const g = unitGrad ?? (run(saved[0].dataSync() as Float32Array, true).gradient as Float32Array);
      unitGrad = null;
      if (k !== 1) for (let i = 0; i < g.length; i++) g[i] *= k;
      return tf.tensor(g, shape);
    };
    return { value, gradFunc };
  });
  return op(logits) as Scalar;
}
