/**
 * Child process for the GC-while-in-flight checks (run with --expose-gc by concurrency.test.ts).
 *  1. drop: every async kernel is started on freshly built inputs that JS drops at once (only the
 *     Promise is kept), then GC is forced over and over, with garbage allocated to reuse the freed
 *     memory, until the calls settle; every result must equal the sequential baseline bit for bit.
 *  2. transfer (argv 'transfer'): the input's ArrayBuffer is transferred away (detached) while the call
 *     is in flight and the receiving copy dropped and collected; the result must still be right.
 * Prints one JSON line.
 */
import * as api from '../../lib/index.js';
import { diffResults, inputs, runAsync, runSync, S } from './workload.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const mode = process.argv[2] ?? 'drop';

let stop = false;
let forced = 0;
// Force GC continuously while calls are in flight, and churn the allocator.
async function churn() {
  while (!stop) {
    gc!();
    forced++;
    const junk: Float32Array[] = [];
    for (let i = 0; i < 16; i++) junk.push(new Float32Array(4096).fill(i));
    await new Promise((r) => setImmediate(r));
  }
}

const out: Record<string, unknown> = { mode };
if (mode === 'drop') {
  const seeds = [11, 12, 13, 14];
  const baseline = seeds.map((s) => runSync(api, inputs(s)));
  const mismatches: string[] = [];
  const c = churn();
  for (let round = 0; round < 5; round++) {
    // inputs(s) is built inside the call expression: nothing but the Promise keeps it alive.
    const pending = Promise.all(seeds.map((s) => runAsync(api, inputs(s))));
    for (let i = 0; i < 4; i++) {
      gc();
      forced++;
    }
    const results = await pending;
    results.forEach((r, i) =>
      mismatches.push(...diffResults(baseline[i], r).map((k) => `round ${round} seed ${seeds[i]}: ${k}`)),
    );
  }
  stop = true;
  await c;
  Object.assign(out, { rounds: 5, calls: 5 * seeds.length * 6, forcedGc: forced, mismatches });
} else {
  // transfer: similarityMatrixAsync on inputs big enough to be in flight for a while.
  const N = 512;
  const D = 256;
  const mk = (seed: number) => Float32Array.from({ length: N * D }, (_, i) => Math.sin(i * 0.37 + seed));
  const expected = api.similarityMatrix({ data: mk(1), dims: [N, D] }, { data: mk(2), dims: [N, D] });
  let wrong = 0;
  let detachedSeen = 0;
  for (let round = 0; round < 6; round++) {
    const a = mk(1);
    const p = api.similarityMatrixAsync({ data: a, dims: [N, D] }, { data: mk(2), dims: [N, D] });
    // Move the backing store away and drop the receiver, then overwrite freed memory.
    let moved: ArrayBuffer | null = structuredClone(a.buffer, { transfer: [a.buffer] });
    if (a.length === 0) detachedSeen++;
    moved = null;
    void moved;
    for (let i = 0; i < 8; i++) {
      gc();
      const junk = new Float32Array(N * D).fill(1e30);
      void junk;
    }
    const got = await p;
    for (let i = 0; i < got.length; i++) if (!(Math.abs(got[i] - expected[i]) <= 1e-4)) wrong++;
  }
  Object.assign(out, { rounds: 6, detachedSeen, wrongValues: wrong });
}
void S;
console.log(JSON.stringify(out));
