import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { loadPretrainedModel, measureGap, pretrain } from '../../lib/world/pretrain.js';
import { worldSplits } from '../../lib/world/prompts.js';

describe('pretraining', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('reaches the gap band with a fixed seed: Nonunified in [10%, 50%], understanding above generation', () => {
    const model = pretrain({ seed: 0 });
    const gap = measureGap(model, worldSplits().train, { samples: 8, seed: 1 });
    expect(gap.samples).toBe(480);
    expect(gap.nonunified).toBeGreaterThanOrEqual(0.1);
    expect(gap.nonunified).toBeLessThanOrEqual(0.5);
    expect(gap.understandingAccuracy).toBeGreaterThan(gap.generationAccuracy);
    // A real gap, not a broken generator: it gets some prompts right, and most self-rejections are deserved.
    expect(gap.generationAccuracy).toBeGreaterThan(0.1);
    expect(gap.weakGeneration).toBeGreaterThan(0.5);
  });

  it('caches weights and restores them exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unigap-world-cache-'));
    dirs.push(dir);
    const config = { epochs: 1, genPairsPerPrompt: 2, undPairsPerPrompt: 2, calibrationPairsPerPrompt: 2 };
    const a = loadPretrainedModel({ cacheDir: dir, config });
    expect(a.fromCache).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    const b = loadPretrainedModel({ cacheDir: dir, config });
    expect(b.fromCache).toBe(true);
    expect(b.model.snapshot()).toEqual(a.model.snapshot());
    // Another config is another cache entry.
    expect(loadPretrainedModel({ cacheDir: dir, config: { ...config, seed: 1 } }).fromCache).toBe(false);
  });
});
