/**
 * The similarity facades' CUDA route (issue 9) without a GPU: the device binding is replaced by a fake
 * device (host buffers behind the handles; the "kernels" call the CPU similarity kernels on them), so
 * the routing decisions, argument validation, the native call each facade makes (op, dtype codes,
 * sizes, k, flags, outputs) and the results' shapes and placement are tested on every machine. The
 * CUDA kernels themselves are NOT exercised here (the GPU-only test at the end and bench/device/run.sh
 * do that); neither is the C++ unwrapping past its argument checks (tested against the real binding).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  DeviceTensor,
  DeviceUnavailableError,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  clipScore,
  cudaStatus,
  pairedCosine,
  retrievalRanks,
  retrievalRanksAsync,
  setDefaultDevice,
  similarityMatrix,
  similarityMatrixAsync,
  topkSimilarity,
  topkSimilarityAsync,
  verifiedCudaPaths,
} from '../lib/index.js';
import { resetCudaQueryCache } from '../lib/device.js';
import { FLOAT_DTYPE_CODES as DT, binding, installFakeDevice, view, type FakeDevice } from './fake-device.js';
import { randn } from './helpers.js';

const realCuda = cudaStatus().available;

const f32ToBf16 = (x: Float32Array) => {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => (v + 0x7fff + ((v >>> 16) & 1)) >>> 16);
};

// ---------------------------------------------------------------- the fake device's kernels

let calls: { op: number; call: Record<string, unknown> }[] = [];
let failRun = false;

/** What the device kernels compute, done by the CPU facade on the fake device's bytes. */
function fakeRun(op: number, c: Record<string, unknown>): void {
  if (failRun) throw Object.assign(new Error('cudaSimilarityRun: DEVICE_ERROR (fake)'), { code: 'ERR_UNIGAP_DEVICE' });
  calls.push({ op, call: c });
  const n = c.n as number;
  const m = c.m as number;
  const d = c.d as number;
  const ad = DT[c.aDtype as number];
  const bd = DT[c.bDtype as number];
  const A = { data: view(c.a, ad, n * d), dims: [n, d], dtype: ad };
  const B = { data: view(c.b, bd, m * d), dims: [m, d], dtype: bd };
  const normalize = c.normalize as boolean;
  if (op === 0) view(c.out, 'f32', n).set(pairedCosine(A, B, { device: 'cpu' }));
  else if (op === 1)
    similarityMatrix(A, B, {
      device: 'cpu',
      normalize,
      scale: c.scale as number,
      bias: c.bias as number,
      out: view(c.out, 'f32', n * m) as Float32Array,
    });
  else if (op === 2) {
    const k = c.k as number;
    const r = topkSimilarity(A, B, k, { device: 'cpu', normalize });
    view(c.indices, 'i32', n * k).set(r.indices);
    view(c.scores, 'f32', n * k).set(r.scores);
  } else view(c.ranks, 'f64', n).set(retrievalRanks(A, B, { device: 'cpu', normalize }).ranks);
}

// ---------------------------------------------------------------- inputs

const N = 6;
const M = 9;
const D = 5;
const hA = { data: randn(N * D, 1), dims: [N, D] };
const hB = { data: randn(M * D, 2), dims: [M, D] };
const hP = { data: randn(N * D, 3), dims: [N, D] };
const hB16 = { data: f32ToBf16(randn(M * D, 4)), dims: [M, D], dtype: 'bf16' as const };

