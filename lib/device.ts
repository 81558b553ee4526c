/**
 * Device memory and device choice.
 *
 * `DeviceTensor` is a typed buffer in CUDA device memory: upload from a typed array, download back,
 * a dtype and a shape, explicit `dispose()` (and `using t = …` through `Symbol.dispose`); its size is
 * reported to the GC as external memory, and a tensor that is never disposed is freed when collected.
 * `DeviceTensor.fromPointer` wraps memory another framework owns (a raw device address as a bigint)
 * without taking ownership.
 *
 * Device choice (`device: 'auto' | 'cpu' | 'cuda'`, per call or as the process default):
 *  - 'cpu'  always the CPU kernels;
 *  - 'cuda' the CUDA kernels; without a usable CUDA device a DeviceUnavailableError
 *           (code 'ERR_UNIGAP_DEVICE_UNAVAILABLE') that says why;
 *  - 'auto' (default) CUDA only when the inputs already live on the device (DeviceTensors), the
 *           kernel's CUDA path has been verified on a GPU (`verifiedCudaPaths`) AND the device that
 *           runs it has a verified compute capability (`verifiedCudaComputeCapabilities`: 9.x, where
 *           the paths were verified); host arrays stay on the CPU, and the reason is returned.
 *           Every wired path (log-probs, DPO from logits, similarity) passed on an NVIDIA H200
 *           (compute capability 9.0) on 2026-11-26 (bench/results/cuda.md); on other devices 'auto'
 *           refuses DeviceTensor inputs with a typed error, and `device: 'cuda'` runs them anyway.
 */
import { DeviceUnavailableError, InvalidTypeError, InvalidValueError, ShapeMismatchError } from './errors.js';
import { loadNative, type NativeBinding } from './native.js';
import { requireEnum } from './validate.js';

export type Device = 'auto' | 'cpu' | 'cuda';
/** Element types a DeviceTensor holds. bf16 / f16 travel as raw bits in a Uint16Array. */
export type DeviceDtype = 'f32' | 'f64' | 'bf16' | 'f16' | 'i32' | 'i64' | 'u8';
export type DeviceArray = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

const BYTES: Record<DeviceDtype, number> = { f32: 4, f64: 8, bf16: 2, f16: 2, i32: 4, i64: 8, u8: 1 };

type Handle = { readonly __deviceBuffer: unique symbol };

interface DeviceBinding {
  cudaStatus(): { available: boolean; reason: string | null };
  cudaAlloc(bytes: number, device: number): Handle;
  cudaWrap(pointer: bigint, bytes: number, device: number): Handle;
  cudaFree(h: Handle): void;
  cudaUpload(h: Handle, data: ArrayBufferView, byteOffset: number): void;
  cudaDownload(h: Handle, out: ArrayBufferView, byteOffset: number): void;
  cudaPointer(h: Handle): bigint;
  cudaLogprobsRun(mode: 0 | 1 | 2, call: Record<string, unknown>): void;
  cudaLogprobsRunAsync(mode: 0 | 1 | 2, call: Record<string, unknown>): Promise<void>;
  cudaDpoFromLogits(call: Record<string, unknown>, args: object, out: Record<string, unknown>): void;
  cudaDpoFromLogitsAsync(call: Record<string, unknown>, args: object, out: Record<string, unknown>): Promise<void>;
  cudaSimilarityRun(op: SimilarityOp, call: Record<string, unknown>): void;
  cudaSimilarityRunAsync(op: SimilarityOp, call: Record<string, unknown>): Promise<void>;
}

function binding(): DeviceBinding {
  const n = loadNative() as NativeBinding & Partial<DeviceBinding>;
  if (typeof n.cudaStatus !== 'function')
    throw new DeviceUnavailableError('the loaded native addon has no device support (rebuild unigap)');
  return n as unknown as DeviceBinding;
}

/** Whether CUDA is usable now, and if not, why. Never throws. */
export function cudaStatus(): { available: boolean; reason: string | null } {
  try {
    return binding().cudaStatus();
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}

function dtypeOf(data: DeviceArray): DeviceDtype | null {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Float64Array) return 'f64';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof BigInt64Array) return 'i64';
  if (data instanceof Uint8Array) return 'u8';
  return null; // Uint16Array: bf16 or f16, must be said
}

function arrayFor(dtype: DeviceDtype, n: number): DeviceArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'i64':
      return new BigInt64Array(n);
    case 'u8':
      return new Uint8Array(n);
    default:
      return new Uint16Array(n);
  }
}

