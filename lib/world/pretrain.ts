/**
 * Pretraining for the embedded model: a short supervised run that leaves a real generation-understanding
 * gap, the way web-scale pretraining does for real unified models:
 *
 * - generation learns from a noisy caption corpus: a share `genNoise` of its (prompt, image) pairs
 *   are near misses (the caption does not quite match the picture, like web alt-text);
 * - understanding learns from a clean yes/no corpus (matching scenes and near misses, labelled exactly,
 *   like curated VQA data).
 *
 * Both losses train the shared trunk together. A last calibration pass fits the judge's three scalars
 * (cosine scale, Bayes-link weight λ, bias) by logistic regression on fresh labelled pairs. Pretraining
 * sees the train split's prompts and single-object prompts (optionally more pretraining-only prompts,
 * in no split); probe and test prompts are never seen. Weights are cached on disk keyed by the
 * pretraining config, so only the first run pays for it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import type { ExternalJudge, Prompt, TrainSequence } from '../loop/types.js';
import { DEFAULT_MODEL_CONFIG, WorldModel, type WorldModelConfig } from './model.js';
import { pretrainOnlyPrompts, singleObjectPrompts, worldSplits } from './prompts.js';
import { sampleNearMiss, sampleScene } from './sampler.js';
import { IMAGE_VOCAB_SIZE, makeRng, sceneToTokens, shuffle } from './scene.js';
import { SceneValidator } from './validator.js';

/** Bumped whenever the world, the model or pretraining changes meaning (invalidates the cache). */
export const WORLD_VERSION = 3;

export interface PretrainConfig {
  /** Data and initialisation seed (default 0). */
  seed: number;
  /** Pretraining-only prompts per category, in no split (default 0: more prompts did not help the
   * small model generalise to probe prompts and cost pretraining time). */
  extraPromptsPerCategory: number;
  /** Passes over the corpus (default 16). */
  epochs: number;
  /** Generation pairs per prompt (default 24). */
  genPairsPerPrompt: number;
  /** Share of generation pairs whose image is a near miss of the prompt (default 0.3). */
  genNoise: number;
  /** Understanding examples per prompt, half matching and half near misses (default 48). */
  undPairsPerPrompt: number;
  /** Labelled pairs per prompt for the judge's final calibration (default 8). */
  calibrationPairsPerPrompt: number;
  /**
   * Share of generation pairs trained with the empty prompt ∅ (prompt dropout, as classifier-free-guidance
   * generators such as Janus-Pro are trained; default 0.1). It makes π(x|∅) the generator's marginal π(x),
   * the term the Bayes link subtracts; untrained, ∅ is an input the generator never saw.
   */
  nullPromptRate: number;
  /** Minibatch size (default 32). */
  batchSize: number;
  /** Adam learning rate (default 0.005). */
  learningRate: number;
  /** Model sizes (defaults: DEFAULT_MODEL_CONFIG). */
  model: Partial<WorldModelConfig>;
}

export const DEFAULT_PRETRAIN_CONFIG: PretrainConfig = {
  seed: 0,
  extraPromptsPerCategory: 0,
  epochs: 16,
  genPairsPerPrompt: 24,
  genNoise: 0.3,
  undPairsPerPrompt: 48,
  calibrationPairsPerPrompt: 8,
  nullPromptRate: 0.1,
  batchSize: 32,
  learningRate: 0.005,
  model: {},
};

/** The empty prompt ∅ (prompt dropout): the generator's unconditional input. */
export const NULL_PROMPT: Prompt = { id: 'null', text: '', category: 'null' };

/** The pretraining prompts: the train split, extra pretraining-only prompts and single-object prompts. */
export function pretrainPrompts(extraPerCategory: number = DEFAULT_PRETRAIN_CONFIG.extraPromptsPerCategory): Prompt[] {
  return [...worldSplits().train, ...pretrainOnlyPrompts(extraPerCategory), ...singleObjectPrompts()];
}

