/**
 * Child-process half of the validation matrix (run by validation-matrix.test.ts as
 * `node --expose-gc --import tsx tests/hardening/child-matrix.ts`): the whole matrix with a forced GC
 * after every case, then hostile calls straight into the native binding (bypassing the facade) to
 * prove the N-API re-checks answer with typed errors instead of crashing. Prints one JSON line.
 */
import * as api from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import { buildCases, runCase } from './cases.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const matrixFailures: string[] = [];
const cases = buildCases(api);
for (const c of cases) {
  const p = await runCase(c);
  if (p) matrixFailures.push(`${c.fn} [${c.cls}] ${c.what}: ${p}`);
  gc();
}

// ---------------------------------------------------------------- hostile calls into the binding
const native = loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
const nativeUntyped: string[] = [];
let nativeCalls = 0;
async function hostile(what: string, fn: string, ...args: unknown[]) {
  nativeCalls++;
  try {
    await native[fn](...args);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_UNIGAP_'))
      nativeUntyped.push(`${fn} ${what}: ${(e as Error).name}: ${(e as Error).message}`);
  }
  gc();
}

const N = 4;
const V = 5;
const lpCall = (over: Record<string, unknown> = {}) => ({
  logits: new Float32Array(N * V),
  dtype: 0,
  nTokens: N,
  vocab: V,
  labels: Int32Array.of(0, 1, 2, 3),
  mask: null,
  ignoreIndex: -100,
  offsets: Int32Array.of(0, 2, 4),
  nSeq: 2,
  shift: false,
  temperature: 1,
  tokenLogp: new Float32Array(N),
  tokenEntropy: null,
  tokenCorrect: null,
  tokenLse: new Float32Array(N),
  seqSum: new Float32Array(2),
  seqCount: new Int32Array(2),
  seqMean: new Float32Array(2),
  seqLogitSum: null,
  gradSeq: Float32Array.of(1, 1),
  gradToken: null,
  inputLse: null,
  gradOut: new Float32Array(N * V),
  ...over,
});
const lpHostile: [string, unknown, Record<string, unknown>][] = [
  ['mode 7', 7, {}],
  ['mode 0.5', 0.5, {}],
  ['dtype 1 (f64)', 0, { dtype: 1 }],
  ['dtype 99', 0, { dtype: 99 }],
  ['nTokens larger than the arrays', 0, { nTokens: 1000 }],
  ['nTokens negative', 0, { nTokens: -4 }],
  ['nTokens NaN', 0, { nTokens: NaN }],
  ['vocab 0', 0, { vocab: 0 }],
  ['nTokens * vocab overflows', 0, { nTokens: 2 ** 40, vocab: 2 ** 40 }],
  ['nTokens * vocab wraps to 20', 0, { nTokens: 4, vocab: 2 ** 62 + 5 }],
  ['labels short', 0, { labels: Int32Array.of(0, 1) }],
  ['labels out of range', 0, { labels: Int32Array.of(0, 99, 2, 3) }],
  ['labels negative', 0, { labels: Int32Array.of(0, -5, 2, 3) }],
  ['labels a Float32Array', 0, { labels: new Float32Array(4) }],
  ['offsets short', 0, { offsets: Int32Array.of(0, 4) }],
  ['offsets decreasing', 0, { offsets: Int32Array.of(0, 3, 1, 4), nSeq: 3 }],
  ['offsets past N', 0, { offsets: Int32Array.of(0, 9, 4) }],
  ['offsets[0] = -4', 0, { offsets: Int32Array.of(-4, 2, 4) }],
  ['offsets a plain array', 0, { offsets: [0, 2, 4] }],
  ['offsets BigInt64 past N', 0, { offsets: BigInt64Array.of(0n, 2n ** 40n, 4n) }],
  ['nSeq larger than offsets', 0, { nSeq: 50 }],
  ['temperature NaN', 0, { temperature: NaN }],
  ['temperature -1', 0, { temperature: -1 }],
  [
    'logits detached',
    0,
    {
      logits: (() => {
        const a = new Float32Array(N * V);
        structuredClone(a.buffer, { transfer: [a.buffer] });
        return a;
      })(),
    },
  ],
  ['tokenLogp short', 0, { tokenLogp: new Float32Array(1) }],
  ['seqSum a Float64Array', 0, { seqSum: new Float64Array(2) }],
  ['gradOut missing', 1, { gradOut: null }],
  ['gradOut short', 2, { gradOut: new Float32Array(3) }],
  ['gradOut wrong type', 2, { gradOut: new Uint16Array(N * V) }],
  ['inputLse short', 1, { inputLse: new Float32Array(1) }],
  ['mask short', 0, { mask: new Uint8Array(1) }],
];
for (const fn of ['logprobsRun', 'logprobsRunAsync']) {
  await hostile('no arguments', fn);
  await hostile('call null', fn, 0, null);
  await hostile('call a number', fn, 0, 5);
  for (const [what, mode, over] of lpHostile) await hostile(what, fn, mode, lpCall(over));
}

