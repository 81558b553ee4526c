// Node-side smoke check of the CUDA plumbing on a GPU machine, with no npm packages: loads a CUDA
// build of the addon directly and checks DeviceTensor-level N-API calls (alloc, upload, download,
// wrap, free, cudaLogprobsRun forward and fused forward+backward, the async twin, cudaSimilarityRun ops
// 0..3 and its async twin) against the CPU
// binding on the same data. Prints SMOKE|name|ok|detail lines and exits 1 on any failure.
//
//   node bench/device/node_smoke.mjs path/to/unigap.node
// The addon must be built with CUDA (e.g. cmake-js compile --out /tmp/x --CDUNIGAP_CUDA=on here,
// then copied to .device/unigap.node and carried with .device/node.xz; see bench/device/run.sh).
import { createRequire } from 'node:module';

import { rng, toBf16 } from './smoke_util.mjs';

const require = createRequire(import.meta.url);
const path = process.argv[2] ?? '.device/unigap.node';
const n = require(path.startsWith('/') ? path : `${process.cwd()}/${path}`);
let failed = 0;
const report = (name, ok, detail = '') => {
  if (!ok) failed++;
  console.log(`SMOKE|${name}|${ok ? 'ok' : 'FAIL'}|${detail}`);
};

const st = n.cudaStatus();
report('cudaStatus', st.available, st.reason ?? 'available');
if (!st.available) process.exit(1);

const r = rng(7);
const up = (arr) => {
  const h = n.cudaAlloc(arr.byteLength, 0);
  n.cudaUpload(h, arr, 0);
  return h;
};
const down = (h, arr) => {
  n.cudaDownload(h, arr, 0);
  return arr;
};
const maxDiff = (a, b) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
};

// Round trip, wrap without ownership, free.
{
  const a = Float64Array.from({ length: 1001 }, () => r());
  const h = up(a);
  const back = down(h, new Float64Array(a.length));
  const w = n.cudaWrap(n.cudaPointer(h), a.byteLength, 0);
  const viaWrap = down(w, new Float64Array(a.length));
  n.cudaFree(w); // not owned: must not free h
  const again = down(h, new Float64Array(a.length));
  n.cudaFree(h);
  n.cudaFree(h);
  report('roundtrip+wrap', maxDiff(a, back) === 0 && maxDiff(a, viaWrap) === 0 && maxDiff(a, again) === 0);
}

// Log-probs: CPU binding (typed arrays) vs CUDA binding (device handles), f32, shift, 3 sequences.
const N = 257;
const V = 3001;
const S = 3;
const logits = Float32Array.from({ length: N * V }, () => (r() - 0.5) * 8);
const labels = Int32Array.from({ length: N }, () => (r() < 0.1 ? -100 : Math.floor(r() * V)));
const off = [0, 100, 100, N];
const gradSeq = Float32Array.of(0.5, -1, 2);
const cpuCall = (mode) => ({
  logits,
  dtype: 0,
  nTokens: N,
  vocab: V,
  labels,
  mask: null,
  ignoreIndex: -100,
  offsets: Int32Array.from(off),
  nSeq: S,
  shift: true,
  temperature: 0.9,
  tokenLogp: new Float32Array(N),
  tokenEntropy: new Float32Array(N),
  tokenCorrect: new Uint8Array(N),
  tokenLse: new Float32Array(N),
  seqSum: new Float32Array(S),
  seqCount: new Int32Array(S),
  seqMean: new Float32Array(S),
  seqLogitSum: new Float64Array(S),
  gradSeq: mode ? gradSeq : null,
  gradToken: null,
  inputLse: null,
  gradOut: mode ? new Float32Array(N * V) : null,
});
const dev = {
  logits: up(logits),
  labels: up(labels),
  offsets: up(BigInt64Array.from(off.map(BigInt))),
  gradSeq: up(gradSeq),
};
for (const mode of [0, 2]) {
  const c = cpuCall(mode);
  n.logprobsRun(mode, c);
  const outs = {
    tokenLogp: n.cudaAlloc(N * 4, 0),
    tokenEntropy: n.cudaAlloc(N * 4, 0),
    tokenCorrect: n.cudaAlloc(N, 0),
    tokenLse: n.cudaAlloc(N * 4, 0),
    seqSum: n.cudaAlloc(S * 4, 0),
    seqCount: n.cudaAlloc(S * 4, 0),
    seqMean: n.cudaAlloc(S * 4, 0),
    seqLogitSum: n.cudaAlloc(S * 8, 0),
    gradOut: mode ? n.cudaAlloc(N * V * 4, 0) : null,
  };
  n.cudaLogprobsRun(mode, {
    ...dev,
    dtype: 0,
    nTokens: N,
    vocab: V,
    mask: null,
    ignoreIndex: -100,
    nSeq: S,
    shift: true,
    temperature: 0.9,
    gradSeq: mode ? dev.gradSeq : null,
    gradToken: null,
    inputLse: null,
    ...outs,
  });
  const d = {
    tokenLogp: maxDiff(c.tokenLogp, down(outs.tokenLogp, new Float32Array(N))),
    tokenEntropy: maxDiff(c.tokenEntropy, down(outs.tokenEntropy, new Float32Array(N))),
    tokenCorrect: maxDiff(c.tokenCorrect, down(outs.tokenCorrect, new Uint8Array(N))),
    seqSum: maxDiff(c.seqSum, down(outs.seqSum, new Float32Array(S))),
    seqCount: maxDiff(c.seqCount, down(outs.seqCount, new Int32Array(S))),
  };
  if (mode) d.gradOut = maxDiff(c.gradOut, down(outs.gradOut, new Float32Array(N * V)));
  const ok =
    d.tokenLogp < 1e-3 &&
    d.tokenEntropy < 1e-3 &&
    d.tokenCorrect === 0 &&
    d.seqSum < 1e-2 &&
    d.seqCount === 0 &&
    (!mode || d.gradOut < 1e-5);
  report(`cudaLogprobsRun mode ${mode}`, ok, JSON.stringify(d));
  for (const h of Object.values(outs)) if (h) n.cudaFree(h);
}

