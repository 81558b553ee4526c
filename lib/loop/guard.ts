/**
 * The co-degradation guard (paper.md "Learning dynamics"): internal agreement is not correctness. Every
 * round the loop measures a few external accuracies (the watched signals) and the model's unification
 * (1 - Nonunified: the share of its own samples it accepts). When unification has really risen above the
 * best round's while a watched accuracy measured with it has really fallen more than `tolerance` below
 * the best round's value, the run stops and rolls back to the best round. The best round is the one with
 * the highest sum of the watched accuracies, acceptance precision included where both rounds have it
 * (ties: the earlier round).
 *
 * What the loop watches (lib/loop/run.ts `guardObservation`):
 * - `generationAccuracy`: external generation accuracy on the held-out probe prompts' fresh samples
 *   (the training prompts' samples when there is no probe set), with `unification` on the same samples;
 * - `understandingAccuracy`: the self-judgment's accuracy on a FIXED labelled set (built once at
 *   round 0, see `FixedProbeItem`), so it does not move when only the model's images change
 *   (config.guardUnderstanding 'own' restores the old own-sample accuracy);
 * - `trainGenerationAccuracy` (optional): external generation accuracy on the training prompts' fresh
 *   samples, with `trainUnification` on the same samples. Not a held-out evaluation (those prompts are
 *   trained on), but it sees corrupted training even when a small model's probe accuracy sits at its
 *   floor and cannot fall.
 * - `acceptancePrecision` / `trainAcceptancePrecision` (optional; config.guardPrecision, default true):
 *   the share of the SELF-ACCEPTED samples the external judge finds right (1 - the false-positive rate,
 *   over the accepted samples), on the same samples as `unification` / `trainUnification`. Co-degradation
 *   is "the model accepts more of its own images while fewer of those images are right", and "those
 *   images" are the accepted ones: a false positive is invisible to the Nonunified score (paper.md
 *   "Terms"), so agreement can rise while generation accuracy stays flat and only the accepted images get
 *   worse; only this signal sees that. Its fall is tested like the accuracies' (below), with n = the
 *   accepted samples. It is part of the best-round score (`score`), so the best round, and so the
 *   rollback target, is the most correct round by every external measure watched: with precision left
 *   out, a corrupted run's best round drifted to a later round whose generation was a little higher by
 *   noise and whose precision had already fallen, and the fall was then measured from there (world
 *   `clo --corrupt 0.5`: 1 of 3 runs stopped with it left out, 2 of 3 with it in; section "Guard:
 *   acceptance precision in the best-round score" of bench/results/world-experiments.md). The best
 *   round's precision is stored with it; when a saved best round from before this signal lacks it, the
 *   fall comparison is skipped and the score compares the accuracies alone.
 *
 * Decision rules (z = the guard's z, tolerance as given; both tests are one-sided Wilson bounds, so a
 * rise and a fall are held to the same standard of evidence):
 * - A FALL of a watched accuracy (acceptance precision included, its n = the accepted samples) counts
 *   only when even the upper end of the current rate's one-sided Wilson bound lies more than `tolerance`
 *   below the best round's value: upper_z(current) < best - tolerance.
 * - A RISE of unification counts only when even the lower end of the current unification's one-sided
 *   Wilson bound lies above the best round's value: lower_z(current) > best. (No tolerance: any real
 *   rise in agreement counts.) Unification is passed as a Rate (accepted / own samples); a plain number
 *   (the older API) carries no sample count and is compared plainly: current > best.
 * - An acceptance-precision fall counts only where generation accuracy on the same samples is not above
 *   the best round's value (point estimates; otherwise it is neither a trip nor a warning): co-degradation
 *   pushes both branches the wrong way (paper.md "Learning dynamics"); where the model's own samples are
 *   right more often than at the best round, a more lenient judge is not that (the fixed-set
 *   understanding accuracy watches the judge itself). On the toy model of tests/loop, clean runs accept
 *   more of their own images as they improve, and the right share among the accepted ones falls from
 *   near 100 %: the signal without this condition stopped 13 of 20 clean toy runs, with the condition
 *   held to the rise test's bound (lower_z(generation) > best) 5 of 20, with this one 1 of 20; all three
 *   stop the same 5 of the 84 world runs of bench/results/world-experiments.md and no clean one there
 *   (section "Guard: acceptance precision"; precision then outside the score). With precision in the
 *   score: 1 of 20 clean toy runs, 8 of the 60 corrupted world runs and none of the 24 clean ones.
 * - z = 0 makes both the plain comparisons (upper_0 = lower_0 = the rate itself).
 * - SAME SAMPLES: a generation accuracy or acceptance precision fall pairs only with a rise of
 *   unification on the same prompts' samples (probe generation and probe precision with probe
 *   unification, train-split generation and train-split precision with train-split unification).
 *   Co-degradation is "the model accepts more of its own images while fewer of those images are right";
 *   a rise on one prompt set and a fall on another is two separate observations, not that. An
 *   understanding-accuracy fall (the judge, scored on the fixed set whose items belong to neither set's
 *   current samples) pairs with a real rise on either set.
 * - A trip: some counted fall has a counted rise to pair with. A counted fall without one is a warning
 *   (plain degradation, reported, not stopped); the reason or warning names every counted rise and fall.
 */
