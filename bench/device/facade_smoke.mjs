// Facade-level GPU smoke check (issues 8 and 9): the compiled TypeScript facade (dist/, the output of
// `npx tsc -p tsconfig.build.json`) on DeviceTensors with device: 'cuda', against the same facade's CPU
// path on the same data. Needs no npm and no node_modules: a node binary, dist/ and a CUDA build of the
// addon named by UNIGAP_NATIVE_PATH. Prints one FACADE|name|ok|detail line per check (FAIL instead of
// ok), then a summary; exit 0 all passed, 1 a check failed, 2 nothing could be checked (no CUDA device,
// no dist/, no addon path).
//
//   UNIGAP_NATIVE_PATH=$PWD/.device/unigap.node /tmp/node bench/device/facade_smoke.mjs
//
// Checks: scoreLogprobs forward (f32 and bf16; packed offsets from the host and as an i64
// DeviceTensor, shift, temperature, mask, ignoreIndex, entropy / accuracy / logit sums; output
// 'device' and 'host'), the fused forward + backward out of place and in place, logprobsBackward with
// the stored LSE and recomputing it, the async twins, a bad DeviceTensor offsets refused before any
// kernel, dpoLossFromLogits (loss, per-pair results, policy log-probs, counts, TRL metrics, gradient;
// f32 and bf16, async in place), and pairedCosine, similarityMatrix, topkSimilarity, retrievalRanks,
// clipScore (f32 and bf16 DeviceTensors). Tolerances follow the C++ harness (native/tests/test_cuda_*.cu):
// the GPU differs from the CPU by fp32 rounding (reduction order, ex2.approx, tensor cores for bf16).
//
// lib/native.ts requires the `bindings` package before it loads UNIGAP_NATIVE_PATH directly; when
// node_modules/bindings is not here (the GPU machine), a stand-in is registered for that one require.
//
// FACADE_SMOKE_FAKE=1 (a dry run without a GPU): the device binding is replaced by a fake device (host
// buffers behind the handles, the "kernels" are the CPU binding), so the script's own logic runs; its
// results say nothing about CUDA.
import Module, { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';

import { rng, toBf16 } from './smoke_util.mjs';

const t0 = Date.now();
const FAKE = process.env.FACADE_SMOKE_FAKE === '1';
const dist = new URL('../../dist/', import.meta.url);
let failed = 0;
let passed = 0;
const report = (name, ok, detail = '') => {
  if (ok) passed++;
  else failed++;
  console.log(`FACADE|${name}|${ok ? 'ok' : 'FAIL'}|${detail}`);
};
const giveUp = (why) => {
  console.log(`FACADE|setup|FAIL|${why}`);
  console.error(`facade_smoke: nothing checked: ${why}`);
  process.exit(2);
};

if (
  !existsSync(fileURLToPath(new URL('device.js', dist))) ||
  !existsSync(fileURLToPath(new URL('kernels/dpo.js', dist)))
)
  giveUp('dist/ is missing or incomplete: run `npx tsc -p tsconfig.build.json` and carry dist');
if (!FAKE && !process.env.UNIGAP_NATIVE_PATH)
  giveUp('set UNIGAP_NATIVE_PATH to a CUDA build of the addon (e.g. $PWD/.device/unigap.node)');

// `bindings` stand-in: dist/native.js requires it even when UNIGAP_NATIVE_PATH names the addon (then
// it never calls it). Only registered when the real package cannot be resolved from dist/.
try {
  createRequire(new URL('native.js', dist)).resolve('bindings');
} catch {
  if (!process.env.UNIGAP_NATIVE_PATH) giveUp('no `bindings` package and no UNIGAP_NATIVE_PATH');
  const shim = fileURLToPath(new URL('__facade_smoke_bindings_stand_in__.cjs', import.meta.url));
  const m = new Module(shim);
  m.filename = shim;
  m.loaded = true;
  m.exports = () => {
    throw new Error('facade_smoke: the `bindings` stand-in is only for UNIGAP_NATIVE_PATH loads');
  };
  Module._cache[shim] = m;
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === 'bindings' ? shim : resolve.call(this, request, ...rest);
  };
  console.log('facade_smoke: node_modules/bindings is not here; a stand-in serves the require (UNIGAP_NATIVE_PATH)');
}

const devMod = await import(new URL('device.js', dist));
const lp = await import(new URL('kernels/logprobs.js', dist));
const dpo = await import(new URL('kernels/dpo.js', dist));
const sim = await import(new URL('kernels/similarity.js', dist));
const { loadNative } = await import(new URL('native.js', dist));
const { DeviceTensor, cudaStatus } = devMod;

