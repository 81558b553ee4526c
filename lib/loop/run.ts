/**
 * runSelfImprovement: the self-improvement loop (paper.md Algorithms 1 and 2, v1 CLO).
 *
 * Round 0 samples N images for every training prompt with the base model, self-judges them (and, with
 * an external judge, verifies them and the probe set): the baseline metrics, and the data the strategy
 * starts from. Each round r >= 1 then: builds the round's training data (lib/loop/curriculum.ts), trains
 * (lib/loop/train.ts: SFT or DPO through unigap's kernels), re-samples and re-judges every training prompt
 * with the new weights (the round's metrics and the next round's fresh samples), evaluates the probe
 * set and the fixed labelled probe set, runs the co-degradation guard and commits the round to the run
 * directory.
 *
 * The fixed probe set (with an external judge): at round 0 the base model's probe samples (the training
 * samples when there are no probe prompts) are labelled once by the external judge and, with any
 * user-supplied `probeSet` pairs, frozen and stored in the run directory. Every round the model
 * self-judges that same set: understanding accuracy that only the judge can move (own-sample
 * understanding accuracy also moves when the images change). Round 0's verdicts on the set are stored too
 * (fixed-probe-base.json): every round reports the paper's understanding win rate against them
 * (`RoundMetrics.understandingWinRate`, `understandingWinRate` in lib/loop/metrics.ts).
 *
 * All randomness comes from seeds derived from (config.seed, round, purpose): a resumed run ends exactly
 * where an uninterrupted one does.
 */
import { InvalidTypeError, InvalidValueError } from '../errors.js';
import { checkOptions, describe } from '../validate.js';
import { checkImages, checkJudge, checkJudgment, checkModel, checkVerdict } from './adapter.js';
import { resolveConfig } from './config.js';
import { initPool, roundData, type PoolState } from './curriculum.js';
import { guardCheck, type GuardObservation } from './guard.js';
import { acceptRate, externalMetrics, nonunifiedScore, rate, understandingWinRate } from './metrics.js';
import { deriveSeed } from './rng.js';
import { RunDir, probeSetDigest, promptsDigest, type BestRound, type LoopState, type RunIdentity } from './state.js';
import { trainRound, type TrainStats } from './train.js';
import type {
  ExternalJudge,
  FixedProbeItem,
  LabelledPair,
  LoopConfig,
  LoopEvent,
  ModelState,
  Prompt,
  PromptSamples,
  Rate,
  RoundMetrics,
  RunOptions,
  RunResult,
  UnifiedModel,
} from './types.js';

const FN = 'runSelfImprovement';
export const RUN_OPTION_KEYS = [
  'model',
  'judge',
  'trainPrompts',
  'probePrompts',
  'probeSet',
  'config',
  'runDir',
  'resume',
  'onEvent',
] as const;

function checkPrompts(name: string, prompts: unknown, allowEmpty: boolean): Prompt[] {
  if (!Array.isArray(prompts))
    throw new InvalidTypeError(`${FN}: ${name} must be an array of prompts, got ${describe(prompts)}`);
  if (!allowEmpty && prompts.length === 0) throw new InvalidValueError(`${FN}: ${name} is empty`);
  const seen = new Set<string>();
  prompts.forEach((p: Prompt, i) => {
    if (!p || typeof p.id !== 'string' || typeof p.text !== 'string' || typeof p.category !== 'string')
      throw new InvalidTypeError(`${FN}: ${name}[${i}] must be {id, text, category} strings`);
    if (seen.has(p.id)) throw new InvalidValueError(`${FN}: ${name} has the id '${p.id}' twice`);
    seen.add(p.id);
  });
  return prompts;
}

