#!/usr/bin/env node
// libFuzzer targets for the native C ABI (native/fuzz/fuzz_<family>.cpp), built with clang and
// -fsanitize=fuzzer,address,undefined into build-asan/fuzz/ (CPU core only, every ISA tier compiled
// with its own flags, assertions kept). Every run first replays the committed regression inputs and
// seed corpus (native/fuzz/regressions/<target>/, native/fuzz/corpus/<target>/), then fuzzes each
// target for a bounded time. New corpus entries go to a scratch folder, never into the repo.
//
//   npm run fuzz                      60 s per target
//   npm run fuzz -- --short           15 s per target (CI)
//   npm run fuzz -- --time 300        any budget per target
//   npm run fuzz -- --only logprobs   one target
//   npm run fuzz -- --replay          regressions + corpus only, no fuzzing
//   npm run test:leaks                (= --leaks) 1,000 calls of every kernel under LeakSanitizer,
//                                     plus allocator-growth check (native/fuzz/leaks.cpp)
//
// A crash leaves its input in build-asan/fuzz/artifacts/; copy it into native/fuzz/regressions/<target>/
// (and fix the bug) so every later run replays it.
// Needs clang with libFuzzer (Debian: apt-get install clang).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { acquireBuildLock } from './lock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-asan', 'fuzz');
const TARGETS = ['logprobs', 'dpo', 'similarity'];

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const short = argv.includes('--short');
const replayOnly = argv.includes('--replay');
const leaksMode = argv.includes('--leaks');
const buildOnly = argv.includes('--build-only');
const seconds = Number(opt('--time') ?? (short ? 15 : 60));
const only = opt('--only');
const targets = only ? only.split(',') : TARGETS;
for (const t of targets)
  if (!TARGETS.includes(t)) throw new Error(`fuzz: unknown target '${t}' (${TARGETS.join(', ')})`);

function findClang() {
  for (const c of [process.env.CXX_FUZZ, 'clang++', 'clang++-19', 'clang++-16', 'clang++-15', 'clang++-14']) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  console.error('fuzz: clang++ not found; install it (Debian: apt-get install -y clang) or set CXX_FUZZ');
  process.exit(2);
}

const walk = (dir, pred) =>
  existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name), pred) : pred(e.name) ? [join(dir, e.name)] : [],
      )
    : [];
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

// Same source selection as CMakeLists.txt for a CPU-only core.
const coreSources = [
  ...readdirSync(join(root, 'native/cpu'))
    .filter((f) => f.endsWith('.cpp'))
    .map((f) => join(root, 'native/cpu', f)),
  ...walk(join(root, 'native/cpu'), (f) => f.endsWith('.cpp')).filter((p) =>
    relative(join(root, 'native/cpu'), p).includes('/'),
  ),
];
const headers = [
  ...walk(join(root, 'native/include'), (f) => f.endsWith('.h')),
  ...walk(join(root, 'native/cpu'), (f) => f.endsWith('.h')),
  ...walk(join(root, 'native/fuzz'), (f) => f.endsWith('.h')),
];
const newestHeader = Math.max(0, ...headers.map(mtime));

// -fno-sanitize=enum: the ABI is C, where any int is a valid enum value (a C caller may pass dtype 7);
// the core must answer it with a status, which the targets check, but C++ calls loading it UB.
const SAN = [
  '-fsanitize=address,undefined',
  '-fno-sanitize=enum',
  '-fno-sanitize-recover=undefined',
  '-fno-omit-frame-pointer',
  '-g',
];
const BASE = [
  '-std=c++17',
  '-O1',
  '-fPIC',
  '-pthread',
  '-DUNIGAP_VERSION="0.1.0"',
  '-Wno-unused-command-line-argument',
];
const INC = ['-I', join(root, 'native/include'), '-I', join(root, 'native/cpu')];
function isaFlags(src) {
  const b = basename(src);
  if (b.startsWith('scalar')) return ['-fno-vectorize', '-fno-slp-vectorize'];
  if (b.startsWith('avx512'))
    return ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c'];
  if (b.startsWith('avx2')) return ['-mavx2', '-mfma', '-mf16c'];
  return [];
}

async function pool(jobs, width) {
  let next = 0;
  let failed = false;
  const runOne = async () => {
    while (next < jobs.length && !failed) {
      const j = jobs[next++];
      const code = await new Promise((res) => {
        const p = spawn(j.cmd, j.args, { cwd: root, stdio: 'inherit' });
        p.on('close', res);
      });
      if (code !== 0) {
        failed = true;
        console.error(`fuzz: compiling ${relative(root, j.src)} failed`);
      }
    }
  };
  await Promise.all(Array.from({ length: width }, runOne));
  return !failed;
}