if (FAKE) installFakeDevice(loadNative());
const st = cudaStatus();
if (!st.available) {
  console.log(`FACADE|cudaStatus|FAIL|no CUDA device: ${st.reason ?? 'unknown reason'}`);
  console.error(
    `facade_smoke: no CUDA device (${st.reason ?? 'unknown reason'}): nothing checked; run it on the GPU machine with a CUDA build of the addon in UNIGAP_NATIVE_PATH (FACADE_SMOKE_FAKE=1 dry-runs the script on a fake device)`,
  );
  process.exit(2);
}
report(
  'cudaStatus',
  true,
  FAKE ? 'FAKE device (CPU kernels behind host buffers): checks this script, not CUDA' : 'available',
);

// ---------------------------------------------------------------- helpers

function randn(n, seed, scale = 1) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}
const fromBf16 = (x) => new Float32Array(Uint32Array.from(x, (v) => v << 16).buffer);
const values = (x, dtype) => (dtype === 'bf16' ? fromBf16(x) : x);
const maxAbs = (x) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** got vs want within atol + rtol |want| (NaN must match NaN); returns { ok, detail }. */
function cmp(name, got, want, rtol, atol) {
  if (!got || got.length !== want.length)
    return { ok: false, detail: `${name}: length ${got?.length} vs ${want.length}` };
  let bad = 0;
  let first = -1;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const g = Number(got[i]);
    const w = Number(want[i]);
    let ok;
    if (Number.isNaN(g) || Number.isNaN(w)) ok = Number.isNaN(g) && Number.isNaN(w);
    else if (!Number.isFinite(g) || !Number.isFinite(w)) ok = g === w;
    else {
      const tol = atol + rtol * Math.abs(w);
      ok = Math.abs(g - w) <= tol;
      worst = Math.max(worst, tol > 0 ? Math.abs(g - w) / tol : g === w ? 0 : Infinity);
    }
    if (!ok) {
      bad++;
      if (first < 0) first = i;
    }
  }
  const detail = bad
    ? `${name}: ${bad}/${want.length} off, first [${first}] got ${Number(got[first])} want ${Number(want[first])}`
    : `${name} ${worst.toFixed(2)}`;
  return { ok: bad === 0, detail };
}
const all = (...rs) => ({ ok: rs.every((r) => r.ok), detail: rs.map((r) => r.detail).join('; ') });

/** Device tensors made by a check, freed when it ends. */
let tracked = [];
const keep = (t) => {
  tracked.push(t);
  return t;
};
const up = (data, opts) => keep(DeviceTensor.upload(data, opts));

async function check(name, fn) {
  tracked = [];
  try {
    const r = await fn();
    report(name, r.ok, r.detail);
  } catch (e) {
    report(
      name,
      false,
      `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${String(e?.message ?? e).slice(0, 400)}`,
    );
  } finally {
    for (const t of tracked) t.dispose();
  }
}

// ---------------------------------------------------------------- log-probs

// Packed sequences of unequal length (one empty), V = 4099 (f32) and a realistic [512, 32000] (bf16).
function lpProblem(seed, N, V, S, dtype) {
  const r = rng(seed);
  const z = randn(N * V, seed + 1, 3);
  const logits = dtype === 'bf16' ? toBf16(z) : z;
  const labels = Int32Array.from({ length: N }, () => (r() < 0.08 ? -100 : Math.floor(r() * V)));
  const mask = Uint8Array.from({ length: N }, () => (r() < 0.05 ? 0 : 1));
  const cuts = Array.from({ length: S - 1 }, () => Math.floor(r() * N)).sort((a, b) => a - b);
  cuts[1] = cuts[0]; // an empty sequence
  const offsets = Int32Array.from([0, ...cuts, N]);
  const seq = Float32Array.from({ length: S }, () => r() * 4 - 2);
  const token = randn(N, seed + 2, 0.2);
  return { N, V, S, dtype, logits, labels, mask, offsets, seq, token, temperature: 0.8 };
}
const P32 = lpProblem(11, 384, 4099, 7, 'f32');
const P16 = lpProblem(12, 512, 32000, 6, 'bf16');

