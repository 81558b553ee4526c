#!/usr/bin/env node
// Builds (incrementally) and runs the standalone C++ harness through ctest. Uses the cmake-js build
// tree when there is one (it already built the harness at install); otherwise configures a
// standalone tree in build/harness. Extra args go to the harness (e.g. --perf, a name filter).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { acquireBuildLock } from './lock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const extra = process.argv.slice(2);
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: '2' },
  });
  if (r.error) throw r.error;
  return r.status ?? 1;
};
if (spawnSync('cmake', ['--version'], { stdio: 'ignore' }).error) {
  console.log(
    'test:native: SKIPPED: cmake is not on PATH, so the C++ harness cannot be built (install cmake to run it)',
  );
  process.exit(0);
}
const release = acquireBuildLock(root);
let dir = join(root, 'build');
if (!existsSync(join(dir, 'CMakeCache.txt'))) {
  dir = join(root, 'build', 'harness');
  const cuda = process.env.UNIGAP_CUDA ?? 'auto';
  if (run('cmake', ['-S', root, '-B', dir, `-DUNIGAP_CUDA=${cuda}`, '-DCMAKE_BUILD_TYPE=Release']) !== 0)
    process.exit(1);
}
if (run('cmake', ['--build', dir, '--target', 'unigap_harness']) !== 0) process.exit(1);
release();
const exe = join(dir, 'unigap_harness');
process.exit(extra.length ? run(exe, extra) : run('ctest', ['--test-dir', dir, '--output-on-failure', '-V']));
