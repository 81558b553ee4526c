/**
 * The embedded world's prompts: a tiny grammar in the spirit of T2I-CompBench++, its parser, and a
 * deterministic prompt generator with fixed, disjoint train / probe / test splits.
 *
 * Grammar (clauses joined by " and "):
 *   "a <color> <shape>"                           the scene has such an object
 *   "a <color> <shape> <rel> a <color> <shape>"   two distinct objects in that relation
 *   "<two|three|four> [<color>] <shape>s"         exactly that many such objects
 * Relations compare cell coordinates: A "left of" B iff col(A) < col(B); "above" iff row(A) < row(B).
 */
import type { Prompt } from '../loop/types.js';
import { COLORS, SHAPES, makeRng, randInt, shuffle, type Color, type Shape } from './scene.js';

export const CATEGORIES = ['color', 'shape', 'spatial', 'counting', 'complex'] as const;
export type Category = (typeof CATEGORIES)[number];
export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];
const NUMBERS = ['zero', 'one', 'two', 'three', 'four'] as const;

export interface ObjectDesc {
  color?: Color;
  shape?: Shape;
}
export type Constraint =
  | { kind: 'has'; desc: ObjectDesc }
  | { kind: 'rel'; a: ObjectDesc; rel: Relation; b: ObjectDesc }
  | { kind: 'count'; desc: ObjectDesc; count: number };

/** Every word the grammar can produce (the model's text vocabulary). */
export const PROMPT_WORDS: readonly string[] = [
  'a',
  'and',
  'left',
  'right',
  'of',
  'above',
  'below',
  ...NUMBERS.slice(2),
  ...COLORS,
  ...SHAPES,
  ...SHAPES.map((s) => `${s}s`),
];

function descText(d: ObjectDesc, plural = false): string {
  const shape = d.shape ?? 'object';
  return [d.color, plural ? `${shape}s` : shape].filter(Boolean).join(' ');
}

/** The text of one constraint. */
export function constraintText(c: Constraint): string {
  if (c.kind === 'has') return `a ${descText(c.desc)}`;
  if (c.kind === 'rel') return `a ${descText(c.a)} ${c.rel} a ${descText(c.b)}`;
  return `${NUMBERS[c.count]} ${descText(c.desc, true)}`;
}

/** The prompt text of a list of constraints. */
export function promptText(constraints: readonly Constraint[]): string {
  return constraints.map(constraintText).join(' and ');
}

function parseDesc(words: string[], plural: boolean, text: string): ObjectDesc {
  const desc: ObjectDesc = {};
  let i = 0;
  if ((COLORS as readonly string[]).includes(words[i])) desc.color = words[i++] as Color;
  const w = words[i++];
  const shape = plural && w?.endsWith('s') ? w.slice(0, -1) : w;
  if (!(SHAPES as readonly string[]).includes(shape ?? '') || i !== words.length)
    throw new SyntaxError(`cannot parse object description '${words.join(' ')}' in prompt '${text}'`);
  desc.shape = shape as Shape;
  return desc;
}

/** Parse a prompt back into its constraints (throws SyntaxError on text outside the grammar). */
export function parsePrompt(text: string): Constraint[] {
  const words = text.trim().toLowerCase().split(/\s+/);
  const clauses: string[][] = [[]];
  for (const w of words) {
    if (w === 'and') clauses.push([]);
    else clauses[clauses.length - 1].push(w);
  }
  return clauses.map((cl) => {
    if (cl.length === 0) throw new SyntaxError(`empty clause in prompt '${text}'`);
    const n = (NUMBERS as readonly string[]).indexOf(cl[0]);
    if (n >= 2) return { kind: 'count', desc: parseDesc(cl.slice(1), true, text), count: n };
    if (cl[0] !== 'a') throw new SyntaxError(`a clause starts with 'a' or a number, got '${cl[0]}' in '${text}'`);
    for (const rel of RELATIONS) {
      const rw = rel.split(' ');
      for (let i = 2; i + rw.length < cl.length; i++) {
        if (rw.every((x, k) => cl[i + k] === x) && cl[i + rw.length] === 'a')
          return {
            kind: 'rel',
            a: parseDesc(cl.slice(1, i), false, text),
            rel,
            b: parseDesc(cl.slice(i + rw.length + 1), false, text),
          };
      }
    }
    return { kind: 'has', desc: parseDesc(cl.slice(1), false, text) };
  });
}

const INVERSE: Record<Relation, Relation> = {
  'left of': 'right of',
  'right of': 'left of',
  above: 'below',
  below: 'above',
};

/**
 * A key equal for prompts that mean the same thing ("A left of B" = "B right of A"; clause order
 * does not matter), so that no meaning appears in two splits.
 */
export function semanticKey(text: string): string {
  const parts = parsePrompt(text).map((c) => {
    if (c.kind === 'rel' && (c.rel === 'right of' || c.rel === 'below'))
      return constraintText({ kind: 'rel', a: c.b, rel: INVERSE[c.rel], b: c.a });
    return constraintText(c);
  });
  return parts.sort().join(' & ');
}

