#!/usr/bin/env node
// Builds the native addon offline. Primary: cmake-js over CMakeLists.txt (Node-API headers from the
// node-api-headers package, nothing downloaded). Fallback: node-gyp over binding.gyp (CPU only).
// UNIGAP_CUDA=auto|on|off (default auto): under auto a CUDA configure/compile failure retries
// CPU-only with a one-line warning; `on` fails loudly.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { acquireBuildLock } from './lock.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const debug = args.includes('--debug');
const sanitize = args.includes('--sanitize');
const cudaMode = (process.env.UNIGAP_CUDA ?? 'auto').toLowerCase();
if (!['auto', 'on', 'off'].includes(cudaMode)) {
  console.error(`unigap: UNIGAP_CUDA must be auto, on or off (got '${process.env.UNIGAP_CUDA}')`);
  process.exit(1);
}
const forceGyp = process.env.UNIGAP_BUILD === 'gyp';
const jobs = String(Math.max(1, Number(process.env.UNIGAP_JOBS) || 2));

function run(cmd, argv, extraEnv = {}) {
  const r = spawnSync(cmd, argv, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs, ...extraEnv },
  });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: `exit ${r.status}` };
}

function have(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function cmakeJs(cuda) {
  let bin;
  try {
    bin = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  } catch {
    return { ok: false, why: 'cmake-js is not installed (npm install)' };
  }
  const argv = [bin, 'compile', '--out', 'build', `--CDUNIGAP_CUDA=${cuda}`];
  if (debug) argv.push('--debug', '--CDUNIGAP_ASSERTS=ON');
  if (sanitize) argv.push('--CDUNIGAP_SANITIZE=ON');
  return run(process.execPath, argv);
}

function nodeDir() {
  // Never let node-gyp download headers: use npm's nodedir, else the headers of the running Node.
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? prefix : null;
}

function nodeGyp() {
  const nd = nodeDir();
  if (!nd)
    return { ok: false, why: 'no local Node headers (<prefix>/include/node); node-gyp would need to download them' };
  // npm puts its bundled node-gyp on PATH inside lifecycle scripts; outside them try the local one.
  const cands = [];
  if (process.env.npm_config_node_gyp) cands.push([process.execPath, [process.env.npm_config_node_gyp]]);
  // the node-gyp bundled with the npm next to this Node (outside npm scripts)
  const bundled = join(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
  if (existsSync(bundled)) cands.push([process.execPath, [bundled]]);
  cands.push(['node-gyp', []]);
  for (const [cmd, pre] of cands) {
    const r = run(cmd, [...pre, 'rebuild', `--nodedir=${nd}`, ...(debug ? ['--debug'] : []), `--jobs=${jobs}`]);
    if (r.ok) return r;
    if (!/ENOENT/.test(r.why)) return r;
  }
  return { ok: false, why: 'node-gyp not found' };
}

acquireBuildLock(root);
const causes = [];
let built = false;
if (!forceGyp && have('cmake')) {
  let r = cmakeJs(cudaMode);
  if (!r.ok && cudaMode === 'auto') {
    console.warn(
      'unigap: warning: the build with CUDA failed; retrying CPU-only (set UNIGAP_CUDA=on to make this an error)',
    );
    rmSync(join(root, 'build'), { recursive: true, force: true });
    r = cmakeJs('off');
  }
  if (r.ok) built = true;
  else causes.push(`cmake-js: ${r.why}`);
  if (!r.ok && cudaMode === 'on') {
    console.error('unigap: UNIGAP_CUDA=on and the CUDA build failed (see above).');
    process.exit(1);
  }
} else if (!forceGyp) {
  causes.push('cmake: not found on PATH');
}
if (!built) {
  if (cudaMode === 'on') {
    console.error('unigap: UNIGAP_CUDA=on needs cmake (the node-gyp fallback is CPU only).');
    process.exit(1);
  }
  if (!forceGyp) console.warn('unigap: falling back to node-gyp (CPU only)');
  const r = nodeGyp();
  if (r.ok) built = true;
  else causes.push(`node-gyp: ${r.why}`);
}
const out = join(root, 'build', debug ? 'Debug' : 'Release', 'unigap.node');
if (!built || !existsSync(out)) {
  console.error(
    [
      'unigap: could not build the native addon.',
      ...causes.map((c) => `  - ${c}`),
      'Fix: install CMake and a C++17 compiler (Debian/Ubuntu: apt-get install cmake g++ make python3),',
      'then run `npm rebuild unigap` (or `npm run build` in a clone).',
    ].join('\n'),
  );
  process.exit(1);
}
console.log(`unigap: built ${out}`);
