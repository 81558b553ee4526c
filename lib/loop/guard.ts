/**
 * The co-degradation guard (paper.md "Learning dynamics"): internal agreement is not correctness. Every
 * round the probe set is judged externally; when unification (1 - Nonunified) has risen above the best
 * round's while external generation or understanding accuracy has fallen more than `tolerance` below
 * it, the run stops and rolls back to the best round. The best round is the one with the highest mean
 * of external generation and understanding accuracy (ties: the earlier round).
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
  /** 1 - Nonunified on the same samples. */
  unification: number;
}

export interface GuardDecision {
  tripped: boolean;
  reason?: string;
  /** The best round after this observation (unchanged when tripped). */
  best: BestRound;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function upper(r: Rate, z: number): number {
  return z > 0 ? wilson(r, z).high : r.value;
}

export function guardCheck(best: BestRound | null, obs: GuardObservation, tolerance: number, z = 0): GuardDecision {
  const summary: BestRound = {
    round: obs.round,
    generationAccuracy: obs.generationAccuracy.value,
    understandingAccuracy: obs.understandingAccuracy.value,
    unification: obs.unification,
  };
  if (!best) return { tripped: false, best: summary };
  // A tiny epsilon so a drop of exactly `tolerance` (in binary floating point) does not trip.
  const eps = 1e-12;
  const genFell = best.generationAccuracy - upper(obs.generationAccuracy, z) > tolerance + eps;
  const undFell = best.understandingAccuracy - upper(obs.understandingAccuracy, z) > tolerance + eps;
  if (obs.unification > best.unification && (genFell || undFell)) {
    const falls: string[] = [];
    if (genFell)
      falls.push(`generation accuracy fell ${pct(best.generationAccuracy)} -> ${pct(summary.generationAccuracy)}`);
    if (undFell)
      falls.push(
        `understanding accuracy fell ${pct(best.understandingAccuracy)} -> ${pct(summary.understandingAccuracy)}`,
      );
    return {
      tripped: true,
      reason:
        `co-degradation at round ${obs.round}: unification rose ${pct(best.unification)} -> ${pct(obs.unification)} ` +
        `while ${falls.join(' and ')} (tolerance ${pct(tolerance)}${z > 0 ? `, z ${z}` : ''}) vs best round ${best.round}`,
      best,
    };
  }
  const score = (b: { generationAccuracy: number; understandingAccuracy: number }) =>
    b.generationAccuracy + b.understandingAccuracy;
  return { tripped: false, best: score(summary) > score(best) ? summary : best };
}