const B = 2;
const dpoArgs = (over: Record<string, unknown> = {}) => ({
  policyChosen: new Float64Array(B),
  policyRejected: new Float64Array(B),
  lossTypes: Int32Array.of(0),
  lossWeights: Float64Array.of(1),
  beta: 0.1,
  labelSmoothing: 0,
  discopopTau: 0.05,
  fDivergence: 0,
  alpha: 1,
  bcoDelta: 0,
  losses: new Float64Array(B),
  chosenRewards: new Float64Array(B),
  rejectedRewards: new Float64Array(B),
  margins: new Float64Array(B),
  gradChosen: new Float64Array(B),
  gradRejected: new Float64Array(B),
  scalars: new Float64Array(2),
  ...over,
});
const dpoHostile: [string, Record<string, unknown>][] = [
  ['policyChosen empty', { policyChosen: new Float64Array(0) }],
  ['policyRejected short', { policyRejected: new Float64Array(1) }],
  ['lossTypes 20 entries', { lossTypes: new Int32Array(20), lossWeights: new Float64Array(20) }],
  ['lossTypes empty', { lossTypes: new Int32Array(0), lossWeights: null }],
  ['lossType 99', { lossTypes: Int32Array.of(99) }],
  ['lossType -1', { lossTypes: Int32Array.of(-1) }],
  ['ipo without counts', { lossTypes: Int32Array.of(2) }],
  ['lossWeights short', { lossTypes: Int32Array.of(0, 1), lossWeights: Float64Array.of(1) }],
  ['fDivergence 1.5', { fDivergence: 1.5 }],
  ['fDivergence 9', { fDivergence: 9 }],
  ['beta NaN', { beta: NaN }],
  ['beta a string', { beta: '0.1' }],
  ['labelSmoothing 2', { labelSmoothing: 2 }],
  ['one reference only', { referenceChosen: new Float64Array(B) }],
  ['chosenTokens short', { chosenTokens: new Int32Array(1) }],
  ['weights short', { weights: new Float64Array(1) }],
  ['scalars short', { scalars: new Float64Array(1) }],
  ['losses missing', { losses: undefined }],
];
await hostile('no arguments', 'dpoLoss');
for (const [what, over] of dpoHostile) await hostile(what, 'dpoLoss', dpoArgs(over));
const fusedOut = (over: Record<string, unknown> = {}) => ({
  gradOut: new Float32Array(N * V),
  policyChosen: new Float64Array(1),
  policyRejected: new Float64Array(1),
  chosenTokens: new Int32Array(1),
  rejectedTokens: new Int32Array(1),
  metrics: new Float64Array(6),
  ...over,
});
const fusedArgs = () => {
  const a = dpoArgs() as Record<string, unknown>;
  for (const k of ['losses', 'chosenRewards', 'rejectedRewards', 'margins', 'gradChosen', 'gradRejected'])
    a[k] = new Float64Array(1);
  delete a.policyChosen;
  delete a.policyRejected;
  return a;
};
for (const fn of ['dpoFromLogits', 'dpoFromLogitsAsync']) {
  await hostile('no arguments', fn);
  await hostile('odd nSeq', fn, lpCall({ nSeq: 3, offsets: Int32Array.of(0, 1, 2, 4) }), fusedArgs(), fusedOut());
  await hostile('labels out of range', fn, lpCall({ labels: Int32Array.of(0, 77, 2, 3) }), fusedArgs(), fusedOut());
  await hostile('offsets past N', fn, lpCall({ offsets: Int32Array.of(0, 9, 4) }), fusedArgs(), fusedOut());
  await hostile('gradOut short', fn, lpCall(), fusedArgs(), fusedOut({ gradOut: new Float32Array(2) }));
  await hostile('metrics short', fn, lpCall(), fusedArgs(), fusedOut({ metrics: new Float64Array(2) }));
  await hostile('pair outputs for B = 2', fn, lpCall(), dpoArgs(), fusedOut());
  await hostile('nTokens * vocab overflows', fn, lpCall({ nTokens: 2 ** 40, vocab: 2 ** 40 }), fusedArgs(), fusedOut());
}