import { wilson } from './metrics.js';
import type { BestRound } from './state.js';
import type { Rate } from './types.js';

export interface GuardObservation {
  round: number;
  generationAccuracy: Rate;
  understandingAccuracy: Rate;
  /**
   * 1 - Nonunified on the same samples as generationAccuracy: a Rate (accepted own samples / own
   * samples), so a rise can be bounded like a fall. A plain number (older API) is compared plainly.
   */
  unification: Rate | number;
  /** Optional third watched accuracy: external generation accuracy on the training prompts' samples. */
  trainGenerationAccuracy?: Rate;
  /** Optional: 1 - Nonunified on the training prompts' samples (same samples as trainGenerationAccuracy). */
  trainUnification?: Rate | number;
  /**
   * Optional: acceptance precision on the same samples as generationAccuracy and unification: externally
   * right among the self-accepted samples (count) over the self-accepted samples (total), i.e.
   * 1 - falsePositiveRate. Watched for a fall; part of the best-round score where both rounds have it.
   */
  acceptancePrecision?: Rate;
  /** Optional: acceptance precision on the training prompts' samples (same samples as trainUnification). */
  trainAcceptancePrecision?: Rate;
  /** Names used in the trip reason (defaults: 'generation accuracy', 'understanding accuracy', ...). */
  labels?: {
    generation?: string;
    understanding?: string;
    trainGeneration?: string;
    precision?: string;
    trainPrecision?: string;
  };
}

