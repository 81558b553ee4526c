/**
 * Round metrics (paper.md "Terms"): the Nonunified score, the accept rate and, with an external judge,
 * generation / understanding accuracy, the false-positive rate and the blame split of self-rejections.
 * Every rate carries its counts ({value, count, total}) so it can carry an interval (see `wilson`).
 */
import type { PromptSamples, Rate } from './types.js';

/** A rate from its counts; value is 0 (not NaN, so it survives JSON) when total is 0. */
export function rate(count: number, total: number): Rate {
  return { value: total > 0 ? count / total : 0, count, total };
}

/**
 * Wilson score interval for a binomial rate (z = 1.96: 95 %). Unlike the normal approximation it stays
 * inside [0, 1] and is sensible for the tiny denominators of win rates over disagreements.
 * With total 0 the interval is the whole [0, 1].
 */
export function wilson(r: Pick<Rate, 'count' | 'total'>, z = 1.96): { low: number; high: number } {
  const n = r.total;
  if (n <= 0) return { low: 0, high: 1 };
  const p = r.count / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** Share of the model's own samples its understanding branch rejects, overall and per category. */
export function nonunifiedScore(data: readonly PromptSamples[]): Rate & { perCategory: Record<string, Rate> } {
  let rejected = 0;
  let total = 0;
  const cat = new Map<string, [number, number]>();
  for (const { prompt, samples } of data) {
    const c = cat.get(prompt.category) ?? [0, 0];
    for (const s of samples) {
      total++;
      c[1]++;
      if (!s.judgment.accept) {
        rejected++;
        c[0]++;
      }
    }
    cat.set(prompt.category, c);
  }
  const perCategory: Record<string, Rate> = {};
  for (const k of [...cat.keys()].sort()) perCategory[k] = rate(cat.get(k)![0], cat.get(k)![1]);
  return { ...rate(rejected, total), perCategory };
}

/** Share of the model's own samples its understanding branch accepts (1 - Nonunified). */
export function acceptRate(data: readonly PromptSamples[]): Rate {
  let acc = 0;
  let total = 0;
  for (const { samples } of data)
    for (const s of samples) {
      total++;
      if (s.judgment.accept) acc++;
    }
  return rate(acc, total);
}

export interface ExternalMetrics {
  /** Share of samples the external judge says are right. */
  generationAccuracy: Rate;
  /** Share of samples whose self-judgment agrees with the external verdict. */
  understandingAccuracy: Rate;
  /** Self-accepted but externally wrong, over self-accepted (invisible to the Nonunified score). */
  falsePositiveRate: Rate;
  /** Self-rejections split: external agrees the image is wrong (weak generation) or says it is right (weak understanding). */
  blame: { weakGeneration: Rate; weakUnderstanding: Rate };
}

/**
 * Metrics against the external verdicts (`sample.external`). Throws a TypeError when a sample has no
 * external verdict: mixing judged and unjudged samples would bias every rate.
 */
export function externalMetrics(data: readonly PromptSamples[]): ExternalMetrics {
  let total = 0;
  let right = 0;
  let agree = 0;
  let accepted = 0;
  let acceptedWrong = 0;
  let rejected = 0;
  let rejectedWrong = 0;
  for (const { prompt, samples } of data)
    for (const s of samples) {
      if (typeof s.external !== 'boolean')
        throw new TypeError(`externalMetrics: a sample of prompt '${prompt.id}' has no external verdict`);
      total++;
      if (s.external) right++;
      if (s.external === s.judgment.accept) agree++;
      if (s.judgment.accept) {
        accepted++;
        if (!s.external) acceptedWrong++;
      } else {
        rejected++;
        if (!s.external) rejectedWrong++;
      }
    }
  return {
    generationAccuracy: rate(right, total),
    understandingAccuracy: rate(agree, total),
    falsePositiveRate: rate(acceptedWrong, accepted),
    blame: {
      weakGeneration: rate(rejectedWrong, rejected),
      weakUnderstanding: rate(rejected - rejectedWrong, rejected),
    },
  };
}

/** Per-prompt self pass rate (accepted / sampled), keyed by prompt id. */
export function passRates(data: readonly PromptSamples[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { prompt, samples } of data)
    out.set(prompt.id, samples.length ? samples.filter((s) => s.judgment.accept).length / samples.length : 0);
  return out;
}

/**
 * The paper's understanding win rate (paper.md "Results": Und win-rate) on a fixed labelled set: over the
 * items whose current self-judgment (accept / reject) differs from the base (round-0) self-judgment, the
 * share on which the current judgment agrees with the external label. Computed only over disagreements,
 * so denominators are small (paper.md "Practical pitfalls"): read it with its Wilson interval.
 * With no disagreements (round 0 always) the value is 0.5 with count 0 / total 0: 50 % by construction,
 * as the paper's base model. `base`, `current` and `labels` are aligned item by item.
 */
export function understandingWinRate(
  base: readonly boolean[],
  current: readonly boolean[],
  labels: readonly boolean[],
): Rate {
  if (base.length !== current.length || base.length !== labels.length)
    throw new RangeError(
      `understandingWinRate: base (${base.length}), current (${current.length}) and labels (${labels.length}) must have the same length`,
    );
  let wins = 0;
  let total = 0;
  for (let i = 0; i < base.length; i++) {
    if (current[i] === base[i]) continue;
    total++;
    if (current[i] === labels[i]) wins++;
  }
  return total > 0 ? rate(wins, total) : { value: 0.5, count: 0, total: 0 };
}