function checkProbeSet(pairs: unknown, vocabSize: number): LabelledPair[] {
  if (pairs === undefined) return [];
  if (!Array.isArray(pairs))
    throw new InvalidTypeError(`${FN}: probeSet must be an array of {prompt, image, label}, got ${describe(pairs)}`);
  pairs.forEach((it: LabelledPair, i) => {
    const p = it?.prompt;
    if (!p || typeof p.id !== 'string' || typeof p.text !== 'string' || typeof p.category !== 'string')
      throw new InvalidTypeError(`${FN}: probeSet[${i}].prompt must be {id, text, category} strings`);
    if (!it.image || !(it.image.tokens instanceof Int32Array))
      throw new InvalidTypeError(`${FN}: probeSet[${i}].image.tokens must be an Int32Array`);
    if (it.image.tokens.some((t) => t < 0 || t >= vocabSize))
      throw new InvalidValueError(`${FN}: probeSet[${i}].image.tokens has a token outside [0, ${vocabSize})`);
    if (typeof it.label !== 'boolean')
      throw new InvalidTypeError(`${FN}: probeSet[${i}].label must be a boolean, got ${describe(it.label)}`);
  });
  return pairs;
}

/** Everything the round functions share. */
interface Ctx {
  model: UnifiedModel;
  judge?: ExternalJudge;
  config: LoopConfig;
  train: Prompt[];
  probe: Prompt[];
  /** User-supplied labelled pairs for the fixed probe set. */
  probeSet: LabelledPair[];
  emit: (e: LoopEvent) => void;
}

/** Round 0: freeze the fixed probe set from the base model's samples (labelled once) plus the supplied pairs. */
function buildFixedProbe(ctx: Ctx, base: PromptSamples[]): FixedProbeItem[] {
  const items: FixedProbeItem[] = [];
  for (const { prompt, samples } of base)
    for (const s of samples) items.push({ prompt, image: s.image, label: s.external === true, source: 'model' });
  for (const it of ctx.probeSet)
    items.push({ prompt: it.prompt, image: it.image, label: it.label, source: 'supplied' });
  return items;
}

/** A round's self-judgment of the fixed probe set: its metrics and the verdicts (accept), item by item. */
interface FixedJudged {
  metrics: NonNullable<RoundMetrics['fixedProbe']>;
  verdicts: boolean[];
}

/** The current model's self-judgment accuracy on the fixed probe set (and its verdicts, for the win rate). */
async function judgeFixedProbe(ctx: Ctx, items: readonly FixedProbeItem[]): Promise<FixedJudged> {
  const { model, config } = ctx;
  let right = 0;
  let neg = 0;
  let fp = 0;
  let pos = 0;
  let fn = 0;
  const verdicts: boolean[] = [];
  for (const it of items) {
    const question = config.question.split('{prompt}').join(it.prompt.text);
    const j = checkJudgment(await model.judge(it.prompt, it.image, question), it.prompt);
    const accept = config.acceptThreshold === null ? j.accept : j.pYes >= config.acceptThreshold;
    verdicts.push(accept);
    if (accept === it.label) right++;
    if (it.label) {
      pos++;
      if (!accept) fn++;
    } else {
      neg++;
      if (accept) fp++;
    }
  }
  const model_ = items.filter((it) => it.source === 'model').length;
  return {
    metrics: {
      understandingAccuracy: rate(right, items.length),
      falsePositiveRate: rate(fp, neg),
      falseNegativeRate: rate(fn, pos),
      items: { model: model_, supplied: items.length - model_ },
    },
    verdicts,
  };
}

/**
 * The understanding win rate of a round against the round-0 verdicts (null: not stored, an older run
 * directory; undefined: no fixed probe set).
 */
function winRateOf(
  items: readonly FixedProbeItem[] | null,
  base: readonly boolean[] | null | undefined,
  judged: FixedJudged | null,
): Rate | null | undefined {
  if (!items || !judged) return undefined;
  if (!base) return null;
  return understandingWinRate(
    base,
    judged.verdicts,
    items.map((it) => it.label),
  );
}

