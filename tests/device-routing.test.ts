/**
 * The `device` option of every kernel facade (issue 8): validation, the process default, and the
 * routing decided before any native call. Runs without a GPU: an explicit 'cuda' must then be a
 * DeviceUnavailableError, and DeviceTensor inputs (stood in for by an uninitialised instance, which
 * never reaches native code) must be refused with a typed error, never read on the CPU: 'auto' on a
 * verified path for want of a usable device, on an unverified one (simulated by taking the path out of
 * verifiedCudaPaths) naming device: 'cuda'.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  DeviceTensor,
  DeviceUnavailableError,
  InvalidTypeError,
  InvalidValueError,
  UnknownOptionError,
  clipScore,
  cudaStatus,
  dpoLoss,
  dpoLossFromLogits,
  dpoLossFromLogitsAsync,
  getDefaultDevice,
  logprobsBackward,
  logprobsBackwardAsync,
  pairedCosine,
  retrievalRanks,
  retrievalRanksAsync,
  scoreLogprobs,
  scoreLogprobsAsync,
  setDefaultDevice,
  similarityMatrix,
  similarityMatrixAsync,
  topkSimilarity,
  topkSimilarityAsync,
  verifiedCudaPaths,
} from '../lib/index.js';
import { loadNative } from '../lib/native.js';
import { KERNEL_FUNCTIONS, randn } from './helpers.js';

const hasCuda = cudaStatus().available;

// Small valid inputs: 2 pairs ([chosen; rejected] = 4 sequences) of T = 3 tokens over V = 7.
const B = 2;
const T = 3;
const V = 7;
const N = 2 * B * T;
const logits = randn(N * V, 11);
const labels = Int32Array.from({ length: N }, (_, i) => (i * 3) % V);
const upstream = { seq: Float32Array.from({ length: 2 * B }, (_, i) => 0.5 + i) };
const refs = { referenceChosen: Float64Array.of(-3, -4), referenceRejected: Float64Array.of(-5, -2) };
const emb = (seed: number, n = 5, d = 4) => ({ data: randn(n * d, seed), dims: [n, d] });
const A = emb(1);
const E = emb(2);

/** A DeviceTensor instance without device memory: enough for the facades' routing, never for native code. */
const fakeDeviceTensor = () => Object.create(DeviceTensor.prototype) as DeviceTensor;

type Opts = Record<string, unknown> | undefined;
interface Kernel {
  name: string;
  async: boolean;
  /** A valid call with these extra options (undefined: no options argument beyond the required ones). */
  call: (extra?: Opts) => unknown;
  /** The same call with a DeviceTensor in place of the main input. */
  onDevice: (extra?: Opts) => unknown;
  /** The error a DeviceTensor input gets with 'auto' here. */
  deviceMessage: RegExp;
  /** The CUDA path the facade routes (null: no CUDA route wired). */
  path: string | null;
}

const withShape = (extra: Opts, base: Record<string, unknown>) => ({ ...base, ...extra });
// Log-probs, DPO from logits (issue 8) and similarity (issue 9) are wired and GPU-verified (on compute
// capability 9.x): 'auto' takes them for DeviceTensors, so without a usable device it refuses for that
// reason. On a real GPU the stand-in tensor has no device ordinal, so no compute capability is known for
// it and 'auto' refuses on that ground. (The fake-device runs: tests/device-logprobs.test.ts,
// device-similarity.test.ts.)
const WIRED_VERIFIED = hasCuda
  ? /auto: the CUDA path '[\w.]+' was verified on compute capability 9\.x only, and the compute capability of CUDA device undefined is not reported/
  : /auto: no usable CUDA device \(.+\)/;
// A wired path out of verifiedCudaPaths: 'auto' refuses, naming the explicit opt-in.
const WIRED_UNVERIFIED = /is not verified on a GPU yet, so 'auto' does not take it; pass device: 'cuda'/;

