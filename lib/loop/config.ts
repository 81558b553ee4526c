/**
 * Loop configuration: defaults (each documented) and validation. All policy lives here; a bad value is
 * a typed error naming the field.
 */
import { InvalidTypeError, InvalidValueError } from '../errors.js';
import { checkOptions, requireBoolean, requireEnum, requireInt, requireNumber } from '../validate.js';
import { DEFAULT_JUDGE_QUESTION } from './types.js';
import type { CorruptMode, GuardUnderstanding, LoopConfig, Pairing, Strategy } from './types.js';

export const STRATEGIES: readonly Strategy[] = ['sft', 'dpo', 'c-sft', 'c-dpo', 'clo'];
export const PAIRINGS: readonly Pairing[] = ['best-worst', 'all'];
export const GUARD_UNDERSTANDING: readonly GuardUnderstanding[] = ['fixed', 'own'];
export const CORRUPT_MODES: readonly CorruptMode[] = ['flip', 'accept', 'wrong', 'adversarial'];

/** Strategies whose loss is DPO (they need N >= 2 samples per prompt to form pairs). */
export function isDpoStrategy(s: Strategy): boolean {
  return s === 'dpo' || s === 'c-dpo';
}

/**
 * The defaults. β, learning rate and batch size are not published (paper.md); these suit the small
 * models of the tests and the embedded world. `guard` defaults to whether an external judge is given.
 * The guard watches probe generation accuracy, understanding accuracy on the fixed labelled probe set
 * (`guardUnderstanding: 'fixed'`), train-split generation accuracy (`guardTrainGeneration: true`) and
 * acceptance precision on the probe and train samples (`guardPrecision: true`); see lib/loop/guard.ts.
 * `corrupt` (default 0) corrupts that share of the training self-judgments; with `corruptMode: 'flip'`
 * (default) it flips accept ↔ reject among all of them, with 'accept' it marks
 * self-rejected samples accepted only (false positives enter training), with 'wrong' it marks self-rejected
 * samples the external judge finds wrong accepted (wrong images labelled accepted: the paper's corrupted
 * supervision; needs a judge), with 'adversarial' it sets the training label of that share of all samples
 * to the opposite of the external verdict (wrong accepted, right rejected; at 1 training sees exactly the
 * wrong images; needs a judge); see corruptJudgments in data.ts.
 */
export const DEFAULT_LOOP_CONFIG: Readonly<Omit<LoopConfig, 'guard'>> = Object.freeze({
  strategy: 'sft',
  rounds: 5,
  samplesPerPrompt: 8,
  temperature: 1,
  seed: 0,
  learningRate: 0.05,
  epochsPerRound: 1,
  beta: 0.1,
  nllWeight: 1,
  corrupt: 0,
  question: DEFAULT_JUDGE_QUESTION,
  batchSize: 16,
  pairing: 'best-worst',
  triggerRound: 2,
  cloStartFraction: 0.3,
  cloThreshold: 0.6,
  cloGrowth: 0.2,
  guardTolerance: 0.05,
  guardZ: 1.645,
  acceptThreshold: null,
  probeSamples: null,
  guardUnderstanding: 'fixed',
  guardTrainGeneration: true,
  guardPrecision: true,
  corruptMode: 'flip',
});

export const LOOP_CONFIG_KEYS: readonly (keyof LoopConfig)[] = [
  ...Object.keys(DEFAULT_LOOP_CONFIG),
  'guard',
] as (keyof LoopConfig)[];

const FN = 'runSelfImprovement';