/** Sample n images per prompt with the current weights, self-judge them and (with a judge) verify them. */
async function sampleAndJudge(
  ctx: Ctx,
  prompts: readonly Prompt[],
  n: number,
  round: number,
  purpose: string,
  progress: boolean,
): Promise<PromptSamples[]> {
  const { model, judge, config } = ctx;
  const out: PromptSamples[] = [];
  const total = prompts.length * n;
  let done = 0;
  for (const prompt of prompts) {
    const seed = deriveSeed(config.seed, round, `${purpose}:${prompt.id}`);
    const images = checkImages(
      await model.generate(prompt, n, { temperature: config.temperature, seed }),
      n,
      model.vocabSize,
      prompt,
    );
    const question = config.question.split('{prompt}').join(prompt.text);
    const samples: PromptSamples['samples'] = [];
    for (const image of images) {
      const j = checkJudgment(await model.judge(prompt, image, question), prompt);
      const accept = config.acceptThreshold === null ? j.accept : j.pYes >= config.acceptThreshold;
      const s: PromptSamples['samples'][number] = { image, judgment: { pYes: j.pYes, accept } };
      if (judge) s.external = checkVerdict(await judge.verify(prompt, image), prompt);
      samples.push(s);
    }
    out.push({ prompt, samples });
    done += n;
    if (progress) ctx.emit({ type: 'samples-judged', round, done, total });
  }
  return out;
}

function roundMetrics(
  ctx: Ctx,
  round: number,
  evalSamples: PromptSamples[],
  probe: PromptSamples[] | null,
  stats: TrainStats,
  pool: PoolState,
  fixed: RoundMetrics['fixedProbe'] | null,
  winRate: Rate | null | undefined,
): RoundMetrics {
  const { config } = ctx;
  const m: RoundMetrics = {
    round,
    strategy: config.strategy,
    nonunified: nonunifiedScore(evalSamples),
    acceptRate: acceptRate(evalSamples),
    train: {
      sftExamples: stats.sftExamples,
      dpoPairs: stats.dpoPairs,
      meanLoss: stats.meanLoss,
      trainingPrompts: stats.trainingPrompts,
      discardPool: config.strategy === 'clo' ? ctx.train.length - pool.active.length : pool.discard.length,
    },
  };
  if (ctx.judge) m.external = externalMetrics(evalSamples);
  if (probe) {
    const e = externalMetrics(probe);
    const nu = nonunifiedScore(probe);
    m.probe = {
      generationAccuracy: e.generationAccuracy,
      understandingAccuracy: e.understandingAccuracy,
      nonunified: { value: nu.value, count: nu.count, total: nu.total },
      falsePositiveRate: e.falsePositiveRate,
    };
  }
  if (fixed) m.fixedProbe = fixed;
  if (winRate !== undefined) m.understandingWinRate = winRate;
  return m;
}

/** Unification (1 - Nonunified) as a Rate: accepted own samples / own samples. */
function unificationOf(nu: Rate): Rate {
  // value as 1 - Nonunified exactly (what the guard's saved best round has always held).
  return { value: 1 - nu.value, count: nu.total - nu.count, total: nu.total };
}

/** Acceptance precision (externally right among the self-accepted samples) from the false-positive rate. */
function precisionOf(fp: Rate): Rate {
  return { value: fp.total > 0 ? 1 - fp.value : 0, count: fp.total - fp.count, total: fp.total };
}

/**
 * The guard's view of a round (lib/loop/guard.ts): probe generation accuracy and unification (training
 * samples when there is no probe set), understanding accuracy on the fixed labelled probe set ('own': on
 * the own samples), and with config.guardTrainGeneration the training prompts' generation accuracy and
 * unification, and with config.guardPrecision the acceptance precision (externally right among the
 * self-accepted samples) on the same samples as each unification. Unification goes as a Rate (accepted
 * own samples / own samples) so the guard can bound its rise by the sample count, as it bounds falls.
 */