export interface GuardDecision {
  tripped: boolean;
  reason?: string;
  /**
   * A watched accuracy fell beyond the tolerance but unification did not rise on its samples: plain
   * degradation (the model does not accept more of its own images there), reported but not stopped.
   */
  warning?: string;
  /** The best round after this observation (unchanged when tripped). */
  best: BestRound;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function upper(r: Rate, z: number): number {
  return z > 0 ? wilson(r, z).high : r.value;
}

const valueOf = (u: Rate | number): number => (typeof u === 'number' ? u : u.value);

/** The lower end of the current unification's one-sided bound (the value itself at z 0 or without counts). */
function lower(u: Rate | number, z: number): number {
  return typeof u === 'number' || z <= 0 ? valueOf(u) : wilson(u, z).low;
}

type SignalKey =
  | 'generationAccuracy'
  | 'understandingAccuracy'
  | 'trainGenerationAccuracy'
  | 'acceptancePrecision'
  | 'trainAcceptancePrecision';
const PRECISION: ReadonlySet<SignalKey> = new Set(['acceptancePrecision', 'trainAcceptancePrecision']);
/** Which samples a signal and a unification are measured on ('any': the fixed set, pairs with either). */
type Samples = 'primary' | 'train' | 'any';

/** Each watched signal: its observation key, its key in `labels`, its default name, its samples. */
const SIGNALS: readonly [SignalKey, keyof NonNullable<GuardObservation['labels']>, string, Samples][] = [
  ['generationAccuracy', 'generation', 'generation accuracy', 'primary'],
  ['understandingAccuracy', 'understanding', 'understanding accuracy', 'any'],
  ['trainGenerationAccuracy', 'trainGeneration', 'train-split generation accuracy', 'train'],
  ['acceptancePrecision', 'precision', 'acceptance precision', 'primary'],
  ['trainAcceptancePrecision', 'trainPrecision', 'train-split acceptance precision', 'train'],
];

/** The watched accuracies of an observation (those it has), with the names the reason uses and their samples. */
function signals(obs: GuardObservation): { key: SignalKey; label: string; rate: Rate; on: Samples }[] {
  return SIGNALS.flatMap(([key, labelKey, name, on]) => {
    const rate = obs[key];
    return rate ? [{ key, label: obs.labels?.[labelKey] ?? name, rate, on }] : [];
  });
}

/**
 * A round's best-round score against another round: the sum of the watched external accuracies, plus
 * each acceptance precision that both rounds have (a saved best round from before the signal is
 * compared on the accuracies alone, so a missing field neither helps nor hurts; without precisions the
 * sum is exactly the score from before the signal). The higher score wins; ties keep the earlier round.
 */
function score(r: BestRound, other: BestRound): number {
  let s = r.generationAccuracy + r.understandingAccuracy + (r.trainGenerationAccuracy ?? 0);
  for (const k of PRECISION) if (r[k] !== undefined && other[k] !== undefined) s += r[k]!;
  return s;
}

/**
 * One round's decision (rules: the header comment). `best` is the best round so far (null at round 0),
 * `tolerance` the allowed fall in [0, 1], `z` the one-sided Wilson z of both tests (0: plain comparisons).
 */
export function guardCheck(best: BestRound | null, obs: GuardObservation, tolerance: number, z = 0): GuardDecision {
  const watched = signals(obs);
  const summary: BestRound = {
    round: obs.round,
    generationAccuracy: obs.generationAccuracy.value,
    understandingAccuracy: obs.understandingAccuracy.value,
    unification: valueOf(obs.unification),
  };
  if (obs.trainGenerationAccuracy) summary.trainGenerationAccuracy = obs.trainGenerationAccuracy.value;
  if (obs.trainUnification !== undefined) summary.trainUnification = valueOf(obs.trainUnification);
  // A precision over no accepted sample is undefined: not stored, so a later round is not compared with it.
  if (obs.acceptancePrecision && obs.acceptancePrecision.total > 0)
    summary.acceptancePrecision = obs.acceptancePrecision.value;
  if (obs.trainAcceptancePrecision && obs.trainAcceptancePrecision.total > 0)
    summary.trainAcceptancePrecision = obs.trainAcceptancePrecision.value;
  if (!best) return { tripped: false, best: summary };
  // A tiny epsilon so a drop of exactly `tolerance` (in binary floating point) does not trip.
  const eps = 1e-12;
  // Generation accuracy on these samples is above the best round's (point estimates): a precision fall
  // there is not counted (header, "Decision rules").
  const genAbove = (on: Samples): boolean => {
    const [g, was] =
      on === 'primary'
        ? [obs.generationAccuracy, best.generationAccuracy]
        : [obs.trainGenerationAccuracy, best.trainGenerationAccuracy];
    return g !== undefined && was !== undefined && g.value > was;
  };
  const falls = watched.filter((s) => {
    const was = best[s.key];
    if (was === undefined || was - upper(s.rate, z) <= tolerance + eps) return false;
    return !(PRECISION.has(s.key) && genAbove(s.on));
  });
  const bound = (u: Rate | number) => (z > 0 && typeof u !== 'number' ? ` (lower bound ${pct(lower(u, z))})` : '');
  const rises: { on: Samples; text: string }[] = [];
  if (lower(obs.unification, z) > best.unification)
    rises.push({
      on: 'primary',
      text: `unification rose ${pct(best.unification)} -> ${pct(valueOf(obs.unification))}${bound(obs.unification)}`,
    });
  if (
    obs.trainUnification !== undefined &&
    best.trainUnification !== undefined &&
    lower(obs.trainUnification, z) > best.trainUnification
  )
    rises.push({
      on: 'train',
      text: `train-split unification rose ${pct(best.trainUnification)} -> ${pct(valueOf(obs.trainUnification))}${bound(obs.trainUnification)}`,
    });
  const paired = (s: { on: Samples }) => rises.filter((r) => s.on === 'any' || r.on === s.on);
  const fellText = (s: (typeof watched)[number]) => `${s.label} fell ${pct(best[s.key]!)} -> ${pct(s.rate.value)}`;
  const coFalls = falls.filter((s) => paired(s).length > 0);
  if (coFalls.length) {
    const usedRises = rises.filter((r) => coFalls.some((s) => paired(s).includes(r)));
    return {
      tripped: true,
      reason:
        `co-degradation at round ${obs.round}: ${usedRises.map((r) => r.text).join(' and ')} ` +
        `while ${coFalls.map(fellText).join(' and ')} (tolerance ${pct(tolerance)}${z > 0 ? `, z ${z}` : ''}) vs best round ${best.round}`,
      best,
    };
  }
  const next = score(summary, best) > score(best, summary) ? summary : best;
  if (falls.length) {
    // Falls without a rise on their own samples; a rise elsewhere is named (not co-degradation).
    const elsewhere = rises.length ? `; on other prompts ${rises.map((r) => r.text).join(' and ')}` : '';
    return {
      tripped: false,
      warning:
        `degradation at round ${obs.round} without a rise in unification (not co-degradation; not stopped): ` +
        `${falls.map(fellText).join(' and ')} vs best round ${best.round}${elsewhere}`,
      best: next,
    };
  }
  return { tripped: false, best: next };
}