// Async twin resolves when its stream is done.
{
  const h = n.cudaAlloc(N * 4, 0);
  await n.cudaLogprobsRunAsync(0, {
    ...dev,
    dtype: 0,
    nTokens: N,
    vocab: V,
    mask: null,
    ignoreIndex: -100,
    nSeq: S,
    shift: true,
    temperature: 0.9,
    tokenLogp: h,
  });
  const c = cpuCall(0);
  n.logprobsRun(0, c);
  report('cudaLogprobsRunAsync', maxDiff(c.tokenLogp, down(h, new Float32Array(N))) < 1e-3);
  n.cudaFree(h);
}

// A host typed array where a device handle belongs is a typed error, not a crash.
try {
  n.cudaLogprobsRun(0, { ...dev, logits, dtype: 0, nTokens: N, vocab: V, nSeq: S, ignoreIndex: -100, temperature: 1 });
  report('host array refused', false, 'no error');
} catch (e) {
  report('host array refused', e.code === 'ERR_UNIGAP_INVALID_TYPE', `${e.code}: ${e.message}`);
}

// Similarity (issue 9): cudaSimilarityRun ops 0..3 on device buffers vs the CPU binding, f32 and bf16
// (bf16/bf16 takes the tensor cores on sm_80+), the async twin, and an f64 dtype refused before any call.
{
  const NQ = 37;
  const MC = 300;
  const D = 72;
  const qa = Float32Array.from({ length: NQ * D }, () => r() - 0.5);
  const cb = Float32Array.from({ length: MC * D }, () => r() - 0.5);
  const pa = Float32Array.from({ length: NQ * D }, () => r() - 0.5);
  for (const [name, dt, conv] of [
    ['f32', 0, (x) => x],
    ['bf16', 2, toBf16],
  ]) {
    const A = conv(qa);
    const B = conv(cb);
    const P = conv(pa);
    const hA = up(A);
    const hB = up(B);
    const hP = up(P);
    const base = {
      a: hA,
      aDtype: dt,
      bDtype: dt,
      n: NQ,
      m: MC,
      d: D,
      normalize: true,
      scale: 10,
      bias: 1,
      k: 5,
      flags: 0,
    };
    // paired
    const out0 = n.cudaAlloc(NQ * 4, 0);
    n.cudaSimilarityRun(0, { ...base, b: hP, out: out0 });
    const cpu0 = new Float32Array(NQ);
    n.similarityPairedCosine(A, name, P, name, NQ, D, cpu0);
    report(`cudaSimilarityRun paired ${name}`, maxDiff(cpu0, down(out0, new Float32Array(NQ))) < 1e-5);
    // matrix
    const out1 = n.cudaAlloc(NQ * MC * 4, 0);
    n.cudaSimilarityRun(1, { ...base, b: hB, out: out1 });
    const cpu1 = new Float32Array(NQ * MC);
    n.similarityMatrix(A, name, NQ, B, name, MC, D, true, 10, 1, cpu1);
    const d1 = maxDiff(cpu1, down(out1, new Float32Array(NQ * MC)));
    report(`cudaSimilarityRun matrix ${name}`, d1 < 1e-3, `max |diff| ${d1}`);
    // top-k
    const ix = n.cudaAlloc(NQ * 5 * 4, 0);
    const sc = n.cudaAlloc(NQ * 5 * 4, 0);
    await n.cudaSimilarityRunAsync(2, { ...base, b: hB, indices: ix, scores: sc });
    const ci = new Int32Array(NQ * 5);
    const cs = new Float32Array(NQ * 5);
    n.similarityTopk(A, name, NQ, B, name, MC, D, 5, true, ci, cs);
    const gi = down(ix, new Int32Array(NQ * 5));
    const same = gi.reduce((acc, v, i) => acc + (v === ci[i] ? 1 : 0), 0);
    report(`cudaSimilarityRunAsync topk ${name}`, same >= NQ * 5 - 2, `${same}/${NQ * 5} indices equal`);
    // ranks
    const rk = n.cudaAlloc(NQ * 8, 0);
    n.cudaSimilarityRun(3, { ...base, b: hP, ranks: rk });
    const cr = new Float64Array(NQ);
    n.similarityRanks(A, name, P, name, NQ, D, true, cr);
    report(`cudaSimilarityRun ranks ${name}`, maxDiff(cr, down(rk, new Float64Array(NQ))) <= 1);
    for (const h of [hA, hB, hP, out0, out1, ix, sc, rk]) n.cudaFree(h);
  }
  try {
    n.cudaSimilarityRun(1, {
      aDtype: 1,
      bDtype: 0,
      n: 1,
      m: 1,
      d: 1,
      normalize: true,
      scale: 1,
      bias: 0,
      k: 1,
      flags: 0,
    });
    report('similarity f64 refused', false, 'no error');
  } catch (e) {
    report('similarity f64 refused', e.code === 'ERR_UNIGAP_INVALID_DTYPE', `${e.code}: ${e.message}`);
  }
}

for (const h of Object.values(dev)) n.cudaFree(h);
console.log(`SMOKE|done|${failed ? 'FAIL' : 'ok'}|${failed} failed`);
process.exit(failed ? 1 : 0);
