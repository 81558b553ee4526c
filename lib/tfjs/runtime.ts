/**
 * How unigap/tfjs reaches TensorFlow.js without depending on it: types only at compile time, the
 * runtime module required lazily on the first op (so `import 'unigap/tfjs'` alone never needs tfjs,
 * and installing unigap never pulls it: @tensorflow/tfjs-core is an optional peer dependency).
 */
import { createRequire } from 'node:module';

import type * as tfc from '@tensorflow/tfjs-core';

import { InvalidTypeError, ShapeMismatchError, UnigapError } from '../index.js';

/** The slice of the tfjs-core namespace unigap/tfjs uses (`@tensorflow/tfjs` and `-core` both satisfy it). */
export type Tfjs = Pick<
  typeof tfc,
  'customGrad' | 'engine' | 'tensor' | 'tensor1d' | 'scalar' | 'Tensor' | 'memory' | 'tidy' | 'getBackend'
>;
export type Tensor = tfc.Tensor;

/** @tensorflow/tfjs-core could not be loaded (it is an optional peer dependency of unigap). */
export class TfjsUnavailableError extends UnigapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_UNIGAP_TFJS_UNAVAILABLE', message, options);
  }
}

let tfInstance: Tfjs | undefined;

/**
 * Use this TensorFlow.js namespace instead of `require('@tensorflow/tfjs-core')` (for bundlers, or
 * to pin the instance a program already imported). Both share tfjs' global engine either way.
 */
export function setTfjs(tf: Tfjs): void {
  if (tf === null || typeof tf !== 'object' || typeof tf.customGrad !== 'function' || typeof tf.engine !== 'function')
    throw new InvalidTypeError('setTfjs: pass the tfjs namespace (import * as tf from "@tensorflow/tfjs")');
  tfInstance = tf;
}

/** The tfjs namespace: the one given to setTfjs, else @tensorflow/tfjs-core required on first use. */
export function tfjs(): Tfjs {
  if (tfInstance) return tfInstance;
  try {
    tfInstance = createRequire(import.meta.url)('@tensorflow/tfjs-core') as Tfjs;
  } catch (cause) {
    throw new TfjsUnavailableError(
      'unigap/tfjs needs TensorFlow.js, an optional peer dependency that is not installed: ' +
        '`npm install @tensorflow/tfjs` (or @tensorflow/tfjs-node), or pass your namespace to setTfjs(tf)',
      { cause },
    );
  }
  return tfInstance;
}

/**
 * Whether the op now running inside a customGrad forward will be differentiated. tfjs records an op
 * on the tape iff `gradientDepth > 0 && kernelDepth === 0` when it is called; the forward itself runs
 * one kernel level deeper. Unknown engine internals (another tfjs major) answer true: computing a
 * gradient nobody reads is only wasted work, while a missing one would be recomputed in the backward.
 */
export function gradientWanted(tf: Tfjs): boolean {
  const s = (tf.engine() as unknown as { state?: { gradientDepth?: unknown; kernelDepth?: unknown } }).state;
  if (!s || typeof s.gradientDepth !== 'number' || typeof s.kernelDepth !== 'number') return true;
  return s.gradientDepth > 0 && s.kernelDepth <= 1;
}

/** A float32 tensor of rank 2 ([N, V]) or 3 ([B, T, V]). */
export function requireLogitsTensor(tf: Tfjs, fn: string, logits: unknown): Tensor {
  if (!(logits instanceof tf.Tensor))
    throw new InvalidTypeError(`${fn}: logits must be a tf.Tensor ([N, V] or [B, T, V], float32)`);
  if (logits.dtype !== 'float32')
    throw new InvalidTypeError(`${fn}: logits must be float32, got ${logits.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
  if (logits.rank !== 2 && logits.rank !== 3)
    throw new ShapeMismatchError(`${fn}: logits must be [N, V] or [B, T, V], got [${logits.shape.join(', ')}]`);
  return logits;
}

/** Labels as the Int32Array the kernels read: an int32 tensor (any shape, N elements) or an Int32Array. */
export function labelsArray(tf: Tfjs, fn: string, labels: unknown, nTokens: number): Int32Array {
  let a: Int32Array;
  if (labels instanceof Int32Array) a = labels;
  else if (labels instanceof tf.Tensor) {
    if (labels.dtype !== 'int32')
      throw new InvalidTypeError(
        `${fn}: labels must be an int32 tensor, got ${labels.dtype}`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
    a = labels.dataSync() as Int32Array;
  } else throw new InvalidTypeError(`${fn}: labels must be an int32 tf.Tensor or an Int32Array`);
  if (a.length !== nTokens)
    throw new ShapeMismatchError(`${fn}: labels has ${a.length} elements, expected ${nTokens} (one per logits row)`);
  return a;
}

/** A mask (1 counts, 0 excludes) as a Uint8Array: Uint8Array, or a tensor of any dtype. */
export function maskArray(tf: Tfjs, fn: string, mask: unknown): Uint8Array {
  if (mask instanceof Uint8Array) return mask;
  if (mask instanceof tf.Tensor) return Uint8Array.from(mask.dataSync() as ArrayLike<number>, (v) => (v ? 1 : 0));
  throw new InvalidTypeError(`${fn}: mask must be a Uint8Array or a tf.Tensor`);
}

/** The sequence of each row: from offsets, else [B, T, V] → row / T, else [N, V] → 0. */
export function rowSequences(shape: readonly number[], offsets: Int32Array | undefined): Int32Array {
  const n = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  const seq = new Int32Array(n);
  if (offsets) {
    for (let s = 0; s + 1 < offsets.length; s++) seq.fill(s, offsets[s], offsets[s + 1]);
  } else if (shape.length === 3) {
    const t = shape[1];
    for (let r = 0; r < n; r++) seq[r] = Math.floor(r / t);
  }
  return seq;
}