function statTolerances(p) {
  const vt = Math.max(1, Math.log(p.V)) * Math.max(1, 1 / p.temperature);
  return {
    tokenLogprobs: [2e-5, 2e-5 * vt],
    tokenLse: [2e-5, 2e-5 * vt],
    tokenEntropy: [1e-4, 1e-4 * vt],
    tokenCorrect: [0, 0],
    seqCount: [0, 0],
    seqSum: [1e-5, 1e-4 * vt],
    seqMean: [1e-5, 1e-4 * vt],
    seqLogitSum: [1e-5, 4e-6 * p.V * p.N * 3],
  };
}
function cmpStats(p, got, want, keys = Object.keys(statTolerances(p))) {
  const tol = statTolerances(p);
  return all(
    ...keys.map((k) => {
      const g = got[k] instanceof DeviceTensor ? got[k].download() : got[k];
      return cmp(k, g, want[k], ...tol[k]);
    }),
  );
}
const GRAD_RTOL = { f32: 2e-4, bf16: 1.6e-2, f16: 2e-3 };
function cmpGrad(p, got, want) {
  const g = values(got instanceof DeviceTensor ? got.download() : got, p.dtype);
  const w = values(want, p.dtype);
  return cmp('gradient', g, w, GRAD_RTOL[p.dtype], 1e-7 + 1e-5 * maxAbs(w));
}
// The packed layout every log-prob check shares, as the host call and as the device call take it.
const hostLayout = (p) => ({
  dtype: p.dtype,
  shape: [p.N, p.V],
  offsets: p.offsets,
  shift: true,
  temperature: p.temperature,
  mask: p.mask,
});
const devLayout = (p, d) => ({
  device: 'cuda',
  offsets: p.offsets,
  shift: true,
  temperature: p.temperature,
  mask: d.m,
});
const allStats = { entropy: true, accuracy: true, logitSums: true };
const hostOpts = (p, extra = {}) => ({ ...hostLayout(p), ...allStats, ...extra });
function devInputs(p) {
  return {
    z: up(p.logits.slice(), { shape: [p.N, p.V], dtype: p.dtype }),
    y: up(p.labels),
    m: up(p.mask),
  };
}
const devOpts = (p, d, extra = {}) => ({ ...devLayout(p, d), ...allStats, ...extra });

for (const p of [P32, P16]) {
  const want = lp.scoreLogprobs(p.logits, p.labels, hostOpts(p));
  await check(`scoreLogprobs.forward.${p.dtype}`, () => {
    const d = devInputs(p);
    const r = lp.scoreLogprobs(d.z, d.y, devOpts(p, d));
    for (const t of Object.values(r)) keep(t);
    return cmpStats(p, r, want);
  });
  await check(`scoreLogprobs.forward.${p.dtype}.i64DeviceOffsets.outputHost`, () => {
    const d = devInputs(p);
    const offsets = up(BigInt64Array.from(p.offsets, (x) => BigInt(x)));
    return cmpStats(p, lp.scoreLogprobs(d.z, d.y, devOpts(p, d, { offsets, output: 'host' })), want);
  });
}

await check('scoreLogprobsAsync.forward.f32.BxTxV', async () => {
  const p = P32;
  const B = 4;
  const T = p.N / B;
  const o = { shape: [B, T, p.V], temperature: 1.2, entropy: true };
  const want = lp.scoreLogprobs(p.logits, p.labels, o);
  const d = devInputs(p);
  const r = await lp.scoreLogprobsAsync(d.z, d.y, { ...o, device: 'cuda', output: 'host' });
  return cmpStats({ ...p, temperature: 1.2 }, r, want, [
    'tokenLogprobs',
    'tokenLse',
    'tokenEntropy',
    'seqSum',
    'seqCount',
  ]);
});

await check('scoreLogprobs.bad_device_offsets_refused', () => {
  const d = devInputs(P32);
  const bad = up(BigInt64Array.of(0n, 10n, 5n, BigInt(P32.N)));
  try {
    lp.scoreLogprobs(d.z, d.y, { device: 'cuda', offsets: bad });
  } catch (e) {
    return { ok: e.code === 'ERR_UNIGAP_INVALID_VALUE', detail: `${e.code}: ${e.message.slice(0, 120)}` };
  }
  return { ok: false, detail: 'no error' };
});

