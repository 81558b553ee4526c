import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { scoreLogprobs } from '../../lib/index.js';
import type { Prompt } from '../../lib/loop/types.js';
import type { WorldModel } from '../../lib/world/model.js';
import { loadPretrainedModel, measureGap, pretrain } from '../../lib/world/pretrain.js';
import { worldSplits } from '../../lib/world/prompts.js';

describe('pretraining', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  let pretrained: WorldModel | undefined;
  const model0 = () => (pretrained ??= pretrain({ seed: 0 }));

  it('reaches the gap band with a fixed seed: Nonunified in [10%, 50%], understanding above generation', () => {
    const model = model0();
    const gap = measureGap(model, worldSplits().train, { samples: 8, seed: 1 });
    expect(gap.samples).toBe(480);
    expect(gap.nonunified).toBeGreaterThanOrEqual(0.1);
    expect(gap.nonunified).toBeLessThanOrEqual(0.5);
    expect(gap.understandingAccuracy).toBeGreaterThan(gap.generationAccuracy);
    // A real gap, not a broken generator: it gets some prompts right, and most self-rejections are deserved.
    expect(gap.generationAccuracy).toBeGreaterThan(0.1);
    expect(gap.weakGeneration).toBeGreaterThan(0.5);
  });

  it('co-training through shared parameters: SFT on own samples (P, x) raises p_yes(P, x), not the untrained samples', () => {
    const model = model0();
    const snap = model.snapshot();
    const train = worldSplits().train;
    const picked = Array.from({ length: 16 }, (_, k) => train[(k * 7) % train.length]);
    const images = picked.map((p, k) => model.generate(p, 2, { temperature: 1, seed: 500 + k }));
    const trained = picked.map((prompt, k) => ({ prompt, tokens: images[k][0].tokens }));
    const untrained = picked.map((prompt, k) => ({ prompt, tokens: images[k][1].tokens }));
    const logit = (items: { prompt: Prompt; tokens: Int32Array }[]) =>
      model.judgeMany(items).map((q) => Math.log(q / (1 - q)));
    const [t0, u0] = [logit(trained), logit(untrained)];
    for (let step = 0; step < 5; step++) {
      // The loop's SFT gradient: token-mean NLL, d loss / d logits = (softmax - onehot) / tokens.
      const out = model.forward(trained);
      const rows = out.labels.length;
      const token = new Float32Array(rows).fill(-1 / rows);
      const g = scoreLogprobs(out.logits, out.labels, { shape: [rows, out.vocab], gradient: { token } }).gradient;
      model.step(g as Float32Array, { learningRate: 0.002 });
    }
    const mean = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x - b[i], 0) / a.length;
    const dTrained = mean(logit(trained), t0);
    const dUntrained = mean(logit(untrained), u0);
    model.restore(snap);
    expect(dTrained).toBeGreaterThan(0.5);
    expect(dTrained - dUntrained).toBeGreaterThan(0.5);
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