/** Fill defaults and validate. `hasJudge` decides the guard default; guard: true without a judge is an error. */
export function resolveConfig(partial: Partial<LoopConfig> | undefined, hasJudge: boolean): LoopConfig {
  const p = checkOptions(`${FN} config`, partial, LOOP_CONFIG_KEYS as string[]);
  const defined = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<LoopConfig>;
  const c: LoopConfig = { ...DEFAULT_LOOP_CONFIG, guard: hasJudge, ...defined };
  const f = (name: string) => `config.${name}`;
  requireEnum(FN, f('strategy'), c.strategy, STRATEGIES);
  requireInt(FN, f('rounds'), c.rounds, 0, 1_000_000);
  requireInt(FN, f('samplesPerPrompt'), c.samplesPerPrompt, 1, 1_000_000);
  if (isDpoStrategy(c.strategy) && c.samplesPerPrompt < 2)
    throw new InvalidValueError(
      `${FN}: config.samplesPerPrompt must be >= 2 for strategy '${c.strategy}' (a DPO pair needs an accepted and a rejected sample of the same prompt), got ${c.samplesPerPrompt}`,
      'ERR_UNIGAP_OUT_OF_RANGE',
    );
  requireNumber(FN, f('temperature'), c.temperature, { min: 0, minExclusive: true });
  requireInt(FN, f('seed'), c.seed, 0);
  requireNumber(FN, f('learningRate'), c.learningRate, { min: 0 });
  requireInt(FN, f('epochsPerRound'), c.epochsPerRound, 1, 1_000_000);
  requireNumber(FN, f('beta'), c.beta, { min: 0, minExclusive: true });
  requireNumber(FN, f('nllWeight'), c.nllWeight, { min: 0 });
  unit(f('corrupt'), c.corrupt);
  requireEnum(FN, f('corruptMode'), c.corruptMode, CORRUPT_MODES);
  if (c.corruptMode === 'wrong' && c.corrupt > 0 && !hasJudge)
    throw new InvalidValueError(
      `${FN}: config.corruptMode 'wrong' needs an external judge (options.judge): it poisons the training set with the images the judge finds wrong`,
    );
  if (c.corruptMode === 'adversarial' && c.corrupt > 0 && !hasJudge)
    throw new InvalidValueError(
      `${FN}: config.corruptMode 'adversarial' needs an external judge (options.judge): it sets training labels to the opposite of the judge's verdicts`,
    );
  if (typeof c.question !== 'string')
    throw new InvalidTypeError(`${FN}: config.question must be a string, got ${typeof c.question}`);
  requireInt(FN, f('batchSize'), c.batchSize, 1, 1_000_000);
  requireEnum(FN, f('pairing'), c.pairing, PAIRINGS);
  requireInt(FN, f('triggerRound'), c.triggerRound, 1);
  unit(f('cloStartFraction'), c.cloStartFraction);
  if (c.cloStartFraction === 0) throw new InvalidValueError(`${FN}: config.cloStartFraction must be > 0, got 0`);
  unit(f('cloThreshold'), c.cloThreshold);
  unit(f('cloGrowth'), c.cloGrowth);
  if (c.cloGrowth === 0) throw new InvalidValueError(`${FN}: config.cloGrowth must be > 0, got 0`);
  requireBoolean(FN, f('guard'), c.guard);
  if (c.guard && !hasJudge)
    throw new InvalidValueError(
      `${FN}: config.guard needs an external judge (options.judge) to evaluate the probe set`,
    );
  unit(f('guardTolerance'), c.guardTolerance);
  requireNumber(FN, f('guardZ'), c.guardZ, { min: 0 });
  if (c.acceptThreshold !== null) unit(f('acceptThreshold'), c.acceptThreshold);
  if (c.probeSamples !== null) requireInt(FN, f('probeSamples'), c.probeSamples, 1, 1_000_000);
  requireEnum(FN, f('guardUnderstanding'), c.guardUnderstanding, GUARD_UNDERSTANDING);
  requireBoolean(FN, f('guardTrainGeneration'), c.guardTrainGeneration);
  requireBoolean(FN, f('guardPrecision'), c.guardPrecision);
  return c;
}

/** A threshold or share: a finite number in [0, 1]. */
function unit(name: string, v: unknown): void {
  if (typeof v !== 'number') throw new InvalidTypeError(`${FN}: ${name} must be a number, got ${typeof v}`);
  if (!(v >= 0 && v <= 1))
    throw new InvalidValueError(`${FN}: ${name} must be in [0, 1], got ${v}`, 'ERR_UNIGAP_OUT_OF_RANGE');
}
