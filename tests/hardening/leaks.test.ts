/**
 * No leaks, node level (issue 10): 1,000 calls of every kernel (sync and async forms, and a typed-error
 * path per family) in a child process with forced GC; RSS and ArrayBuffer memory must not grow between
 * call 100 and call 1,000. A per-call leak of even one small output (a few KB) would add megabytes.
 * The native level is `npm run test:leaks` (LeakSanitizer over the C entry points, native/fuzz/leaks.cpp).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { expect, it } from 'vitest';

import { packageRoot } from '../../lib/native.js';

it('1,000 calls of every kernel: no RSS or ArrayBuffer growth after warm-up', () => {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(packageRoot, 'tests', 'hardening', 'leak-child.ts'), '1000'],
    { cwd: packageRoot, encoding: 'utf8', env: process.env, timeout: 300_000 },
  );
  const tail = `${r.stdout}\n${r.stderr}`.split('\n').slice(-20).join('\n');
  expect(r.status, tail).toBe(0);
  const { calls, before, after } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  expect(calls).toBe(1000);
  // 900 measured iterations x ~20 calls; the workload allocates ~1.3 MB of outputs per iteration.
  expect(after.arrayBuffers - before.arrayBuffers, tail).toBeLessThan(1 << 20);
  expect(after.external - before.external, tail).toBeLessThan(1 << 20);
  // Under AddressSanitizer (npm run test:sanitize) freed memory sits in ASan's quarantine (256 MB), so
  // RSS grows by design there; LeakSanitizer covers that build (npm run test:leaks).
  if (!(process.env.LD_PRELOAD ?? '').includes('asan')) expect(after.rss - before.rss, tail).toBeLessThan(24 << 20);
});
