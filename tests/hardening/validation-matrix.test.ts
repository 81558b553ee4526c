/**
 * Input-validation matrix (issue 10): every public kernel function × every class of bad input must end
 * in a typed error with a `code` allowed for that class, and the process must survive. In process here;
 * tests/hardening/child-matrix.ts repeats it in a child process with forced GC and hostile calls straight
 * into the native binding, and this file checks that child exits cleanly.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import * as api from '../../lib/index.js';
import { packageRoot } from '../../lib/native.js';
import { KERNEL_FUNCTIONS } from '../helpers.js';
import { ALLOWED, buildCases, buildEdgeCalls, runCase, type BadClass } from './cases.js';

const cases = buildCases(api);

describe('validation matrix', () => {
  it('covers every public kernel function with every class that applies to it', () => {
    const byFn = new Map<string, Set<BadClass>>();
    for (const c of cases) byFn.set(c.fn, (byFn.get(c.fn) ?? new Set()).add(c.cls));
    const kernels = KERNEL_FUNCTIONS;
    for (const fn of kernels) {
      expect(typeof (api as Record<string, unknown>)[fn], fn).toBe('function');
      const classes = byFn.get(fn) ?? new Set();
      // dpoLoss takes no shapes (B is the array length) and pairedCosine no options: those classes do
      // not apply to them.
      const need = (Object.keys(ALLOWED) as BadClass[]).filter(
        (c) =>
          !(fn === 'dpoLoss' && ['negative-dim', 'fractional-dim', 'nan-dim', 'overflow'].includes(c)) &&
          !(fn === 'pairedCosine' && ['unknown-option', 'bad-option'].includes(c)),
      );
      expect(
        [...need].filter((c) => !classes.has(c)),
        `${fn}: classes without a case`,
      ).toEqual([]);
    }
    expect(cases.length).toBeGreaterThan(500);
  });

  for (const fn of [...new Set(cases.map((c) => c.fn))]) {
    it(`${fn}: every bad input gives a typed error`, async () => {
      const failures: string[] = [];
      for (const c of cases.filter((x) => x.fn === fn)) {
        const problem = await runCase(c);
        if (problem) failures.push(`[${c.cls}] ${c.what}: ${problem}`);
      }
      expect(failures).toEqual([]);
    });
  }

  // Needs a CUDA device (none on CI machines): a DeviceTensor used after dispose must throw a typed
  // error, never touch freed device memory.
  it.skipIf(!api.cudaStatus().available)('a DeviceTensor used after dispose gives a typed error', () => {
    const t = api.DeviceTensor.upload(Float32Array.of(1, 2, 3, 4));
    t.dispose();
    t.dispose(); // idempotent
    for (const f of [() => t.download(), () => t.pointer]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toMatch(/^ERR_UNIGAP_/);
    }
  });

  it('valid calls at the edges (empty batches, V = 1, zero vectors) succeed', () => {
    for (const e of buildEdgeCalls(api)) expect(e.call, e.what).not.toThrow();
    const r = api.scoreLogprobs(new Float32Array(0), new Int32Array(0), { shape: [0, 3, 5] });
    expect(r.seqSum.length).toBe(0);
    expect(
      api.similarityMatrix({ data: new Float32Array(0), dims: [0, 4] }, { data: new Float32Array(8), dims: [2, 4] })
        .length,
    ).toBe(0);
    expect(
      api.clipScore({ data: new Float32Array(8), dims: [2, 4] }, { data: new Float32Array(8), dims: [2, 4] }),
    ).toBe(0);
  });

  it('a child process running the matrix with forced GC and hostile native calls exits cleanly', () => {
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(packageRoot, 'tests', 'hardening', 'child-matrix.ts')],
      { cwd: packageRoot, encoding: 'utf8', env: process.env, timeout: 180_000 },
    );
    const tail = `${r.stdout}\n${r.stderr}`.split('\n').slice(-30).join('\n');
    expect(r.signal, tail).toBeNull();
    expect(r.status, tail).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    expect(summary.matrixFailures, tail).toEqual([]);
    expect(summary.cases).toBe(cases.length);
    expect(summary.nativeUntyped, tail).toEqual([]);
    expect(summary.nativeCalls).toBeGreaterThan(50);
  });
});
