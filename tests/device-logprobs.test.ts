/**
 * The log-prob and DPO-from-logits facades' CUDA route (issue 8) without a GPU: the device binding is
 * replaced by a fake device (host buffers behind the handles; the fake cudaLogprobsRun /
 * cudaDpoFromLogits call the real CPU binding on those bytes), so routing, validation, the exact
 * native call each facade makes (mode, dtype code, sizes, flags, which outputs, which handles) and the
 * results' shapes, dtypes and placement are tested on every machine. The CUDA kernels themselves are
 * NOT exercised here: the GPU-only suite at the end, bench/device/facade_smoke.mjs and
 * bench/device/run.sh do that.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  DeviceTensor,
  DeviceUnavailableError,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  cudaStatus,
  dpoLossFromLogits,
  dpoLossFromLogitsAsync,
  logprobsBackward,
  logprobsBackwardAsync,
  scoreLogprobs,
  scoreLogprobsAsync,
  setDefaultDevice,
  verifiedCudaPaths,
} from '../lib/index.js';
import { resetCudaQueryCache } from '../lib/device.js';
import {
  FLOAT_DTYPE_CODES,
  binding,
  installFakeDevice,
  view,
  viewOrNull,
  type FakeBuf,
  type FakeDevice,
} from './fake-device.js';
import { randn } from './helpers.js';

const status = cudaStatus();
const realCuda = status.available;

const f32ToBf16 = (x: Float32Array) => {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => (v + 0x7fff + ((v >>> 16) & 1)) >>> 16);
};

// ---------------------------------------------------------------- the fake device's kernels

type Call = Record<string, unknown>;
let calls: { kind: 'logprobs' | 'dpo'; mode: number; call: Call; args?: Call; out?: Call }[] = [];
let failRun = false;

const f32 = (h: unknown, n: number) => viewOrNull(h, 'f32', n);
const logitsView = (h: unknown, dtype: number, n: number) => viewOrNull(h, FLOAT_DTYPE_CODES[dtype], n);

/** The CPU binding's call on the fake device's bytes (inputs; outputs too unless inputsOnly). */
function cpuCall(c: Call, inputsOnly: boolean): Call {
  const n = c.nTokens as number;
  const v = c.vocab as number;
  const ns = c.nSeq as number;
  const dt = c.dtype as number;
  const base: Call = {
    logits: logitsView(c.logits, dt, n * v),
    dtype: dt,
    nTokens: n,
    vocab: v,
    labels: viewOrNull(c.labels, 'i32', n),
    mask: viewOrNull(c.mask, 'u8', n),
    ignoreIndex: c.ignoreIndex,
    offsets: viewOrNull(c.offsets, 'i64', ns + 1),
    nSeq: ns,
    shift: c.shift,
    temperature: c.temperature,
  };
  if (inputsOnly)
    return {
      ...base,
      ...Object.fromEntries(
        ['tokenLogp', 'tokenEntropy', 'tokenCorrect', 'tokenLse', 'seqSum', 'seqCount', 'seqMean', 'seqLogitSum'].map(
          (k) => [k, null],
        ),
      ),
      gradSeq: null,
      gradToken: null,
      inputLse: null,
      gradOut: null,
    };
  return {
    ...base,
    tokenLogp: f32(c.tokenLogp, n),
    tokenEntropy: f32(c.tokenEntropy, n),
    tokenCorrect: viewOrNull(c.tokenCorrect, 'u8', n),
    tokenLse: f32(c.tokenLse, n),
    seqSum: f32(c.seqSum, ns),
    seqCount: viewOrNull(c.seqCount, 'i32', ns),
    seqMean: f32(c.seqMean, ns),
    seqLogitSum: viewOrNull(c.seqLogitSum, 'f64', ns),
    gradSeq: f32(c.gradSeq, ns),
    gradToken: f32(c.gradToken, n),
    inputLse: f32(c.inputLse, n),
    gradOut: logitsView(c.gradOut, dt, n * v),
  };
}

function fakeLogprobs(mode: number, c: Call): void {
  if (failRun) throw Object.assign(new Error('cudaLogprobsRun: DEVICE_ERROR (fake)'), { code: 'ERR_UNIGAP_DEVICE' });
  calls.push({ kind: 'logprobs', mode, call: c });
  (binding.logprobsRun as unknown as (m: number, c: Call) => void)(mode, cpuCall(c, false));
}

