import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { LoopConfig, PromptSamples, RunOptions } from '../../lib/loop/types.js';
import { ToyModel, toyJudge, toyPrompts } from './toy.js';

/** Build judged samples from compact specs: [pYes, accept, external]. */
export function ps(id: string, category: string, specs: [number, boolean, boolean?][]): PromptSamples {
  return {
    prompt: { id, text: id, category },
    samples: specs.map(([pYes, accept, external], i) => ({
      image: { tokens: Int32Array.of(i) },
      judgment: { pYes, accept },
      ...(external === undefined ? {} : { external }),
    })),
  };
}

const dirs: string[] = [];
export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'unigap-loop-'));
  dirs.push(d);
  return d;
}
/** Remove the temp dirs of this test file (call from afterAll). */
export async function cleanTempDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** The toy world's prompts (64 = 8 x 8; ~40 train, ~24 held-out probe). */
export const { train, probe } = toyPrompts({ slots: 2, values: 8 });

export const BASE: Partial<LoopConfig> = {
  rounds: 6,
  samplesPerPrompt: 8,
  learningRate: 3,
  epochsPerRound: 3,
  seed: 11,
};

export function opts(config: Partial<LoopConfig>, extra: Partial<RunOptions> = {}): RunOptions {
  return {
    model: new ToyModel(),
    judge: toyJudge,
    trainPrompts: train,
    probePrompts: probe,
    config: { ...BASE, ...config },
    ...extra,
  };
}
