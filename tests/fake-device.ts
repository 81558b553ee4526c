/**
 * A fake CUDA device for the tests that route DeviceTensors without a GPU: the native binding's
 * cudaStatus and backendInfo report usable devices of the given compute capabilities, and
 * cudaAlloc / cudaFree / cudaPointer / cudaUpload / cudaDownload keep host buffers behind the handles
 * (with a distinct fake address each, and a count of live allocations). The kernels are each test
 * file's own: `kernels` maps binding entry points (e.g. cudaLogprobsRun) to fakes working on those
 * host buffers (read and written with `view`); each one's `…Async` twin, where the binding has one,
 * is faked too, as a promise that settles as the synchronous fake does.
 */
import { vi } from 'vitest';

import { resetCudaQueryCache } from '../lib/device.js';
import { loadNative, type NativeBackendInfo } from '../lib/native.js';

/** The real native binding, its entry points loosely typed (the fake device spies on them). */
export const binding = loadNative() as unknown as Record<string, (...a: never[]) => unknown>;

/** A fake device buffer: the handle cudaAlloc returns. */
export interface FakeBuf {
  bytes: Uint8Array;
  freed: boolean;
  /** Its fake device address (cudaPointer). */
  addr: bigint;
}

const ARRAYS = {
  f32: Float32Array,
  f64: Float64Array,
  bf16: Uint16Array,
  f16: Uint16Array,
  i32: Int32Array,
  i64: BigInt64Array,
  u8: Uint8Array,
} as const;
export type FakeDtype = keyof typeof ARRAYS;

/** The GPU float dtype codes of the native kernel calls (0 f32, 1 f64, 2 bf16, 3 f16). */
export const FLOAT_DTYPE_CODES = ['f32', 'f64', 'bf16', 'f16'] as const;

/** The first `n` elements of a fake buffer as a typed array of `dtype` (bf16 / f16: Uint16Array). */
export function view<D extends FakeDtype>(h: unknown, dtype: D, n: number): InstanceType<(typeof ARRAYS)[D]> {
  return new ARRAYS[dtype]((h as FakeBuf).bytes.buffer as ArrayBuffer, 0, n) as InstanceType<(typeof ARRAYS)[D]>;
}

/** `view`, with null for an absent (null / undefined) handle. */
export function viewOrNull<D extends FakeDtype>(h: unknown, dtype: D, n: number) {
  return h == null ? null : view(h, dtype, n);
}

export interface FakeDeviceOptions {
  /** The compute capability of device 0, or one per device (default '9.0'). */
  cc?: string | string[];
  /** Each device's name as backendInfo reports it (default 'Fake GPU'). */
  name?: (cc: string, index: number) => string;
  /** Binding entry points to replace by fakes (their `…Async` twins follow). */
  kernels?: Record<string, (...a: never[]) => void>;
}

export interface FakeDevice {
  /** The compute capabilities backendInfo reports from now on; call resetCudaQueryCache() to make the routing read them again. */
  cc: string | string[];
  /** Live fake allocations (cudaAlloc minus cudaFree). */
  readonly live: number;
  /** Every cudaAlloc since the install. */
  readonly allocs: number;
  /** Restores the real binding (and the routing's query cache). */
  uninstall(): void;
}

const realInfo = (binding.backendInfo as unknown as () => NativeBackendInfo)();
let nextAddr = 0x10000n;

/** Installs the fake device (vitest spies on the real binding) until `uninstall()`. */
export function installFakeDevice(options: FakeDeviceOptions = {}): FakeDevice {
  const name = options.name ?? (() => 'Fake GPU');
  let cc = options.cc ?? '9.0';
  let live = 0;
  let allocs = 0;
  const spy = (key: string, impl: unknown) => vi.spyOn(binding, key).mockImplementation(impl as never);
  resetCudaQueryCache(); // the routing caches cudaStatus() and the compute capabilities once per process
  const spies = [
    spy('cudaStatus', () => ({ available: true, reason: null })),
    spy('backendInfo', () => {
      const ccs = typeof cc === 'string' ? [cc] : cc;
      return {
        ...realInfo,
        cuda: {
          ...realInfo.cuda,
          deviceCount: ccs.length,
          devices: ccs.map((c, index) => ({ index, name: name(c, index), computeCapability: c, totalMemory: 2 ** 34 })),
          reason: null,
        },
      };
    }),
    spy('cudaAlloc', (bytes: number) => {
      live++;
      allocs++;
      const b: FakeBuf = { bytes: new Uint8Array(Math.max(8, Math.ceil(bytes / 8) * 8)), freed: false, addr: nextAddr };
      nextAddr += BigInt(b.bytes.length) + 0x100n;
      return b;
    }),
    spy('cudaFree', (h: FakeBuf) => {
      if (!h.freed) live--;
      h.freed = true;
    }),
    spy('cudaPointer', (h: FakeBuf) => h.addr),
    spy('cudaUpload', (h: FakeBuf, a: ArrayBufferView) => {
      h.bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }),
    spy('cudaDownload', (h: FakeBuf, a: ArrayBufferView) => {
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(h.bytes.subarray(0, a.byteLength));
    }),
  ];
  for (const [key, run] of Object.entries(options.kernels ?? {})) {
    spies.push(spy(key, run));
    if (typeof binding[`${key}Async`] === 'function')
      spies.push(
        spy(`${key}Async`, (...a: never[]) => {
          try {
            run(...a);
            return Promise.resolve();
          } catch (e) {
            return Promise.reject(e);
          }
        }),
      );
  }
  return {
    get cc() {
      return cc;
    },
    set cc(v) {
      cc = v;
    },
    get live() {
      return live;
    },
    get allocs() {
      return allocs;
    },
    uninstall() {
      spies.forEach((s) => s.mockRestore());
      resetCudaQueryCache();
    },
  };
}