function fakeDpo(c: Call, args: Call, out: Call): void {
  if (failRun) throw Object.assign(new Error('cudaDpoFromLogits: DEVICE_ERROR (fake)'), { code: 'ERR_UNIGAP_DEVICE' });
  calls.push({ kind: 'dpo', mode: -1, call: c, args, out });
  const n = (c.nTokens as number) * (c.vocab as number);
  (binding.dpoFromLogits as unknown as (c: Call, a: Call, o: Call) => void)(cpuCall(c, true), args, {
    ...out,
    gradOut: logitsView(out.gradOut, c.dtype as number, n),
  });
}

const kernels = { cudaLogprobsRun: fakeLogprobs, cudaDpoFromLogits: fakeDpo };

// ---------------------------------------------------------------- inputs

// 2 pairs ([chosen; rejected] = 4 sequences) of T = 5 tokens over V = 11.
const B = 2;
const S = 2 * B;
const T = 5;
const V = 11;
const N = S * T;
const hLogits = randn(N * V, 21, 2);
const hLogits16 = f32ToBf16(randn(N * V, 22, 2));
const hLabels = Int32Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : (i * 5) % V));
const hMask = Uint8Array.from({ length: N }, (_, i) => (i % 6 === 4 ? 0 : 1));
const hSeqUp = Float32Array.of(0.5, -1, 2, 0.25);
const hTokUp = randn(N, 23, 0.1);
const refs = { referenceChosen: Float64Array.of(-30, -28), referenceRejected: Float64Array.of(-31, -25) };
// Packed, unequal sequences (one empty) for the [N, V] layout.
const hOffsets = Int32Array.of(0, 7, 7, 12, N);

const shape3 = [S, T, V];
const fwdOpts = { shift: true, temperature: 0.7, entropy: true, accuracy: true, logitSums: true, ignoreIndex: -100 };

