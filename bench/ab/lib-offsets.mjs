// The library's forward on [4096, 32000] f32 and bf16 at subarray offsets of the same buffers (elements of
// f32; the bf16 view moves by the same bytes), interleaved, 9 calls each, medians. Typed arrays from V8
// start 16 bytes past a 64-byte line, so an offset of 12 puts the rows on lines. Needs dist/ (npx tsc -p
// tsconfig.build.json):  node bench/ab/lib-offsets.mjs 0 12   (UNIGAP_ISA=avx2 for that tier)
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
const require = createRequire(import.meta.url);
const { scoreLogprobs } = require('../../dist/index.js');
const N = 4096,
  V = 32000;
const fa = new Float32Array(N * V + 64);
let x = 12345;
for (let i = 0; i < fa.length; i++) {
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  fa[i] = (x / 4294967296 - 0.5) * 12;
}
const ba = new Uint16Array(fa.length);
const u = new Uint32Array(fa.buffer);
for (let i = 0; i < fa.length; i++) ba[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) & 0xffff;
const labels = Int32Array.from({ length: N }, (_, i) => (i * 7919 + 13) % V);
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
const offs = process.argv.slice(2).map(Number);
const t = {};
for (let k = 0; k < 9; k++)
  for (const o of offs) {
    const f = fa.subarray(o, o + N * V),
      b = ba.subarray(2 * o, 2 * o + N * V);
    let t0 = performance.now();
    scoreLogprobs(f, labels, { shape: [N, V] });
    (t['f' + o] ??= []).push(performance.now() - t0);
    t0 = performance.now();
    scoreLogprobs(b, labels, { shape: [N, V], dtype: 'bf16' });
    (t['b' + o] ??= []).push(performance.now() - t0);
  }
console.log(
  offs.map((o) => `off ${o * 4}B: f32 ${med(t['f' + o]).toFixed(2)} bf16 ${med(t['b' + o]).toFixed(2)}`).join(' | '),
);
