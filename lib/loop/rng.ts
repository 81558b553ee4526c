/**
 * Seeded randomness. Every random choice of the loop draws from a PRNG whose seed is derived from
 * (run seed, round, purpose), so a resumed run replays exactly what an uninterrupted one does; the loop
 * never calls Math.random.
 */

/** FNV-1a over the UTF-16 code units of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A 32-bit seed for (seed, round, purpose): e.g. deriveSeed(7, 3, 'sample:p12'). Distinct purposes give
 * independent streams; the run seed may be any safe integer.
 */
export function deriveSeed(seed: number, round: number, purpose: string): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let h = fmix32(lo ^ 0x9e3779b9);
  h = fmix32(h ^ hi ^ 0x7f4a7c15);
  h = fmix32(h ^ (round >>> 0) ^ 0x85ebca6b);
  h = fmix32(h ^ fnv1a(purpose));
  return h;
}

/** mulberry32: uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PRNG for (seed, round, purpose). */
export function rngFor(seed: number, round: number, purpose: string): () => number {
  return mulberry32(deriveSeed(seed, round, purpose));
}

/** Fisher-Yates shuffle in place with the given PRNG; returns the array. */
export function shuffleInPlace<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}