const PAIRS: { color: Color; shape: Shape }[] = COLORS.flatMap((color) => SHAPES.map((shape) => ({ color, shape })));

/** Every prompt of a category (the complex category is a fixed seeded sample of its huge space). */
export function categoryUniverse(category: Category): string[] {
  const out: string[] = [];
  if (category === 'color') {
    // Color binding: two objects of different colors (same or different shapes).
    for (let i = 0; i < PAIRS.length; i++)
      for (let j = i + 1; j < PAIRS.length; j++)
        if (PAIRS[i].color !== PAIRS[j].color)
          out.push(
            promptText([
              { kind: 'has', desc: PAIRS[i] },
              { kind: 'has', desc: PAIRS[j] },
            ]),
          );
  } else if (category === 'shape') {
    // Shape binding: two objects of the same color and different shapes.
    for (const color of COLORS)
      for (let i = 0; i < SHAPES.length; i++)
        for (let j = i + 1; j < SHAPES.length; j++)
          out.push(
            promptText([
              { kind: 'has', desc: { color, shape: SHAPES[i] } },
              { kind: 'has', desc: { color, shape: SHAPES[j] } },
            ]),
          );
  } else if (category === 'spatial') {
    for (const a of PAIRS)
      for (const b of PAIRS)
        if (a.color !== b.color) for (const rel of RELATIONS) out.push(promptText([{ kind: 'rel', a, rel, b }]));
  } else if (category === 'counting') {
    for (const count of [2, 3])
      for (const shape of SHAPES) {
        out.push(promptText([{ kind: 'count', desc: { shape }, count }]));
        for (const color of COLORS) out.push(promptText([{ kind: 'count', desc: { color, shape }, count }]));
      }
  } else {
    // Complex: a spatial relation and a count at once, on a third kind of object.
    const rng = makeRng(0xc0ffee);
    const seen = new Set<string>();
    while (out.length < 600) {
      const a = PAIRS[randInt(rng, PAIRS.length)];
      const b = PAIRS[randInt(rng, PAIRS.length)];
      const c = PAIRS[randInt(rng, PAIRS.length)];
      if (a.color === b.color || c.shape === a.shape || c.shape === b.shape) continue;
      const rel = RELATIONS[randInt(rng, RELATIONS.length)];
      const text = promptText([
        { kind: 'rel', a, rel, b },
        { kind: 'count', desc: c, count: 2 },
      ]);
      if (!seen.has(text)) {
        seen.add(text);
        out.push(text);
      }
    }
  }
  return out;
}

export interface SplitSizes {
  /** Prompts per category in each split. */
  train: number;
  probe: number;
  test: number;
}
export const DEFAULT_SPLIT_SIZES: SplitSizes = { train: 12, probe: 6, test: 6 };

export interface WorldSplits {
  train: Prompt[];
  probe: Prompt[];
  test: Prompt[];
}

/**
 * The fixed splits: per category, the universe is shuffled with a fixed seed and dealt out to
 * train, probe and test in that order, skipping any prompt whose meaning (semanticKey) was already
 * dealt. Independent of the run seed, so every run and strategy sees the same prompts.
 */
export function worldSplits(sizes: SplitSizes = DEFAULT_SPLIT_SIZES): WorldSplits {
  const { train, probe, test } = dealSplits(sizes, 0);
  return { train, probe, test };
}

/**
 * Extra pretraining prompts: up to `perCategory` more per category, dealt after the three splits from
 * the same shuffled order (so their meanings are in none of the splits). They stand in for the broad
 * pretraining corpus a real unified model has seen before the benchmark.
 */
export function pretrainOnlyPrompts(perCategory = 24, sizes: SplitSizes = DEFAULT_SPLIT_SIZES): Prompt[] {
  return dealSplits(sizes, perCategory).pretrain;
}

function dealSplits(sizes: SplitSizes, extra: number): WorldSplits & { pretrain: Prompt[] } {
  const splits = { train: [] as Prompt[], probe: [] as Prompt[], test: [] as Prompt[], pretrain: [] as Prompt[] };
  CATEGORIES.forEach((category, ci) => {
    const universe = shuffle(categoryUniverse(category), makeRng(0x5eed + ci));
    const used = new Set<string>();
    let k = 0;
    for (const split of ['train', 'probe', 'test', 'pretrain'] as const) {
      const want = split === 'pretrain' ? extra : sizes[split];
      let i = 0;
      while (i < want) {
        if (k >= universe.length) {
          if (split === 'pretrain') break;
          throw new RangeError(`category '${category}' has too few prompts for the splits`);
        }
        const text = universe[k++];
        const key = semanticKey(text);
        if (used.has(key)) continue;
        used.add(key);
        splits[split].push({ id: `${split}-${category}-${i}`, text, category });
        i++;
      }
    }
  });
  return splits;
}

/** Single-object prompts ("a red circle"): pretraining only, never in a split. */
export function singleObjectPrompts(): Prompt[] {
  return PAIRS.map((desc, i) => ({
    id: `single-${i}`,
    text: promptText([{ kind: 'has', desc }]),
    category: 'single',
  }));
}
