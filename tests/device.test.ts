import { describe, expect, it } from 'vitest';

import {
  DeviceTensor,
  DeviceUnavailableError,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnigapError,
  backendInfo,
  cudaDpoFromLogits,
  cudaLogprobsRun,
  cudaLogprobsRunAsync,
  cudaStatus,
  getDefaultDevice,
  resolveDevice,
  setDefaultDevice,
  verifiedCudaPaths,
} from '../lib/index.js';
import { verifiedCudaComputeCapabilities } from '../lib/device.js';
import { loadNative } from '../lib/native.js';
import { installFakeDevice } from './fake-device.js';

const status = cudaStatus();
const hasCuda = status.available;

function expectCode(fn: () => unknown, cls: abstract new (...a: never[]) => Error, code: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(cls);
  expect((err as { code?: string }).code).toBe(code);
}

describe('cudaStatus', () => {
  it('agrees with backendInfo and gives a reason when CUDA is unusable', () => {
    const info = backendInfo();
    expect(typeof status.available).toBe('boolean');
    if (!hasCuda) {
      expect(status.reason).toMatch(/\w/);
      expect(info.cuda.deviceCount).toBe(0);
    } else {
      expect(status.reason).toBeNull();
      expect(info.cuda.deviceCount).toBeGreaterThan(0);
    }
  });
});

