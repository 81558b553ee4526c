import { describe, expect, it } from 'vitest';

import {
  CATEGORIES,
  DEFAULT_SPLIT_SIZES,
  semanticKey,
  singleObjectPrompts,
  worldSplits,
} from '../../lib/world/prompts.js';
import { SceneValidator } from '../../lib/world/validator.js';

describe('world splits', () => {
  const s = worldSplits();
  it('have the documented sizes per category', () => {
    for (const split of ['train', 'probe', 'test'] as const) {
      for (const c of CATEGORIES)
        expect(s[split].filter((p) => p.category === c)).toHaveLength(DEFAULT_SPLIT_SIZES[split]);
    }
  });
  it('are disjoint: no prompt text, id or meaning is in two splits', () => {
    const all = [...s.train, ...s.probe, ...s.test];
    expect(new Set(all.map((p) => p.text)).size).toBe(all.length);
    expect(new Set(all.map((p) => p.id)).size).toBe(all.length);
    expect(new Set(all.map((p) => semanticKey(p.text))).size).toBe(all.length);
    // Pretraining-only prompts are in no split.
    const texts = new Set(all.map((p) => p.text));
    for (const p of singleObjectPrompts()) expect(texts.has(p.text)).toBe(false);
  });
  it('are fixed (deterministic)', () => {
    expect(worldSplits()).toEqual(s);
  });
  it('every prompt parses', () => {
    const v = new SceneValidator();
    for (const p of [...s.train, ...s.probe, ...s.test]) expect(v.constraints(p.text).length).toBeGreaterThan(0);
  });
});
