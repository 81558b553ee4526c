// Helpers shared by the GPU machine's smoke scripts (node_smoke.mjs, facade_smoke.mjs). Plain JS with no
// dependencies: there is no node_modules on that machine, only a node binary and the carried tree.

/** A seeded uniform [0, 1) generator (mulberry32): the same data on every machine. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** f32 values to bf16 bits, round to nearest even (NaN-free inputs). */
export function toBf16(x) {
  const f = x instanceof Float32Array ? x : Float32Array.from(x);
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  return Uint16Array.from(u, (v) => (v + 0x7fff + ((v >>> 16) & 1)) >>> 16);
}
