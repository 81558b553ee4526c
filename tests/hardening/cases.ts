/**
 * The input-validation matrix: every public kernel function × every class of bad input, as plain
 * thunks. Shared by tests/hardening/validation-matrix.test.ts (in process) and
 * tests/hardening/child-matrix.ts (in a child process with forced GC, to prove nothing crashes).
 * Each case must end in a typed error whose `code` is one of the codes allowed for its class.
 */
import type * as Api from '../../lib/index.js';

export type BadClass =
  | 'wrong-type'
  | 'wrong-length'
  | 'negative-dim'
  | 'fractional-dim'
  | 'nan-dim'
  | 'out-of-range'
  | 'detached'
  | 'zero-length'
  | 'shared-buffer'
  | 'overflow'
  | 'unknown-option'
  | 'bad-option'
  | 'not-an-object';

/** Codes a class may legitimately produce (the most specific one first). */
export const ALLOWED: Record<BadClass, readonly string[]> = {
  'wrong-type': ['ERR_UNIGAP_INVALID_TYPE', 'ERR_UNIGAP_INVALID_DTYPE'],
  'wrong-length': ['ERR_UNIGAP_SHAPE_MISMATCH'],
  'negative-dim': ['ERR_UNIGAP_OUT_OF_RANGE', 'ERR_UNIGAP_INVALID_VALUE'],
  'fractional-dim': ['ERR_UNIGAP_INVALID_VALUE'],
  'nan-dim': ['ERR_UNIGAP_INVALID_VALUE', 'ERR_UNIGAP_OUT_OF_RANGE'],
  'out-of-range': ['ERR_UNIGAP_OUT_OF_RANGE', 'ERR_UNIGAP_INVALID_VALUE'],
  detached: ['ERR_UNIGAP_DETACHED_BUFFER'],
  'zero-length': ['ERR_UNIGAP_SHAPE_MISMATCH'],
  'shared-buffer': ['ERR_UNIGAP_INVALID_TYPE'],
  overflow: ['ERR_UNIGAP_INVALID_VALUE', 'ERR_UNIGAP_OUT_OF_RANGE', 'ERR_UNIGAP_SHAPE_MISMATCH'],
  'unknown-option': ['ERR_UNIGAP_UNKNOWN_OPTION'],
  'bad-option': [
    'ERR_UNIGAP_INVALID_VALUE',
    'ERR_UNIGAP_INVALID_TYPE',
    'ERR_UNIGAP_OUT_OF_RANGE',
    'ERR_UNIGAP_INVALID_DTYPE',
    'ERR_UNIGAP_SHAPE_MISMATCH',
  ],
  'not-an-object': ['ERR_UNIGAP_INVALID_TYPE'],
};

export interface Case {
  fn: string;
  cls: BadClass;
  what: string;
  async: boolean;
  call: () => unknown;
}

type AnyFn = (...args: never[]) => unknown;

/** A typed array whose buffer has been transferred away (detached). */
export function detached<T extends ArrayBufferView>(ta: T): T {
  structuredClone(ta.buffer, { transfer: [ta.buffer as ArrayBuffer] });
  return ta;
}

/** The same values in a SharedArrayBuffer-backed view. */
export function shared<T extends Float32Array | Float64Array | Int32Array | Uint16Array>(ta: T): T {
  const Ctor = ta.constructor as unknown as new (b: SharedArrayBuffer) => T;
  const out = new Ctor(new SharedArrayBuffer(ta.byteLength));
  (out as unknown as { set(a: T): void }).set(ta);
  return out;
}

const f32 = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed));
const f64 = (n: number, seed = 1) => Float64Array.from({ length: n }, (_, i) => -2 - Math.cos(i * 0.9 + seed));