export function guardObservation(config: LoopConfig, round: number, m: RoundMetrics): GuardObservation | null {
  const own = m.probe ?? m.external;
  if (!own) return null;
  const fixed = config.guardUnderstanding === 'fixed' && m.fixedProbe !== undefined;
  const understandingAccuracy = fixed ? m.fixedProbe!.understandingAccuracy : own.understandingAccuracy;
  const where = m.probe ? 'probe' : 'train-split';
  const labels = {
    generation: `${where} generation accuracy`,
    understanding: fixed ? 'fixed-set understanding accuracy' : `${where} own-sample understanding accuracy`,
    trainGeneration: 'train-split generation accuracy',
    precision: `${where} acceptance precision`,
    trainPrecision: 'train-split acceptance precision',
  };
  if (m.probe) {
    const o: GuardObservation = {
      round,
      generationAccuracy: m.probe.generationAccuracy,
      understandingAccuracy,
      unification: unificationOf(m.probe.nonunified),
      labels,
    };
    if (config.guardPrecision && m.probe.falsePositiveRate)
      o.acceptancePrecision = precisionOf(m.probe.falsePositiveRate);
    if (config.guardTrainGeneration && m.external) {
      o.trainGenerationAccuracy = m.external.generationAccuracy;
      o.trainUnification = unificationOf(m.nonunified);
      if (config.guardPrecision) o.trainAcceptancePrecision = precisionOf(m.external.falsePositiveRate);
    }
    return o;
  }
  const o: GuardObservation = {
    round,
    generationAccuracy: m.external!.generationAccuracy,
    understandingAccuracy,
    unification: unificationOf(m.nonunified),
    labels,
  };
  if (config.guardPrecision) o.acceptancePrecision = precisionOf(m.external!.falsePositiveRate);
  return o;
}

const OPT_PREFIX = 'optimizer/';

/** Weights plus (when the model exposes it) optimizer state, under 'optimizer/<name>'. */
function checkpointOf(model: UnifiedModel): ModelState {
  const state = model.snapshot();
  if (typeof model.optimizerState === 'function')
    for (const [k, v] of Object.entries(model.optimizerState())) state[OPT_PREFIX + k] = v;
  return state;
}

function restoreCheckpoint(model: UnifiedModel, state: ModelState): void {
  const weights: ModelState = {};
  const opt: ModelState = {};
  for (const [k, v] of Object.entries(state))
    if (k.startsWith(OPT_PREFIX)) opt[k.slice(OPT_PREFIX.length)] = v;
    else weights[k] = v;
  model.restore(weights);
  if (Object.keys(opt).length && typeof model.restoreOptimizer === 'function') model.restoreOptimizer(opt);
}

const NO_TRAINING: TrainStats = { sftExamples: 0, dpoPairs: 0, meanLoss: 0, trainingPrompts: 0, steps: 0 };

/**
 * Run (or, with `resume`, continue) the self-improvement loop. Returns every round's metrics (round 0
 * is the baseline), the guard's interventions and whether the run stopped early. The model is left
 * with the final weights (after a guard trip: the best round's).
 *
 * Throws (typed, with a `code`): InvalidValueError / InvalidTypeError / UnknownOptionError for bad
 * options, AdapterError when the model or judge breaks the contract, ConfigMismatchError when resuming
 * a run directory made with another config, CorruptStateError for a damaged run directory.
 *
 * @example
 * const result = await runSelfImprovement({
 *   model,                      // your UnifiedModel adapter
 *   judge,                      // optional ExternalJudge: evaluation + co-degradation guard
 *   trainPrompts, probePrompts, // disjoint
 *   config: { strategy: 'c-sft', rounds: 10, samplesPerPrompt: 10, seed: 1 },
 *   runDir: 'runs/c-sft', resume: true,
 *   onEvent: (e) => e.type === 'round-end' && console.log(e.round, e.metrics.nonunified.value),
 * });
 */