for (const p of [P32, P16]) {
  const gradient = { seq: p.seq, token: p.token };
  const want = lp.scoreLogprobs(p.logits, p.labels, hostOpts(p, { gradient }));
  await check(`scoreLogprobs.fused.${p.dtype}.outOfPlace`, () => {
    const d = devInputs(p);
    const token = up(p.token);
    const r = lp.scoreLogprobs(d.z, d.y, devOpts(p, d, { gradient: { seq: p.seq, token } }));
    for (const t of Object.values(r)) keep(t);
    return all(cmpStats(p, r, want), cmpGrad(p, r.gradient, want.gradient));
  });
  await check(`scoreLogprobsAsync.fused.${p.dtype}.inPlace`, async () => {
    const d = devInputs(p);
    const token = up(p.token);
    const r = await lp.scoreLogprobsAsync(
      d.z,
      d.y,
      devOpts(p, d, { output: 'host', gradient: { seq: up(p.seq), token, inPlace: true } }),
    );
    if (r.gradient !== d.z) return { ok: false, detail: 'in place: the gradient is not the logits tensor' };
    return all(cmpStats(p, r, want), cmpGrad(p, d.z, want.gradient));
  });
}

for (const p of [P32, P16]) {
  const o = hostLayout(p);
  const up0 = { seq: p.seq, token: p.token };
  const cpuLse = lp.scoreLogprobs(p.logits, p.labels, o).tokenLse;
  const want = lp.logprobsBackward(p.logits, p.labels, up0, { ...o, lse: cpuLse }).gradient;
  const wantRecomputed = lp.logprobsBackward(p.logits, p.labels, up0, o).gradient;
  await check(`logprobsBackward.${p.dtype}.storedLse`, () => {
    const d = devInputs(p);
    const f = lp.scoreLogprobs(d.z, d.y, devLayout(p, d));
    for (const t of Object.values(f)) keep(t);
    const g = keep(
      lp.logprobsBackward(d.z, d.y, { seq: p.seq, token: up(p.token) }, { ...devLayout(p, d), lse: f.tokenLse })
        .gradient,
    );
    return cmpGrad(p, g, want);
  });
  await check(`logprobsBackwardAsync.${p.dtype}.recomputed`, async () => {
    const d = devInputs(p);
    const g = keep(
      (await lp.logprobsBackwardAsync(d.z, d.y, { seq: p.seq, token: up(p.token) }, devLayout(p, d))).gradient,
    );
    return cmpGrad(p, g, wantRecomputed);
  });
}

// ---------------------------------------------------------------- DPO from logits

{
  const B = 3;
  const T = 96;
  for (const [dtype, V] of [
    ['f32', 4099],
    ['bf16', 32000],
  ]) {
    const N = 2 * B * T;
    const z = randn(N * V, 31, 3);
    const logits = dtype === 'bf16' ? toBf16(z) : z;
    const r = rng(32);
    const labels = Int32Array.from({ length: N }, (_, i) => (i % T < 20 ? -100 : Math.floor(r() * V)));
    const refs = {
      referenceChosen: Float64Array.from({ length: B }, () => -700 - r() * 50),
      referenceRejected: Float64Array.from({ length: B }, () => -700 - r() * 50),
    };
    const o = { dtype, shape: [2 * B, T, V], shift: true, beta: 0.1, lossType: ['sigmoid', 'sft'], ...refs };
    const want = dpo.dpoLossFromLogits(logits, labels, o);
    const p = { N, V, dtype, temperature: 1 };
    const cmpDpo = (got) => {
      const vt = Math.log(V);
      return all(
        cmp('loss', [got.loss], [want.loss], 1e-4, 1e-4),
        cmp('policyChosen', got.policyChosen, want.policyChosen, 1e-5, 1e-4 * vt),
        cmp('policyRejected', got.policyRejected, want.policyRejected, 1e-5, 1e-4 * vt),
        cmp('chosenTokens', got.chosenTokens, want.chosenTokens, 0, 0),
        cmp('losses', got.losses, want.losses, 1e-4, 1e-4),
        cmp('margins', got.margins, want.margins, 1e-4, 1e-4),
        cmp('gradChosen', got.gradChosen, want.gradChosen, 1e-4, 1e-5),
        cmp('rewardAccuracy', [got.rewardAccuracy], [want.rewardAccuracy], 0, 0),
        cmp('metrics', Object.values(got.metrics), Object.values(want.metrics), 1e-4, 1e-5),
      );
    };
    await check(`dpoLossFromLogits.${dtype}`, () => {
      const d = { z: up(logits.slice(), { shape: [2 * B, T, V], dtype }), y: up(labels) };
      const got = dpo.dpoLossFromLogits(d.z, d.y, { ...o, device: 'cuda', dtype: undefined, shape: undefined });
      keep(got.gradient);
      return all(cmpDpo(got), cmpGrad(p, got.gradient, want.gradient));
    });
    await check(`dpoLossFromLogitsAsync.${dtype}.inPlace`, async () => {
      const d = { z: up(logits.slice(), { shape: [N, V], dtype }), y: up(labels) };
      const got = await dpo.dpoLossFromLogitsAsync({ data: d.z, dims: [N, V] }, d.y, {
        ...o,
        dtype: undefined,
        shape: undefined,
        offsets: Int32Array.from({ length: 2 * B + 1 }, (_, i) => i * T),
        device: 'cuda',
        inPlace: true,
      });
      if (got.gradient !== d.z) return { ok: false, detail: 'in place: the gradient is not the logits tensor' };
      return all(cmpDpo(got), cmpGrad(p, d.z, want.gradient));
    });
  }
}

