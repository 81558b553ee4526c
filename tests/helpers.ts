/** Test helpers shared by every suite. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { mulberry32 } from '../lib/loop/rng.js';
import { packageRoot } from '../lib/native.js';

export const distEntry = join(packageRoot, 'dist', 'index.js');

/** Run an ES module snippet in a fresh Node process (with `env` added) and return its stdout. */
export function runNode(code: string, env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

/** Deterministic PRNG (mulberry32, the loop's) so failures reproduce. */
export const rng: (seed: number) => () => number = mulberry32;

/** Standard normal samples from a seeded PRNG (Box-Muller). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Fill with NaN so an element the kernel forgot to write shows up. */
export function poison<T extends Float32Array | Float64Array>(a: T): T {
  a.fill(NaN);
  return a;
}

/** The ISA tiers this CPU can run (for forcing each in turn). */
export function tiersAvailable(best: string | null): ('scalar' | 'avx2' | 'avx512')[] {
  const all = ['scalar', 'avx2', 'avx512'] as const;
  return all.slice(0, all.indexOf((best ?? 'scalar') as (typeof all)[number]) + 1);
}

/** Every public kernel function (sync and async): the suites that must cover them all use this list. */
export const KERNEL_FUNCTIONS: readonly string[] = [
  'scoreLogprobs',
  'scoreLogprobsAsync',
  'logprobsBackward',
  'logprobsBackwardAsync',
  'dpoLoss',
  'dpoLossFromLogits',
  'dpoLossFromLogitsAsync',
  'pairedCosine',
  'clipScore',
  'similarityMatrix',
  'similarityMatrixAsync',
  'topkSimilarity',
  'topkSimilarityAsync',
  'retrievalRanks',
  'retrievalRanksAsync',
];