export async function runSelfImprovement(options: RunOptions): Promise<RunResult> {
  if (!options || typeof options !== 'object')
    throw new InvalidTypeError(`${FN}: options must be an object, got ${describe(options)}`);
  const o = checkOptions(FN, options, RUN_OPTION_KEYS);
  const model = checkModel(o.model);
  const judge = o.judge === undefined ? undefined : checkJudge(o.judge);
  const train = checkPrompts('trainPrompts', o.trainPrompts, false);
  const probe = checkPrompts('probePrompts', o.probePrompts ?? [], true);
  const trainIds = new Set(train.map((p) => p.id));
  const overlap = probe.filter((p) => trainIds.has(p.id)).map((p) => p.id);
  if (overlap.length)
    throw new InvalidValueError(
      `${FN}: probePrompts must be held out from trainPrompts (shared ids: ${overlap.slice(0, 5).join(', ')}${overlap.length > 5 ? ', ...' : ''})`,
    );
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function')
    throw new InvalidTypeError(`${FN}: onEvent must be a function, got ${describe(o.onEvent)}`);
  if (o.runDir !== undefined && typeof o.runDir !== 'string')
    throw new InvalidTypeError(`${FN}: runDir must be a string, got ${describe(o.runDir)}`);
  if (o.resume && !o.runDir) throw new InvalidValueError(`${FN}: resume needs runDir`);
  const config = resolveConfig(o.config, judge !== undefined);
  const probeSet = checkProbeSet(o.probeSet, model.vocabSize);
  if (probeSet.length && !judge)
    throw new InvalidValueError(`${FN}: probeSet needs an external judge (options.judge): it is evaluation only`);
  const ctx: Ctx = { model, judge, config, train, probe, probeSet, emit: (e) => o.onEvent?.(e) };
  const probeN = config.probeSamples ?? config.samplesPerPrompt;
  const useProbe = judge !== undefined && probe.length > 0;

  const identity: RunIdentity = {
    model: model.name,
    vocabSize: model.vocabSize,
    judge: judge ? String(judge.name) : null,
    trainPrompts: promptsDigest(train),
    probePrompts: promptsDigest(probe),
    probeSet: probeSet.length ? probeSetDigest(probeSet) : null,
  };
  const dir = o.runDir ? new RunDir(o.runDir) : null;
  const unlock = dir ? await dir.lock() : () => {};
  try {
    return await runLocked(o, ctx, dir, identity, probeN, useProbe);
  } finally {
    unlock();
  }
}