describe('device choice', () => {
  it("'cpu' always resolves to the CPU", () => {
    expect(resolveDevice('cpu', 'logprobs.forward', [new Float32Array(4)]).device).toBe('cpu');
  });

  it("'auto' (the default) stays on the CPU for typed arrays", () => {
    expect(getDefaultDevice()).toBe('auto');
    const r = resolveDevice(undefined, 'logprobs.forward', [new Float32Array(4)]);
    expect(r).toEqual({ device: 'cpu', reason: 'auto: inputs are host arrays' });
  });

  it('the verified CUDA paths (H200 run, 2026-11-26) and compute capabilities', () => {
    expect([...verifiedCudaPaths].sort()).toEqual(
      [
        'logprobs.forward',
        'logprobs.forwardBackward',
        'logprobs.backward',
        'dpo.fromLogits',
        'similarity.pairedCosine',
        'similarity.matrix',
        'similarity.topk',
        'similarity.ranks',
      ].sort(),
    );
    expect(verifiedCudaPaths.has('dpo.loss')).toBe(false); // unwired
    expect([...verifiedCudaComputeCapabilities]).toEqual([9]);
  });

  it("'auto' never picks an unverified CUDA path, even for DeviceTensor inputs", () => {
    const fake = Object.create(DeviceTensor.prototype) as DeviceTensor; // stands in for a device input
    const r = resolveDevice('auto', 'dpo.loss', [fake]);
    expect(r).toEqual({ device: 'cpu', reason: "auto: the CUDA path 'dpo.loss' is not verified on a GPU yet" });
  });

  it.skipIf(hasCuda)(
    "'auto' with DeviceTensor inputs on a verified path and no usable device: the CPU, saying why",
    () => {
      const fake = Object.create(DeviceTensor.prototype) as DeviceTensor;
      const r = resolveDevice('auto', 'logprobs.forward', [fake]);
      expect(r.device).toBe('cpu');
      expect(r.reason).toMatch(/^auto: no usable CUDA device \(.+\)$/);
    },
  );

  describe("'auto' on a fake CUDA device: the verified path, and the device's compute capability", () => {
    /** A DeviceTensor instance on device `device` (no memory: resolveDevice never touches it). */
    const onDevice = (device: number) => {
      const t = Object.create(DeviceTensor.prototype) as DeviceTensor;
      Object.defineProperty(t, 'device', { value: device });
      return t;
    };
    function withFakeDevice(computeCapabilities: string[], body: () => void) {
      const fake = installFakeDevice({ cc: computeCapabilities, name: (cc) => `Fake GPU ${cc}` });
      try {
        body();
      } finally {
        fake.uninstall();
      }
    }

    it('compute capability 9.0: every verified path runs on CUDA', () => {
      withFakeDevice(['9.0'], () => {
        for (const path of verifiedCudaPaths) {
          const r = resolveDevice('auto', path, [new Float32Array(2), onDevice(0)]);
          expect(r.device, path).toBe('cuda');
          expect(r.reason).toMatch(/^auto: DeviceTensor inputs, a verified CUDA path/);
        }
        expect(resolveDevice(undefined, 'similarity.matrix', [onDevice(0)]).device).toBe('cuda'); // default 'auto'
        expect(resolveDevice('auto', 'similarity.matrix', [new Float32Array(2)]).device).toBe('cpu'); // host arrays
      });
    });

    it("compute capability 8.6 (compiled, not verified): the CPU with the reason; an explicit 'cuda' still runs", () => {
      withFakeDevice(['8.6'], () => {
        const r = resolveDevice('auto', 'logprobs.forward', [onDevice(0)]);
        expect(r.device).toBe('cpu');
        expect(r.reason).toBe(
          "auto: the CUDA path 'logprobs.forward' was verified on compute capability 9.x only; CUDA device 0 (Fake GPU 8.6) has compute capability 8.6",
        );
        expect(resolveDevice('cuda', 'logprobs.forward', [onDevice(0)]).device).toBe('cuda');
      });
    });

    it("the tensor's own device decides: device 1 of CC 8.0 next to a CC 9.0 device 0; an unreported ordinal refuses", () => {
      withFakeDevice(['9.0', '8.0'], () => {
        expect(resolveDevice('auto', 'similarity.topk', [onDevice(0), onDevice(0)]).device).toBe('cuda');
        const r = resolveDevice('auto', 'similarity.topk', [onDevice(1), onDevice(1)]);
        expect(r.device).toBe('cpu');
        expect(r.reason).toMatch(/CUDA device 1 \(Fake GPU 8\.0\) has compute capability 8\.0$/);
        const gone = resolveDevice('auto', 'similarity.topk', [onDevice(2)]);
        expect(gone.device).toBe('cpu');
        expect(gone.reason).toMatch(/compute capability of CUDA device 2 is not reported/);
      });
    });

    it("a path taken out of the verified set: 'auto' refuses it again even on CC 9.0", () => {
      const verified = verifiedCudaPaths as Set<string>;
      verified.delete('logprobs.backward');
      try {
        withFakeDevice(['9.0'], () => {
          expect(resolveDevice('auto', 'logprobs.backward', [onDevice(0)])).toEqual({
            device: 'cpu',
            reason: "auto: the CUDA path 'logprobs.backward' is not verified on a GPU yet",
          });
          expect(resolveDevice('auto', 'logprobs.forward', [onDevice(0)]).device).toBe('cuda');
        });
      } finally {
        verified.add('logprobs.backward');
      }
    });
  });

  it.skipIf(hasCuda)("an explicit 'cuda' without a usable device throws DeviceUnavailableError with a code", () => {
    expectCode(
      () => resolveDevice('cuda', 'logprobs.forward'),
      DeviceUnavailableError,
      'ERR_UNIGAP_DEVICE_UNAVAILABLE',
    );
    try {
      resolveDevice('cuda', 'dpo.fromLogits');
    } catch (e) {
      expect(e).toBeInstanceOf(UnigapError);
      expect((e as Error).message).toMatch(/dpo\.fromLogits: device 'cuda' requested but no usable CUDA device \(.+\)/);
    }
  });

  it.skipIf(hasCuda)("the process default 'cuda' throws the same way; setDefaultDevice returns the previous", () => {
    expect(setDefaultDevice('cuda')).toBe('auto');
    try {
      expectCode(
        () => resolveDevice(undefined, 'logprobs.forward'),
        DeviceUnavailableError,
        'ERR_UNIGAP_DEVICE_UNAVAILABLE',
      );
      expect(resolveDevice('cpu', 'logprobs.forward').device).toBe('cpu'); // per-call wins
    } finally {
      expect(setDefaultDevice('auto')).toBe('cuda');
    }
  });

  it('unknown devices are typed errors', () => {
    expectCode(() => setDefaultDevice('gpu' as never), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expectCode(() => resolveDevice('tpu' as never, 'logprobs.forward'), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expect(getDefaultDevice()).toBe('auto');
  });
});

describe('DeviceTensor argument checks (before any device access)', () => {
  it('needs a dtype for Uint16Array and a matching one otherwise', () => {
    expectCode(() => DeviceTensor.upload(new Uint16Array(4)), InvalidTypeError, 'ERR_UNIGAP_INVALID_DTYPE');
    expectCode(
      () => DeviceTensor.upload(new Float32Array(4), { dtype: 'bf16' }),
      InvalidTypeError,
      'ERR_UNIGAP_INVALID_DTYPE',
    );
    expectCode(() => DeviceTensor.upload(new Int16Array(4) as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    expectCode(() => DeviceTensor.upload([1, 2] as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
  });

  it('checks shapes and device ordinals', () => {
    expectCode(
      () => DeviceTensor.upload(new Float32Array(6), { shape: [4, 2] }),
      ShapeMismatchError,
      'ERR_UNIGAP_SHAPE_MISMATCH',
    );
    expectCode(() => DeviceTensor.empty([2, -1], 'f32'), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expectCode(() => DeviceTensor.empty([2, 1.5], 'f32'), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expectCode(() => DeviceTensor.empty([2], 'f8' as never), InvalidTypeError, 'ERR_UNIGAP_INVALID_DTYPE');
    expectCode(() => DeviceTensor.empty([2], 'f32', { device: -1 }), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
  });

  it('fromPointer wants a non-zero 64-bit bigint', () => {
    expectCode(() => DeviceTensor.fromPointer(4096 as never, [4], 'f32'), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    expectCode(() => DeviceTensor.fromPointer(0n, [4], 'f32'), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    expectCode(() => DeviceTensor.fromPointer(1n << 64n, [4], 'f32'), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
  });
});

describe('CUDA kernel entry points on DeviceTensors: argument checks', () => {
  it('want DeviceTensors of the right dtype, as typed errors (sync and async)', async () => {
    const call = { logits: new Float32Array(4), nTokens: 1, vocab: 4, nSeq: 1 } as never;
    expectCode(() => cudaLogprobsRun(0, call), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
    await expect(cudaLogprobsRunAsync(2, call)).rejects.toBeInstanceOf(InvalidTypeError);
    expectCode(() => cudaDpoFromLogits(call, {}, {}), InvalidTypeError, 'ERR_UNIGAP_INVALID_TYPE');
  });
});

describe.skipIf(hasCuda)('DeviceTensor without a usable CUDA device', () => {
  it('creation fails cleanly with ERR_UNIGAP_DEVICE_UNAVAILABLE, never a crash', () => {
    expectCode(
      () => DeviceTensor.upload(new Float32Array([1, 2, 3])),
      DeviceUnavailableError,
      'ERR_UNIGAP_DEVICE_UNAVAILABLE',
    );
    expectCode(() => DeviceTensor.empty([3, 5], 'bf16'), DeviceUnavailableError, 'ERR_UNIGAP_DEVICE_UNAVAILABLE');
    expectCode(
      () => DeviceTensor.fromPointer(0x7f0000000000n, [4], 'f32'),
      DeviceUnavailableError,
      'ERR_UNIGAP_DEVICE_UNAVAILABLE',
    );
  });

  it('the native layer answers with the same code (re-check behind the facade)', () => {
    const n = loadNative() as unknown as {
      cudaAlloc(bytes: number, device: number): unknown;
      cudaWrap(p: bigint, bytes: number, device: number): unknown;
      cudaStatus(): { available: boolean; reason: string | null };
    };
    expect(n.cudaStatus().available).toBe(false);
    for (const call of [() => n.cudaAlloc(64, 0), () => n.cudaWrap(0x7f0000000000n, 64, 0)]) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('ERR_UNIGAP_DEVICE_UNAVAILABLE');
      expect((err as Error).message).toMatch(/no usable CUDA device|not compiled in/);
    }
    expect(() => n.cudaAlloc(-1, 0)).toThrow(RangeError);
    // The kernel entry points re-check their handles behind the facade: a typed error, never a crash.
    const raw = n as unknown as { cudaLogprobsRun(mode: number, call: object): void };
    const call = { dtype: 0, nTokens: 1, vocab: 1, nSeq: 1, logits: new Float32Array(1) };
    let err: unknown;
    try {
      raw.cudaLogprobsRun(0, call);
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('ERR_UNIGAP_INVALID_TYPE');
    expect(() => raw.cudaLogprobsRun(7, call)).toThrow(RangeError);
  });
});

// Runs only where Node sees a GPU (e.g. the device machine with ../shared/device/pack-node.sh).
describe.skipIf(!hasCuda)('DeviceTensor on a CUDA device', () => {
  it('round-trips every dtype and disposes idempotently', () => {
    const cases: [Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array, string][] = [
      [new Float32Array([1.5, -2, 3.25, 0, 7]), 'f32'],
      [new Float64Array([1e300, -2, 3]), 'f64'],
      [new Uint16Array([0x3f80, 0xbf80, 0x7fc0]), 'bf16'],
      [new Int32Array([-1, 2, 2 ** 31 - 1]), 'i32'],
      [new BigInt64Array([1n, -(2n ** 62n)]), 'i64'],
      [new Uint8Array([0, 1, 255]), 'u8'],
    ];
    for (const [data, dtype] of cases) {
      const t = DeviceTensor.upload(data, { dtype: dtype as never });
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([data.length]);
      expect(Array.from(t.download() as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
      t.dispose();
      t.dispose();
      expect(t.disposed).toBe(true);
      expect(() => t.download()).toThrow(InvalidValueError);
    }
  });

  it('cudaLogprobsRun scores DeviceTensors like the CPU (smoke; the harness compares in depth)', () => {
    const N = 3;
    const V = 5;
    const logits = new Float32Array(N * V).map((_, i) => Math.sin(i));
    const labels = Int32Array.of(1, 4, 0);
    using dl = DeviceTensor.upload(logits, { shape: [N, V] });
    using dy = DeviceTensor.upload(labels);
    using doff = DeviceTensor.upload(BigInt64Array.of(0n, BigInt(N)));
    using lp = DeviceTensor.empty([N], 'f32');
    cudaLogprobsRun(0, {
      logits: dl,
      nTokens: N,
      vocab: V,
      labels: dy,
      mask: null,
      ignoreIndex: -100,
      offsets: doff,
      nSeq: 1,
      shift: false,
      temperature: 1,
      tokenLogp: lp,
    });
    const got = lp.download() as Float32Array;
    for (let t = 0; t < N; t++) {
      const row = Array.from(logits.subarray(t * V, t * V + V));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, z) => a + Math.exp(z - m), 0));
      expect(got[t]).toBeCloseTo(row[labels[t]] - lse, 5);
    }
  });

  it('Symbol.dispose frees; fromPointer views without owning', () => {
    let ptr = 0n;
    {
      using t = DeviceTensor.upload(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
      ptr = t.pointer;
      const view = DeviceTensor.fromPointer(ptr, [4], 'f32');
      expect(view.owned).toBe(false);
      expect(Array.from(view.download() as Float32Array)).toEqual([1, 2, 3, 4]);
      view.dispose(); // does not free t's memory
      expect(Array.from(t.download() as Float32Array)).toEqual([1, 2, 3, 4]);
    }
    expect(ptr).toBeGreaterThan(0n);
  });
});
