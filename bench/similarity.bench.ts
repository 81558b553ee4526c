/**
 * Similarity kernels vs their peers in one run, each figure printed as a share of this machine's
 * measured limits (f32 FMA peak, streaming-read bandwidth):
 *  - similarityMatrix 4096×4096×768 f32 (target >= 60% of FMA peak) vs onnxruntime-node MatMul at 2
 *    intra-op threads and OpenBLAS sgemm through numpy (child process) when python3-numpy is installed;
 *  - topkSimilarity k = 10 on the same (target <= 1.3× the matrix time) and retrievalRanks;
 *  - pairedCosine [65536, 768] f32 / bf16 (403 / 201 MB of inputs, far beyond the L3; target >= 80% of
 *    read bandwidth) vs simsimd one pair per call, and a cache-resident [4096, 768] row for contrast;
 *  - the float64 TS reference (smaller shapes where it is too slow; the shape column says which).
 * `npm run bench -- similarity`; BENCH_SIM_SMALL=1 shrinks the main shapes for a quick look (not saved).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

import {
  backendInfo,
  pairedCosine,
  retrievalRanks,
  similarityMatrix,
  topkSimilarity,
  type Embeddings,
} from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { pairedCosineRef, similarityMatrixRef, topkRef } from '../lib/reference/similarity.js';
import { machineLimits, printHeader, runCases, saveResults, type BenchCase, type BenchRow } from './common.js';
import { loadSimsimd, ortMatmul, ortVersion } from './peers/ort-matmul.js';

const small = process.env.BENCH_SIM_SMALL === '1';

function randn(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  const u = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function f32ToBf16(a: Float32Array): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  return Uint16Array.from(u, (v) => ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff);
}

function transpose(b: Float32Array, m: number, d: number): Float32Array {
  const t = new Float32Array(m * d);
  for (let j = 0; j < m; j++) for (let k = 0; k < d; k++) t[k * m + j] = b[j * d + k];
  return t;
}

/** OpenBLAS sgemm via Debian's numpy in a child process, or the reason it was skipped. */
function numpyRow(n: number, m: number, d: number, reps: number): { row?: BenchRow; note: string } {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return { note: 'skipped: /usr/bin/python3 not found' };
  const probe = spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' });
  if (probe.status !== 0)
    return { note: 'skipped: python3-numpy is not installed (apt-get install python3-numpy libopenblas0-pthread)' };
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for this child only, so OpenBLAS picks its own core.
  const env: Record<string, string> = { ...process.env, OPENBLAS_NUM_THREADS: '2' } as Record<string, string>;
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(py, [join(packageRoot, 'bench', 'peers', 'numpy_sgemm.py'), `${n}`, `${m}`, `${d}`, `${reps}`], {
    encoding: 'utf8',
    env,
  });
  if (r.status !== 0) return { note: `skipped: numpy child failed: ${r.stderr.trim().split('\n').pop()}` };
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    times_ms: number[];
    numpy: string;
    core: string;
    threads: number;
  };
  const s = [...out.times_ms].sort((x, y) => x - y);
  const q = (p: number) => {
    const pos = (s.length - 1) * p;
    const lo = Math.floor(pos);
    return s[lo] + (s[Math.ceil(pos)] - s[lo]) * (pos - lo);
  };
  const limits = machineLimits();
  const flops = 2 * n * m * d;
  const p50 = q(0.5);
  const gflops = flops / (p50 / 1e3) / 1e9;
  const row: BenchRow = {
    op: 'similarity matrix (sgemm only)',
    provider: `numpy ${out.numpy}+OpenBLAS`,
    device: 'cpu',
    isa: out.core,
    dtype: 'f32',
    shape: `${n}×${m}×${d}`,
    p20Ms: q(0.2),
    p50Ms: p50,
    p80Ms: q(0.8),
    samples: s.length,
    gflops,
    shareOfFmaPeak: gflops / limits.fmaGflops,
  };
  return {
    row,
    note: `numpy ${out.numpy}, OpenBLAS core ${out.core}, ${out.threads} threads (OPENBLAS_CORETYPE/L2_SIZE unset)`,
  };
}