export function buildCases(api: typeof Api): Case[] {
  const out: Case[] = [];
  const fns = api as unknown as Record<string, AnyFn>;
  const add = (fn: string, cls: BadClass, what: string, args: () => unknown[]) =>
    out.push({ fn, cls, what, async: fn.endsWith('Async'), call: () => fns[fn](...(args() as never[])) });

  // ------------------------------------------------------------------ logits-based functions
  // B = 2 sequences of T = 2 tokens, V = 5.
  const V = 5;
  const lg = () => f32(20);
  const lb = () => Int32Array.of(1, 2, 3, 0);
  const up = () => ({ seq: Float32Array.of(1, -0.5) });
  type LogitsFn = { name: string; args: (logits: unknown, labels: unknown, opts: unknown) => unknown[] };
  const refs = { referenceChosen: f64(1), referenceRejected: f64(1) };
  const withRefs = (o: unknown) => (o !== null && typeof o === 'object' && !Array.isArray(o) ? { ...refs, ...o } : o);
  const logitsFns: LogitsFn[] = [
    { name: 'scoreLogprobs', args: (l, y, o) => [l, y, o] },
    { name: 'scoreLogprobsAsync', args: (l, y, o) => [l, y, o] },
    { name: 'logprobsBackward', args: (l, y, o) => [l, y, up(), o] },
    { name: 'logprobsBackwardAsync', args: (l, y, o) => [l, y, up(), o] },
    { name: 'dpoLossFromLogits', args: (l, y, o) => [l, y, withRefs(o)] },
    { name: 'dpoLossFromLogitsAsync', args: (l, y, o) => [l, y, withRefs(o)] },
  ];
  for (const { name, args } of logitsFns) {
    const shape = [2, 2, V];
    const a =
      (l: unknown, y: unknown, o: Record<string, unknown> = { shape }) =>
      () =>
        args(l, y, o);
    add(name, 'wrong-type', 'logits Float64Array', a(f64(20), lb()));
    add(name, 'wrong-type', 'logits plain Array', a(Array.from(lg()), lb()));
    add(name, 'wrong-type', 'logits a string', a('logits', lb()));
    add(name, 'wrong-type', 'labels Float32Array', a(lg(), Float32Array.of(1, 2, 3, 0)));
    add(name, 'wrong-type', 'labels Uint32Array', a(lg(), Uint32Array.of(1, 2, 3, 0)));
    add(name, 'wrong-type', 'Uint16Array logits without dtype', a(new Uint16Array(20), lb()));
    add(
      name,
      'wrong-type',
      'tensor of type int32',
      a({ type: 'int32', data: new Int32Array(20), dims: shape }, lb(), {}),
    );
    add(name, 'wrong-length', 'logits one short', a(f32(19), lb()));
    add(name, 'wrong-length', 'labels one short', a(lg(), Int32Array.of(1, 2, 3)));
    add(name, 'wrong-length', 'mask one short', a(lg(), lb(), { shape, mask: new Uint8Array(3) }));
    add(
      name,
      'wrong-length',
      'shape disagrees with tensor dims',
      a({ type: 'float32', data: lg(), dims: shape }, lb(), { shape: [4, V] }),
    );
    add(name, 'negative-dim', 'shape [-2, 2, 5]', a(lg(), lb(), { shape: [-2, 2, V] }));
    add(name, 'negative-dim', 'shape [4, -5]', a(lg(), lb(), { shape: [4, -V] }));
    add(name, 'fractional-dim', 'shape [1.5, 2, 5]', a(lg(), lb(), { shape: [1.5, 2, V] }));
    add(name, 'fractional-dim', 'shape [4, 5.5]', a(lg(), lb(), { shape: [4, 5.5] }));
    add(name, 'nan-dim', 'shape [NaN, 2, 5]', a(lg(), lb(), { shape: [NaN, 2, V] }));
    add(name, 'nan-dim', 'shape [4, Infinity]', a(lg(), lb(), { shape: [4, Infinity] }));
    add(name, 'out-of-range', 'label = V', a(lg(), Int32Array.of(1, V, 3, 0)));
    add(name, 'out-of-range', 'label = -7 (not ignoreIndex)', a(lg(), Int32Array.of(1, -7, 3, 0)));
    add(name, 'out-of-range', 'label = 2^31 - 1', a(lg(), Int32Array.of(1, 2 ** 31 - 1, 3, 0)));
    add(name, 'out-of-range', 'ignoreIndex beyond int32', a(lg(), lb(), { shape, ignoreIndex: 2 ** 40 }));
    add(name, 'out-of-range', 'an offset past N', a(lg(), lb(), { shape: [4, V], offsets: Int32Array.of(0, 9, 4) }));
    add(
      name,
      'wrong-length',
      'offsets ending past N',
      a(lg(), lb(), { shape: [4, V], offsets: Int32Array.of(0, 2, 9) }),
    );
    add(name, 'detached', 'logits detached', a(detached(lg()), lb()));
    add(name, 'detached', 'labels detached', a(lg(), detached(lb())));
    add(name, 'zero-length', 'empty logits for shape [2, 2, 5]', a(new Float32Array(0), lb()));
    add(name, 'zero-length', 'empty labels', a(lg(), new Int32Array(0)));
    add(name, 'shared-buffer', 'logits on a SharedArrayBuffer', a(shared(lg()), lb()));
    add(name, 'shared-buffer', 'labels on a SharedArrayBuffer', a(lg(), shared(lb())));
    add(name, 'overflow', 'shape [2^20, 2^20, 2^20]', a(lg(), lb(), { shape: [2 ** 20, 2 ** 20, 2 ** 20] }));
    add(name, 'overflow', 'shape [2^31, 2^31]', a(lg(), lb(), { shape: [2 ** 31, 2 ** 31] }));
    add(
      name,
      'overflow',
      'shape [2^26, 2^26] (safe product, no such buffer)',
      a(lg(), lb(), { shape: [2 ** 26, 2 ** 26] }),
    );
    add(name, 'overflow', 'V = 2^32', a(lg(), lb(), { shape: [0, 2 ** 32] }));
    add(name, 'unknown-option', "misspelled 'shfit'", a(lg(), lb(), { shape, shfit: true }));
    add(name, 'unknown-option', "misspelled 'temprature'", a(lg(), lb(), { shape, temprature: 2 }));
    add(name, 'bad-option', 'temperature 0', a(lg(), lb(), { shape, temperature: 0 }));
    add(name, 'bad-option', 'temperature NaN', a(lg(), lb(), { shape, temperature: NaN }));
    add(name, 'bad-option', "shift 'yes'", a(lg(), lb(), { shape, shift: 'yes' }));
    add(name, 'bad-option', "dtype 'f64'", a(lg(), lb(), { shape, dtype: 'f64' }));
    add(name, 'bad-option', 'offsets decreasing', a(lg(), lb(), { shape: [4, V], offsets: Int32Array.of(0, 3, 2, 4) }));
    add(name, 'bad-option', 'offsets[0] != 0', a(lg(), lb(), { shape: [4, V], offsets: Int32Array.of(1, 4) }));
    add(name, 'bad-option', 'shape of rank 1', a(lg(), lb(), { shape: [20] }));
    add(name, 'bad-option', 'no shape for a typed array', a(lg(), lb(), {}));
    add(name, 'not-an-object', 'options = 5', a(lg(), lb(), 5 as never));
    add(name, 'not-an-object', 'options = []', a(lg(), lb(), [] as never));
    add(name, 'not-an-object', 'logits = null', a(null, lb()));
  }
  // backward-specific: the upstream gradient
  for (const name of ['logprobsBackward', 'logprobsBackwardAsync']) {
    const o = { shape: [2, 2, V] };
    add(name, 'not-an-object', 'upstream null', () => [lg(), lb(), null, o]);
    add(name, 'not-an-object', 'upstream a Float32Array', () => [lg(), lb(), Float32Array.of(1, 1), o]);
    add(name, 'unknown-option', "upstream misspelled 'sq'", () => [lg(), lb(), { sq: Float32Array.of(1, 1) }, o]);
    add(name, 'bad-option', 'upstream empty', () => [lg(), lb(), {}, o]);
    add(name, 'wrong-length', 'upstream.seq length 3', () => [lg(), lb(), { seq: new Float32Array(3) }, o]);
    add(name, 'wrong-length', 'lse length 3', () => [lg(), lb(), up(), { ...o, lse: new Float32Array(3) }]);
    add(name, 'wrong-type', 'upstream.token Float64Array', () => [lg(), lb(), { token: new Float64Array(4) }, o]);
    add(name, 'detached', 'upstream.seq detached', () => [lg(), lb(), { seq: detached(Float32Array.of(1, 1)) }, o]);
    add(name, 'shared-buffer', 'upstream.seq shared', () => [lg(), lb(), { seq: shared(Float32Array.of(1, 1)) }, o]);
  }
  for (const name of ['scoreLogprobs', 'scoreLogprobsAsync']) {
    const o = { shape: [2, 2, V] };
    add(name, 'unknown-option', "gradient misspelled 'sequence'", () => [
      lg(),
      lb(),
      { ...o, gradient: { sequence: Float32Array.of(1, 1) } },
    ]);
    add(name, 'wrong-length', 'gradient.token length 2', () => [
      lg(),
      lb(),
      { ...o, gradient: { token: new Float32Array(2) } },
    ]);
    add(name, 'bad-option', "entropy 'yes'", () => [lg(), lb(), { ...o, entropy: 'yes' }]);
  }
  // dpo-specific options of the fused path
  for (const name of ['dpoLossFromLogits', 'dpoLossFromLogitsAsync']) {
    const shape = [2, 2, V];
    add(name, 'wrong-length', 'referenceChosen length 2', () => [
      lg(),
      lb(),
      { shape, referenceChosen: f64(2), referenceRejected: f64(1) },
    ]);
    add(name, 'wrong-type', 'referenceChosen Int32Array', () => [
      lg(),
      lb(),
      { shape, referenceChosen: new Int32Array(1), referenceRejected: f64(1) },
    ]);
    add(name, 'bad-option', 'references missing', () => [lg(), lb(), { shape }]);
    add(name, 'bad-option', 'beta -1', () => [lg(), lb(), { shape, ...refs, beta: -1 }]);
    add(name, 'bad-option', "lossType 'sigmod'", () => [lg(), lb(), { shape, ...refs, lossType: 'sigmod' }]);
    add(name, 'bad-option', 'odd number of sequences', () => [
      f32(15),
      Int32Array.of(1, 2, 3),
      { shape: [3, 1, V], ...refs },
    ]);
    add(name, 'bad-option', 'inPlace without gradient', () => [
      lg(),
      lb(),
      { shape, ...refs, gradient: false, inPlace: true },
    ]);
    add(name, 'unknown-option', "misspelled 'lossTypes'", () => [
      lg(),
      lb(),
      { shape, ...refs, lossTypes: ['sigmoid'] },
    ]);
    add(name, 'detached', 'referenceChosen detached', () => [
      lg(),
      lb(),
      { shape, referenceChosen: detached(f64(1)), referenceRejected: f64(1) },
    ]);
    add(name, 'shared-buffer', 'referenceChosen shared', () => [
      lg(),
      lb(),
      { shape, referenceChosen: shared(f64(1)), referenceRejected: f64(1) },
    ]);
  }

  // ------------------------------------------------------------------ dpoLoss
  {
    const B = 3;
    const inputs = (over: Record<string, unknown> = {}) => ({
      policyChosen: f64(B, 1),
      policyRejected: f64(B, 2),
      referenceChosen: f64(B, 3),
      referenceRejected: f64(B, 4),
      ...over,
    });
    const d = (what: string, cls: BadClass, i: unknown, o?: unknown) => add('dpoLoss', cls, what, () => [i, o]);
    d('policyChosen Int32Array', 'wrong-type', inputs({ policyChosen: new Int32Array(B) }));
    d('policyChosen plain Array', 'wrong-type', inputs({ policyChosen: [1, 2, 3] }));
    d('chosenTokens Float64Array', 'wrong-type', inputs({ chosenTokens: new Float64Array(B) }));
    d("referenceFree 'yes'", 'wrong-type', inputs({ referenceFree: 'yes' }));
    d('policyRejected length 2', 'wrong-length', inputs({ policyRejected: f64(2) }));
    d('referenceChosen length 4', 'wrong-length', inputs({ referenceChosen: f64(4) }));
    d('weights length 2', 'wrong-length', inputs(), { weights: f64(2) });
    d('lossWeights length 2 for one loss type', 'wrong-length', inputs(), { lossWeights: [1, 2] });
    d('chosenTokens negative', 'out-of-range', inputs({ chosenTokens: Int32Array.of(1, -1, 2) }), { lossType: 'ipo' });
    d('labelSmoothing 0.5', 'out-of-range', inputs(), { labelSmoothing: 0.5 });
    d('policyChosen detached', 'detached', inputs({ policyChosen: detached(f64(B)) }));
    d('weights detached', 'detached', inputs(), { weights: detached(f64(B)) });
    d(
      'policyChosen empty',
      'zero-length',
      inputs({ policyChosen: new Float64Array(0), policyRejected: new Float64Array(0) }),
    );
    d('policyChosen shared', 'shared-buffer', inputs({ policyChosen: shared(f64(B)) }));
    d("inputs misspelled 'policyChosn'", 'unknown-option', { ...inputs(), policyChosn: f64(B) });
    d("option misspelled 'bta'", 'unknown-option', inputs(), { bta: 0.1 });
    d('beta NaN', 'bad-option', inputs(), { beta: NaN });
    d('beta 0', 'bad-option', inputs(), { beta: 0 });
    d("lossType 'nope'", 'bad-option', inputs(), { lossType: 'nope' });
    d('lossType []', 'bad-option', inputs(), { lossType: [] });
    d("fDivergence 'kl'", 'bad-option', inputs(), { fDivergence: 'kl' });
    d('weights with NaN', 'bad-option', inputs(), { weights: Float64Array.of(1, NaN, 1) });
    d('ipo without token counts', 'bad-option', inputs(), { lossType: 'ipo' });
    d('references missing', 'bad-option', { policyChosen: f64(B), policyRejected: f64(B) });
    d('inputs null', 'not-an-object', null);
    d('inputs a number', 'not-an-object', 7);
    d('options a string', 'not-an-object', inputs(), 'sigmoid');
  }

  // ------------------------------------------------------------------ similarity
  {
    const N = 3;
    const D = 4;
    const emb = (n = N, d = D, over: Record<string, unknown> = {}) => ({ data: f32(n * d), dims: [n, d], ...over });
    const simFns: { name: string; args: (a: unknown, b: unknown, o?: unknown) => unknown[]; options: string[] }[] = [
      { name: 'pairedCosine', args: (a, b) => [a, b], options: [] },
      { name: 'clipScore', args: (a, b, o) => [a, b, o], options: ['reduction'] },
      { name: 'similarityMatrix', args: (a, b, o) => [a, b, o], options: ['normalize', 'scale', 'bias'] },
      { name: 'similarityMatrixAsync', args: (a, b, o) => [a, b, o], options: ['normalize', 'scale', 'bias'] },
      { name: 'topkSimilarity', args: (a, b, o) => [a, b, 2, o], options: ['normalize'] },
      { name: 'topkSimilarityAsync', args: (a, b, o) => [a, b, 2, o], options: ['normalize'] },
      { name: 'retrievalRanks', args: (a, b, o) => [a, b, o], options: ['normalize'] },
      { name: 'retrievalRanksAsync', args: (a, b, o) => [a, b, o], options: ['normalize'] },
    ];
    for (const { name, args, options } of simFns) {
      const s = (cls: BadClass, what: string, a: unknown, b: unknown = emb(), o?: unknown) =>
        add(name, cls, what, () => args(a, b, o));
      s('wrong-type', 'data Int32Array', emb(N, D, { data: new Int32Array(N * D) }));
      s('wrong-type', 'data plain Array', emb(N, D, { data: Array.from(f32(N * D)) }));
      s('wrong-type', 'Uint16Array without dtype', emb(N, D, { data: new Uint16Array(N * D) }));
      s('wrong-type', "dtype 'f8'", emb(N, D, { dtype: 'f8' }));
      s('wrong-type', 'a bare Float32Array', f32(N * D));
      s('wrong-type', 'dims a string', emb(N, D, { dims: '3x4' }));
      s('wrong-length', 'data one short', emb(N, D, { data: f32(N * D - 1) }));
      s('wrong-length', 'D differs between the inputs', emb(), emb(N, D + 1));
      s('wrong-length', 'dims of rank 3', emb(N, D, { dims: [N, D, 1] }));
      s('negative-dim', 'dims [-3, 4]', emb(N, D, { dims: [-N, D] }));
      s('fractional-dim', 'dims [1.5, 4]', emb(N, D, { dims: [1.5, D] }));
      s('nan-dim', 'dims [NaN, 4]', emb(N, D, { dims: [NaN, D] }));
      s('nan-dim', 'dims [3, Infinity]', emb(N, D, { dims: [N, Infinity] }));
      s(
        'out-of-range',
        'D = 0',
        emb(N, D, { data: new Float32Array(0), dims: [N, 0] }),
        emb(N, 0, { data: new Float32Array(0) }),
      );
      s('detached', 'data detached', emb(N, D, { data: detached(f32(N * D)) }));
      s('detached', 'second input detached', emb(), emb(N, D, { data: detached(f32(N * D)) }));
      s('zero-length', 'empty data for dims [3, 4]', emb(N, D, { data: new Float32Array(0) }));
      s('shared-buffer', 'data on a SharedArrayBuffer', emb(N, D, { data: shared(f32(N * D)) }));
      s('overflow', 'dims [2^40, 2^20]', emb(N, D, { dims: [2 ** 40, 2 ** 20] }));
      s('overflow', 'dims [2^31, 1]', emb(N, D, { dims: [2 ** 31, 1] }));
      s('overflow', 'dims [2^53, 2]', emb(N, D, { dims: [2 ** 53, 2] }));
      s('not-an-object', 'images null', null);
      s('not-an-object', 'images a number', 3);
      if (options.length) {
        s('unknown-option', `misspelled '${options[0]}x'`, emb(), emb(), { [`${options[0]}x`]: true });
        s('unknown-option', "misspelled 'normalise'", emb(), emb(), { normalise: true });
        s('not-an-object', 'options = 5', emb(), emb(), 5);
      }
      if (options.includes('scale')) {
        s('bad-option', 'scale NaN', emb(), emb(), { scale: NaN });
        s('bad-option', 'bias Infinity', emb(), emb(), { bias: Infinity });
      }
      if (options.includes('normalize')) s('bad-option', "normalize 'yes'", emb(), emb(), { normalize: 'yes' });
      if (name === 'clipScore') s('bad-option', "reduction 'sum'", emb(), emb(), { reduction: 'sum' });
      if (name.startsWith('pairedCosine') || name.startsWith('clipScore') || name.startsWith('retrievalRanks'))
        s('wrong-length', 'N differs between the inputs', emb(), emb(N + 1, D));
    }
    for (const name of ['topkSimilarity', 'topkSimilarityAsync']) {
      const k = (what: string, cls: BadClass, kk: unknown, m = N) => add(name, cls, what, () => [emb(), emb(m, D), kk]);
      k('k = 0', 'out-of-range', 0);
      k('k = M + 1', 'out-of-range', N + 1);
      k('k = -1', 'out-of-range', -1);
      k('k = 1.5', 'fractional-dim', 1.5);
      k('k = NaN', 'nan-dim', NaN);
      k("k = '2'", 'wrong-type', '2');
      k('k = 1 with no candidates', 'out-of-range', 1, 0);
    }
  }
  // ------------------------------------------------------------------ device (lib/device.ts)
  // Argument checks run before the CUDA check, so these are typed errors with or without a GPU.
  const DT = (api as unknown as { DeviceTensor?: typeof Api.DeviceTensor }).DeviceTensor;
  if (DT) {
    const dev = (cls: BadClass, what: string, call: () => unknown) =>
      out.push({ fn: 'DeviceTensor', cls, what, async: false, call });
    dev('wrong-type', 'upload a plain Array', () => DT.upload([1, 2] as never));
    dev('wrong-type', 'upload a DataView', () => DT.upload(new DataView(new ArrayBuffer(8)) as never));
    dev('wrong-type', 'upload a Uint16Array without dtype', () => DT.upload(new Uint16Array(4)));
    dev('wrong-type', "upload dtype 'f32' for a Float64Array", () => DT.upload(new Float64Array(4), { dtype: 'f32' }));
    dev('wrong-length', 'upload shape [5] for 4 elements', () => DT.upload(new Float32Array(4), { shape: [5] }));
    dev('negative-dim', 'upload shape [-4]', () => DT.upload(new Float32Array(4), { shape: [-4] }));
    dev('fractional-dim', 'empty shape [1.5]', () => DT.empty([1.5], 'f32'));
    dev('nan-dim', 'empty shape [NaN]', () => DT.empty([NaN], 'f32'));
    dev('overflow', 'empty shape [2^40, 2^40]', () => DT.empty([2 ** 40, 2 ** 40], 'f32'));
    dev('out-of-range', 'device -1', () => DT.empty([4], 'f32', { device: -1 }));
    dev('bad-option', "empty dtype 'f8'", () => DT.empty([4], 'f8' as never));
    dev('bad-option', "setDefaultDevice('gpu')", () => api.setDefaultDevice('gpu' as never));
    dev('bad-option', 'fromPointer 0n', () => DT.fromPointer(0n, [4], 'f32'));
    dev('wrong-type', 'fromPointer a number', () => DT.fromPointer(4096 as never, [4], 'f32'));
  }
  // ------------------------------------------------------------------ backend
  add('setIsa', 'bad-option', "tier 'avx1024'", () => ['avx1024']);
  add('setIsa', 'wrong-type', 'tier 2', () => [2]);
  return out;
}

