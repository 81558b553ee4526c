/**
 * Worker threads and async (issue 10): 4 worker threads plus the main thread calling every kernel's
 * async form concurrently (each thread on its own inputs) give exactly the results of sequential sync
 * calls; inputs dropped by JS while a call is in flight, with GC forced throughout, never crash or
 * corrupt results (child process with --expose-gc); an input buffer transferred away mid-call neither.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import * as api from '../../lib/index.js';
import { packageRoot } from '../../lib/native.js';
import { diffResults, inputs, runAsync, runSync } from './workload.js';

const require = createRequire(import.meta.url);
const url = (p: string) => pathToFileURL(p).href;

// Worker body: register tsx's loader, import the TS sources, run `rounds` rounds of every async kernel.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { register } = await import(workerData.tsx);
  register();
  const api = await import(workerData.api);
  const w = await import(workerData.workload);
  // Barrier: every thread starts calling at the same moment.
  await new Promise((go) => { parentPort.once('message', go); parentPort.postMessage('ready'); });
  const out = [];
  for (let r = 0; r < workerData.rounds; r++) out.push(await w.runAsync(api, w.inputs(workerData.seed)));
  parentPort.postMessage(out);
})().catch((e) => { console.error(e); process.exit(3); });
`;

function startWorker(
  seed: number,
  rounds: number,
  ready: () => void,
  go: Promise<void>,
): Promise<Record<string, Uint8Array>[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, {
      eval: true,
      workerData: {
        seed,
        rounds,
        tsx: url(join(dirname(require.resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs')),
        api: url(join(packageRoot, 'lib', 'index.ts')),
        workload: url(join(packageRoot, 'tests', 'hardening', 'workload.ts')),
      },
    });
    w.on('message', (m) => {
      if (m === 'ready') {
        ready();
        void go.then(() => w.postMessage('go'));
        return;
      }
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

function child(mode: string) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(packageRoot, 'tests', 'hardening', 'gc-child.ts'), mode],
    { cwd: packageRoot, encoding: 'utf8', env: process.env, timeout: 300_000 },
  );
  const tail = `${r.stdout}\n${r.stderr}`.split('\n').slice(-30).join('\n');
  expect(r.signal, tail).toBeNull();
  expect(r.status, tail).toBe(0);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}'), tail };
}

describe('concurrency', () => {
  it('4 workers + the main thread, every async kernel at once, equal sequential results bit for bit', async () => {
    const rounds = 4;
    const seeds = [101, 102, 103, 104, 105]; // workers 0..3, main thread last
    const baseline = seeds.map((s) => runSync(api, inputs(s)));
    let readyCount = 0;
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    const workers = seeds.slice(0, 4).map((s) =>
      startWorker(
        s,
        rounds,
        () => {
          if (++readyCount === 4) release();
        },
        go,
      ),
    );
    const main = (async () => {
      await go;
      const out = [];
      for (let r = 0; r < rounds; r++) out.push(await runAsync(api, inputs(seeds[4])));
      return out;
    })();
    const all = await Promise.all([...workers, main]);
    const diffs: string[] = [];
    all.forEach((perThread, t) =>
      perThread.forEach((res, r) =>
        diffs.push(...diffResults(baseline[t], res).map((k) => `thread ${t} round ${r}: ${k}`)),
      ),
    );
    expect(diffs).toEqual([]);
    expect(Object.keys(baseline[0]).length).toBeGreaterThanOrEqual(15);
  });

  it('many overlapping async calls on the main thread equal sequential results', async () => {
    const seeds = [201, 202, 203, 204, 205, 206, 207, 208];
    const baseline = seeds.map((s) => runSync(api, inputs(s)));
    const res = await Promise.all(seeds.map((s) => runAsync(api, inputs(s))));
    expect(res.flatMap((r, i) => diffResults(baseline[i], r))).toEqual([]);
  });

  it('inputs dropped while in flight, with forced GC, never crash or corrupt results (child process)', () => {
    const { out, tail } = child('drop');
    expect(out.mismatches, tail).toEqual([]);
    expect(out.calls).toBe(120);
    expect(out.forcedGc).toBeGreaterThan(10);
  });

  it('raw binding: inputs unreachable from JS while in flight, forced GC, results exact (child process)', () => {
    const { out, tail } = child('native');
    expect(out.mismatches, tail).toEqual([]);
    expect(out.rounds).toBe(8);
  });

  it('an input buffer transferred away mid-call neither crashes nor corrupts the result (child process)', () => {
    const { out, tail } = child('transfer');
    expect(out.detachedSeen, tail).toBe(6);
    expect(out.wrongValues, tail).toBe(0);
  });
});