async function main() {
  const limits = printHeader('similarity');
  const isa = backendInfo().cpu.isa ?? '-';
  const [N, M, D] = small ? [1024, 1024, 768] : [4096, 4096, 768];
  const [PN, PD] = small ? [1024, 768] : [4096, 768];
  // The [4096, 768] pairs (25 MB) stay in the 32 MB L3 between iterations; the cold rows use pairs far
  // larger than any cache (403 MB f32), so their share of read bandwidth is a DRAM figure.
  const [CN, CD] = small ? [8192, 768] : [65536, 768];
  const shape = `${N}×${M}×${D}`;
  const flops = 2 * N * M * D;

  const A = randn(N * D, 1);
  const B = randn(M * D, 2);
  const images: Embeddings = { data: A, dims: [N, D] };
  const texts: Embeddings = { data: B, dims: [M, D] };
  const pa = randn(PN * PD, 3);
  const pb = randn(PN * PD, 4);
  const pairA: Embeddings = { data: pa, dims: [PN, PD] };
  const pairB: Embeddings = { data: pb, dims: [PN, PD] };
  const pairBf: Embeddings = { data: f32ToBf16(pa), dims: [PN, PD], dtype: 'bf16' };
  const pairBfB: Embeddings = { data: f32ToBf16(pb), dims: [PN, PD], dtype: 'bf16' };
  const ca = randn(CN * CD, 5);
  const cb = randn(CN * CD, 6);
  const coldA: Embeddings = { data: ca, dims: [CN, CD] };
  const coldB: Embeddings = { data: cb, dims: [CN, CD] };
  const coldBfA: Embeddings = { data: f32ToBf16(ca), dims: [CN, CD], dtype: 'bf16' };
  const coldBfB: Embeddings = { data: f32ToBf16(cb), dims: [CN, CD], dtype: 'bf16' };
  const pa64 = Float64Array.from(pa);
  const pb64 = Float64Array.from(pb);
  const rowsA = Array.from({ length: PN }, (_, i) => pa.subarray(i * PD, i * PD + PD));
  const rowsB = Array.from({ length: PN }, (_, i) => pb.subarray(i * PD, i * PD + PD));
  const notes: Record<string, string> = {};
  const reuse = new Float32Array(N * M);

  const cases: BenchCase[] = [
    {
      op: 'pairedCosine (cache-resident)',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: `[${PN}, ${PD}]`,
      bytes: 2 * PN * PD * 4,
      fn: () => pairedCosine(pairA, pairB),
      iterations: 50,
    },
    {
      op: 'pairedCosine',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: `[${CN}, ${CD}]`,
      bytes: 2 * CN * CD * 4,
      fn: () => pairedCosine(coldA, coldB),
      iterations: 20,
    },
    {
      op: 'pairedCosine',
      provider: 'unigap',
      isa,
      dtype: 'bf16',
      shape: `[${CN}, ${CD}]`,
      bytes: 2 * CN * CD * 2,
      fn: () => pairedCosine(coldBfA, coldBfB),
      iterations: 20,
    },
    {
      op: 'pairedCosine (cache-resident)',
      provider: 'unigap',
      isa,
      dtype: 'bf16',
      shape: `[${PN}, ${PD}]`,
      bytes: 2 * PN * PD * 2,
      fn: () => pairedCosine(pairBf, pairBfB),
      iterations: 50,
    },
  ];
  const simsimd = loadSimsimd();
  if (simsimd) {
    notes.simsimd = `simsimd ${simsimd.version}: cosine() one pair per call (returns 1 - cos)`;
    const coldRowsA = Array.from({ length: CN }, (_, i) => ca.subarray(i * CD, i * CD + CD));
    const coldRowsB = Array.from({ length: CN }, (_, i) => cb.subarray(i * CD, i * CD + CD));
    cases.push(
      {
        op: 'pairedCosine (1 pair/call, cache-resident)',
        provider: `simsimd ${simsimd.version}`,
        dtype: 'f32',
        shape: `[${PN}, ${PD}]`,
        bytes: 2 * PN * PD * 4,
        fn: () => {
          const out = new Float32Array(PN);
          for (let i = 0; i < PN; i++) out[i] = 1 - simsimd.cosine(rowsA[i], rowsB[i]);
          return out;
        },
        iterations: 50,
      },
      {
        op: 'pairedCosine (1 pair/call)',
        provider: `simsimd ${simsimd.version}`,
        dtype: 'f32',
        shape: `[${CN}, ${CD}]`,
        bytes: 2 * CN * CD * 4,
        fn: () => {
          const out = new Float32Array(CN);
          for (let i = 0; i < CN; i++) out[i] = 1 - simsimd.cosine(coldRowsA[i], coldRowsB[i]);
          return out;
        },
        iterations: 20,
      },
    );
  } else notes.simsimd = 'skipped: simsimd did not load from bench/peers';
  cases.push({
    op: 'pairedCosine',
    provider: 'reference (TS f64)',
    dtype: 'f64',
    shape: `[${PN}, ${PD}]`,
    bytes: 2 * PN * PD * 8,
    fn: () => pairedCosineRef(pa64, pb64, PN, PD),
  });

  cases.push(
    {
      op: 'similarityMatrix',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape,
      flops,
      fn: () => similarityMatrix(images, texts, { scale: 100 }),
      time: 3000,
    },
    {
      op: 'similarityMatrix (out reused)',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape,
      flops,
      fn: () => similarityMatrix(images, texts, { scale: 100, out: reuse }),
      time: 3000,
    },
    {
      op: 'topkSimilarity k=10',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape,
      flops,
      fn: () => topkSimilarity(images, texts, 10),
      time: 3000,
    },
    {
      op: 'retrievalRanks',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: `${N}×${N}×${D}`,
      flops: 2 * N * N * D,
      fn: () => retrievalRanks(images, { data: B.subarray(0, N * D), dims: [N, D] }),
      time: 3000,
    },
  );

  try {
    const bt = transpose(B, M, D);
    const run = await ortMatmul(N, M, D, 2);
    notes.onnxruntime = `onnxruntime-node ${ortVersion()}: MatMul A·Bᵀ (B pre-transposed outside timing), 2 intra-op threads, sequential`;
    cases.push({
      op: 'similarity matrix (MatMul only)',
      provider: `onnxruntime-node ${ortVersion()}`,
      dtype: 'f32',
      shape,
      flops,
      fn: () => run(A, bt),
      time: 3000,
    });
  } catch (e) {
    notes.onnxruntime = `skipped: ${(e as Error).message.split('\n')[0]}`;
  }

  // The float64 reference is ~1000× slower than the GEMM: a 256×256×768 slice.
  const [RN, RM] = [256, 256];
  const ra = Float64Array.from(A.subarray(0, RN * D));
  const rb = Float64Array.from(B.subarray(0, RM * D));
  cases.push(
    {
      op: 'similarityMatrix',
      provider: 'reference (TS f64)',
      dtype: 'f64',
      shape: `${RN}×${RM}×${D}`,
      flops: 2 * RN * RM * D,
      fn: () => similarityMatrixRef(ra, RN, rb, RM, D),
      iterations: 5,
    },
    {
      op: 'topkSimilarity k=10',
      provider: 'reference (TS f64)',
      dtype: 'f64',
      shape: `${RN}×${RM}×${D}`,
      flops: 2 * RN * RM * D,
      fn: () => topkRef(ra, RN, rb, RM, D, 10),
      iterations: 5,
    },
    {
      op: 'similarityMatrix',
      provider: 'unigap',
      isa,
      dtype: 'f32',
      shape: `${RN}×${RM}×${D}`,
      flops: 2 * RN * RM * D,
      fn: () =>
        similarityMatrix(
          { data: A.subarray(0, RN * D), dims: [RN, D] },
          { data: B.subarray(0, RM * D), dims: [RM, D] },
        ),
      iterations: 20,
    },
  );

  const loadBefore = loadavg()[0];
  const rows = await runCases(cases, { iterations: 10 });
  const loadAfter = loadavg()[0];
  // This machine is shared: wall-clock shares fall when other tenants run. CPU time (all threads)
  // shows what the kernel does per CPU-second it actually got, against the per-thread FMA peak.
  const cpuView: Record<string, string> = {};
  const perThreadPeak = limits.fmaGflops / limits.threads;
  for (const [name, f] of [
    ['similarityMatrix (out reused)', () => similarityMatrix(images, texts, { scale: 100, out: reuse })],
    ['topkSimilarity k=10', () => topkSimilarity(images, texts, 10)],
  ] as const) {
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const c0 = process.cpuUsage();
      f();
      const c = process.cpuUsage(c0);
      best = Math.min(best, (c.user + c.system) / 1e6);
    }
    const g = flops / best / 1e9;
    cpuView[name] =
      `${g.toFixed(0)} GFLOP per CPU-second = ${((g / perThreadPeak) * 100).toFixed(0)}% of the per-thread FMA peak (${perThreadPeak.toFixed(0)})`;
  }
  const np = numpyRow(N, M, D, 10);
  notes.numpy = np.note;
  if (np.row) rows.push(np.row);
  console.log(
    np.row
      ? `${np.row.provider} (${np.row.isa}): ${np.row.p50Ms.toFixed(2)} ms, ${((np.row.shareOfFmaPeak ?? 0) * 100).toFixed(0)}% of FMA peak`
      : `numpy: ${np.note}`,
  );

  const get = (op: string, provider = 'unigap', dtype = 'f32') =>
    rows.find((r) => r.op === op && r.provider === provider && r.dtype === dtype && r.shape !== `${RN}×${RM}×${D}`);
  const mat = get('similarityMatrix');
  const topk = get('topkSimilarity k=10');
  const pc = rows.find((r) => r.op === 'pairedCosine' && r.provider === 'unigap' && r.dtype === 'f32');
  const targets = {
    matrixShareOfFmaPeak: mat?.shareOfFmaPeak,
    matrixTarget: 0.6,
    topkOverMatrix: topk && mat ? topk.p50Ms / mat.p50Ms : undefined,
    topkTarget: 1.3,
    pairedShareOfReadBandwidth: pc?.shareOfBandwidth,
    pairedTarget: 0.8,
  };
  console.log('\ntargets:');
  console.log(
    `  similarityMatrix ${shape}: ${((targets.matrixShareOfFmaPeak ?? 0) * 100).toFixed(0)}% of FMA peak (${limits.fmaGflops.toFixed(0)} GFLOP/s), target >= 60%`,
  );
  console.log(`  topk k=10 / matrix: ${targets.topkOverMatrix?.toFixed(2)}×, target <= 1.3×`);
  console.log(
    `  pairedCosine [${CN}, ${CD}] (${((2 * CN * CD * 4) / 1e6).toFixed(0)} MB of inputs): ${((targets.pairedShareOfReadBandwidth ?? 0) * 100).toFixed(0)}% of read bandwidth (${limits.readGBs.toFixed(1)} GB/s), target >= 80%`,
  );
  for (const [k, v] of Object.entries(notes)) console.log(`  ${k}: ${v}`);
  console.log(
    `  load average (1 min) before/after: ${loadBefore.toFixed(1)} / ${loadAfter.toFixed(1)} on ${limits.threads} CPUs`,
  );
  for (const [k, v] of Object.entries(cpuView)) console.log(`  cpu-time view, ${k}: ${v}`);
  if (!small)
    saveResults('similarity', rows, {
      targets,
      peers: notes,
      threads: backendInfo().cpu.threads,
      loadAverage: { before: loadBefore, after: loadAfter },
      cpuTimeView: cpuView,
    });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