/** Pretrain a fresh model (no cache). */
export function pretrain(
  config: Partial<PretrainConfig> = {},
  onProgress?: (epoch: number, epochs: number, loss: { gen: number; und: number }) => void,
): WorldModel {
  const c = { ...DEFAULT_PRETRAIN_CONFIG, ...config };
  const model = new WorldModel({ ...c.model, seed: (c.model.seed ?? DEFAULT_MODEL_CONFIG.seed) + c.seed });
  const rng = makeRng(0x9e37 + c.seed);
  const validator = new SceneValidator();
  const gen: TrainSequence[] = [];
  const und: { prompt: Prompt; tokens: Int32Array; label: boolean }[] = [];
  for (const prompt of pretrainPrompts(c.extraPromptsPerCategory)) {
    const cons = validator.constraints(prompt.text);
    for (let i = 0; i < c.genPairsPerPrompt; i++) {
      const scene = rng() < c.genNoise ? sampleNearMiss(cons, rng) : sampleScene(cons, rng);
      const dropped = c.nullPromptRate > 0 && rng() < c.nullPromptRate;
      gen.push({ prompt: dropped ? NULL_PROMPT : prompt, tokens: sceneToTokens(scene) });
    }
    for (let i = 0; i < c.undPairsPerPrompt; i++) {
      const label = i % 2 === 0;
      und.push({ prompt, tokens: sceneToTokens(label ? sampleScene(cons, rng) : sampleNearMiss(cons, rng)), label });
    }
  }
  const V = IMAGE_VOCAB_SIZE;
  const undPerBatch = Math.max(1, Math.round((c.batchSize * und.length) / gen.length));
  for (let epoch = 0; epoch < c.epochs; epoch++) {
    shuffle(gen, rng);
    shuffle(und, rng);
    let genLoss = 0;
    let undLoss = 0;
    let batches = 0;
    for (let b = 0, ub = 0; b < gen.length; b += c.batchSize, ub += undPerBatch) {
      const batch = gen.slice(b, b + c.batchSize);
      const out = model.forward(batch);
      const grad = new Float32Array(out.logits.length);
      const rows = out.labels.length;
      let loss = 0;
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, out.logits[r * V + v]);
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(out.logits[r * V + v] - max);
        const lse = max + Math.log(sum);
        loss += lse - out.logits[r * V + out.labels[r]];
        for (let v = 0; v < V; v++) grad[r * V + v] = Math.exp(out.logits[r * V + v] - lse) / rows;
        grad[r * V + out.labels[r]] -= 1 / rows;
      }
      model.backward(grad);
      const ubatch = Array.from({ length: undPerBatch }, (_, k) => und[(ub + k) % und.length]);
      undLoss += model.judgeLossBackward(ubatch);
      model.applyGradients(c.learningRate);
      genLoss += loss / rows;
      batches++;
    }
    onProgress?.(epoch + 1, c.epochs, { gen: genLoss / batches, und: undLoss / batches });
  }
  // Calibration: fit the judge's scale, Bayes-link weight and bias on fresh labelled pairs.
  const calib: { prompt: Prompt; tokens: Int32Array; label: boolean }[] = [];
  for (const prompt of pretrainPrompts(c.extraPromptsPerCategory)) {
    const cons = validator.constraints(prompt.text);
    for (let i = 0; i < c.calibrationPairsPerPrompt; i++) {
      const label = i % 2 === 0;
      calib.push({ prompt, tokens: sceneToTokens(label ? sampleScene(cons, rng) : sampleNearMiss(cons, rng)), label });
    }
  }
  model.calibrateJudge(calib);
  model.resetOptimizer();
  return model;
}

/** Where pretrained weights are cached: $UNIGAP_CACHE_DIR, else ~/.cache/unigap. */
export function defaultCacheDir(): string {
  return process.env.UNIGAP_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'unigap');
}

function cacheKey(c: PretrainConfig): string {
  return createHash('sha256')
    .update(JSON.stringify({ v: WORLD_VERSION, c, m: { ...DEFAULT_MODEL_CONFIG, ...c.model } }))
    .digest('hex')
    .slice(0, 16);
}

export interface LoadPretrainedOptions {
  config?: Partial<PretrainConfig>;
  /** Cache directory (default defaultCacheDir()); null disables the cache. */
  cacheDir?: string | null;
  onProgress?: (epoch: number, epochs: number, loss: { gen: number; und: number }) => void;
}