async function build() {
  const cxx = findClang();
  // Objects live in a folder named after the flags, so changing a flag rebuilds everything.
  const objDir = join(
    out,
    `obj-${createHash('sha1')
      .update(JSON.stringify([cxx, SAN, BASE]))
      .digest('hex')
      .slice(0, 8)}`,
  );
  mkdirSync(objDir, { recursive: true });
  const objOf = (src) => join(objDir, relative(root, src).replace(/[/.]/g, '_') + '.o');
  const stale = (file, deps) => mtime(file) <= Math.max(...deps);
  const upToDate =
    coreSources.every((s) => !stale(objOf(s), [mtime(s), newestHeader])) &&
    [
      ...TARGETS.map((t) => [join(out, `fuzz_${t}`), join(root, 'native/fuzz', `fuzz_${t}.cpp`)]),
      [join(out, 'leaks'), join(root, 'native/fuzz/leaks.cpp')],
    ].every(([exe, src]) => !stale(exe, [mtime(src), newestHeader, ...coreSources.map((s) => mtime(objOf(s)))]));
  if (upToDate) return;
  const release = acquireBuildLock(root);
  try {
    const t0 = Date.now();
    const jobs = [];
    for (const src of coreSources) {
      const obj = objOf(src);
      if (mtime(obj) > Math.max(mtime(src), newestHeader)) continue;
      jobs.push({
        src,
        cmd: cxx,
        args: [...BASE, ...SAN, '-fsanitize=fuzzer-no-link', ...INC, ...isaFlags(src), '-c', src, '-o', obj],
      });
    }
    const width = Number(process.env.UNIGAP_FUZZ_JOBS ?? 2);
    if (jobs.length) console.log(`fuzz: compiling ${jobs.length} core sources with ${cxx} (${width} jobs)`);
    if (!(await pool(jobs, width))) process.exit(1);
    const objs = coreSources.map(objOf);
    const newestObj = Math.max(...objs.map(mtime));
    const links = [];
    for (const t of TARGETS) {
      const src = join(root, 'native/fuzz', `fuzz_${t}.cpp`);
      const exe = join(out, `fuzz_${t}`);
      if (mtime(exe) > Math.max(mtime(src), newestObj, newestHeader)) continue;
      links.push({ src, cmd: cxx, args: [...BASE, ...SAN, '-fsanitize=fuzzer', ...INC, src, ...objs, '-o', exe] });
    }
    const leakSrc = join(root, 'native/fuzz', 'leaks.cpp');
    const leakExe = join(out, 'leaks');
    if (mtime(leakExe) <= Math.max(mtime(leakSrc), newestObj, newestHeader))
      links.push({
        src: leakSrc,
        cmd: cxx,
        args: [...BASE, ...SAN, '-fsanitize=fuzzer-no-link', ...INC, leakSrc, ...objs, '-o', leakExe],
      });
    if (!(await pool(links, 2))) process.exit(1);
    if (jobs.length || links.length) console.log(`fuzz: build took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    release();
    process.off('exit', release); // never remove a lock that another build takes after us
  }
}

const env = {
  ...process.env,
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:halt_on_error=1:print_stacktrace=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  UNIGAP_THREADS: process.env.UNIGAP_THREADS ?? '2',
};

function replay(t) {
  const files = [
    ...walk(join(root, 'native/fuzz/regressions', t), () => true),
    ...walk(join(root, 'native/fuzz/corpus', t), () => true),
  ];
  if (!files.length) return 0;
  const r = spawnSync(join(out, `fuzz_${t}`), ['-runs=1', ...files], { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    console.error(`fuzz: ${t}: a committed regression or corpus input fails`);
    return 1;
  }
  console.log(`fuzz: ${t}: replayed ${files.length} regression/corpus inputs, clean`);
  return 0;
}

function fuzz(t) {
  const work = mkdtempSync(join(tmpdir(), `unigap-fuzz-${t}-`));
  const artifacts = join(out, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  const seeds = join(root, 'native/fuzz/corpus', t);
  const args = [
    `-max_total_time=${seconds}`,
    '-timeout=20',
    '-rss_limit_mb=4096',
    '-max_len=2048',
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}/${t}-`,
    work,
    ...(existsSync(seeds) ? [seeds] : []),
  ];
  const t0 = Date.now();
  const r = spawnSync(join(out, `fuzz_${t}`), args, { cwd: root, env, encoding: 'utf8' });
  rmSync(work, { recursive: true, force: true });
  const log = `${r.stdout}${r.stderr}`;
  const stat = (k) => (log.match(new RegExp(`stat::${k}:\\s*(\\d+)`)) ?? [])[1];
  if (r.status !== 0) {
    console.error(log.split('\n').slice(-80).join('\n'));
    console.error(
      `fuzz: ${t}: FAILED after ${((Date.now() - t0) / 1000).toFixed(0)} s; the input is in ${relative(root, artifacts)}/` +
        ` — copy it to native/fuzz/regressions/${t}/ once fixed`,
    );
    return 1;
  }
  console.log(
    `fuzz: ${t}: ${stat('number_of_executed_units') ?? '?'} runs in ${seconds} s, ` +
      `coverage ${(log.match(/cov: (\d+)/g) ?? []).pop() ?? '?'}, peak RSS ${stat('peak_rss_mb') ?? '?'} MB, clean`,
  );
  return 0;
}

await build();
if (buildOnly) process.exit(0);
if (leaksMode) {
  const r = spawnSync(
    join(out, 'leaks'),
    argv.filter((a) => /^\d+$/.test(a)),
    { cwd: root, env, stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}
let failed = 0;
for (const t of targets) failed |= replay(t);
if (!replayOnly) for (const t of targets) failed |= fuzz(t);
process.exit(failed ? 1 : 0);
