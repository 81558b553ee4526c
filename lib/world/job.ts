/**
 * The main job: the self-improvement loop on the embedded world. Loads (or pretrains and caches) the
 * small unified model, runs the loop with the exact validator as external judge on the train split with
 * the probe split held out, and writes report.json and a self-contained report.html next to the loop's
 * own files (config.json, metrics.jsonl, checkpoints) in the run directory.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import * as facade from '../index.js';
import type { LabelledPair, LoopConfig, LoopEvent, Prompt, RunOptions, RunResult, Strategy } from '../loop/types.js';
import { atomicWrite } from '../loop/state.js';
import type { WorldModel } from './model.js';
import {
  DEFAULT_PRETRAIN_CONFIG,
  WORLD_VERSION,
  loadPretrainedModel,
  measureGap,
  measureJudge,
  type PretrainConfig,
} from './pretrain.js';
import { CATEGORIES, worldSplits } from './prompts.js';
import { renderReportHtml, type SampleRow, type WorldReport } from './report.js';
import { sampleNearMiss, sampleScene } from './sampler.js';
import { makeRng, sceneToTokens } from './scene.js';
import { SceneValidator } from './validator.js';

export const WORLD_STRATEGIES: readonly Strategy[] = ['sft', 'dpo', 'c-sft', 'c-dpo', 'clo'];

/** Loop settings tuned for the embedded model's size and optimizer (Adam), not for any outcome. */
export const WORLD_LOOP_DEFAULTS = {
  strategy: 'clo' as Strategy,
  rounds: 5,
  samplesPerPrompt: 8,
  temperature: 1,
  learningRate: 0.002,
  epochsPerRound: 1,
};

export interface WorldJobOptions {
  strategy?: Strategy;
  rounds?: number;
  samples?: number;
  seed?: number;
  corrupt?: number;
  /** Run directory (created). */
  out: string;
  resume?: boolean;
  learningRate?: number;
  /** Co-degradation guard (default true: the loop's default with an external judge). */
  guard?: boolean;
  /** More loop settings (e.g. guardUnderstanding, guardTolerance), applied under the options above. */
  loop?: Partial<LoopConfig>;
  /** Pretrained-weights cache (default: $UNIGAP_CACHE_DIR or ~/.cache/unigap; null: no cache). */
  cacheDir?: string | null;
  pretrain?: Partial<PretrainConfig>;
  onEvent?: (e: LoopEvent) => void;
  onPretrain?: (epoch: number, epochs: number) => void;
  /** Called once the model is ready (fromCache: whether pretraining was skipped). */
  onModel?: (info: { fromCache: boolean; seconds: number }) => void;
}

export interface WorldJobResult {
  result: RunResult;
  report: WorldReport;
  reportJson: string;
  reportHtml: string;
}

type RunFn = (o: RunOptions) => Promise<RunResult>;

/**
 * The loop entry: from the public facade; until lib/index.ts exports it, straight from lib/loop/run.js
 * (a runtime-resolved import, so this module builds with or without the loop).
 */
async function loopEntry(): Promise<RunFn> {
  const fromFacade = (facade as unknown as { runSelfImprovement?: RunFn }).runSelfImprovement;
  if (typeof fromFacade === 'function') return fromFacade;
  const spec = '../loop/run.js';
  try {
    const mod = (await import(spec)) as { runSelfImprovement?: RunFn };
    if (typeof mod.runSelfImprovement === 'function') return mod.runSelfImprovement;
  } catch {
    // Fall through to the error below.
  }
  throw new Error('this build of unigap has no self-improvement loop (runSelfImprovement is missing)');
}

/** The embedded pretrained model (its understanding branch matches with unigap's pairedCosine kernel). */
export function worldModel(options: Pick<WorldJobOptions, 'cacheDir' | 'pretrain' | 'onPretrain'> = {}): {
  model: WorldModel;
  fromCache: boolean;
} {
  const { model, fromCache } = loadPretrainedModel({
    cacheDir: options.cacheDir,
    config: options.pretrain,
    onProgress: options.onPretrain ? (e, n) => options.onPretrain!(e, n) : undefined,
  });
  return { model, fromCache };
}

/** A few images per prompt (fixed seed), with the external verdict and the model's own p_yes. */
function sampleRows(model: WorldModel, prompts: Prompt[], validator: SceneValidator, n: number): SampleRow[] {
  return prompts.map((prompt, i) => {
    const images = model.generate(prompt, n, { temperature: 1, seed: 9000 + i });
    const p = model.judgeMany(images.map((im) => ({ prompt, tokens: im.tokens })));
    return {
      prompt,
      images: images.map((im, k) => ({
        tokens: Array.from(im.tokens),
        external: validator.verify(prompt, im),
        pYes: p[k],
      })),
    };
  });
}

