/**
 * Shared benchmark plumbing (tinybench): the machine's own limits measured by native probes, rows
 * with provenance (device, ISA, dtype, shape, p20/p50/p80, share of the limit), a printed table, and
 * bench/results/<family>.json. Figures are only compared within one run: these machines drift.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import { Bench } from 'tinybench';

import { backendInfo } from '../lib/index.js';
import { loadNative, packageRoot } from '../lib/native.js';

export interface MachineLimits {
  /** Streaming-read bandwidth, GB/s (1e9 B/s), all pool threads, best tier. */
  readGBs: number;
  /** f32 FMA peak, GFLOP/s, all pool threads, best tier. */
  fmaGflops: number;
  isa: string;
  threads: number;
  cpuModel: string;
}

let limitsCache: MachineLimits | undefined;

/** Measure (once per process) the read bandwidth and FMA peak of this machine. */
export function machineLimits(): MachineLimits {
  if (limitsCache) return limitsCache;
  const native = loadNative() as unknown as { probeFmaPeak(iters: number, reps: number): number };
  const info = backendInfo();
  limitsCache = {
    readGBs: probeReadGBs(7),
    fmaGflops: native.probeFmaPeak(20_000_000, 5),
    isa: info.cpu.isa ?? 'unknown',
    threads: info.cpu.threads,
    cpuModel: cpus()[0]?.model ?? 'unknown',
  };
  return limitsCache;
}

/**
 * The streaming-read bandwidth now (GB/s, best of `reps` sweeps over 512 MB with every pool thread),
 * for benches that re-measure the limit next to their rows because the machine's state moves.
 */
export function probeReadGBs(reps = 5): number {
  const native = loadNative() as unknown as { probeReadBandwidth(bytes: number, reps: number): number };
  return native.probeReadBandwidth(512 * 1024 * 1024, reps);
}

export interface BenchCase {
  /** Row label, e.g. 'scoreLogprobs forward'. */
  op: string;
  /** 'unigap' | 'reference (TS f64)' | 'onnxruntime-node' | 'simsimd' | 'numpy+OpenBLAS' ... */
  provider: string;
  dtype: string;
  shape: string;
  /** ISA tier for unigap rows; for peers, what they use if known. */
  isa?: string;
  /** Bytes that must be moved at least once (for the bandwidth share). */
  bytes?: number;
  /** Floating-point operations (for the FMA-peak share). */
  flops?: number;
  fn: () => unknown | Promise<unknown>;
  /** Optional tinybench overrides for slow cases. */
  time?: number;
  iterations?: number;
}

export interface BenchRow {
  op: string;
  provider: string;
  device: string;
  isa: string;
  dtype: string;
  shape: string;
  p20Ms: number;
  p50Ms: number;
  p80Ms: number;
  samples: number;
  /** GB/s achieved (bytes / median) and its share of the measured read bandwidth. */
  gbs?: number;
  shareOfBandwidth?: number;
  /** GFLOP/s achieved and its share of the measured FMA peak. */
  gflops?: number;
  shareOfFmaPeak?: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Run each case with tinybench (sequentially, one at a time) and return rows. `readGBs`: the read
 * bandwidth the rows' shares refer to (default: the machine's, measured once per process).
 */
export async function runCases(
  cases: BenchCase[],
  defaults: { time?: number; iterations?: number; readGBs?: number } = {},
) {
  const limits = machineLimits();
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const bench = new Bench({
      time: c.time ?? defaults.time ?? 1500,
      iterations: c.iterations ?? defaults.iterations ?? 10,
      warmupIterations: 2,
      retainSamples: true,
      throws: true,
    });
    bench.add(`${c.provider} ${c.op}`, c.fn);
    await bench.run();
    const r = bench.tasks[0].result as unknown as { latency: { p50: number; samples?: ArrayLike<number> } };
    const s = Array.from(r.latency.samples ?? []).sort((a, b) => a - b);
    const p50 = s.length ? quantile(s, 0.5) : r.latency.p50;
    const row: BenchRow = {
      op: c.op,
      provider: c.provider,
      device: 'cpu',
      isa: c.isa ?? '-',
      dtype: c.dtype,
      shape: c.shape,
      p20Ms: quantile(s, 0.2),
      p50Ms: p50,
      p80Ms: quantile(s, 0.8),
      samples: s.length,
    };
    if (c.bytes) {
      row.gbs = c.bytes / (p50 / 1e3) / 1e9;
      row.shareOfBandwidth = row.gbs / (defaults.readGBs ?? limits.readGBs);
    }
    if (c.flops) {
      row.gflops = c.flops / (p50 / 1e3) / 1e9;
      row.shareOfFmaPeak = row.gflops / limits.fmaGflops;
    }
    rows.push(row);
    console.log(formatRow(row));
  }
  return rows;
}

const pct = (x?: number) => (x === undefined ? '' : `${(x * 100).toFixed(0)}%`);

export function formatRow(r: BenchRow): string {
  return [
    r.op.padEnd(34),
    r.provider.padEnd(22),
    r.isa.padEnd(7),
    r.dtype.padEnd(5),
    r.shape.padEnd(22),
    `${r.p50Ms.toFixed(2)} ms`.padStart(12),
    `[${r.p20Ms.toFixed(2)}, ${r.p80Ms.toFixed(2)}]`.padEnd(20),
    r.gbs !== undefined ? `${r.gbs.toFixed(1)} GB/s ${pct(r.shareOfBandwidth)} of read bw` : '',
    r.gflops !== undefined ? `${r.gflops.toFixed(0)} GFLOP/s ${pct(r.shareOfFmaPeak)} of FMA peak` : '',
  ].join(' ');
}

/** A markdown table of rows (for the README). */
export function markdownTable(rows: BenchRow[]): string {
  const head =
    '| op | provider | ISA | dtype | shape | median ms | p20–p80 ms | vs machine limit |\n|---|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.op} | ${r.provider} | ${r.isa} | ${r.dtype} | ${r.shape} | ${r.p50Ms.toFixed(2)} | ${r.p20Ms.toFixed(2)}–${r.p80Ms.toFixed(2)} | ${
        r.shareOfBandwidth !== undefined
          ? `${pct(r.shareOfBandwidth)} of read bw`
          : r.shareOfFmaPeak !== undefined
            ? `${pct(r.shareOfFmaPeak)} of FMA peak`
            : ''
      } |`,
  );
  return [head, ...body].join('\n');
}

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: packageRoot, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Print the limits header; call first in every bench file. */
export function printHeader(family: string): MachineLimits {
  const l = machineLimits();
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  console.log(
    `unigap ${pkg.version} (${gitCommit()}) bench ${family} on ${l.cpuModel}, ${l.threads} threads, isa ${l.isa}\n` +
      `machine limits: read bandwidth ${l.readGBs.toFixed(1)} GB/s, f32 FMA peak ${l.fmaGflops.toFixed(0)} GFLOP/s\n`,
  );
  return l;
}

/** Write bench/results/<family>.json with provenance and a markdown table beside it. */
export function saveResults(family: string, rows: BenchRow[], extra: Record<string, unknown> = {}): void {
  const dir = join(packageRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  const doc = {
    family,
    date: new Date().toISOString(),
    version: pkg.version,
    commit: gitCommit(),
    node: process.version,
    limits: machineLimits(),
    command: `npm run bench -- ${family}`,
    ...extra,
    rows,
  };
  writeFileSync(join(dir, `${family}.json`), JSON.stringify(doc, null, 2) + '\n');
  writeFileSync(join(dir, `${family}.md`), markdownTable(rows) + '\n');
}
