#!/usr/bin/env node
// Builds the C++ harness and the addon with -fsanitize=address,undefined (CPU only, in build-asan/),
// runs the harness, then the vitest suite against that addon with the ASan runtime preloaded into
// node. Leak detection is off for node itself (V8 keeps allocations alive at exit by design); the
// harness runs with LeakSanitizer on. The thread pool also runs under ThreadSanitizer (pool_stress).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { acquireBuildLock } from './lock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const out = join(root, 'build-asan');
const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r.status ?? 1;
};

const release = acquireBuildLock(root);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
if (
  run(process.execPath, [cmakeJs, 'compile', '--out', 'build-asan', '--CDUNIGAP_SANITIZE=ON', '--CDUNIGAP_CUDA=off'], {
    CMAKE_BUILD_PARALLEL_LEVEL: '2',
  }) !== 0
)
  process.exit(1);
release();

const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
if (!existsSync(libasan)) {
  console.error(`test:sanitize: libasan not found (${libasan}); install gcc's sanitizer runtime`);
  process.exit(1);
}
// ThreadSanitizer on the thread pool alone (the rest of the core is built with ASan above; TSan and
// ASan cannot share a binary): native/tests/tsan/pool_stress.cpp, 8 threads, many short regions from two
// callers. The pool before its generation-tagged claims fails here within a second (TSan reports the
// data race: 3 of 3 runs, exit 66; without halt_on_error it hung); the current one passes in about 2 s.
const libtsan = execFileSync('gcc', ['-print-file-name=libtsan.so'], { encoding: 'utf8' }).trim();
let failed = 0;
if (!existsSync(libtsan)) {
  console.error(`test:sanitize: libtsan not found (${libtsan}); install gcc's sanitizer runtime`);
  failed = 1;
} else {
  console.log('\n== thread pool under ThreadSanitizer (native/tests/tsan/pool_stress.cpp)');
  const exe = join(out, 'pool_stress_tsan');
  failed |= run('g++', [
    '-O1',
    '-g',
    '-fsanitize=thread',
    '-std=c++17',
    '-pthread',
    '-Inative/include',
    'native/tests/tsan/pool_stress.cpp',
    'native/cpu/threadpool.cpp',
    '-o',
    exe,
  ]);
  if (!failed) {
    const r = spawnSync(exe, ['20000'], {
      cwd: root,
      stdio: 'inherit',
      timeout: 180_000,
      env: { ...process.env, UNIGAP_THREADS: '8', TSAN_OPTIONS: 'halt_on_error=1' },
    });
    if (r.error || r.status !== 0) {
      console.error(
        `test:sanitize: pool_stress under TSan failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`})`,
      );
      failed = 1;
    }
  }
}
const common = 'abort_on_error=1:halt_on_error=1:print_stacktrace=1';
console.log('\n== C++ harness under ASan+UBSan (LeakSanitizer on)');
failed |= run(join(out, 'unigap_harness'), process.argv.slice(2), {
  ASAN_OPTIONS: `${common}:detect_leaks=1`,
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
});
console.log('\n== vitest with the sanitized addon (ASan runtime preloaded)');
failed |= run(join(root, 'node_modules', '.bin', 'vitest'), ['run'], {
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: `${common}:detect_leaks=0`,
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  UNIGAP_NATIVE_PATH: join(out, 'Release', 'unigap.node'),
});
process.exit(failed ? 1 : 0);