/** Constructed labelled pairs per probe prompt for the loop's fixed probe set (see `labelledPairs`). */
export const WORLD_PROBE_SET_PER_PROMPT = 16;

/**
 * Labelled (prompt, image) pairs: per prompt, half scenes that satisfy it and half near misses (one
 * constraint broken), fresh scenes from a fixed seed, each labelled by the exact validator. Added to the
 * loop's fixed probe set (RunOptions.probeSet) to balance the round-0 model samples, which are mostly
 * wrong on the held-out probe prompts.
 */
export function labelledPairs(prompts: readonly Prompt[], perPrompt: number, seed = 0): LabelledPair[] {
  const validator = new SceneValidator();
  const rng = makeRng(0x9b0e + seed);
  const out: LabelledPair[] = [];
  for (const prompt of prompts) {
    const cons = validator.constraints(prompt.text);
    for (let i = 0; i < perPrompt; i++) {
      const image = { tokens: sceneToTokens(i % 2 === 0 ? sampleScene(cons, rng) : sampleNearMiss(cons, rng)) };
      out.push({ prompt, image, label: validator.verify(prompt, image) });
    }
  }
  return out;
}

/** Run the main job. */
export async function runWorldJob(o: WorldJobOptions): Promise<WorldJobResult> {
  const run = await loopEntry();
  const t0 = Date.now();
  const { model, fromCache } = worldModel(o);
  o.onModel?.({ fromCache, seconds: (Date.now() - t0) / 1000 });
  const validator = new SceneValidator();
  const splits = worldSplits();
  const showcase = CATEGORIES.map((c) => splits.train.find((p) => p.category === c)!);
  const samplesBefore = sampleRows(model, showcase, validator, 4);
  // The test split is never seen by pretraining or the loop: a final held-out evaluation.
  const testOptions = { samples: 8, seed: 777, judge: validator };
  const testBefore = measureGap(model, splits.test, testOptions);
  const judgeBefore = { train: measureJudge(model, splits.train), test: measureJudge(model, splits.test) };
  const config: Partial<LoopConfig> = {
    ...o.loop,
    strategy: o.strategy ?? WORLD_LOOP_DEFAULTS.strategy,
    rounds: o.rounds ?? WORLD_LOOP_DEFAULTS.rounds,
    samplesPerPrompt: o.samples ?? WORLD_LOOP_DEFAULTS.samplesPerPrompt,
    temperature: WORLD_LOOP_DEFAULTS.temperature,
    learningRate: o.learningRate ?? WORLD_LOOP_DEFAULTS.learningRate,
    epochsPerRound: WORLD_LOOP_DEFAULTS.epochsPerRound,
    seed: o.seed ?? 0,
    corrupt: o.corrupt ?? 0,
  };
  // `guard` is a loop option beyond the original contract; passed through untyped.
  if (o.guard === false) (config as Record<string, unknown>).guard = false;
  mkdirSync(o.out, { recursive: true });
  const result = await run({
    model,
    judge: validator,
    trainPrompts: splits.train,
    probePrompts: splits.probe,
    probeSet: labelledPairs(splits.probe, WORLD_PROBE_SET_PER_PROMPT),
    config,
    runDir: o.out,
    resume: o.resume ?? false,
    onEvent: o.onEvent,
  });
  const samplesAfter = sampleRows(model, showcase, validator, 4);
  const testAfter = measureGap(model, splits.test, testOptions);
  const judgeAfter = { train: measureJudge(model, splits.train), test: measureJudge(model, splits.test) };
  const report: WorldReport = {
    tool: 'unigap run',
    world: {
      version: WORLD_VERSION,
      model: model.config,
      pretrain: { ...DEFAULT_PRETRAIN_CONFIG, ...o.pretrain },
      pretrainedFromCache: fromCache,
      splits: { train: splits.train.length, probe: splits.probe.length, test: splits.test.length },
    },
    config: result.config,
    rounds: result.rounds,
    guardEvents: result.guardEvents,
    stoppedEarly: result.stoppedEarly,
    samples: { before: samplesBefore, after: samplesAfter },
    test: { before: testBefore, after: testAfter },
    judgeFixedSet: {
      train: { before: judgeBefore.train, after: judgeAfter.train },
      test: { before: judgeBefore.test, after: judgeAfter.test },
    },
    seconds: (Date.now() - t0) / 1000,
  };
  const reportJson = join(o.out, 'report.json');
  const reportHtml = join(o.out, 'report.html');
  // atomic (temp file, fsync, rename): a kill mid-write never leaves a truncated report
  await atomicWrite(reportJson, JSON.stringify(report, null, 2) + '\n');
  await atomicWrite(reportHtml, renderReportHtml(report));
  return { result, report, reportJson, reportHtml };
}