async function runLocked(
  o: RunOptions,
  ctx: Ctx,
  dir: RunDir | null,
  identity: RunIdentity,
  probeN: number,
  useProbe: boolean,
): Promise<RunResult> {
  const { model, config, train, probe } = ctx;
  let state: LoopState | null = null;
  let metrics: RoundMetrics[] = [];
  if (dir) {
    if (o.resume) {
      const started = await dir.checkConfig(config, identity);
      if (started && (await dir.hasCommit())) {
        const loaded = await dir.load(new Map(train.map((p) => [p.id, p])));
        restoreCheckpoint(model, loaded.weights);
        state = loaded.state;
        metrics = loaded.metrics;
      } else if (!started) await dir.create(config, identity);
    } else {
      if ((await dir.hasCommit()) || (await dir.checkConfig(config, identity).catch(() => true)))
        throw new InvalidValueError(
          `${FN}: ${o.runDir} already holds a run; pass resume: true to continue it, or use an empty directory`,
        );
      await dir.create(config, identity);
    }
  }

  // Best weights for rollback when there is no run directory (with one, the best checkpoint is on disk).
  let bestWeights: ModelState | null = null;
  const commit = async (s: LoopState, checkpointRound: number, weights: ModelState | null) => {
    if (!dir) return;
    if (weights) await dir.writeCheckpoint(s.round, weights);
    await dir.commit(s, metrics, checkpointRound);
  };
  const noteBest = (prev: BestRound | null, next: BestRound, weights: () => ModelState) => {
    if (!dir && (!prev || prev.round !== next.round)) bestWeights = weights();
  };

  if (!state) {
    ctx.emit({ type: 'round-start', round: 0, rounds: config.rounds });
    const evalSamples = await sampleAndJudge(ctx, train, config.samplesPerPrompt, 0, 'sample', true);
    const probeSamples = useProbe ? await sampleAndJudge(ctx, probe, probeN, 0, 'probe', false) : null;
    const pool = initPool(config, evalSamples);
    const fixedProbe = ctx.judge ? buildFixedProbe(ctx, probeSamples ?? evalSamples) : null;
    const judged = fixedProbe ? await judgeFixedProbe(ctx, fixedProbe) : null;
    // Round 0's verdicts are the base the win rate of every later round compares against.
    const fixedProbeBase = judged ? judged.verdicts : null;
    const m = roundMetrics(
      ctx,
      0,
      evalSamples,
      probeSamples,
      NO_TRAINING,
      pool,
      judged?.metrics ?? null,
      winRateOf(fixedProbe, fixedProbeBase, judged),
    );
    let best: BestRound | null = null;
    const obs = guardObservation(config, 0, m);
    if (config.guard && obs) {
      best = guardCheck(null, obs, config.guardTolerance, config.guardZ).best;
      m.guard = { tripped: false };
    }
    const weights = checkpointOf(model);
    if (best) noteBest(null, best, () => weights);
    metrics.push(m);
    state = { round: 0, pool, evalSamples, fixedProbe, fixedProbeBase, best, guardEvents: [], stoppedEarly: false };
    await commit(state, 0, weights);
    ctx.emit({ type: 'round-end', round: 0, metrics: m });
  }

  for (let round = state.round + 1; round <= config.rounds && !state.stoppedEarly; round++) {
    ctx.emit({ type: 'round-start', round, rounds: config.rounds });
    const rd = roundData(config, state.pool, round, state.evalSamples);
    const stats = await trainRound(model, rd.data, config, round, ctx.emit);
    const evalSamples = await sampleAndJudge(ctx, train, config.samplesPerPrompt, round, 'sample', true);
    const probeSamples = useProbe ? await sampleAndJudge(ctx, probe, probeN, round, 'probe', false) : null;
    const judged = state.fixedProbe ? await judgeFixedProbe(ctx, state.fixedProbe) : null;
    const m = roundMetrics(
      ctx,
      round,
      evalSamples,
      probeSamples,
      stats,
      rd.pool,
      judged?.metrics ?? null,
      winRateOf(state.fixedProbe, state.fixedProbeBase, judged),
    );
    const next: LoopState = { ...state, round, pool: rd.pool, evalSamples };
    let weights: ModelState | null = checkpointOf(model);
    let checkpointRound = round;
    const obs = guardObservation(config, round, m);
    if (config.guard && obs) {
      const d = guardCheck(state.best, obs, config.guardTolerance, config.guardZ);
      m.guard = d.tripped
        ? { tripped: true, reason: d.reason }
        : d.warning
          ? { tripped: false, warning: d.warning }
          : { tripped: false };
      if (d.tripped) {
        const to = state.best!.round;
        const restored = dir ? await dir.loadRound(to) : bestWeights;
        if (!restored) throw new Error(`internal: no weights of the best round ${to}`);
        restoreCheckpoint(model, restored);
        next.guardEvents = [...state.guardEvents, { round, reason: d.reason!, rolledBackTo: to }];
        next.stoppedEarly = true;
        weights = null;
        checkpointRound = to;
        ctx.emit({ type: 'guard', round, reason: d.reason!, rolledBackTo: to });
      } else {
        const snap = weights;
        noteBest(state.best, d.best, () => snap);
        next.best = d.best;
      }
    }
    metrics.push(m);
    await commit(next, checkpointRound, weights);
    state = next;
    ctx.emit({ type: 'round-end', round, metrics: m });
  }
  return { config, rounds: metrics, guardEvents: state.guardEvents, stoppedEarly: state.stoppedEarly };
}
