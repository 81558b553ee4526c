/**
 * Child process for the node-level leak check (run with --expose-gc by leaks.test.ts): every kernel
 * (sync and async forms, plus a typed-error path of each family) called `calls` times; RSS and
 * ArrayBuffer memory after GC are sampled after a warm-up and at the end. Prints one JSON line.
 */
import * as api from '../../lib/index.js';
import { inputs, runAsync, runSync } from './workload.js';

const gc = (globalThis as { gc?: () => void }).gc!;
const calls = Number(process.argv[2] ?? 1000);
const warm = Math.min(100, Math.floor(calls / 5));
const x = inputs(7);
const settle = () => {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return { rss: m.rss, arrayBuffers: m.arrayBuffers, external: m.external };
};
const errorPaths = () => {
  for (const f of [
    () => api.scoreLogprobs(x.logits, Int32Array.of(1), { shape: [96, 701] }),
    () => api.dpoLoss({ policyChosen: x.pc, policyRejected: x.pr, referenceFree: true }, { beta: -1 }),
    () => api.topkSimilarity({ data: x.img, dims: [48, 96] }, { data: x.txt, dims: [56, 96] }, 99),
  ]) {
    try {
      f();
    } catch {
      /* expected typed error */
    }
  }
};
let before = settle();
for (let i = 0; i < calls; i++) {
  if (i === warm) before = settle();
  runSync(api, x);
  await runAsync(api, x);
  errorPaths();
}
const after = settle();
console.log(JSON.stringify({ calls, warm, before, after }));
