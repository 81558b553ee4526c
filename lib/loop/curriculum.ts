/**
 * Which judged samples each strategy trains on, round by round (paper.md "Curriculum").
 *
 * - sft / dpo: the paper's recipe: the data set is built once from the base model's own samples
 *   (round 0) and trained on for every round; prompts with no accepted sample go to the discard pool.
 * - c-sft / c-dpo (v2 Curriculum Replay): the same, plus from `triggerRound` on, each round the current
 *   model's fresh samples of every discard-pool prompt are re-judged; a prompt with >= 1 accepted image
 *   joins the training set (with those samples) and leaves the pool.
 * - clo (v1 curriculum-based online): prompts ranked by the model's own pass rate; the pool starts with
 *   the easiest `cloStartFraction`, grows by `cloGrowth` of all prompts (the easiest of the rest, by
 *   current pass rate) whenever the pool's pass rate reaches `cloThreshold`, and is re-sampled online
 *   every round (trains on the current model's fresh samples of the pool, SFT loss).
 *
 * "Fresh samples" are the previous round's evaluation samples: they come from the current weights
 * (nothing trains in between), so the loop samples every prompt once per round.
 * Corruption (config.corrupt, config.corruptMode) is applied to the judgments that enter training, seeded
 * by (seed, round).
 */
import { corruptJudgments } from './data.js';
import { passRates } from './metrics.js';
import type { LoopConfig, PromptSamples } from './types.js';

export interface PoolState {
  /** sft/dpo/c-*: the frozen training samples (as judged, and corrupted, when the prompt entered training). */
  frozen: PromptSamples[];
  /** sft/dpo/c-*: ids of the discard pool B (no accepted sample). */
  discard: string[];
  /** clo: ids admitted to the pool, in admission order. */
  active: string[];
}

export interface RoundData {
  /** The judged samples this round trains on. */
  data: PromptSamples[];
  pool: PoolState;
  /** c-*: prompts that left the discard pool this round; clo: prompts admitted this round. */
  joined: string[];
}

type CurriculumConfig = Pick<
  LoopConfig,
  'strategy' | 'corrupt' | 'corruptMode' | 'seed' | 'triggerRound' | 'cloStartFraction' | 'cloThreshold' | 'cloGrowth'
>;

/** Rank prompt ids easiest first: by pass rate, descending; ties keep the input order. */
export function rankByPassRate(evalSamples: readonly PromptSamples[], ids?: readonly string[]): string[] {
  const rates = passRates(evalSamples);
  const order = new Map(evalSamples.map((d, i) => [d.prompt.id, i]));
  const list = ids ? [...ids] : evalSamples.map((d) => d.prompt.id);
  return list.sort((a, b) => rates.get(b)! - rates.get(a)! || order.get(a)! - order.get(b)!);
}

/** The pool after the baseline (round 0) evaluation of every training prompt. */
export function initPool(config: CurriculumConfig, baseline: readonly PromptSamples[]): PoolState {
  if (config.strategy === 'clo') {
    const k = Math.max(1, Math.ceil(config.cloStartFraction * baseline.length - 1e-9));
    return { frozen: [], discard: [], active: rankByPassRate(baseline).slice(0, k) };
  }
  const judged = corruptJudgments(baseline, config.corrupt, config.seed, 0, config.corruptMode);
  const frozen = judged.filter((d) => d.samples.some((s) => s.judgment.accept));
  const discard = judged.filter((d) => !d.samples.some((s) => s.judgment.accept)).map((d) => d.prompt.id);
  return { frozen, discard, active: [] };
}

/**
 * The training data of round `round` (>= 1), given the pool and the previous round's evaluation
 * samples of every training prompt (from the current weights). Returns the updated pool.
 */
export function roundData(
  config: CurriculumConfig,
  pool: PoolState,
  round: number,
  previous: readonly PromptSamples[],
): RoundData {
  const byId = new Map(previous.map((d) => [d.prompt.id, d]));
  if (config.strategy === 'clo') {
    const total = previous.length;
    const active = [...pool.active];
    const joined: string[] = [];
    const inPool = active.map((id) => byId.get(id)!);
    let acc = 0;
    let n = 0;
    for (const d of inPool)
      for (const s of d.samples) {
        n++;
        if (s.judgment.accept) acc++;
      }
    if (active.length < total && n > 0 && acc / n >= config.cloThreshold) {
      const admitted = new Set(active);
      const rest = previous.filter((d) => !admitted.has(d.prompt.id)).map((d) => d.prompt.id);
      const grow = Math.max(1, Math.ceil(config.cloGrowth * total - 1e-9));
      for (const id of rankByPassRate(previous, rest).slice(0, grow)) {
        active.push(id);
        joined.push(id);
      }
    }
    const data = corruptJudgments(
      active.map((id) => byId.get(id)!),
      config.corrupt,
      config.seed,
      round,
      config.corruptMode,
    );
    return { data, pool: { frozen: [], discard: [], active }, joined };
  }
  let frozen = pool.frozen;
  let discard = pool.discard;
  const joined: string[] = [];
  if ((config.strategy === 'c-sft' || config.strategy === 'c-dpo') && round >= config.triggerRound && discard.length) {
    const rejudged = corruptJudgments(
      discard.map((id) => byId.get(id)!),
      config.corrupt,
      config.seed,
      round,
      config.corruptMode,
    );
    const newcomers = rejudged.filter((d) => d.samples.some((s) => s.judgment.accept));
    if (newcomers.length) {
      for (const d of newcomers) joined.push(d.prompt.id);
      const j = new Set(joined);
      frozen = [...frozen, ...newcomers];
      discard = discard.filter((id) => !j.has(id));
    }
  }
  return { data: frozen, pool: { frozen, discard, active: [] }, joined };
}