// ---------------------------------------------------------------- similarity

for (const dtype of ['f32', 'bf16']) {
  const n = 256;
  const m = 1000;
  const D = 256;
  const mk = (rows, seed) => {
    const x = randn(rows * D, seed);
    return { data: dtype === 'bf16' ? toBf16(x) : x, dims: [rows, D], dtype };
  };
  const A = mk(n, 41);
  const P = { ...mk(n, 42) };
  // each pair's text = its image plus noise (own cosine ~0.16, near the best of 255 others): ranks vary
  const base = values(A.data, dtype);
  const noisy = Float32Array.from(values(P.data, dtype), (v, i) => base[i] + 6 * v);
  P.data = dtype === 'bf16' ? toBf16(noisy) : noisy;
  const C = mk(m, 43);
  const dev = (e) => up(e.data, { shape: e.dims, dtype });
  const TOL = 2e-5;
  const cos = sim.similarityMatrix(A, C, { device: 'cpu' });
  const self = sim.similarityMatrix(A, P, { device: 'cpu' });

  await check(`pairedCosine.${dtype}`, () => {
    const got = keep(sim.pairedCosine(dev(A), dev(P), { device: 'cuda' }));
    return cmp('cos', got.download(), sim.pairedCosine(A, P), 0, TOL);
  });
  await check(`clipScore.${dtype}`, () => {
    const a = dev(A);
    const b = dev(P);
    return all(
      cmp('mean', [sim.clipScore(a, b, { device: 'cuda' })], [sim.clipScore(A, P)], 0, 100 * TOL),
      cmp(
        'none',
        sim.clipScore(a, b, { device: 'cuda', reduction: 'none' }),
        sim.clipScore(A, P, { reduction: 'none' }),
        0,
        100 * TOL,
      ),
    );
  });
  await check(`similarityMatrix.${dtype}`, async () => {
    const a = dev(A);
    const c = dev(C);
    const got = keep(sim.similarityMatrix(a, c, { device: 'cuda', scale: 100, bias: -2 }));
    const gotAsync = keep(await sim.similarityMatrixAsync(a, c, { device: 'cuda' }));
    return all(
      cmp('scaled', got.download(), sim.similarityMatrix(A, C, { scale: 100, bias: -2 }), 0, 100 * TOL),
      cmp('async', gotAsync.download(), cos, 0, TOL),
    );
  });
  await check(`topkSimilarity.${dtype}`, () => {
    const k = 10;
    const got = sim.topkSimilarity(dev(A), dev(C), k, { device: 'cuda' });
    keep(got.indices);
    keep(got.scores);
    const want = sim.topkSimilarity(A, C, k);
    const gi = got.indices.download();
    // an index may differ only where the CPU's own scores tie within 2 TOL
    const viaCpu = Float32Array.from(gi, (j, q) => cos[Math.floor(q / k) * m + j]);
    return all(
      cmp('scores', got.scores.download(), want.scores, 0, TOL),
      cmp('indices (CPU score of)', viaCpu, want.scores, 0, 2 * TOL),
    );
  });
  await check(`retrievalRanks.${dtype}`, () => {
    const got = sim.retrievalRanks(dev(A), dev(P), { device: 'cuda' });
    const want = sim.retrievalRanks(A, P);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      let near = 0;
      for (let j = 0; j < n; j++) if (j !== i && Math.abs(self[i * n + j] - self[i * n + i]) <= 2 * TOL) near++;
      if (Math.abs(got.ranks[i] - want.ranks[i]) > near) bad++;
    }
    return {
      ok: bad === 0,
      detail: `ranks: ${bad} beyond near-ties; R@1 ${got.recallAt1} vs ${want.recallAt1}, mean rank ${got.meanRank} vs ${want.meanRank}`,
    };
  });
}

