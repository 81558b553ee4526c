/**
 * The co-degradation guard (paper.md "Learning dynamics"): internal agreement is not correctness. Every
 * round the loop measures a few external accuracies (the watched signals); when unification
 * (1 - Nonunified) has risen above the best round's while any watched accuracy has fallen more than
 * `tolerance` below the best round's value, the run stops and rolls back to the best round. The best
 * round is the one with the highest sum of the watched accuracies (ties: the earlier round).
 *
 * What the loop watches (lib/loop/run.ts `observe`):
 * - `generationAccuracy`: external generation accuracy on the held-out probe prompts' fresh samples;
 * - `understandingAccuracy`: the self-judgment's accuracy on a FIXED labelled set (built once at
 *   round 0, see `FixedProbeItem`), so it does not move when only the model's images change
 *   (config.guardUnderstanding 'own' restores the old own-sample accuracy);
 * - `trainGenerationAccuracy` (optional): external generation accuracy on the training prompts' fresh
 *   samples. Not a held-out evaluation (those prompts are trained on), but it sees corrupted training
 *   even when a small model's probe accuracy sits at its floor and cannot fall.
 * Unification "rises" when it rises on the probe samples (`unification`) or on the training samples
 * (`trainUnification`, optional).
 *
 * Probe sets are small and rates over them noisy (paper.md "pitfalls"), so with z > 0 a fall counts only
 * when even the upper end of the current rate's one-sided Wilson bound lies more than `tolerance` below
 * the best round's value: upper_z(current) < best - tolerance. z = 0 is the plain comparison.
 */
import { wilson } from './metrics.js';
import type { BestRound } from './state.js';
import type { Rate } from './types.js';

export interface GuardObservation {
  round: number;
  generationAccuracy: Rate;
  understandingAccuracy: Rate;
  /** 1 - Nonunified on the same samples as generationAccuracy. */
  unification: number;
  /** Optional third watched accuracy: external generation accuracy on the training prompts' samples. */
  trainGenerationAccuracy?: Rate;
  /** Optional: 1 - Nonunified on the training prompts' samples (a rise here counts too). */
  trainUnification?: number;
  /** Names used in the trip reason (defaults: 'generation accuracy', 'understanding accuracy'). */
  labels?: { generation?: string; understanding?: string; trainGeneration?: string };
}

export interface GuardDecision {
  tripped: boolean;
  reason?: string;
  /**
   * A watched accuracy fell beyond the tolerance but unification did not rise: plain degradation (the
   * model also rejects more of its own images), reported but not stopped.
   */
  warning?: string;
  /** The best round after this observation (unchanged when tripped). */
  best: BestRound;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function upper(r: Rate, z: number): number {
  return z > 0 ? wilson(r, z).high : r.value;
}

type SignalKey = 'generationAccuracy' | 'understandingAccuracy' | 'trainGenerationAccuracy';

/** The watched accuracies of an observation, with the names the reason uses. */
function signals(obs: GuardObservation): { key: SignalKey; label: string; rate: Rate }[] {
  const out: { key: SignalKey; label: string; rate: Rate }[] = [
    { key: 'generationAccuracy', label: obs.labels?.generation ?? 'generation accuracy', rate: obs.generationAccuracy },
    {
      key: 'understandingAccuracy',
      label: obs.labels?.understanding ?? 'understanding accuracy',
      rate: obs.understandingAccuracy,
    },
  ];
  if (obs.trainGenerationAccuracy)
    out.push({
      key: 'trainGenerationAccuracy',
      label: obs.labels?.trainGeneration ?? 'train-split generation accuracy',
      rate: obs.trainGenerationAccuracy,
    });
  return out;
}

function score(b: BestRound): number {
  return b.generationAccuracy + b.understandingAccuracy + (b.trainGenerationAccuracy ?? 0);
}

export function guardCheck(best: BestRound | null, obs: GuardObservation, tolerance: number, z = 0): GuardDecision {
  const watched = signals(obs);
  const summary: BestRound = {
    round: obs.round,
    generationAccuracy: obs.generationAccuracy.value,
    understandingAccuracy: obs.understandingAccuracy.value,
    unification: obs.unification,
  };
  if (obs.trainGenerationAccuracy) summary.trainGenerationAccuracy = obs.trainGenerationAccuracy.value;
  if (obs.trainUnification !== undefined) summary.trainUnification = obs.trainUnification;
  if (!best) return { tripped: false, best: summary };
  // A tiny epsilon so a drop of exactly `tolerance` (in binary floating point) does not trip.
  const eps = 1e-12;
  const falls = watched.filter((s) => {
    const was = best[s.key];
    return was !== undefined && was - upper(s.rate, z) > tolerance + eps;
  });
  const rises: string[] = [];
  if (obs.unification > best.unification)
    rises.push(`unification rose ${pct(best.unification)} -> ${pct(obs.unification)}`);
  if (
    obs.trainUnification !== undefined &&
    best.trainUnification !== undefined &&
    obs.trainUnification > best.trainUnification
  )
    rises.push(`train-split unification rose ${pct(best.trainUnification)} -> ${pct(obs.trainUnification)}`);
  if (rises.length && falls.length) {
    const fell = falls.map((s) => `${s.label} fell ${pct(best[s.key]!)} -> ${pct(s.rate.value)}`);
    return {
      tripped: true,
      reason:
        `co-degradation at round ${obs.round}: ${rises.join(' and ')} ` +
        `while ${fell.join(' and ')} (tolerance ${pct(tolerance)}${z > 0 ? `, z ${z}` : ''}) vs best round ${best.round}`,
      best,
    };
  }
  const next = score(summary) > score(best) ? summary : best;
  if (falls.length)
    return {
      tripped: false,
      warning:
        `degradation at round ${obs.round} without a rise in unification (not co-degradation; not stopped): ` +
        `${falls.map((s) => `${s.label} fell ${pct(best[s.key]!)} -> ${pct(s.rate.value)}`).join(' and ')} vs best round ${best.round}`,
      best: next,
    };
  return { tripped: false, best: next };
}
