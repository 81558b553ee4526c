/** Test helpers shared by every suite. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

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

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