describe.skipIf(realCuda)('similarity on DeviceTensors, fake device (no GPU needed)', () => {
  let fake: FakeDevice;
  beforeEach(() => {
    fake = installFakeDevice({ cc: '9.0', kernels: { cudaSimilarityRun: fakeRun } });
    calls = [];
    failRun = false;
  });
  afterEach(() => {
    fake.uninstall();
    setDefaultDevice('auto');
  });

  const up = (x: { data: Float32Array | Uint16Array; dims: number[]; dtype?: 'bf16' }) =>
    DeviceTensor.upload(x.data, { shape: x.dims, dtype: x.dtype });

  const errorOf = (run: () => unknown): unknown => {
    try {
      run();
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it("'auto' on a compute capability 9.0 device takes every verified path; results equal the CPU's", async () => {
    for (const path of ['similarity.pairedCosine', 'similarity.matrix', 'similarity.topk', 'similarity.ranks'])
      expect(verifiedCudaPaths.has(path), path).toBe(true);
    const a = up(hA);
    const b = up(hB);
    const p = up(hP);
    const cos = pairedCosine(a, p);
    expect(cos).toBeInstanceOf(DeviceTensor);
    expect(cos.download()).toEqual(pairedCosine(hA, hP));
    expect(similarityMatrix(a, b, { device: 'auto', scale: 10 }).download()).toEqual(
      similarityMatrix(hA, hB, { scale: 10 }),
    );
    const tk = topkSimilarity(a, b, 2);
    expect(tk.indices.download()).toEqual(topkSimilarity(hA, hB, 2).indices);
    expect(retrievalRanks(a, p)).toEqual(retrievalRanks(hA, hP));
    expect(clipScore(a, p)).toBe(clipScore(hA, hP));
    expect((await similarityMatrixAsync(a, b)).download()).toEqual(similarityMatrix(hA, hB));
    expect(calls.map((c) => c.op)).toEqual([0, 1, 2, 3, 0, 1]);
    // host arrays stay on the CPU
    expect(similarityMatrix(hA, hB)).toBeInstanceOf(Float32Array);
    expect(calls).toHaveLength(6);
  });

  it("'auto' on compute capability 8.6 (compiled, not verified): a typed error naming device: 'cuda', no kernel call", () => {
    fake.cc = '8.6';
    resetCudaQueryCache();
    const a = up(hA);
    const b = up(hB);
    for (const [run, path] of [
      [() => similarityMatrix(a, b), 'similarity.matrix'],
      [() => similarityMatrix(a, b, { device: 'auto' }), 'similarity.matrix'],
      [() => topkSimilarity(a, b, 2), 'similarity.topk'],
      [() => pairedCosine(a, up(hP)), 'similarity.pairedCosine'],
      [() => retrievalRanks(a, up(hP)), 'similarity.ranks'],
      [() => clipScore(a, up(hP)), 'similarity.pairedCosine'],
    ] as const) {
      const err = errorOf(run);
      expect(err).toBeInstanceOf(DeviceUnavailableError);
      expect((err as { code: string }).code).toBe('ERR_UNIGAP_DEVICE_UNAVAILABLE');
      expect((err as Error).message).toContain(
        `auto: the CUDA path '${path}' was verified on compute capability 9.x only; CUDA device 0 (Fake GPU) has compute capability 8.6, so 'auto' does not take it; pass device: 'cuda' to run it anyway`,
      );
    }
    expect(calls).toHaveLength(0);
    // the explicit opt-in runs it
    expect(similarityMatrix(a, b, { device: 'cuda' }).download()).toEqual(similarityMatrix(hA, hB));
    expect(calls).toHaveLength(1);
  });

  it("device: 'cuda' (per call or as the default) runs the CUDA kernels; results equal the CPU's", async () => {
    const a = up(hA);
    const b = up(hB);
    const p = up(hP);
    const cos = pairedCosine(a, p, { device: 'cuda' });
    expect(cos).toBeInstanceOf(DeviceTensor);
    expect(cos.shape).toEqual([N]);
    expect(cos.download()).toEqual(pairedCosine(hA, hP));

    const mat = similarityMatrix(a, b, { device: 'cuda', scale: 100, bias: -1 });
    expect(mat.shape).toEqual([N, M]);
    expect(mat.dtype).toBe('f32');
    expect(mat.download()).toEqual(similarityMatrix(hA, hB, { scale: 100, bias: -1 }));
    expect(calls.at(-1)).toMatchObject({ op: 1, call: { n: N, m: M, d: D, scale: 100, bias: -1, flags: 0 } });

    setDefaultDevice('cuda');
    const tk = topkSimilarity(a, b, 3, { normalize: false });
    const want = topkSimilarity(hA, hB, 3, { normalize: false, device: 'cpu' });
    expect(tk.indices.shape).toEqual([N, 3]);
    expect(tk.indices.download()).toEqual(want.indices);
    expect(tk.scores.download()).toEqual(want.scores);
    expect(calls.at(-1)).toMatchObject({ op: 2, call: { k: 3, normalize: false } });

    const rk = retrievalRanks(a, p);
    expect(rk).toEqual(retrievalRanks(hA, hP, { device: 'cpu' }));
    expect(clipScore(a, p)).toBe(clipScore(hA, hP, { device: 'cpu' }));
    expect(clipScore(a, p, { reduction: 'none' })).toEqual(clipScore(hA, hP, { reduction: 'none', device: 'cpu' }));

    // async twins
    expect((await similarityMatrixAsync(a, b)).download()).toEqual(similarityMatrix(hA, hB, { device: 'cpu' }));
    expect((await topkSimilarityAsync(a, b, 2)).indices.download()).toEqual(
      topkSimilarity(hA, hB, 2, { device: 'cpu' }).indices,
    );
    expect(await retrievalRanksAsync(a, p)).toEqual(retrievalRanks(hA, hP, { device: 'cpu' }));
    // the temporaries of clipScore and retrievalRanks were freed; the returned tensors are live
    for (const t of [a, b, p, cos, mat, tk.indices, tk.scores]) t.dispose();
    expect(fake.live).toBeGreaterThan(0); // the async results above are the caller's
  });

  it("a path taken out of verifiedCudaPaths: 'auto' refuses it as unverified (and only that path)", () => {
    const verified = verifiedCudaPaths as Set<string>;
    verified.delete('similarity.topk');
    try {
      const a = up(hA);
      const b = up(hB);
      const err = errorOf(() => topkSimilarity(a, b, 2));
      expect(err).toBeInstanceOf(DeviceUnavailableError);
      expect((err as Error).message).toMatch(
        /the CUDA path 'similarity.topk' is not verified on a GPU yet, so 'auto' does not take it; pass device: 'cuda'/,
      );
      expect(calls).toHaveLength(0);
      expect(similarityMatrix(a, b).download()).toEqual(similarityMatrix(hA, hB)); // a verified one still runs
      expect(topkSimilarity(a, b, 2, { device: 'cuda' }).indices.download()).toEqual(topkSimilarity(hA, hB, 2).indices);
      expect(calls.map((c) => c.op)).toEqual([1, 2]);
    } finally {
      verified.add('similarity.topk');
    }
  });

  it('mixed dtypes (f32 queries x bf16 candidates) pass their dtype codes; the {data, dims} form works', () => {
    const a = up(hA);
    const b = up(hB16);
    const got = topkSimilarity({ data: a, dims: [N, D] }, { data: b, dims: [M, D], dtype: 'bf16' }, 4, {
      device: 'cuda',
    });
    expect(calls.at(-1)?.call).toMatchObject({ aDtype: 0, bDtype: 2, n: N, m: M, d: D, k: 4 });
    expect(got.indices.download()).toEqual(topkSimilarity(hA, hB16, 4).indices);
  });

  it("precision: 'tf32' sets the flag bit on the GPU and is ignored on the CPU; bad values are typed errors", () => {
    const a = up(hA);
    const b = up(hB);
    similarityMatrix(a, b, { device: 'cuda', precision: 'tf32' });
    expect(calls.at(-1)?.call.flags).toBe(1);
    topkSimilarity(a, b, 2, { device: 'cuda', precision: 'exact' });
    expect(calls.at(-1)?.call.flags).toBe(0);
    retrievalRanks(a, up(hP), { device: 'cuda', precision: 'tf32' });
    expect(calls.at(-1)?.call.flags).toBe(1);
    // the CPU computes exactly whatever precision allows
    expect(similarityMatrix(hA, hB, { precision: 'tf32' })).toEqual(similarityMatrix(hA, hB));
    expect(topkSimilarity(hA, hB, 2, { precision: 'tf32' })).toEqual(topkSimilarity(hA, hB, 2));
    expect(() => similarityMatrix(hA, hB, { precision: 'fp8' as never })).toThrow(InvalidValueError);
    expect(() => similarityMatrix(hA, hB, { precison: 'tf32' } as never)).toThrow(UnknownOptionError);
    expect(() => similarityMatrix(a, b, { device: 'cuda', precision: 'half' as never })).toThrow(
      /precision must be one of 'exact', 'tf32'/,
    );
    expect(() => pairedCosine(a, up(hP), { device: 'cuda', precision: 'tf32' } as never)).toThrow(UnknownOptionError);
  });

  it('bad device inputs are typed errors before any allocation or kernel call', () => {
    const a = up(hA);
    const b = up(hB);
    const p = up(hP);
    const allocs = fake.live;
    const cases: [() => unknown, abstract new (...x: never[]) => Error, string, RegExp][] = [
      [
        () => similarityMatrix(a, hB as never, { device: 'cuda' }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /both inputs must be on the device/,
      ],
      [
        () => pairedCosine(up({ data: new Float32Array(4), dims: [4] } as never), p, { device: 'cuda' }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /shape/,
      ],
      [
        () => similarityMatrix(DeviceTensor.upload(new Float64Array(N * D), { shape: [N, D] }), b, { device: 'cuda' }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /f64, which the GPU kernels do not support \(UNSUPPORTED_DTYPE\)/,
      ],
      [
        () => topkSimilarity(a, DeviceTensor.upload(new Int32Array(M * D), { shape: [M, D] }), 2, { device: 'cuda' }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /must hold f32, bf16 or f16, got i32/,
      ],
      [
        () => similarityMatrix(a, up({ data: randn(M * 4, 9), dims: [M, 4] }), { device: 'cuda' }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /D = 5 but texts have D = 4/,
      ],
      [
        () => pairedCosine(a, b, { device: 'cuda' }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /pairs need equal N/,
      ],
      [
        () => retrievalRanks(a, b, { device: 'cuda' }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /pairs need equal N/,
      ],
      [() => topkSimilarity(a, b, M + 1, { device: 'cuda' }), InvalidValueError, 'ERR_UNIGAP_OUT_OF_RANGE', /k/],
      [() => topkSimilarity(a, b, 0, { device: 'cuda' }), InvalidValueError, 'ERR_UNIGAP_OUT_OF_RANGE', /k/],
      [
        () => similarityMatrix({ data: a, dims: [N, D], dtype: 'bf16' }, b, { device: 'cuda' }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /images.dtype is 'bf16' but images.data holds f32/,
      ],
      [
        () => similarityMatrix({ data: a, dims: [D, N + 1] }, b, { device: 'cuda' }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /need 35/,
      ],
      [
        () => similarityMatrix(a, b, { device: 'cuda', out: new Float32Array(N * M) as never }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /out must be a DeviceTensor/,
      ],
      [
        () => similarityMatrix(a, b, { device: 'cuda', scale: NaN }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /scale/,
      ],
    ];
    for (const [run, cls, code, msg] of cases) {
      let err: unknown;
      try {
        run();
      } catch (e) {
        err = e;
      }
      expect(err, String(msg)).toBeInstanceOf(cls);
      expect((err as { code: string }).code).toBe(code);
      expect((err as Error).message).toMatch(msg);
    }
    expect(calls).toHaveLength(0);
    // the wrong-dtype / wrong-shape uploads above allocated; nothing else did
    expect(fake.live).toBe(allocs + 4);
    const gone = up(hA);
    gone.dispose();
    expect(() => similarityMatrix(gone, b, { device: 'cuda' })).toThrow(/disposed/);
    // a disposed, wrong-size or wrong-dtype `out` tensor
    const small = DeviceTensor.empty([N * M - 1], 'f32');
    expect(() => similarityMatrix(a, b, { device: 'cuda', out: small })).toThrow(ShapeMismatchError);
    const wrong = DeviceTensor.empty([N * M], 'f64');
    expect(() => similarityMatrix(a, b, { device: 'cuda', out: wrong })).toThrow(/out must be f32/);
    expect(calls).toHaveLength(0);
  });

  it('a failing kernel frees the outputs it allocated and rethrows; the async twins reject', async () => {
    const a = up(hA);
    const b = up(hB);
    const p = up(hP);
    const before = fake.live;
    failRun = true;
    expect(() => similarityMatrix(a, b, { device: 'cuda' })).toThrow(/DEVICE_ERROR/);
    expect(() => topkSimilarity(a, b, 2, { device: 'cuda' })).toThrow(/DEVICE_ERROR/);
    expect(() => clipScore(a, p, { device: 'cuda' })).toThrow(/DEVICE_ERROR/);
    await expect(retrievalRanksAsync(a, p, { device: 'cuda' })).rejects.toThrow(/DEVICE_ERROR/);
    await expect(similarityMatrixAsync(a, b, { device: 'cuda' })).rejects.toThrow(/DEVICE_ERROR/);
    expect(fake.live).toBe(before);
    // a caller's `out` is never freed by a failure
    const out = DeviceTensor.empty([N, M], 'f32');
    expect(() => similarityMatrix(a, b, { device: 'cuda', out })).toThrow(/DEVICE_ERROR/);
    expect(out.disposed).toBe(false);
  });

  it("device 'cpu' with DeviceTensor inputs is refused (never read on the CPU)", () => {
    const a = up(hA);
    const b = up(hB);
    expect(() => similarityMatrix(a, b, { device: 'cpu' })).toThrow(InvalidTypeError);
    expect(() => similarityMatrix(a, b, { device: 'cpu' })).toThrow(/download it/);
    expect(calls).toHaveLength(0);
  });

  it("host arrays with an explicit 'cuda' are refused (upload them); 'auto' keeps them on the CPU", () => {
    expect(() => similarityMatrix(hA, hB, { device: 'cuda' })).toThrow(/upload them with DeviceTensor.upload/);
    expect(similarityMatrix(hA, hB, { device: 'auto' })).toEqual(similarityMatrix(hA, hB, { device: 'cpu' }));
    expect(calls).toHaveLength(0);
  });
});

describe('the N-API binding re-checks its arguments before any CUDA call', () => {
  const run = (op: unknown, call: unknown) => () =>
    (binding.cudaSimilarityRun as unknown as (o: unknown, c: unknown) => void)(op, call);
  const base = { aDtype: 0, bDtype: 0, n: 2, m: 2, d: 3, normalize: true, scale: 1, bias: 0, k: 1, flags: 0 };
  it('op, dtypes, sizes and handles', () => {
    expect(run(4, base)).toThrow(/op must be 0..3/);
    expect(run(0, 'x')).toThrow(/call must be an object/);
    let err: unknown;
    try {
      run(1, { ...base, aDtype: 1 })();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect((err as { code: string }).code).toBe('ERR_UNIGAP_INVALID_DTYPE');
    expect((err as Error).message).toMatch(/f64 is not supported on the GPU \(UNSUPPORTED_DTYPE\)/);
    expect(run(1, { ...base, bDtype: 7 })).toThrow(/must be f32, bf16 or f16/);
    expect(run(1, { ...base, d: 0 })).toThrow(/d >= 1/);
    expect(run(2, { ...base, k: 3 })).toThrow(/k must be in \[1, m\]/);
    expect(run(1, { ...base, a: {} })).toThrow(/not a device buffer handle/);
  });
});

describe.skipIf(!realCuda)('on a real GPU (bench/device/node_smoke.mjs runs the same with the CUDA build)', () => {
  it("device: 'cuda' matches the CPU on f32 and bf16 inputs", () => {
    const a = DeviceTensor.upload(hA.data, { shape: hA.dims });
    const b = DeviceTensor.upload(hB16.data, { shape: hB16.dims, dtype: 'bf16' });
    const got = similarityMatrix(a, b, { device: 'cuda', scale: 10 }).download() as Float32Array;
    const want = similarityMatrix(hA, hB16, { scale: 10 });
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4);
    const tk = topkSimilarity(a, b, 3, { device: 'cuda' });
    expect(tk.indices.download()).toEqual(topkSimilarity(hA, hB16, 3).indices);
  });
});