const f = (n: number) => new Float32Array(n);
const simHostile: [string, string, unknown[]][] = [
  ['unknown dtype', 'similarityPairedCosine', [f(8), 'f8', f(8), 'f32', 2, 4, f(2)]],
  ['dtype not a string', 'similarityPairedCosine', [f(8), 0, f(8), 'f32', 2, 4, f(2)]],
  ['dtype f64 on a Float32Array', 'similarityPairedCosine', [f(8), 'f64', f(8), 'f32', 2, 4, f(2)]],
  ['n larger than data', 'similarityPairedCosine', [f(8), 'f32', f(8), 'f32', 200, 4, f(200)]],
  ['n negative', 'similarityPairedCosine', [f(8), 'f32', f(8), 'f32', -2, -4, f(2)]],
  ['d 0', 'similarityPairedCosine', [f(0), 'f32', f(0), 'f32', 2, 0, f(2)]],
  ['n * d wraps', 'similarityPairedCosine', [f(8), 'f32', f(8), 'f32', 2 ** 33, 2 ** 31, f(2)]],
  ['out short', 'similarityPairedCosine', [f(8), 'f32', f(8), 'f32', 2, 4, f(1)]],
  ['out a Float64Array', 'similarityPairedCosine', [f(8), 'f32', f(8), 'f32', 2, 4, new Float64Array(2)]],
];
for (const fn of ['similarityMatrix', 'similarityMatrixAsync']) {
  simHostile.push(['out short', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, true, 1, 0, f(5)]]);
  simHostile.push(['m larger than data', fn, [f(8), 'f32', 2, f(12), 'f32', 300, 4, true, 1, 0, f(600)]]);
  simHostile.push(['scale NaN', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, true, NaN, 0, f(6)]]);
  simHostile.push(['normalize a number', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, 1, 1, 0, f(6)]]);
  simHostile.push(['n * m wraps', fn, [f(8), 'f32', 2 ** 40, f(12), 'f32', 2 ** 40, 4, true, 1, 0, f(6)]]);
}
for (const fn of ['similarityTopk', 'similarityTopkAsync']) {
  simHostile.push(['k > m', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, 4, true, new Int32Array(8), f(8)]]);
  simHostile.push(['k 0', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, 0, true, new Int32Array(0), f(0)]]);
  simHostile.push(['indices short', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, 2, true, new Int32Array(1), f(4)]]);
  simHostile.push(['k huge', fn, [f(8), 'f32', 2, f(12), 'f32', 3, 4, 2 ** 62, true, new Int32Array(4), f(4)]]);
}
for (const fn of ['similarityRanks', 'similarityRanksAsync']) {
  simHostile.push(['ranks short', fn, [f(8), 'f32', f(8), 'f32', 2, 4, true, new Float64Array(1)]]);
  simHostile.push(['candidates short', fn, [f(8), 'f32', f(4), 'f32', 2, 4, true, new Float64Array(2)]]);
  simHostile.push(['no arguments', fn, []]);
}
for (const [what, fn, args] of simHostile) await hostile(what, fn, ...args);
await hostile("setIsa 'bogus'", 'setIsa', 'bogus');
await hostile('setIsa 3', 'setIsa', 3);

console.log(JSON.stringify({ cases: cases.length, matrixFailures, nativeCalls, nativeUntyped }));