/** The pretrained model, from the cache when present (else pretrained now and cached). */
export function loadPretrainedModel(options: LoadPretrainedOptions = {}): {
  model: WorldModel;
  fromCache: boolean;
  path?: string;
} {
  const c = { ...DEFAULT_PRETRAIN_CONFIG, ...options.config };
  const dir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const modelConfig = { ...c.model, seed: (c.model.seed ?? DEFAULT_MODEL_CONFIG.seed) + c.seed };
  const path = dir ? join(dir, `world-v${WORLD_VERSION}-${cacheKey(c)}.json`) : undefined;
  if (path) {
    try {
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { params: Record<string, string> };
      const model = new WorldModel(modelConfig);
      model.restore(
        Object.fromEntries(
          Object.entries(saved.params).map(([k, b64]) => {
            const buf = Buffer.from(b64, 'base64');
            return [k, new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))];
          }),
        ),
      );
      return { model, fromCache: true, path };
    } catch {
      // Missing or unreadable cache: pretrain below.
    }
  }
  const model = pretrain(c, options.onProgress);
  if (path && dir) {
    try {
      mkdirSync(dir, { recursive: true });
      const params = Object.fromEntries(
        Object.entries(model.snapshot())
          .filter(([k]) => !k.startsWith('optim.'))
          .map(([k, a]) => [k, Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64')]),
      );
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ version: WORLD_VERSION, config: c, params }));
      renameSync(tmp, path);
    } catch {
      // A read-only cache is not an error: the model is still usable.
    }
  }
  return { model, fromCache: false, path };
}

export interface GapMeasurement {
  /** Share of the model's samples the external judge accepts. */
  generationAccuracy: number;
  /** Share of the model's samples where its self-judgment agrees with the external judge. */
  understandingAccuracy: number;
  /** Share of the model's samples its own understanding rejects. */
  nonunified: number;
  /** Among self-rejected samples, the share the external judge also rejects. */
  weakGeneration: number;
  /** Among self-accepted samples, the share the external judge rejects (as the loop's metric). */
  falsePositiveRate: number;
  samples: number;
}

/** Measure the generation-understanding gap directly (without the loop). */
export function measureGap(
  model: WorldModel,
  prompts: Prompt[],
  options: { samples?: number; temperature?: number; seed?: number; judge?: ExternalJudge } = {},
): GapMeasurement {
  const n = options.samples ?? 8;
  const judge = options.judge ?? new SceneValidator();
  let correct = 0;
  let agree = 0;
  let rejected = 0;
  let rejectedWrong = 0;
  let wrongAccepted = 0;
  let total = 0;
  prompts.forEach((prompt, i) => {
    const images = model.generate(prompt, n, {
      temperature: options.temperature ?? 1,
      seed: (options.seed ?? 0) * 100003 + i,
    });
    const p = model.judgeMany(images.map((im) => ({ prompt, tokens: im.tokens })));
    images.forEach((im, k) => {
      const ok = judge.verify(prompt, im) as boolean;
      const accept = p[k] >= 0.5;
      total++;
      if (ok) correct++;
      if (ok === accept) agree++;
      if (!accept) {
        rejected++;
        if (!ok) rejectedWrong++;
      } else if (!ok) wrongAccepted++;
    });
  });
  return {
    generationAccuracy: correct / total,
    understandingAccuracy: agree / total,
    nonunified: rejected / total,
    weakGeneration: rejected ? rejectedWrong / rejected : 0,
    falsePositiveRate: total - rejected ? wrongAccepted / (total - rejected) : 0,
    samples: total,
  };
}

/**
 * The understanding branch alone, on a FIXED labelled set (half matching scenes, half near misses per
 * prompt, from `seed`): unlike understanding accuracy on the model's own samples, this does not move
 * when only the images change, so it isolates what training did to the judge.
 */
export function measureJudge(
  model: WorldModel,
  prompts: Prompt[],
  options: { perPrompt?: number; seed?: number } = {},
): { accuracy: number; falsePositiveRate: number; falseNegativeRate: number; items: number } {
  const n = options.perPrompt ?? 16;
  const rng = makeRng(0x7e57 + (options.seed ?? 0));
  const validator = new SceneValidator();
  const items: { prompt: Prompt; tokens: Int32Array; label: boolean }[] = [];
  for (const prompt of prompts) {
    const cons = validator.constraints(prompt.text);
    for (let i = 0; i < n; i++) {
      const label = i % 2 === 0;
      items.push({ prompt, tokens: sceneToTokens(label ? sampleScene(cons, rng) : sampleNearMiss(cons, rng)), label });
    }
  }
  const p = model.judgeMany(items);
  let right = 0;
  let fp = 0;
  let fn = 0;
  items.forEach((it, i) => {
    const accept = p[i] >= 0.5;
    if (accept === it.label) right++;
    else if (accept) fp++;
    else fn++;
  });
  const pos = items.filter((it) => it.label).length;
  return {
    accuracy: right / items.length,
    falsePositiveRate: fp / (items.length - pos),
    falseNegativeRate: fn / pos,
    items: items.length,
  };
}