describe.skipIf(realCuda)('log-probs and DPO on DeviceTensors, fake device (no GPU needed)', () => {
  let fake: FakeDevice;
  beforeEach(() => {
    fake = installFakeDevice({ cc: '9.0', kernels });
    calls = [];
    failRun = false;
  });
  afterEach(() => {
    fake.uninstall();
    setDefaultDevice('auto');
  });

  const upLogits = () => DeviceTensor.upload(hLogits.slice(), { shape: shape3 });
  const upLogits16 = () => DeviceTensor.upload(hLogits16.slice(), { shape: [N, V], dtype: 'bf16' });
  const upLabels = () => DeviceTensor.upload(hLabels);
  const upMask = () => DeviceTensor.upload(hMask);

  const errorOf = async (run: () => unknown): Promise<unknown> => {
    try {
      await run();
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it("'auto' on a compute capability 9.0 device takes every verified path; results equal the CPU's", async () => {
    for (const path of ['logprobs.forward', 'logprobs.forwardBackward', 'logprobs.backward', 'dpo.fromLogits'])
      expect(verifiedCudaPaths.has(path), path).toBe(true);
    const z = upLogits();
    const y = upLabels();
    const host = { shape: shape3 };
    expect(scoreLogprobs(z, y).seqSum.download()).toEqual(scoreLogprobs(hLogits, hLabels, host).seqSum);
    const fb = scoreLogprobs(z, y, { device: 'auto', gradient: { seq: hSeqUp } });
    expect(fb.gradient!.download()).toEqual(
      scoreLogprobs(hLogits, hLabels, { ...host, gradient: { seq: hSeqUp } }).gradient,
    );
    expect(logprobsBackward(z, y, { seq: hSeqUp }).gradient.download()).toEqual(
      logprobsBackward(hLogits, hLabels, { seq: hSeqUp }, host).gradient,
    );
    expect(dpoLossFromLogits(z, y, refs).loss).toBe(dpoLossFromLogits(hLogits, hLabels, { ...host, ...refs }).loss);
    expect((await scoreLogprobsAsync(z, y)).seqSum.download()).toEqual(scoreLogprobs(hLogits, hLabels, host).seqSum);
    expect((await dpoLossFromLogitsAsync(z, y, refs)).loss).toBe(
      dpoLossFromLogits(hLogits, hLabels, { ...host, ...refs }).loss,
    );
    expect(calls.map((c) => `${c.kind} ${c.mode}`)).toEqual([
      'logprobs 0',
      'logprobs 2',
      'logprobs 1',
      'dpo -1',
      'logprobs 0',
      'dpo -1',
    ]);
    // host arrays stay on the CPU
    expect(scoreLogprobs(hLogits, hLabels, host).seqSum).toBeInstanceOf(Float32Array);
    expect(calls).toHaveLength(6);
  });

  it("'auto' on compute capability 8.6 (compiled, not verified) refuses; 'cpu' refuses DeviceTensors; no kernel call", async () => {
    fake.cc = '8.6';
    resetCudaQueryCache();
    const z = upLogits();
    const y = upLabels();
    const runs: [() => unknown, string][] = [
      [() => scoreLogprobs(z, y), 'logprobs.forward'],
      [() => scoreLogprobs(z, y, { gradient: { seq: hSeqUp } }), 'logprobs.forwardBackward'],
      [() => logprobsBackward(z, y, { seq: hSeqUp }), 'logprobs.backward'],
      [() => dpoLossFromLogits(z, y, { device: 'auto', ...refs }), 'dpo.fromLogits'],
      [() => scoreLogprobsAsync(z, y), 'logprobs.forward'],
      [() => dpoLossFromLogitsAsync(z, y, refs), 'dpo.fromLogits'],
    ];
    for (const [run, path] of runs) {
      const err = await errorOf(run);
      expect(err).toBeInstanceOf(DeviceUnavailableError);
      expect((err as { code: string }).code).toBe('ERR_UNIGAP_DEVICE_UNAVAILABLE');
      expect((err as Error).message).toContain(
        `auto: the CUDA path '${path}' was verified on compute capability 9.x only; CUDA device 0 (Fake GPU) has compute capability 8.6, so 'auto' does not take it; pass device: 'cuda' to run it anyway`,
      );
    }
    // a DeviceTensor anywhere (here only the upstream) routes the call to the device gate
    expect(() =>
      scoreLogprobs(hLogits, hLabels, { shape: shape3, gradient: { token: DeviceTensor.upload(hTokUp) as never } }),
    ).toThrow(/verified on compute capability 9\.x only/);
    expect(() => scoreLogprobs(z, y, { device: 'cpu' })).toThrow(/download it \(tensor.download\(\)\) first/);
    expect(calls).toHaveLength(0);
    // the explicit opt-in runs it
    expect(scoreLogprobs(z, y, { device: 'cuda' }).seqSum.download()).toEqual(
      scoreLogprobs(hLogits, hLabels, { shape: shape3 }).seqSum,
    );
    expect(calls).toHaveLength(1);
  });

  it("forward, f32 [B, T, V]: DeviceTensor results equal the CPU's; the native call and its outputs", () => {
    const z = upLogits();
    const y = upLabels();
    const m = upMask();
    const before = fake.live;
    const r = scoreLogprobs(z, y, { device: 'cuda', mask: m, ...fwdOpts });
    const want = scoreLogprobs(hLogits, hLabels, { shape: shape3, mask: hMask, ...fwdOpts });
    const c = calls.at(-1)!;
    expect(c).toMatchObject({ kind: 'logprobs', mode: 0 });
    expect(c.call).toMatchObject({
      dtype: 0,
      nTokens: N,
      vocab: V,
      nSeq: S,
      shift: true,
      temperature: 0.7,
      ignoreIndex: -100,
      gradOut: null,
      gradSeq: null,
      gradToken: null,
      inputLse: null,
    });
    expect((c.call.logits as FakeBuf).addr).toBe(z.pointer);
    expect((c.call.mask as FakeBuf).addr).toBe(m.pointer);
    // the default offsets (from the shape) went up as int64 and were freed after the call
    expect((c.call.offsets as FakeBuf).freed).toBe(true);
    expect(Array.from(view(c.call.offsets, 'i64', S + 1), Number)).toEqual([0, 5, 10, 15, 20]);
    for (const [k, t, shape, dtype] of [
      ['tokenLogprobs', r.tokenLogprobs, [N], 'f32'],
      ['tokenLse', r.tokenLse, [N], 'f32'],
      ['tokenEntropy', r.tokenEntropy, [N], 'f32'],
      ['tokenCorrect', r.tokenCorrect, [N], 'u8'],
      ['seqSum', r.seqSum, [S], 'f32'],
      ['seqCount', r.seqCount, [S], 'i32'],
      ['seqMean', r.seqMean, [S], 'f32'],
      ['seqLogitSum', r.seqLogitSum, [S], 'f64'],
    ] as const) {
      expect(t, k).toBeInstanceOf(DeviceTensor);
      expect(t!.shape, k).toEqual(shape);
      expect(t!.dtype, k).toBe(dtype);
      expect(t!.download(), k).toEqual(want[k]);
    }
    expect(r.gradient).toBeUndefined();
    expect(fake.live).toBe(before + 8); // the eight outputs, nothing else
  });

  it("bf16 [N, V] with host, i64 and i32 device offsets; output: 'host' gives the CPU's typed arrays", async () => {
    const z = upLogits16();
    const y = upLabels();
    const o = { dtype: 'bf16' as const, shape: [N, V], offsets: hOffsets, shift: true, entropy: true };
    const want = scoreLogprobs(hLogits16, hLabels, o);
    const host = scoreLogprobs(z, y, { ...o, device: 'cuda', output: 'host' });
    expect(host).toEqual(want);
    expect(calls.at(-1)?.call).toMatchObject({ dtype: 2, nTokens: N, vocab: V, nSeq: 4 });
    // a bare DeviceTensor: shape and dtype come from the tensor
    const before = fake.live;
    const offI64 = DeviceTensor.upload(BigInt64Array.from(hOffsets, (x) => BigInt(x)));
    const r1 = scoreLogprobs(z, y, { offsets: offI64, shift: true, entropy: true, device: 'cuda', output: 'host' });
    expect(r1).toEqual(want);
    expect((calls.at(-1)?.call.offsets as FakeBuf).addr).toBe(offI64.pointer); // passed as is
    const offI32 = DeviceTensor.upload(hOffsets);
    const r2 = await scoreLogprobsAsync({ data: z, dims: [N, V], dtype: 'bf16' }, y, {
      offsets: offI32,
      shift: true,
      entropy: true,
      device: 'cuda',
      output: 'host',
    });
    expect(r2).toEqual(want);
    expect((calls.at(-1)?.call.offsets as FakeBuf).freed).toBe(true); // an int64 temporary
    expect(fake.live).toBe(before + 2); // the two offsets tensors: 'host' freed every device output
  });

  it('fused forward + backward: a new gradient, a given `out`, and in place over the logits', async () => {
    const y = upLabels();
    const tok = DeviceTensor.upload(hTokUp);
    const o = { ...fwdOpts, gradient: { seq: hSeqUp, token: tok } };
    const want = scoreLogprobs(hLogits, hLabels, { shape: shape3, ...o, gradient: { seq: hSeqUp, token: hTokUp } });
    const z = upLogits();
    const r = scoreLogprobs(z, y, { device: 'cuda', ...o });
    expect(calls.at(-1)).toMatchObject({ mode: 2, call: { dtype: 0 } });
    expect((calls.at(-1)?.call.gradSeq as FakeBuf).freed).toBe(true); // the uploaded host upstream
    expect((calls.at(-1)?.call.gradToken as FakeBuf).addr).toBe(tok.pointer);
    expect(r.gradient).toBeInstanceOf(DeviceTensor);
    expect(r.gradient!.shape).toEqual(shape3);
    expect(r.gradient!.dtype).toBe('f32');
    expect(r.gradient!.download()).toEqual(want.gradient);
    expect(r.tokenLogprobs.download()).toEqual(want.tokenLogprobs);

    const out = DeviceTensor.empty([N * V], 'f32');
    const seqDev = DeviceTensor.upload(hSeqUp);
    const r2 = await scoreLogprobsAsync(z, y, {
      device: 'cuda',
      ...fwdOpts,
      gradient: { seq: seqDev, token: tok, out },
    });
    expect(r2.gradient).toBe(out);
    expect(out.download()).toEqual(want.gradient);
    expect((calls.at(-1)?.call.gradSeq as FakeBuf).addr).toBe(seqDev.pointer);

    const inPlace = scoreLogprobs(z, y, {
      device: 'cuda',
      ...fwdOpts,
      gradient: { seq: hSeqUp, token: tok, inPlace: true },
    });
    expect(inPlace.gradient).toBe(z);
    expect((calls.at(-1)?.call.gradOut as FakeBuf).addr).toBe(z.pointer);
    expect(z.download()).toEqual(want.gradient);
    expect(inPlace.seqSum.download()).toEqual(want.seqSum);
  });

  it('backward: with the stored LSE (a DeviceTensor from the forward), recomputed, in place, async; bf16', async () => {
    const z = upLogits16();
    const y = upLabels();
    const m = upMask();
    const o = { dtype: 'bf16' as const, shape: [N, V], offsets: hOffsets, mask: hMask, temperature: 1.3 };
    const up = { seq: hSeqUp, token: hTokUp };
    const want = logprobsBackward(hLogits16, hLabels, up, o).gradient;
    const dev = { offsets: hOffsets, mask: m, temperature: 1.3, device: 'cuda' as const };
    const tok = DeviceTensor.upload(hTokUp);
    const fwd = scoreLogprobs(z, y, dev);
    const g1 = logprobsBackward(z, y, { seq: hSeqUp, token: tok }, { ...dev, lse: fwd.tokenLse });
    expect(calls.at(-1)).toMatchObject({ mode: 1, call: { dtype: 2, nSeq: 4, temperature: 1.3 } });
    expect((calls.at(-1)?.call.inputLse as FakeBuf).addr).toBe(fwd.tokenLse.pointer);
    expect(calls.at(-1)?.call.tokenLogp).toBeNull();
    expect(g1.gradient.shape).toEqual([N, V]);
    expect(g1.gradient.dtype).toBe('bf16');
    // the CPU's own stored-LSE backward on the same data gives the same bits
    expect(g1.gradient.download()).toEqual(
      logprobsBackward(hLogits16, hLabels, up, { ...o, lse: scoreLogprobs(hLogits16, hLabels, o).tokenLse }).gradient,
    );
    const g2 = await logprobsBackwardAsync(z, y, { seq: hSeqUp, token: tok }, dev);
    expect(calls.at(-1)?.call.inputLse).toBeNull();
    expect(g2.gradient.download()).toEqual(want);
    const g3 = logprobsBackward(z, y, { token: tok, seq: DeviceTensor.upload(hSeqUp) }, { ...dev, inPlace: true });
    expect(g3.gradient).toBe(z);
    expect(z.download()).toEqual(want);
  });

  it('dpoLossFromLogits: host results and metrics equal the CPU, the gradient a DeviceTensor (new / in place / none)', async () => {
    for (const dtype of ['f32', 'bf16'] as const) {
      const host = dtype === 'f32' ? hLogits : hLogits16;
      const o = {
        shape: shape3,
        shift: true,
        ...refs,
        beta: 0.2,
        lossType: ['sigmoid', 'sft'] as const,
        lossWeights: [1, 0.5],
      };
      const want = dpoLossFromLogits(host, hLabels, { ...o, dtype, lossType: [...o.lossType] });
      const z = DeviceTensor.upload(host.slice(), { shape: shape3, dtype });
      const y = upLabels();
      const before = fake.live;
      const r = dpoLossFromLogits(z, y, { ...o, lossType: [...o.lossType], device: 'cuda' });
      const c = calls.at(-1)!;
      expect(c.kind).toBe('dpo');
      expect(c.call).toMatchObject({ dtype: dtype === 'f32' ? 0 : 2, nTokens: N, vocab: V, nSeq: S, shift: true });
      expect(c.call).not.toHaveProperty('tokenLogp'); // inputs only: the fused core keeps its own scratch
      expect((c.call.offsets as FakeBuf).freed).toBe(true);
      const { gradient, ...rest } = r;
      const { gradient: wantGrad, ...wantRest } = want;
      expect(rest).toEqual(wantRest);
      expect(gradient).toBeInstanceOf(DeviceTensor);
      expect(gradient!.shape).toEqual(shape3);
      expect(gradient!.dtype).toBe(dtype);
      expect(gradient!.download()).toEqual(wantGrad);
      expect(fake.live).toBe(before + 1); // the gradient

      const noGrad = await dpoLossFromLogitsAsync(z, y, {
        ...o,
        lossType: [...o.lossType],
        gradient: false,
        device: 'cuda',
      });
      expect(noGrad.gradient).toBeUndefined();
      expect(calls.at(-1)?.out?.gradOut).toBeNull();
      expect(noGrad.loss).toBe(want.loss);

      const ip = await dpoLossFromLogitsAsync(z, y, { ...o, lossType: [...o.lossType], inPlace: true, device: 'cuda' });
      expect(ip.gradient).toBe(z);
      expect(z.download()).toEqual(wantGrad);
      expect(ip.metrics).toEqual(want.metrics);
    }
  });

  it('bad inputs are typed errors before any allocation or kernel call', async () => {
    const z = upLogits();
    const y = upLabels();
    const w = DeviceTensor.upload(new Float64Array(N * V), { shape: [N, V] });
    const yF = DeviceTensor.upload(new Float32Array(N));
    const yShort = DeviceTensor.upload(new Int32Array(N - 1));
    const mI32 = DeviceTensor.upload(new Int32Array(N));
    const offBad = DeviceTensor.upload(BigInt64Array.of(0n, 7n, 5n, 12n, BigInt(N)));
    const offShort = DeviceTensor.upload(BigInt64Array.of(0n, 7n, 12n));
    const offF32 = DeviceTensor.upload(new Float32Array(5));
    const tokHost = hTokUp;
    const seqShort = DeviceTensor.upload(new Float32Array(S - 1));
    const outBf16 = DeviceTensor.empty([N * V], 'bf16');
    const outSmall = DeviceTensor.empty([N * V - 1], 'f32');
    const lseShort = DeviceTensor.empty([N - 1], 'f32');
    const flat = DeviceTensor.upload(hLogits.slice());
    const other = DeviceTensor.empty([N], 'i32', { device: 1 });
    const gone = upLabels();
    gone.dispose();
    const allocsBefore = fake.allocs;
    const cu = { device: 'cuda' as const };
    const g = (x: object) => ({ ...cu, gradient: { seq: hSeqUp, ...x } });
    const cases: [() => unknown, abstract new (...x: never[]) => Error, string, RegExp][] = [
      [
        () => scoreLogprobs(z, hLabels as never, cu),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /labels must be a DeviceTensor \(i32, 20 elements\) like the logits, got Int32Array\(20\); upload it/,
      ],
      [() => scoreLogprobs(z, yF, cu), InvalidTypeError, 'ERR_UNIGAP_INVALID_DTYPE', /labels must hold i32, got f32/],
      [
        () => scoreLogprobs(z, yShort, cu),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /labels has 19 elements, expected 20/,
      ],
      [() => scoreLogprobs(z, gone, cu), InvalidValueError, 'ERR_UNIGAP_INVALID_VALUE', /labels was disposed/],
      [
        () => scoreLogprobs(z, other, cu),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /labels is on device 1, the logits on device 0/,
      ],
      [
        () => scoreLogprobs(hLogits as never, y, { ...cu, shape: shape3 }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /logits must be a DeviceTensor \(or \{ data: DeviceTensor, dims \}\) when another input is one/,
      ],
      [
        () => scoreLogprobs(w, y, cu),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /f64, which the GPU kernels do not support \(UNSUPPORTED_DTYPE\)/,
      ],
      [
        () => scoreLogprobs(y as never, y, { ...cu, shape: [N, 1] }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /logits must hold f32, bf16 or f16, got i32/,
      ],
      [
        () => scoreLogprobs(flat, y, cu),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /logits.shape must have 2 or 3 dimensions/,
      ],
      [
        () => scoreLogprobs(flat, y, { ...cu, shape: [N, V + 1] }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /holds 240 elements, the logits DeviceTensor 220/,
      ],
      [
        () => scoreLogprobs({ data: z, dims: [N, V], dtype: 'bf16' }, y, cu),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /logits.dtype is 'bf16' but logits.data holds f32/,
      ],
      [
        () => scoreLogprobs({ data: z, dims: [N, V] }, y, { ...cu, shape: [S, T, V] }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /disagrees with logits.dims/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, dtype: 'f16' }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /dtype 'f16' disagrees with the logits DeviceTensor \(f32\)/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, mask: hMask as never }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /mask must be a DeviceTensor \(u8/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, mask: mI32 }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /mask must hold u8, got i32/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, offsets: offBad }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /offsets must be non-decreasing; offsets\[2\] = 5 < offsets\[1\] = 7/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, offsets: offShort }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /the last offset is 12, expected N = 20/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, offsets: offF32 }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /offsets must hold i64 or i32, got f32/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, offsets: Int32Array.of(0, 3) }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /the last offset is 3/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, temperature: 0 }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /temperature must be > 0/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, ignoreIndex: 1.5 }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /ignoreIndex must be an integer/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, output: 'cpu' as never }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /output must be one of 'device', 'host'/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, outptu: 'host' } as never),
        UnknownOptionError,
        'ERR_UNIGAP_UNKNOWN_OPTION',
        /did you mean 'output'/,
      ],
      [
        () => scoreLogprobs(z, y, g({ token: tokHost })),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /gradient.token must be a DeviceTensor \(f32, 20 elements\)/,
      ],
      [
        () => scoreLogprobs(z, y, g({ seq: seqShort })),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /gradient.seq has 3 elements, expected 4/,
      ],
      [
        () => scoreLogprobs(z, y, g({ seq: [1, 2, 3, 4] })),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /gradient.seq must be a Float32Array or an f32 DeviceTensor/,
      ],
      [
        () => scoreLogprobs(z, y, { ...cu, gradient: {} }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /needs seq \(B values\) and\/or token/,
      ],
      [
        () => scoreLogprobs(z, y, g({ out: outBf16 })),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_DTYPE',
        /gradient.out must hold f32, got bf16/,
      ],
      [
        () => scoreLogprobs(z, y, g({ out: outSmall })),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /gradient.out has 219 elements, expected 220/,
      ],
      [
        () => scoreLogprobs(z, y, g({ out: z })),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /gradient.out overlaps the logits; use inPlace/,
      ],
      [
        () => scoreLogprobs(z, y, g({ out: outSmall, inPlace: true })),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /not both/,
      ],
      [() => scoreLogprobs(z, y, g({ inPlce: true })), UnknownOptionError, 'ERR_UNIGAP_UNKNOWN_OPTION', /inPlce/],
      [
        () => logprobsBackward(z, y, { seq: hSeqUp }, { ...cu, lse: lseShort }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /lse has 19 elements, expected 20/,
      ],
      [
        () => logprobsBackward(z, y, { seq: hSeqUp, tok: 1 } as never, cu),
        UnknownOptionError,
        'ERR_UNIGAP_UNKNOWN_OPTION',
        /upstream: unknown option 'tok'/,
      ],
      [
        () => logprobsBackward(z, y, null as never, cu),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /upstream must be an object/,
      ],
      [
        () => dpoLossFromLogits(z, y, { ...cu, shape: [S, T, V] }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /referenceChosen and referenceRejected/,
      ],
      [
        () => dpoLossFromLogits(z, y, { ...cu, offsets: Int32Array.of(0, 10, 15, N), ...refs }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /2B sequences/,
      ],
      [
        () =>
          dpoLossFromLogits(z, y, {
            ...cu,
            referenceChosen: Float64Array.of(1),
            referenceRejected: refs.referenceRejected,
          }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /referenceChosen has 1 elements, expected B = 2/,
      ],
      [
        () => dpoLossFromLogits(z, y, { ...cu, ...refs, gradient: false, inPlace: true }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /inPlace needs gradient: true/,
      ],
      [
        () => dpoLossFromLogits(z, y, { ...cu, ...refs, beta: -1 }),
        InvalidValueError,
        'ERR_UNIGAP_INVALID_VALUE',
        /beta must be > 0/,
      ],
      [
        () => dpoLossFromLogits(z, y, { ...cu, ...refs, mask: hMask as never }),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /mask must be a DeviceTensor/,
      ],
      [
        () => dpoLossFromLogitsAsync(z, yShort, { ...cu, ...refs }),
        ShapeMismatchError,
        'ERR_UNIGAP_SHAPE_MISMATCH',
        /labels has 19 elements/,
      ],
      [() => scoreLogprobsAsync(z, yF, cu), InvalidTypeError, 'ERR_UNIGAP_INVALID_DTYPE', /labels must hold i32/],
      [
        () => logprobsBackwardAsync(z, y, { token: tokHost as never }, cu),
        InvalidTypeError,
        'ERR_UNIGAP_INVALID_TYPE',
        /gradient.token must be a DeviceTensor/,
      ],
    ];
    for (const [run, cls, code, msg] of cases) {
      const err = await errorOf(run);
      expect(err, String(msg)).toBeInstanceOf(cls);
      expect((err as { code: string }).code, String(msg)).toBe(code);
      expect((err as Error).message).toMatch(msg);
    }
    expect(calls).toHaveLength(0);
    expect(fake.allocs).toBe(allocsBefore); // nothing was allocated, not even a temporary
  });

  it("a failing kernel frees the outputs and temporaries it allocated; never the caller's tensors", async () => {
    const z = upLogits();
    const y = upLabels();
    const out = DeviceTensor.empty(shape3, 'f32');
    const before = fake.live;
    failRun = true;
    expect(() => scoreLogprobs(z, y, { device: 'cuda', ...fwdOpts, gradient: { seq: hSeqUp } })).toThrow(
      /DEVICE_ERROR/,
    );
    expect(() => logprobsBackward(z, y, { seq: hSeqUp }, { device: 'cuda' })).toThrow(/DEVICE_ERROR/);
    expect(() => dpoLossFromLogits(z, y, { device: 'cuda', ...refs })).toThrow(/DEVICE_ERROR/);
    await expect(scoreLogprobsAsync(z, y, { device: 'cuda', output: 'host' })).rejects.toThrow(/DEVICE_ERROR/);
    await expect(logprobsBackwardAsync(z, y, { seq: hSeqUp }, { device: 'cuda', out })).rejects.toThrow(/DEVICE_ERROR/);
    await expect(dpoLossFromLogitsAsync(z, y, { device: 'cuda', ...refs, inPlace: true })).rejects.toThrow(
      /DEVICE_ERROR/,
    );
    expect(fake.live).toBe(before);
    for (const t of [z, y, out]) expect(t.disposed).toBe(false);
  });

  it("a path taken out of verifiedCudaPaths: 'auto' refuses it as unverified (and only that path)", async () => {
    const verified = verifiedCudaPaths as Set<string>;
    verified.delete('logprobs.forwardBackward');
    try {
      const z = upLogits();
      const y = upLabels();
      const err = await errorOf(() => scoreLogprobs(z, y, { gradient: { seq: hSeqUp } }));
      expect(err).toBeInstanceOf(DeviceUnavailableError);
      expect((err as Error).message).toContain(
        "'logprobs.forwardBackward' is not verified on a GPU yet, so 'auto' does not take it; pass device: 'cuda'",
      );
      expect(calls).toHaveLength(0);
      // the verified forward still runs with 'auto'; the explicit opt-in runs the unverified path
      expect(scoreLogprobs(z, y).seqSum.download()).toEqual(scoreLogprobs(hLogits, hLabels, { shape: shape3 }).seqSum);
      scoreLogprobs(z, y, { device: 'cuda', gradient: { seq: hSeqUp } });
      expect(calls.map((c) => c.mode)).toEqual([0, 2]);
    } finally {
      verified.add('logprobs.forwardBackward');
    }
  });
});

describe('the N-API binding re-checks a log-prob call before any CUDA call', () => {
  const run = (mode: unknown, call: unknown) => () =>
    (binding.cudaLogprobsRun as unknown as (m: unknown, c: unknown) => void)(mode, call);
  it('mode, call object, dtype, sizes and handles', () => {
    const base = { dtype: 0, nTokens: 2, vocab: 3, nSeq: 1, ignoreIndex: -100, shift: false, temperature: 1 };
    expect(run(3, base)).toThrow(/mode must be 0, 1 or 2/);
    expect(run(0, 'x')).toThrow(/call must be an object/);
    expect(run(0, { ...base, dtype: 1 })).toThrow(/dtype must be f32, bf16 or f16/);
    expect(run(0, { ...base, vocab: 0 })).toThrow(/vocab >= 1/);
    expect(run(0, { ...base, logits: {} })).toThrow(/not a device buffer handle/);
  });
});

// ---------------------------------------------------------------- on a real GPU

if (!realCuda)
  console.log(`device-logprobs: the real-GPU suite is skipped: no usable CUDA device (${status.reason ?? 'unknown'})`);

describe.skipIf(!realCuda)('on a real GPU (bench/device/facade_smoke.mjs checks more)', () => {
  const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++)
      expect(Math.abs(got[i] - want[i]), `at ${i}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
  };
  it("scoreLogprobs, the fused gradient and dpoLossFromLogits with device: 'cuda' match the CPU", async () => {
    using z = DeviceTensor.upload(hLogits.slice(), { shape: shape3 });
    using y = DeviceTensor.upload(hLabels);
    const want = scoreLogprobs(hLogits, hLabels, { shape: shape3, ...fwdOpts, gradient: { seq: hSeqUp } });
    const r = scoreLogprobs(z, y, { device: 'cuda', ...fwdOpts, gradient: { seq: hSeqUp }, output: 'host' });
    close(r.tokenLogprobs, want.tokenLogprobs, 1e-5);
    close(r.seqSum, want.seqSum, 1e-5);
    expect(r.seqCount).toEqual(want.seqCount);
    close(r.gradient!.download() as Float32Array, want.gradient as Float32Array, 1e-5);
    r.gradient!.dispose();
    const d = await dpoLossFromLogitsAsync(z, y, { device: 'cuda', shape: shape3, shift: true, ...refs });
    const dw = dpoLossFromLogits(hLogits, hLabels, { shape: shape3, shift: true, ...refs });
    expect(Math.abs(d.loss - dw.loss)).toBeLessThan(1e-5);
    close(d.gradient!.download() as Float32Array, dw.gradient as Float32Array, 1e-5);
    d.gradient!.dispose();
  });
});
