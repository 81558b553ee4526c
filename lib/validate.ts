/**
 * Shared argument validation for the facade (design rule 5: validate in TS with a helpful message,
 * re-check in N-API, assert in the kernel). Every failure is a typed error with a code, raised before
 * any native code touches memory.
 */
import { InvalidTypeError, InvalidValueError, ShapeMismatchError, UnknownOptionError } from './errors.js';

/** Element types the kernels accept. bf16 / f16 travel as raw bits in a Uint16Array. */
export type Dtype = 'f32' | 'f64' | 'bf16' | 'f16';
export type FloatArray = Float32Array | Float64Array | Uint16Array;

/** An object shaped like an onnxruntime-node Tensor. */
export interface TensorLike {
  type: string;
  data: unknown;
  dims: readonly number[];
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Suggest the closest allowed name (for "did you mean"). */
export function closest(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const a of allowed) {
    const dist = levenshtein(name.toLowerCase(), a.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = a;
    }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * `options` must be undefined or a plain object whose keys are all in `allowed`; a misspelled key is
 * an UnknownOptionError naming the closest valid one. Returns the options (or {}).
 */
export function checkOptions<T extends object>(fn: string, options: T | undefined, allowed: readonly string[]): T {
  if (options === undefined || options === null) return {} as T;
  if (typeof options !== 'object' || Array.isArray(options))
    throw new InvalidTypeError(`${fn}: options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const guess = closest(key, allowed);
      throw new UnknownOptionError(
        `${fn}: unknown option '${key}'${guess ? ` (did you mean '${guess}'?)` : ''}; valid options: ${allowed.join(', ')}`,
      );
    }
  }
  return options;
}

/** Short description of a value for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  if (Array.isArray(v)) return `Array(${v.length})`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return `'${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
  return `${typeof v} ${String(v)}`;
}

/** True when the buffer behind a view was transferred away (Node 20 has no ArrayBuffer#detached). */
export function isDetached(view: ArrayBufferView): boolean {
  const buf = view.buffer;
  if (buf.byteLength > 0) return false;
  if (typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer) return false;
  try {
    (buf as ArrayBuffer).slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

type TypedCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor;

export interface ArrayCheck {
  /** Accept SharedArrayBuffer-backed views (default false: another thread could change them mid-call). */
  allowShared?: boolean;
}

/** `value` must be an instance of one of `ctors`, not detached, not SharedArrayBuffer-backed. */
export function requireArray<T extends ArrayBufferView>(
  fn: string,
  name: string,
  value: unknown,
  ctors: readonly TypedCtor[],
  check: ArrayCheck = {},
): T {
  if (!ctors.some((c) => value instanceof c))
    throw new InvalidTypeError(
      `${fn}: ${name} must be ${ctors.map((c) => c.name).join(' or ')}, got ${describe(value)}`,
    );
  const v = value as ArrayBufferView;
  if (isDetached(v))
    throw new InvalidTypeError(`${fn}: ${name} is backed by a detached ArrayBuffer`, 'ERR_UNIGAP_DETACHED_BUFFER');
  if (!check.allowShared && typeof SharedArrayBuffer !== 'undefined' && v.buffer instanceof SharedArrayBuffer)
    throw new InvalidTypeError(
      `${fn}: ${name} is backed by a SharedArrayBuffer; copy it into an ArrayBuffer-backed array first`,
    );
  return v as T;
}

/** A non-negative (or >= min) safe integer. */
export function requireInt(fn: string, name: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw new InvalidTypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v)) throw new InvalidValueError(`${fn}: ${name} must be an integer, got ${v}`);
  if (v < min || v > max)
    throw new InvalidValueError(`${fn}: ${name} must be in [${min}, ${max}], got ${v}`, 'ERR_UNIGAP_OUT_OF_RANGE');
  return v;
}

/** A finite number, optionally with bounds (exclusive flags for open intervals). */
export function requireNumber(
  fn: string,
  name: string,
  v: unknown,
  opts: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
): number {
  if (typeof v !== 'number') throw new InvalidTypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) throw new InvalidValueError(`${fn}: ${name} must be finite, got ${v}`);
  const { min, max, minExclusive, maxExclusive } = opts;
  if (min !== undefined && (minExclusive ? v <= min : v < min))
    throw new InvalidValueError(`${fn}: ${name} must be ${minExclusive ? '>' : '>='} ${min}, got ${v}`);
  if (max !== undefined && (maxExclusive ? v >= max : v > max))
    throw new InvalidValueError(`${fn}: ${name} must be ${maxExclusive ? '<' : '<='} ${max}, got ${v}`);
  return v;
}

export function requireBoolean(fn: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidTypeError(`${fn}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

export function requireEnum<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    const guess = typeof v === 'string' ? closest(v, allowed) : undefined;
    throw new InvalidValueError(
      `${fn}: ${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(v)}${guess ? ` (did you mean '${guess}'?)` : ''}`,
    );
  }
  return v as T;
}

/** Validate a shape: non-empty list of safe non-negative integers whose product is a safe integer. */
export function requireShape(fn: string, name: string, dims: unknown, rank?: readonly number[]): number[] {
  if (!Array.isArray(dims) && !ArrayBuffer.isView(dims))
    throw new InvalidTypeError(`${fn}: ${name} must be an array of dimensions, got ${describe(dims)}`);
  const d = Array.from(dims as ArrayLike<number>);
  if (rank && !rank.includes(d.length))
    throw new ShapeMismatchError(`${fn}: ${name} must have ${rank.join(' or ')} dimensions, got [${d.join(', ')}]`);
  let prod = 1;
  for (let i = 0; i < d.length; i++) {
    requireInt(fn, `${name}[${i}]`, d[i]);
    prod *= d[i];
    if (prod > Number.MAX_SAFE_INTEGER)
      throw new InvalidValueError(`${fn}: ${name} [${d.join(', ')}] has more elements than fit in a safe integer`);
  }
  return d;
}

/** Product of dims (already validated). */
export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function requireLength(fn: string, name: string, view: { length: number }, expected: number): void {
  if (view.length !== expected)
    throw new ShapeMismatchError(`${fn}: ${name} has ${view.length} elements, expected ${expected}`);
}

/**
 * Resolve a float input: Float32Array -> f32, Float64Array -> f64 (when allowed), Uint16Array ->
 * the given dtype ('bf16' | 'f16', required), or an onnxruntime-style tensor {type, data, dims}.
 * Returns the data, its dtype and (for tensors) its dims.
 */
export function resolveFloatInput(
  fn: string,
  name: string,
  input: unknown,
  dtype: unknown,
  opts: { allowF64?: boolean } = {},
): { data: FloatArray; dtype: Dtype; dims?: number[] } {
  if (input !== null && typeof input === 'object' && !ArrayBuffer.isView(input) && 'data' in input && 'dims' in input) {
    const t = input as TensorLike;
    const map: Record<string, Dtype> = { float32: 'f32', float64: 'f64', bfloat16: 'bf16', float16: 'f16' };
    const dt = map[t.type];
    if (!dt)
      throw new InvalidTypeError(`${fn}: ${name} tensor type '${t.type}' is not supported`, 'ERR_UNIGAP_INVALID_DTYPE');
    if (dtype !== undefined && dtype !== dt)
      throw new InvalidTypeError(
        `${fn}: dtype '${String(dtype)}' disagrees with the tensor type '${t.type}'`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
    const r = resolveFloatInput(fn, `${name}.data`, t.data, dt === 'bf16' || dt === 'f16' ? dt : undefined, opts);
    return { ...r, dims: requireShape(fn, `${name}.dims`, t.dims) };
  }
  const allowed: TypedCtor[] = opts.allowF64 ? [Float32Array, Float64Array, Uint16Array] : [Float32Array, Uint16Array];
  const data = requireArray<FloatArray>(fn, name, input, allowed);
  if (data instanceof Uint16Array) {
    if (dtype !== 'bf16' && dtype !== 'f16')
      throw new InvalidTypeError(
        `${fn}: ${name} is a Uint16Array; pass dtype: 'bf16' or 'f16' to say what its bits mean`,
        'ERR_UNIGAP_INVALID_DTYPE',
      );
    return { data, dtype };
  }
  const natural: Dtype = data instanceof Float64Array ? 'f64' : 'f32';
  if (dtype !== undefined && dtype !== natural)
    throw new InvalidTypeError(
      `${fn}: dtype '${String(dtype)}' does not match ${data.constructor.name} (expected '${natural}')`,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
  return { data, dtype: natural };
}