const secs = ((Date.now() - t0) / 1000).toFixed(1);
console.log(
  `FACADE|summary|${failed ? 'FAIL' : 'ok'}|${passed} passed, ${failed} failed, ${secs} s${FAKE ? ' (FAKE device)' : ''}`,
);
process.exit(failed ? 1 : 0);

// ---------------------------------------------------------------- the fake device (FACADE_SMOKE_FAKE=1)

function installFakeDevice(n) {
  const DT = ['f32', 'f64', 'bf16', 'f16'];
  let addr = 0x10000n;
  const view = (h, Ctor, len) => (h == null ? null : new Ctor(h.bytes.buffer, 0, len));
  const lv = (h, dt, len) => view(h, dt === 0 ? Float32Array : Uint16Array, len);
  const cpuCall = (c, inputsOnly) => {
    const N = c.nTokens;
    const V = c.vocab;
    const S = c.nSeq;
    const out = {
      logits: lv(c.logits, c.dtype, N * V),
      dtype: c.dtype,
      nTokens: N,
      vocab: V,
      labels: view(c.labels, Int32Array, N),
      mask: view(c.mask, Uint8Array, N),
      ignoreIndex: c.ignoreIndex,
      offsets: view(c.offsets, BigInt64Array, S + 1),
      nSeq: S,
      shift: c.shift,
      temperature: c.temperature,
    };
    const f = (k, Ctor, len) => (out[k] = inputsOnly ? null : view(c[k], Ctor, len));
    f('tokenLogp', Float32Array, N);
    f('tokenEntropy', Float32Array, N);
    f('tokenCorrect', Uint8Array, N);
    f('tokenLse', Float32Array, N);
    f('seqSum', Float32Array, S);
    f('seqCount', Int32Array, S);
    f('seqMean', Float32Array, S);
    f('seqLogitSum', Float64Array, S);
    f('gradSeq', Float32Array, S);
    f('gradToken', Float32Array, N);
    f('inputLse', Float32Array, N);
    out.gradOut = inputsOnly ? null : lv(c.gradOut, c.dtype, N * V);
    return out;
  };
  const lpRun = (mode, c) => n.logprobsRun(mode, cpuCall(c, false));
  const dpoRun = (c, args, out) =>
    n.dpoFromLogits(cpuCall(c, true), args, { ...out, gradOut: lv(out.gradOut, c.dtype, c.nTokens * c.vocab) });
  const simRun = (op, c) => {
    const a = { data: lv(c.a, c.aDtype, c.n * c.d), dims: [c.n, c.d], dtype: DT[c.aDtype] };
    const b = { data: lv(c.b, c.bDtype, c.m * c.d), dims: [c.m, c.d], dtype: DT[c.bDtype] };
    const o = { device: 'cpu', normalize: c.normalize };
    if (op === 0) view(c.out, Float32Array, c.n).set(sim.pairedCosine(a, b, { device: 'cpu' }));
    else if (op === 1)
      sim.similarityMatrix(a, b, { ...o, scale: c.scale, bias: c.bias, out: view(c.out, Float32Array, c.n * c.m) });
    else if (op === 2) {
      const r = sim.topkSimilarity(a, b, c.k, o);
      view(c.indices, Int32Array, c.n * c.k).set(r.indices);
      view(c.scores, Float32Array, c.n * c.k).set(r.scores);
    } else view(c.ranks, Float64Array, c.n).set(sim.retrievalRanks(a, b, o).ranks);
  };
  const later =
    (f) =>
    (...a) => {
      try {
        f(...a);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    };
  Object.assign(n, {
    cudaStatus: () => ({ available: true, reason: null }),
    cudaAlloc: (bytes) => {
      const b = { bytes: new Uint8Array(Math.max(8, Math.ceil(bytes / 8) * 8)), addr };
      addr += BigInt(b.bytes.length) + 256n;
      return b;
    },
    cudaFree: () => {},
    cudaPointer: (h) => h.addr,
    cudaUpload: (h, a) => h.bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)),
    cudaDownload: (h, a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(h.bytes.subarray(0, a.byteLength)),
    cudaLogprobsRun: lpRun,
    cudaLogprobsRunAsync: later(lpRun),
    cudaDpoFromLogits: dpoRun,
    cudaDpoFromLogitsAsync: later(dpoRun),
    cudaSimilarityRun: simRun,
    cudaSimilarityRunAsync: later(simRun),
  });
}