const kernels: Kernel[] = [
  ...(['scoreLogprobs', 'scoreLogprobsAsync'] as const).map((name) => {
    const f = name === 'scoreLogprobs' ? scoreLogprobs : scoreLogprobsAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(logits, labels, withShape(x, { shape: [2 * B, T, V], entropy: true })),
      onDevice: (x?: Opts) => f(fakeDeviceTensor() as never, labels, withShape(x, { shape: [2 * B, T, V] })),
      deviceMessage: WIRED_VERIFIED,
      path: 'logprobs.forward',
    };
  }),
  ...(['logprobsBackward', 'logprobsBackwardAsync'] as const).map((name) => {
    const f = name === 'logprobsBackward' ? logprobsBackward : logprobsBackwardAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(logits, labels, upstream, withShape(x, { shape: [2 * B, T, V] })),
      onDevice: (x?: Opts) => f(fakeDeviceTensor() as never, labels, upstream, withShape(x, { shape: [2 * B, T, V] })),
      deviceMessage: WIRED_VERIFIED,
      path: 'logprobs.backward',
    };
  }),
  {
    name: 'dpoLoss',
    async: false,
    call: (x?: Opts) =>
      dpoLoss({ policyChosen: Float64Array.of(-2, -6), policyRejected: Float64Array.of(-4, -1), ...refs }, x),
    onDevice: (x?: Opts) =>
      dpoLoss({ policyChosen: fakeDeviceTensor() as never, policyRejected: Float64Array.of(-4, -1), ...refs }, x),
    deviceMessage: /CUDA dpo is not wired yet/,
    path: null,
  },
  ...(['dpoLossFromLogits', 'dpoLossFromLogitsAsync'] as const).map((name) => {
    const f = name === 'dpoLossFromLogits' ? dpoLossFromLogits : dpoLossFromLogitsAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(logits, labels, withShape(x, { shape: [2 * B, T, V], ...refs })),
      onDevice: (x?: Opts) => f(fakeDeviceTensor() as never, labels, withShape(x, { shape: [2 * B, T, V], ...refs })),
      deviceMessage: WIRED_VERIFIED,
      path: 'dpo.fromLogits',
    };
  }),
  {
    name: 'pairedCosine',
    async: false,
    call: (x?: Opts) => pairedCosine(A, E, x),
    onDevice: (x?: Opts) => pairedCosine({ data: fakeDeviceTensor() as never, dims: [5, 4] }, E, x),
    deviceMessage: WIRED_VERIFIED,
    path: 'similarity.pairedCosine',
  },
  {
    name: 'clipScore',
    async: false,
    call: (x?: Opts) => clipScore(A, E, withShape(x, { reduction: 'none' }) as never),
    onDevice: (x?: Opts) => clipScore(A, fakeDeviceTensor() as never, x as never),
    deviceMessage: WIRED_VERIFIED,
    path: 'similarity.pairedCosine',
  },
  ...(['similarityMatrix', 'similarityMatrixAsync'] as const).map((name) => {
    const f = name === 'similarityMatrix' ? similarityMatrix : similarityMatrixAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(A, E, withShape(x, { scale: 100 })),
      onDevice: (x?: Opts) => f(fakeDeviceTensor() as never, E, x),
      deviceMessage: WIRED_VERIFIED,
      path: 'similarity.matrix',
    };
  }),
  ...(['topkSimilarity', 'topkSimilarityAsync'] as const).map((name) => {
    const f = name === 'topkSimilarity' ? topkSimilarity : topkSimilarityAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(A, E, 2, x),
      onDevice: (x?: Opts) => f(A, { data: fakeDeviceTensor() as never, dims: [5, 4] }, 2, x),
      deviceMessage: WIRED_VERIFIED,
      path: 'similarity.topk',
    };
  }),
  ...(['retrievalRanks', 'retrievalRanksAsync'] as const).map((name) => {
    const f = name === 'retrievalRanks' ? retrievalRanks : retrievalRanksAsync;
    return {
      name,
      async: name.endsWith('Async'),
      call: (x?: Opts) => f(A, E, x),
      onDevice: (x?: Opts) => f(fakeDeviceTensor() as never, E, x),
      deviceMessage: WIRED_VERIFIED,
      path: 'similarity.ranks',
    };
  }),
];

