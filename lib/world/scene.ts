/**
 * The embedded world's scenes: objects with a color and a shape on a small grid, and their image
 * tokens. An image is a raster (row-major) sequence of one token per cell, like a VQ tokenizer's
 * codes: token 0 is an empty cell, token 1 + color * SHAPES.length + shape an object.
 */
import { mulberry32 } from '../loop/rng.js';

export const GRID_SIZE = 4;
export const CELLS = GRID_SIZE * GRID_SIZE;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple'] as const;
export const SHAPES = ['circle', 'square', 'triangle', 'star'] as const;
export type Color = (typeof COLORS)[number];
export type Shape = (typeof SHAPES)[number];
export const EMPTY_TOKEN = 0;
/** Image-token vocabulary: empty + one token per (color, shape). */
export const IMAGE_VOCAB_SIZE = 1 + COLORS.length * SHAPES.length;

export interface SceneObject {
  row: number;
  col: number;
  color: Color;
  shape: Shape;
}

/** The image token of an object with this color and shape. */
export function objectToken(color: Color, shape: Shape): number {
  return 1 + COLORS.indexOf(color) * SHAPES.length + SHAPES.indexOf(shape);
}

/** The (color, shape) a token encodes, or null for the empty token; throws on an out-of-range id. */
export function decodeToken(token: number): { color: Color; shape: Shape } | null {
  if (!Number.isInteger(token) || token < 0 || token >= IMAGE_VOCAB_SIZE)
    throw new RangeError(`image token ${token} is outside [0, ${IMAGE_VOCAB_SIZE})`);
  if (token === EMPTY_TOKEN) return null;
  const k = token - 1;
  return { color: COLORS[Math.floor(k / SHAPES.length)], shape: SHAPES[k % SHAPES.length] };
}

/** Scene → image tokens (raster order). Two objects in one cell is an error. */
export function sceneToTokens(scene: readonly SceneObject[]): Int32Array {
  const tokens = new Int32Array(CELLS);
  for (const o of scene) {
    const cell = o.row * GRID_SIZE + o.col;
    if (o.row < 0 || o.row >= GRID_SIZE || o.col < 0 || o.col >= GRID_SIZE)
      throw new RangeError(`object at (${o.row}, ${o.col}) is outside the ${GRID_SIZE}x${GRID_SIZE} grid`);
    if (tokens[cell] !== EMPTY_TOKEN) throw new RangeError(`two objects in cell (${o.row}, ${o.col})`);
    tokens[cell] = objectToken(o.color, o.shape);
  }
  return tokens;
}

/** Image tokens → scene (the parse an external detector would make). Throws on a malformed image. */
export function tokensToScene(tokens: ArrayLike<number>): SceneObject[] {
  if (tokens.length !== CELLS) throw new RangeError(`an image has ${CELLS} tokens, got ${tokens.length}`);
  const scene: SceneObject[] = [];
  for (let cell = 0; cell < CELLS; cell++) {
    const obj = decodeToken(tokens[cell]);
    if (obj) scene.push({ row: Math.floor(cell / GRID_SIZE), col: cell % GRID_SIZE, ...obj });
  }
  return scene;
}

/** Deterministic PRNG (mulberry32, shared with the loop): uniform in [0, 1). The world never uses Math.random. */
export const makeRng: (seed: number) => () => number = mulberry32;

/** Integer in [0, n). */
export function randInt(rng: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}

/** In-place Fisher-Yates shuffle. */
export function shuffle<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
