/**
 * Scene samplers for pretraining data: scenes that satisfy a prompt, and near misses that violate it
 * by one small edit (wrong color, wrong shape, moved, missing or extra object), the kind of mistake a
 * noisy caption or a weak generator makes. Every sample is checked with the exact validator.
 */
import type { Constraint, ObjectDesc } from './prompts.js';
import { CELLS, COLORS, GRID_SIZE, SHAPES, randInt, shuffle, type SceneObject } from './scene.js';
import { satisfies } from './validator.js';

function fill(d: ObjectDesc, rng: () => number): Pick<SceneObject, 'color' | 'shape'> {
  return {
    color: d.color ?? COLORS[randInt(rng, COLORS.length)],
    shape: d.shape ?? SHAPES[randInt(rng, SHAPES.length)],
  };
}

function freeCells(scene: readonly SceneObject[]): number[] {
  const used = new Set(scene.map((o) => o.row * GRID_SIZE + o.col));
  const out: number[] = [];
  for (let c = 0; c < CELLS; c++) if (!used.has(c)) out.push(c);
  return out;
}

function at(cell: number, attrs: Pick<SceneObject, 'color' | 'shape'>): SceneObject {
  return { row: Math.floor(cell / GRID_SIZE), col: cell % GRID_SIZE, ...attrs };
}

function tryConstruct(constraints: readonly Constraint[], rng: () => number, maxDistractors: number): SceneObject[] {
  const scene: SceneObject[] = [];
  const place = (attrs: Pick<SceneObject, 'color' | 'shape'>, cells = freeCells(scene)) => {
    if (cells.length === 0) return;
    scene.push(at(cells[randInt(rng, cells.length)], attrs));
  };
  for (const c of constraints) {
    if (c.kind === 'has') place(fill(c.desc, rng));
    else if (c.kind === 'count') for (let i = 0; i < c.count; i++) place(fill(c.desc, rng));
    else {
      const free = freeCells(scene);
      const pairs: [number, number][] = [];
      for (const p of free)
        for (const q of free) {
          const [pr, pc, qr, qc] = [Math.floor(p / GRID_SIZE), p % GRID_SIZE, Math.floor(q / GRID_SIZE), q % GRID_SIZE];
          const ok =
            c.rel === 'left of' ? pc < qc : c.rel === 'right of' ? pc > qc : c.rel === 'above' ? pr < qr : pr > qr;
          if (ok) pairs.push([p, q]);
        }
      if (pairs.length === 0) continue;
      const [p, q] = pairs[randInt(rng, pairs.length)];
      scene.push(at(p, fill(c.a, rng)), at(q, fill(c.b, rng)));
    }
  }
  const distractors = randInt(rng, maxDistractors + 1);
  for (let i = 0; i < distractors; i++) {
    const extra = [...scene];
    const cells = freeCells(extra);
    if (cells.length === 0) break;
    extra.push(at(cells[randInt(rng, cells.length)], fill({}, rng)));
    if (satisfies(extra, constraints)) scene.push(extra[extra.length - 1]);
  }
  return scene;
}

/** A random scene that satisfies the constraints (with up to `maxDistractors` extra objects). */
export function sampleScene(constraints: readonly Constraint[], rng: () => number, maxDistractors = 2): SceneObject[] {
  for (let attempt = 0; attempt < 200; attempt++) {
    const scene = tryConstruct(constraints, rng, maxDistractors);
    if (satisfies(scene, constraints)) return shuffle(scene, rng);
  }
  throw new Error('could not sample a scene satisfying the prompt');
}

/** One random small edit of a scene. */
function perturb(scene: readonly SceneObject[], rng: () => number): SceneObject[] {
  const out = scene.map((o) => ({ ...o }));
  const kind = randInt(rng, 5);
  if (out.length === 0 || kind === 4) {
    const cells = freeCells(out);
    if (cells.length) out.push(at(cells[randInt(rng, cells.length)], fill({}, rng)));
    return out;
  }
  const i = randInt(rng, out.length);
  if (kind === 0) out[i].color = COLORS[randInt(rng, COLORS.length)];
  else if (kind === 1) out[i].shape = SHAPES[randInt(rng, SHAPES.length)];
  else if (kind === 2) {
    const cells = freeCells(out);
    if (cells.length) Object.assign(out[i], at(cells[randInt(rng, cells.length)], out[i]));
  } else out.splice(i, 1);
  return out;
}

/** A scene that violates the constraints by one or two small edits of a satisfying scene. */
export function sampleNearMiss(
  constraints: readonly Constraint[],
  rng: () => number,
  maxDistractors = 2,
): SceneObject[] {
  for (let attempt = 0; attempt < 200; attempt++) {
    let scene = perturb(sampleScene(constraints, rng, maxDistractors), rng);
    if (!satisfies(scene, constraints)) return scene;
    scene = perturb(scene, rng);
    if (!satisfies(scene, constraints)) return scene;
  }
  throw new Error('could not sample a near miss for the prompt');
}