/** The error of a call: a sync function must throw, an async one must reject (never throw synchronously). */
async function errorOf(k: Kernel, run: () => unknown): Promise<unknown> {
  let pending: unknown;
  try {
    pending = run();
  } catch (e) {
    if (k.async) throw new Error(`${k.name} threw synchronously instead of rejecting: ${String(e)}`);
    return e;
  }
  if (!k.async) return undefined;
  expect(pending).toBeInstanceOf(Promise);
  try {
    await pending;
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectTyped(err: unknown, cls: abstract new (...a: never[]) => Error, code: string, message?: RegExp) {
  expect(err).toBeInstanceOf(cls);
  expect((err as { code?: string }).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

afterEach(() => {
  setDefaultDevice('auto');
});

it('covers every kernel function, sync and async', () => {
  expect(kernels.map((k) => k.name).sort()).toEqual([...KERNEL_FUNCTIONS].sort());
});

it("the CPU path ('auto' and 'cpu' with host arrays) makes no device query", async () => {
  const binding = loadNative() as unknown as { cudaStatus: () => unknown };
  const spy = vi.spyOn(binding, 'cudaStatus');
  try {
    for (const k of kernels) {
      await k.call();
      await k.call({ device: 'auto' });
      await k.call({ device: 'cpu' });
    }
    expect(spy).not.toHaveBeenCalled();
  } finally {
    spy.mockRestore();
  }
});

for (const k of kernels) {
  describe(k.name, () => {
    it("'cpu' and 'auto' give the same result as no option (host arrays)", async () => {
      const ref = await k.call();
      expect(await k.call({ device: 'cpu' })).toEqual(ref);
      expect(await k.call({ device: 'auto' })).toEqual(ref);
      expect(await k.call({ device: undefined })).toEqual(ref);
    });

    it.skipIf(hasCuda)("'cuda' without a usable device: DeviceUnavailableError with its code", async () => {
      expectTyped(
        await errorOf(k, () => k.call({ device: 'cuda' })),
        DeviceUnavailableError,
        'ERR_UNIGAP_DEVICE_UNAVAILABLE',
        /device 'cuda' requested but no usable CUDA device/,
      );
    });

    it('a bad device value is a typed error naming the valid values', async () => {
      const err = await errorOf(k, () => k.call({ device: 'gpu' }));
      expectTyped(err, InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE', /device must be one of 'auto', 'cpu', 'cuda'/);
      expect((err as Error).message).toMatch(/did you mean 'cpu'\?/);
      expectTyped(await errorOf(k, () => k.call({ device: 0 })), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE');
    });

    it("a misspelled 'devcie' is an UnknownOptionError", async () => {
      expectTyped(
        await errorOf(k, () => k.call({ devcie: 'cpu' })),
        UnknownOptionError,
        'ERR_UNIGAP_UNKNOWN_OPTION',
        /unknown option 'devcie' \(did you mean 'device'\?\)/,
      );
    });

    it.skipIf(hasCuda)("setDefaultDevice('cuda') applies to calls without the option; 'auto' restores", async () => {
      const ref = await k.call();
      expect(setDefaultDevice('cuda')).toBe('auto');
      expectTyped(await errorOf(k, () => k.call()), DeviceUnavailableError, 'ERR_UNIGAP_DEVICE_UNAVAILABLE');
      expect(await k.call({ device: 'cpu' })).toEqual(ref); // the per-call option wins
      expect(setDefaultDevice('auto')).toBe('cuda');
      expect(getDefaultDevice()).toBe('auto');
      expect(await k.call()).toEqual(ref);
    });

    it('DeviceTensor inputs are never read on the CPU: typed errors before any native call', async () => {
      const kernelSpies = nativeKernelSpies();
      try {
        await deviceTensorChecks(k);
        for (const spy of kernelSpies) expect(spy).not.toHaveBeenCalled();
      } finally {
        kernelSpies.forEach((spy) => spy.mockRestore());
      }
    });

    it.skipIf(k.path === null)(
      "a wired path taken out of verifiedCudaPaths: 'auto' refuses it naming device: 'cuda'",
      async () => {
        const verified = verifiedCudaPaths as Set<string>;
        const path = k.path as string;
        expect(verified.has(path)).toBe(true);
        verified.delete(path);
        try {
          for (const extra of [undefined, { device: 'auto' }]) {
            const err = await errorOf(k, () => k.onDevice(extra));
            expectTyped(err, DeviceUnavailableError, 'ERR_UNIGAP_DEVICE_UNAVAILABLE', WIRED_UNVERIFIED);
            expect((err as Error).message).toContain(`the CUDA path '${path}' is not verified`);
          }
        } finally {
          verified.add(path);
        }
        // restored: the verified route's refusal again (no usable device here)
        expectTyped(
          await errorOf(k, () => k.onDevice()),
          DeviceUnavailableError,
          'ERR_UNIGAP_DEVICE_UNAVAILABLE',
          k.deviceMessage,
        );
      },
    );
  });
}

/** Spies on every native CUDA kernel entry point (never on the device queries). */
function nativeKernelSpies() {
  const binding = loadNative() as unknown as Record<string, (...a: never[]) => unknown>;
  return [
    'cudaLogprobsRun',
    'cudaLogprobsRunAsync',
    'cudaDpoFromLogits',
    'cudaDpoFromLogitsAsync',
    'cudaSimilarityRun',
    'cudaSimilarityRunAsync',
  ].map((name) => vi.spyOn(binding, name));
}

/** The refusals of DeviceTensor inputs under each device choice. */
async function deviceTensorChecks(k: Kernel): Promise<void> {
  expectTyped(
    await errorOf(k, () => k.onDevice()),
    DeviceUnavailableError,
    'ERR_UNIGAP_DEVICE_UNAVAILABLE',
    k.deviceMessage,
  );
  expectTyped(
    await errorOf(k, () => k.onDevice({ device: 'auto' })),
    DeviceUnavailableError,
    'ERR_UNIGAP_DEVICE_UNAVAILABLE',
    k.deviceMessage,
  );
  expectTyped(
    await errorOf(k, () => k.onDevice({ device: 'cpu' })),
    InvalidTypeError,
    'ERR_UNIGAP_INVALID_TYPE',
    /device 'cpu' was requested but an input is a DeviceTensor; download it/,
  );
  if (!hasCuda)
    expectTyped(
      await errorOf(k, () => k.onDevice({ device: 'cuda' })),
      DeviceUnavailableError,
      'ERR_UNIGAP_DEVICE_UNAVAILABLE',
      /no usable CUDA device/,
    );
}