function checkDtype(fn: string, dtype: unknown): DeviceDtype {
  if (typeof dtype !== 'string' || !(dtype in BYTES))
    throw new InvalidTypeError(
      `${fn}: dtype must be one of ${Object.keys(BYTES).join(', ')}, got ${String(dtype)}`,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
  return dtype as DeviceDtype;
}

function checkShape(fn: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw new InvalidTypeError(`${fn}: shape must be an array of integers`);
  for (const d of shape)
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      throw new InvalidValueError(`${fn}: shape entries must be integers >= 0, got ${String(d)}`);
  // The byte count (numel * 8 at most) must stay a safe integer, or it wraps before reaching CUDA.
  if (shape.reduce((a: number, b: number) => a * b, 1) * 8 > Number.MAX_SAFE_INTEGER)
    throw new InvalidValueError(`${fn}: shape [${shape.join(', ')}] has too many elements`, 'ERR_UNIGAP_OUT_OF_RANGE');
  return [...shape];
}

function checkDeviceIndex(fn: string, device: unknown): number {
  if (device === undefined) return 0;
  if (typeof device !== 'number' || !Number.isSafeInteger(device) || device < 0)
    throw new InvalidValueError(`${fn}: device must be an integer >= 0, got ${String(device)}`);
  return device;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Throws DeviceUnavailableError (with the reason) unless CUDA is usable. */
function requireCuda(fn: string): DeviceBinding {
  const b = binding();
  const st = b.cudaStatus();
  if (!st.available)
    throw new DeviceUnavailableError(`${fn}: no usable CUDA device (${st.reason ?? 'unknown reason'})`);
  return b;
}

export interface DeviceTensorOptions {
  /** CUDA device ordinal (default 0). */
  device?: number;
}

/** A tensor in CUDA device memory. */
let handleOf: (t: DeviceTensor, fn: string) => Handle;

export class DeviceTensor {
  readonly dtype: DeviceDtype;
  readonly shape: readonly number[];
  /** CUDA device ordinal. */
  readonly device: number;
  /** false for `fromPointer` tensors: unigap never frees their memory. */
  readonly owned: boolean;
  #handle: Handle | null;

  static {
    handleOf = (t, fn) => t.#live(fn);
  }

  private constructor(handle: Handle, dtype: DeviceDtype, shape: number[], device: number, owned: boolean) {
    this.#handle = handle;
    this.dtype = dtype;
    this.shape = Object.freeze(shape);
    this.device = device;
    this.owned = owned;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }
  get byteLength(): number {
    return this.size * BYTES[this.dtype];
  }
  get disposed(): boolean {
    return this.#handle === null;
  }
  /** The device address (for interop, e.g. torch's `data_ptr()`); throws once disposed. */
  get pointer(): bigint {
    return binding().cudaPointer(this.#live('pointer'));
  }

  /** Uninitialised device memory of the given shape and dtype. */
  static empty(shape: readonly number[], dtype: DeviceDtype, options: DeviceTensorOptions = {}): DeviceTensor {
    const fn = 'DeviceTensor.empty';
    const s = checkShape(fn, shape);
    const dt = checkDtype(fn, dtype);
    const device = checkDeviceIndex(fn, options.device);
    const b = requireCuda(fn);
    const h = b.cudaAlloc(numel(s) * BYTES[dt], device);
    return new DeviceTensor(h, dt, s, device, true);
  }

  /**
   * Copy a typed array to the device. `dtype` is required for Uint16Array ('bf16' | 'f16') and must
   * match the array otherwise; `shape` defaults to [data.length].
   */
  static upload(
    data: DeviceArray,
    options: DeviceTensorOptions & { shape?: readonly number[]; dtype?: DeviceDtype } = {},
  ): DeviceTensor {
    const fn = 'DeviceTensor.upload';
    if (!ArrayBuffer.isView(data) || data instanceof DataView)
      throw new InvalidTypeError(`${fn}: data must be a typed array`);
    const natural = dtypeOf(data);
    if (natural === null && !(data instanceof Uint16Array))
      throw new InvalidTypeError(`${fn}: unsupported typed array ${Object.prototype.toString.call(data)}`);
    let dt: DeviceDtype;
    if (options.dtype === undefined) {
      if (natural === null)
        throw new InvalidTypeError(`${fn}: a Uint16Array needs dtype 'bf16' or 'f16'`, 'ERR_UNIGAP_INVALID_DTYPE');
      dt = natural;
    } else {
      dt = checkDtype(fn, options.dtype);
      const want = natural ?? (dt === 'bf16' || dt === 'f16' ? dt : null);
      if (want !== dt)
        throw new InvalidTypeError(
          `${fn}: dtype '${dt}' does not match ${Object.prototype.toString.call(data)}`,
          'ERR_UNIGAP_INVALID_DTYPE',
        );
    }
    const shape = checkShape(fn, options.shape ?? [data.length]);
    if (numel(shape) !== data.length)
      throw new ShapeMismatchError(
        `${fn}: shape [${shape.join(', ')}] holds ${numel(shape)} elements, data has ${data.length}`,
      );
    const t = DeviceTensor.empty(shape, dt, options);
    try {
      binding().cudaUpload(t.#live(fn), data, 0);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /**
   * Wrap device memory that something else owns (never freed by unigap, not counted as external
   * memory). The caller keeps it alive for as long as the tensor is used.
   */
  static fromPointer(
    pointer: bigint,
    shape: readonly number[],
    dtype: DeviceDtype,
    options: DeviceTensorOptions = {},
  ): DeviceTensor {
    const fn = 'DeviceTensor.fromPointer';
    if (typeof pointer !== 'bigint') throw new InvalidTypeError(`${fn}: pointer must be a bigint`);
    if (pointer <= 0n || pointer >= 1n << 64n)
      throw new InvalidValueError(`${fn}: pointer must be a non-zero 64-bit address`);
    const s = checkShape(fn, shape);
    const dt = checkDtype(fn, dtype);
    const device = checkDeviceIndex(fn, options.device);
    const b = requireCuda(fn);
    return new DeviceTensor(b.cudaWrap(pointer, numel(s) * BYTES[dt], device), dt, s, device, false);
  }

  /** Copy to the host: into `out` (right type and length) or a new typed array. */
  download(out?: DeviceArray): DeviceArray {
    const fn = 'DeviceTensor.download';
    const h = this.#live(fn);
    const dst = out ?? arrayFor(this.dtype, this.size);
    if (out !== undefined) {
      const natural = dtypeOf(out);
      const ok = natural === null ? out instanceof Uint16Array && BYTES[this.dtype] === 2 : natural === this.dtype;
      if (!ok) throw new InvalidTypeError(`${fn}: out does not hold ${this.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
      if (out.length !== this.size)
        throw new ShapeMismatchError(`${fn}: out has ${out.length} elements, the tensor ${this.size}`);
    }
    binding().cudaDownload(h, dst, 0);
    return dst;
  }

  /** Free the device memory now (idempotent). A fromPointer tensor only forgets its address. */
  dispose(): void {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    if (this.owned) binding().cudaFree(h);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(fn: string): Handle {
    if (this.#handle === null) throw new InvalidValueError(`${fn}: the DeviceTensor was disposed`);
    return this.#handle;
  }
}

export function isDeviceTensor(x: unknown): x is DeviceTensor {
  return x instanceof DeviceTensor;
}

// ---------------------------------------------------------------- device choice

let defaultDevice: Device = 'auto';

/**
 * Kernel paths whose CUDA implementation passed on a GPU: all 8 wired paths, on an NVIDIA H200
 * (compute capability 9.0), 2026-11-26 (bench/results/cuda.md, raw logs under bench/results/cuda/):
 * the C++ harness (each kernel against the CPU core, 31/31 checks, bench/device/run.sh),
 * compute-sanitizer, the raw N-API smoke and the facade-level smoke (bench/device/facade_smoke.mjs,
 * 29/29: scoreLogprobs forward / fused in and out of place / backward with stored and recomputed LSE /
 * async, dpoLossFromLogits f32 and bf16 incl. in place, pairedCosine, clipScore, similarityMatrix,
 * topkSimilarity, retrievalRanks f32 and bf16). 'dpo.loss' has no CUDA route (unwired).
 */
export const verifiedCudaPaths: ReadonlySet<string> = new Set<string>([
  'logprobs.forward',
  'logprobs.forwardBackward',
  'logprobs.backward',
  'dpo.fromLogits',
  'similarity.pairedCosine', // also clipScore
  'similarity.matrix',
  'similarity.topk',
  'similarity.ranks',
]);

/**
 * Compute capability majors the verified paths ran on (the H200 run above: 9.0). The addon is also
 * compiled for sm_75 / 80 / 86 / 89, same source, but not run there: on those devices 'auto' refuses
 * DeviceTensor inputs (a typed DeviceUnavailableError) and an explicit `device: 'cuda'` runs them.
 */
export const verifiedCudaComputeCapabilities: ReadonlySet<number> = new Set<number>([9]);

function checkDevice(fn: string, d: unknown): Device {
  if (d !== 'auto' && d !== 'cpu' && d !== 'cuda')
    throw new InvalidValueError(`${fn}: device must be 'auto', 'cpu' or 'cuda', got ${JSON.stringify(d)}`);
  return d;
}

/** Set the process default for `device` (initially 'auto'). Returns the previous one. */
export function setDefaultDevice(device: Device): Device {
  const d = checkDevice('setDefaultDevice', device);
  const prev = defaultDevice;
  defaultDevice = d;
  return prev;
}

export function getDefaultDevice(): Device {
  return defaultDevice;
}

export interface ResolvedDevice {
  device: 'cpu' | 'cuda';
  /** Why this device (for logs and backendInfo-style reports). */
  reason: string;
}

/**
 * Decide where a kernel call runs. `requested` is the call's `device` option (undefined: the process
 * default); `path` names the kernel path (e.g. 'logprobs.forward'); `inputs` are the call's tensor
 * inputs (typed arrays or DeviceTensors). Throws DeviceUnavailableError for an explicit 'cuda' without
 * a usable device.
 */
export function resolveDevice(
  requested: Device | undefined,
  path: string,
  inputs: readonly unknown[] = [],
): ResolvedDevice {
  const d = requested === undefined ? defaultDevice : checkDevice('resolveDevice', requested);
  if (d === 'cpu') return { device: 'cpu', reason: "device 'cpu' requested" };
  if (d === 'cuda') {
    const st = cachedCudaStatus();
    if (!st.available)
      throw new DeviceUnavailableError(
        `${path}: device 'cuda' requested but no usable CUDA device (${st.reason ?? 'unknown'})`,
      );
    return { device: 'cuda', reason: "device 'cuda' requested" };
  }
  // 'auto': decided from the inputs first, so host-array calls never touch the native layer.
  if (!inputs.some(isDeviceTensor)) return { device: 'cpu', reason: 'auto: inputs are host arrays' };
  const why = autoCudaRefusal(path, inputs);
  if (why !== null) return { device: 'cpu', reason: `auto: ${why.reason}` };
  return {
    device: 'cuda',
    reason: 'auto: DeviceTensor inputs, a verified CUDA path and a device of a verified compute capability',
  };
}

/**
 * Why 'auto' may not run `path` on the CUDA device of the DeviceTensor `inputs` (null: it may):
 * the path is unverified, no CUDA device is usable, or a tensor's device has a compute capability
 * outside {@link verifiedCudaComputeCapabilities} (or is not reported at all).
 */
function autoCudaRefusal(
  path: string,
  inputs: readonly unknown[],
): { kind: 'unverified' | 'unavailable' | 'capability'; reason: string } | null {
  if (!verifiedCudaPaths.has(path))
    return { kind: 'unverified', reason: `the CUDA path '${path}' is not verified on a GPU yet` };
  const st = cachedCudaStatus();
  if (!st.available) return { kind: 'unavailable', reason: `no usable CUDA device (${st.reason ?? 'unknown'})` };
  const verified = [...verifiedCudaComputeCapabilities].map((m) => `${m}.x`).join(', ');
  const caps = cachedCapabilities();
  for (const t of inputs) {
    if (!isDeviceTensor(t)) continue;
    const dev = caps.get(t.device);
    if (dev === undefined)
      return {
        kind: 'capability',
        reason: `the CUDA path '${path}' was verified on compute capability ${verified} only, and the compute capability of CUDA device ${String(t.device)} is not reported (backendInfo().cuda.devices)`,
      };
    if (!verifiedCudaComputeCapabilities.has(dev.major))
      return {
        kind: 'capability',
        reason: `the CUDA path '${path}' was verified on compute capability ${verified} only; CUDA device ${t.device} (${dev.name}) has compute capability ${dev.computeCapability}`,
      };
  }
  return null;
}

let statusCache: { available: boolean; reason: string | null } | null = null;
/** cudaStatus() once per process (device availability does not change while it runs). */
function cachedCudaStatus(): { available: boolean; reason: string | null } {
  return (statusCache ??= cudaStatus());
}

interface DeviceCapability {
  name: string;
  /** As backendInfo reports it, e.g. '9.0'. */
  computeCapability: string;
  major: number;
}
let capabilityCache: ReadonlyMap<number, DeviceCapability> | null = null;
/** Each CUDA device's compute capability by ordinal (native backendInfo().cuda.devices), once per process. */
function cachedCapabilities(): ReadonlyMap<number, DeviceCapability> {
  if (capabilityCache !== null) return capabilityCache;
  const caps = new Map<number, DeviceCapability>();
  try {
    for (const d of loadNative().backendInfo().cuda.devices) {
      const major = Number.parseInt(d.computeCapability, 10);
      if (Number.isSafeInteger(major))
        caps.set(d.index, { name: d.name, computeCapability: d.computeCapability, major });
    }
  } catch {
    // no addon or no device report: no device has a known capability, so 'auto' refuses
  }
  return (capabilityCache = caps);
}

/**
 * Forget the cached cudaStatus() and device compute capabilities (tests that swap the binding's
 * device functions for a fake device).
 * @internal
 */
export function resetCudaQueryCache(): void {
  statusCache = null;
  capabilityCache = null;
}

const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

/** The `device` option every kernel call takes. */
export interface DeviceOption {
  /**
   * Where the call runs: 'cpu', 'cuda' (a DeviceUnavailableError, code ERR_UNIGAP_DEVICE_UNAVAILABLE,
   * without a usable CUDA device) or 'auto' (the CPU for typed arrays; CUDA for DeviceTensors only on
   * a GPU-verified path and a device of a verified compute capability, 9.x, else a typed error).
   * Default: the process default from setDefaultDevice, itself 'auto' by default.
   */
  device?: Device;
}

/**
 * The facades' device gate, run before any native call. Validates the call's `device` option (typed
 * error naming the valid values), resolves it with {@link resolveDevice} and returns 'cpu' only when
 * the host path may run: host arrays with 'auto' or 'cpu'. Everything else throws a typed error:
 *  - explicit 'cuda' without a usable device: DeviceUnavailableError (from resolveDevice);
 *  - DeviceTensor inputs with 'cpu': InvalidTypeError (download them first);
 *  - DeviceTensor inputs whose CUDA route is not wired (`cuda: 'unwired'`: no binding) or whose
 *    path is not in verifiedCudaPaths: DeviceUnavailableError; never a CPU fallback reading device memory.
 *    Exception: an explicit 'cuda' (per call or as the process default) on a `'wired'` route runs it
 *    even before it is verified (the caller asked for the GPU); 'auto' never does;
 *  - DeviceTensor inputs with 'auto' on a verified path: DeviceUnavailableError without a usable CUDA
 *    device, or when a tensor's device has a compute capability outside verifiedCudaComputeCapabilities
 *    (the message names device: 'cuda', which runs it anyway);
 *  - host arrays with an explicit 'cuda' on a machine that has one: DeviceUnavailableError (upload them).
 * Returns 'cuda' only for DeviceTensor inputs with `cuda: 'wired'`: with 'auto' on a verified path and a
 * device of a verified compute capability, or with an explicit 'cuda'.
 * @internal
 */
export function routeKernelDevice(
  fn: string,
  path: string,
  requested: unknown,
  inputs: readonly unknown[],
  cuda: 'wired' | 'unwired',
): 'cpu' | 'cuda' {
  const req = requested === undefined ? undefined : requireEnum(fn, 'device', requested, DEVICES);
  const onDevice = inputs.some(isDeviceTensor);
  if (onDevice && (req ?? defaultDevice) === 'cpu')
    throw new InvalidTypeError(
      `${fn}: device 'cpu' was requested but an input is a DeviceTensor; download it (tensor.download()) first`,
    );
  const r = resolveDevice(req, `${fn} (${path})`, inputs);
  if (!onDevice) {
    if (r.device === 'cpu') return 'cpu';
    throw new DeviceUnavailableError(
      `${fn}: device 'cuda' with host arrays is not supported; upload them with DeviceTensor.upload, or use 'auto' / 'cpu'`,
    );
  }
  if (cuda === 'unwired')
    throw new DeviceUnavailableError(
      `${fn}: CUDA ${path.split('.')[0]} is not wired yet; download the DeviceTensor inputs (tensor.download()) and pass host arrays`,
    );
  // An explicit 'cuda' opts into a wired but not yet GPU-verified path; 'auto' never picks one.
  const explicitCuda = (req ?? defaultDevice) === 'cuda';
  if (!verifiedCudaPaths.has(path) && !(cuda === 'wired' && explicitCuda))
    throw new DeviceUnavailableError(
      cuda === 'wired'
        ? `${fn}: the CUDA path '${path}' is not verified on a GPU yet, so 'auto' does not take it; pass device: 'cuda' to run it anyway, or download the DeviceTensor inputs (tensor.download()) and pass host arrays`
        : `${fn}: the CUDA path '${path}' is not verified on a GPU yet; download the DeviceTensor inputs (tensor.download()) and pass host arrays`,
    );
  // 'auto' on a verified path: resolveDevice above judged the labelled path, so check the device here.
  if (!explicitCuda) {
    const why = autoCudaRefusal(path, inputs);
    if (why?.kind === 'unavailable') throw new DeviceUnavailableError(`${fn}: auto: ${why.reason}`);
    if (why !== null)
      throw new DeviceUnavailableError(
        `${fn}: auto: ${why.reason}, so 'auto' does not take it; pass device: 'cuda' to run it anyway, or download the DeviceTensor inputs (tensor.download()) and pass host arrays`,
      );
  }
  return 'cuda';
}

// ---------------------------------------------------------------- CUDA kernels on DeviceTensors

/**
 * A log-prob call on device memory: NativeLogprobsCall (lib/kernels/logprobs.ts) with every array a
 * DeviceTensor on one device. dtypes: logits and gradOut f32 | bf16 | f16 (the same); labels i32;
 * mask u8; offsets i64 (nSeq + 1, on the device); token / sequence outputs, gradSeq, gradToken,
 * inputLse f32; tokenCorrect u8; seqCount i32; seqLogitSum f64. Outputs not wanted are null.
 */
export interface DeviceLogprobsCall {
  logits: DeviceTensor;
  nTokens: number;
  vocab: number;
  labels: DeviceTensor;
  mask: DeviceTensor | null;
  ignoreIndex: number;
  offsets: DeviceTensor;
  nSeq: number;
  shift: boolean;
  temperature: number;
  tokenLogp?: DeviceTensor | null;
  tokenEntropy?: DeviceTensor | null;
  tokenCorrect?: DeviceTensor | null;
  tokenLse?: DeviceTensor | null;
  seqSum?: DeviceTensor | null;
  seqCount?: DeviceTensor | null;
  seqMean?: DeviceTensor | null;
  seqLogitSum?: DeviceTensor | null;
  gradSeq?: DeviceTensor | null;
  gradToken?: DeviceTensor | null;
  /** Backward only: tokenLse of an earlier forward (else recomputed). */
  inputLse?: DeviceTensor | null;
  gradOut?: DeviceTensor | null;
}

const FLOAT_DTYPE_CODE = { f32: 0, bf16: 2, f16: 3 } as const;

/**
 * The native dtype code of a DeviceTensor the GPU float kernels read (f32 0, bf16 2, f16 3). Anything
 * else is a typed ERR_UNIGAP_INVALID_DTYPE; f64 says UNSUPPORTED_DTYPE (the GPU kernels have no f64 path).
 */
export function gpuFloatDtypeCode(fn: string, name: string, t: DeviceTensor): 0 | 2 | 3 {
  const dt = t.dtype;
  if (dt === 'f64')
    throw new InvalidTypeError(
      `${fn}: ${name} is f64, which the GPU kernels do not support (UNSUPPORTED_DTYPE); convert to f32 or run on the CPU`,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
  if (dt !== 'f32' && dt !== 'bf16' && dt !== 'f16')
    throw new InvalidTypeError(`${fn}: ${name} must hold f32, bf16 or f16, got ${dt}`, 'ERR_UNIGAP_INVALID_DTYPE');
  return FLOAT_DTYPE_CODE[dt];
}

function toNativeCall(fn: string, c: DeviceLogprobsCall, withOutputs: boolean): Record<string, unknown> {
  if (!isDeviceTensor(c.logits)) throw new InvalidTypeError(`${fn}: logits must be a DeviceTensor`);
  const code = gpuFloatDtypeCode(fn, 'logits', c.logits);
  const ldt = c.logits.dtype;
  const n = c.nTokens;
  const ns = c.nSeq;
  const fields: [keyof DeviceLogprobsCall, DeviceDtype, number, boolean][] = [
    ['logits', ldt, n * c.vocab, true],
    ['labels', 'i32', n, true],
    ['mask', 'u8', n, false],
    ['offsets', 'i64', ns + 1, true],
  ];
  if (withOutputs)
    fields.push(
      ['tokenLogp', 'f32', n, false],
      ['tokenEntropy', 'f32', n, false],
      ['tokenCorrect', 'u8', n, false],
      ['tokenLse', 'f32', n, false],
      ['seqSum', 'f32', ns, false],
      ['seqCount', 'i32', ns, false],
      ['seqMean', 'f32', ns, false],
      ['seqLogitSum', 'f64', ns, false],
      ['gradSeq', 'f32', ns, false],
      ['gradToken', 'f32', n, false],
      ['inputLse', 'f32', n, false],
      ['gradOut', ldt, n * c.vocab, false],
    );
  const out: Record<string, unknown> = {
    dtype: code,
    nTokens: n,
    vocab: c.vocab,
    nSeq: ns,
    ignoreIndex: c.ignoreIndex,
    shift: !!c.shift,
    temperature: c.temperature,
  };
  for (const [key, dt, size, required] of fields) {
    const t = c[key] as DeviceTensor | null | undefined;
    if (t === null || t === undefined) {
      if (required) throw new InvalidTypeError(`${fn}: ${key} is required`);
      out[key] = null;
      continue;
    }
    if (!isDeviceTensor(t)) throw new InvalidTypeError(`${fn}: ${key} must be a DeviceTensor or null`);
    if (t.dtype !== dt)
      throw new InvalidTypeError(`${fn}: ${key} must be ${dt}, got ${t.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
    if (t.size !== size) throw new ShapeMismatchError(`${fn}: ${key} has ${t.size} elements, expected ${size}`);
    out[key] = handleOf(t, fn);
  }
  return out;
}

/**
 * Run the CUDA log-prob kernels (mode 0 forward, 1 backward, 2 forward + backward) on DeviceTensors;
 * returns when the call's stream is done. Throws DeviceUnavailableError without a usable device.
 * The facade resolves the device first ({@link resolveDevice}); this does no device choice.
 */
export function cudaLogprobsRun(mode: 0 | 1 | 2, call: DeviceLogprobsCall): void {
  const fn = 'cudaLogprobsRun';
  const native = toNativeCall(fn, call, true);
  requireCuda(fn).cudaLogprobsRun(mode, native);
}

/** {@link cudaLogprobsRun} off the main thread: resolves when the stream is done. */
export function cudaLogprobsRunAsync(mode: 0 | 1 | 2, call: DeviceLogprobsCall): Promise<void> {
  const fn = 'cudaLogprobsRunAsync';
  try {
    const native = toNativeCall(fn, call, true);
    return requireCuda(fn).cudaLogprobsRunAsync(mode, native);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The fused DPO from logits on the GPU. `call` holds the inputs (logits, labels, mask, offsets on the
 * device; outputs ignored); `args` and `out` are exactly what the CPU binding's dpoFromLogits takes
 * (lib/kernels/dpo.ts: host typed arrays), except `out.gradOut`, a DeviceTensor of the logits' dtype
 * and shape (may be the logits themselves: in place) or null (forward only).
 */
export function cudaDpoFromLogits(call: DeviceLogprobsCall, args: object, out: Record<string, unknown>): void {
  const fn = 'cudaDpoFromLogits';
  const [c, o] = dpoNative(fn, call, out);
  requireCuda(fn).cudaDpoFromLogits(c, args, o);
}

/** {@link cudaDpoFromLogits} off the main thread. */
export function cudaDpoFromLogitsAsync(
  call: DeviceLogprobsCall,
  args: object,
  out: Record<string, unknown>,
): Promise<void> {
  const fn = 'cudaDpoFromLogitsAsync';
  try {
    const [c, o] = dpoNative(fn, call, out);
    return requireCuda(fn).cudaDpoFromLogitsAsync(c, args, o);
  } catch (e) {
    return Promise.reject(e);
  }
}

function dpoNative(
  fn: string,
  call: DeviceLogprobsCall,
  out: Record<string, unknown>,
): [Record<string, unknown>, Record<string, unknown>] {
  const c = toNativeCall(fn, call, false);
  const g = out.gradOut;
  let gradOut: Handle | null = null;
  if (g !== null && g !== undefined) {
    if (!isDeviceTensor(g)) throw new InvalidTypeError(`${fn}: out.gradOut must be a DeviceTensor or null`);
    if (g.dtype !== call.logits.dtype || g.size !== call.logits.size)
      throw new ShapeMismatchError(`${fn}: out.gradOut must match the logits' dtype and size`);
    gradOut = handleOf(g, fn);
  }
  return [c, { ...out, gradOut }];
}

// ---------------------------------------------------------------- similarity on DeviceTensors

/** 0 paired cosine, 1 matrix, 2 top-k, 3 retrieval ranks. @internal */
export type SimilarityOp = 0 | 1 | 2 | 3;

/** Flag bits of the CUDA similarity products (cuda.h UNIGAP_CUDA_SIM_*). @internal */
export const SIM_FLAG_ALLOW_TF32 = 1;

/**
 * A similarity call on device memory (native/include/unigap/cuda.h): `a` [n, d] and `b` [m, d]
 * (ops 0 and 3: [n, d]) DeviceTensors of f32 | bf16 | f16 on one device; outputs: op 0 `out` f32 [n],
 * op 1 `out` f32 [n * m], op 2 `indices` i32 and `scores` f32 [n * k], op 3 `ranks` f64 [n].
 * @internal
 */
export interface DeviceSimilarityCall {
  a: DeviceTensor;
  b: DeviceTensor;
  n: number;
  m: number;
  d: number;
  normalize: boolean;
  scale: number;
  bias: number;
  k: number;
  flags: number;
  out?: DeviceTensor | null;
  indices?: DeviceTensor | null;
  scores?: DeviceTensor | null;
  ranks?: DeviceTensor | null;
}

function simNative(fn: string, op: SimilarityOp, c: DeviceSimilarityCall): Record<string, unknown> {
  const code = (name: string, t: DeviceTensor) => gpuFloatDtypeCode(fn, name, t);
  for (const [name, t] of [
    ['a', c.a],
    ['b', c.b],
  ] as const)
    if (!isDeviceTensor(t)) throw new InvalidTypeError(`${fn}: ${name} must be a DeviceTensor`);
  const rowsB = op === 0 || op === 3 ? c.n : c.m;
  if (c.a.size !== c.n * c.d) throw new ShapeMismatchError(`${fn}: a has ${c.a.size} elements, expected ${c.n * c.d}`);
  if (c.b.size !== rowsB * c.d)
    throw new ShapeMismatchError(`${fn}: b has ${c.b.size} elements, expected ${rowsB * c.d}`);
  const outputs: [keyof DeviceSimilarityCall, DeviceDtype, number][] =
    op === 0
      ? [['out', 'f32', c.n]]
      : op === 1
        ? [['out', 'f32', c.n * c.m]]
        : op === 2
          ? [
              ['indices', 'i32', c.n * c.k],
              ['scores', 'f32', c.n * c.k],
            ]
          : [['ranks', 'f64', c.n]];
  const native: Record<string, unknown> = {
    aDtype: code('a', c.a),
    bDtype: code('b', c.b),
    n: c.n,
    m: rowsB,
    d: c.d,
    normalize: !!c.normalize,
    scale: c.scale,
    bias: c.bias,
    k: c.k,
    flags: c.flags,
    a: handleOf(c.a, fn),
    b: handleOf(c.b, fn),
  };
  if (c.b.device !== c.a.device)
    throw new InvalidValueError(`${fn}: a is on device ${c.a.device}, b on device ${c.b.device}`);
  for (const [key, dt, size] of outputs) {
    const t = c[key] as DeviceTensor | null | undefined;
    if (!isDeviceTensor(t)) throw new InvalidTypeError(`${fn}: ${key} must be a DeviceTensor`);
    if (t.dtype !== dt)
      throw new InvalidTypeError(`${fn}: ${key} must be ${dt}, got ${t.dtype}`, 'ERR_UNIGAP_INVALID_DTYPE');
    if (t.size !== size) throw new ShapeMismatchError(`${fn}: ${key} has ${t.size} elements, expected ${size}`);
    if (t.device !== c.a.device)
      throw new InvalidValueError(`${fn}: ${key} is on device ${t.device}, the inputs on ${c.a.device}`);
    native[key] = handleOf(t, fn);
  }
  return native;
}

/**
 * Run a CUDA similarity kernel on DeviceTensors; returns when its stream is done. The facade
 * (lib/kernels/similarity.ts) validates and routes first; this re-checks dtypes, sizes and devices.
 * @internal
 */
export function cudaSimilarityRun(op: SimilarityOp, call: DeviceSimilarityCall): void {
  const fn = 'cudaSimilarityRun';
  const native = simNative(fn, op, call);
  requireCuda(fn).cudaSimilarityRun(op, native);
}

/** {@link cudaSimilarityRun} off the main thread. @internal */
export function cudaSimilarityRunAsync(op: SimilarityOp, call: DeviceSimilarityCall): Promise<void> {
  const fn = 'cudaSimilarityRunAsync';
  try {
    const native = simNative(fn, op, call);
    return requireCuda(fn).cudaSimilarityRunAsync(op, native);
  } catch (e) {
    return Promise.reject(e);
  }
}