/** Valid calls at the edges that must succeed (and not crash): empty batches, single elements. */
export function buildEdgeCalls(api: typeof Api): { what: string; call: () => unknown }[] {
  const e = (n: number, d: number) => ({ data: new Float32Array(n * d), dims: [n, d] });
  return [
    {
      what: 'scoreLogprobs N = 0',
      call: () => api.scoreLogprobs(new Float32Array(0), new Int32Array(0), { shape: [0, 5] }),
    },
    {
      what: 'scoreLogprobs B = 0 sequences',
      call: () => api.scoreLogprobs(new Float32Array(0), new Int32Array(0), { shape: [0, 3, 5] }),
    },
    {
      what: 'scoreLogprobs V = 1',
      call: () => api.scoreLogprobs(Float32Array.of(3), Int32Array.of(0), { shape: [1, 1] }),
    },
    {
      what: 'scoreLogprobs all ignored',
      call: () => api.scoreLogprobs(new Float32Array(10), Int32Array.of(-100, -100), { shape: [2, 5] }),
    },
    {
      what: 'logprobsBackward N = 0',
      call: () =>
        api.logprobsBackward(new Float32Array(0), new Int32Array(0), { seq: new Float32Array(1) }, { shape: [0, 5] }),
    },
    { what: 'similarityMatrix N = 0', call: () => api.similarityMatrix(e(0, 4), e(3, 4)) },
    { what: 'similarityMatrix M = 0', call: () => api.similarityMatrix(e(3, 4), e(0, 4)) },
    { what: 'pairedCosine N = 0', call: () => api.pairedCosine(e(0, 4), e(0, 4)) },
    { what: 'retrievalRanks N = 0', call: () => api.retrievalRanks(e(0, 4), e(0, 4)) },
    { what: 'topkSimilarity N = 0', call: () => api.topkSimilarity(e(0, 4), e(2, 4), 1) },
    { what: 'clipScore zero vectors', call: () => api.clipScore(e(2, 4), e(2, 4)) },
    {
      what: 'dpoLoss B = 1',
      call: () =>
        api.dpoLoss({ policyChosen: Float64Array.of(-1), policyRejected: Float64Array.of(-2), referenceFree: true }),
    },
  ];
}

/** Classify an outcome: undefined when it is a typed error allowed for `cls`, else a description. */
export function checkTypedError(err: unknown, cls: BadClass): string | undefined {
  if (err === undefined) return 'no error (the call succeeded)';
  if (!(err instanceof Error)) return `threw a non-Error: ${String(err)}`;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_UNIGAP_'))
    return `untyped ${err.name}: ${err.message.split('\n')[0]} (code ${String(code)})`;
  if (!ALLOWED[cls].includes(code))
    return `code ${code} (${err.message.split('\n')[0]}) not in ${ALLOWED[cls].join('|')}`;
  return undefined;
}

/** Run one case: a sync function must throw; an async one must return a Promise that rejects. */
export async function runCase(c: Case): Promise<string | undefined> {
  let ret: unknown;
  try {
    ret = c.call();
  } catch (e) {
    if (c.async)
      return `threw synchronously instead of rejecting: ${checkTypedError(e, c.cls) ?? (e as Error).message}`;
    return checkTypedError(e, c.cls);
  }
  if (c.async) {
    if (!(ret instanceof Promise)) return 'did not return a Promise';
    try {
      await ret;
    } catch (e) {
      return checkTypedError(e, c.cls);
    }
  }
  return checkTypedError(undefined, c.cls);
}
