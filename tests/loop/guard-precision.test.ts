/**
 * The guard's acceptance-precision signal (lib/loop/guard.ts, "What the loop watches"): the share of the
 * self-accepted samples the external judge finds right. A real fall of it pairs only with a real rise of
 * unification on the same samples; it counts in the best-round score where both rounds have it; a saved
 * best round without it skips the comparison; config.guardPrecision false restores the decisions from before it existed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ConfigMismatchError } from '../../lib/loop/errors.js';
import { guardCheck, type GuardObservation } from '../../lib/loop/guard.js';
import { rate, wilson } from '../../lib/loop/metrics.js';
import { guardObservation, runSelfImprovement } from '../../lib/loop/run.js';
import { seal, unseal, type BestRound } from '../../lib/loop/state.js';
import type { LoopConfig, LoopEvent, RoundMetrics } from '../../lib/loop/types.js';
import { cleanTempDirs, opts, tempDir } from './fixtures.js';
import { ToyModel, type ToyOptions } from './toy.js';

afterAll(cleanTempDirs);

const Z = 1.645;
const TOL = 0.05;

// World-like figures (v3 clo --corrupt 0.5 adversarial, bench/results/world-experiments.md): 240 probe
// samples, 480 train samples; own false-positive rate about 55 %, i.e. acceptance precision about 45 %.
const best: BestRound = {
  round: 0,
  generationAccuracy: 19 / 240,
  understandingAccuracy: 0.675,
  unification: 0.279,
  trainGenerationAccuracy: 0.24,
  trainUnification: 0.512,
  acceptancePrecision: 0.452,
  trainAcceptancePrecision: 0.447,
};
const labels = {
  generation: 'probe generation accuracy',
  understanding: 'fixed-set understanding accuracy',
  trainGeneration: 'train-split generation accuracy',
  precision: 'probe acceptance precision',
  trainPrecision: 'train-split acceptance precision',
};
/** Round 3, nothing moved: every signal at the best round's value. */
const obs = (o: Partial<GuardObservation> = {}): GuardObservation => ({
  round: 3,
  generationAccuracy: rate(19, 240),
  understandingAccuracy: rate(486, 720),
  unification: rate(67, 240),
  trainGenerationAccuracy: rate(115, 480),
  trainUnification: rate(246, 480),
  acceptancePrecision: rate(30, 67),
  trainAcceptancePrecision: rate(110, 246),
  labels,
  ...o,
});
// A real rise of train-split unification (51.2 % -> 62.7 % of 480) with a real fall of precision on the
// same samples (44.7 % -> 33.2 % of the 301 accepted; upper bound 37.8 % < 44.7 % - 5 %), generation flat.
const trainCoDegradation = {
  trainUnification: rate(301, 480),
  trainAcceptancePrecision: rate(100, 301),
  trainGenerationAccuracy: rate(113, 480),
};
// The same on the probe samples: 27.9 % -> 45.0 % of 240; precision 45.2 % -> 27.8 % of the 108 accepted.
const probeCoDegradation = { unification: rate(108, 240), acceptancePrecision: rate(30, 108) };

describe('guard: acceptance precision', () => {
  it('nothing moved: no trip, no warning, the best round stays', () => {
    const d = guardCheck(best, obs(), TOL, Z);
    expect(d).toEqual({ tripped: false, best });
  });

  it('a precision fall with a real unification rise on the same samples trips, and the reason names it', () => {
    expect(wilson(rate(100, 301), Z).high).toBeLessThan(0.447 - TOL);
    const t = guardCheck(best, obs(trainCoDegradation), TOL, Z);
    expect(t.tripped).toBe(true);
    expect(t.best).toBe(best);
    expect(t.reason).toMatch(
      /^co-degradation at round 3: train-split unification rose 51\.2% -> 62\.7% \(lower bound 5\d\.\d%\) while train-split acceptance precision fell 44\.7% -> 33\.2% \(tolerance 5\.0%, z 1\.645\) vs best round 0$/,
    );
    const p = guardCheck(best, obs(probeCoDegradation), TOL, Z);
    expect(p.tripped).toBe(true);
    expect(p.reason).toMatch(
      /^co-degradation at round 3: unification rose 27\.9% -> 45\.0% \(lower bound \d+\.\d%\) while probe acceptance precision fell 45\.2% -> 27\.8% \(tolerance 5\.0%, z 1\.645\) vs best round 0$/,
    );
    // Without a label the default names it.
    expect(guardCheck(best, obs({ ...probeCoDegradation, labels: undefined }), TOL, Z).reason).toMatch(
      / while acceptance precision fell 45\.2% -> 27\.8% /,
    );
  });

  it('a precision fall with a rise on the other split only is a warning, not a trip', () => {
    // Probe precision falls (probe unification flat); train-split unification rises, its precision flat.
    const a = guardCheck(
      best,
      obs({
        acceptancePrecision: rate(12, 67),
        trainUnification: rate(301, 480),
        trainAcceptancePrecision: rate(135, 301),
      }),
      TOL,
      Z,
    );
    expect(a.tripped).toBe(false);
    expect(a.warning).toMatch(
      /^degradation at round 3 without a rise in unification \(not co-degradation; not stopped\): probe acceptance precision fell 45\.2% -> 17\.9% vs best round 0; on other prompts train-split unification rose 51\.2% -> 62\.7% \(lower bound .*\)$/,
    );
    // Train-split precision falls (train unification flat); probe unification rises, its precision flat.
    const b = guardCheck(
      best,
      obs({ trainAcceptancePrecision: rate(60, 246), unification: rate(108, 240), acceptancePrecision: rate(49, 108) }),
      TOL,
      Z,
    );
    expect(b.tripped).toBe(false);
    expect(b.warning).toMatch(
      /: train-split acceptance precision fell 44\.7% -> 24\.4% vs best round 0; on other prompts unification rose 27\.9% -> 45\.0%/,
    );
    // A fall with no rise anywhere: a warning as well (plain degradation).
    const c = guardCheck(best, obs({ trainAcceptancePrecision: rate(60, 246) }), TOL, Z);
    expect(c.tripped).toBe(false);
    expect(c.warning).toMatch(/train-split acceptance precision fell 44\.7% -> 24\.4% vs best round 0$/);
  });

  it('a precision fall within its Wilson bound (few accepted samples) does not count', () => {
    // 12 of 24 probe samples accepted: a real rise (lower bound above 27.9 %); 4 of those 12 right: 33.3 %,
    // 11.9 points under the best round's 45.2 %, but the upper bound (~58 %) is not 5 points under it.
    const o = obs({ unification: rate(12, 24), acceptancePrecision: rate(4, 12), generationAccuracy: rate(1, 24) });
    expect(wilson(rate(12, 24), Z).low).toBeGreaterThan(best.unification);
    expect(wilson(rate(4, 12), Z).high).toBeGreaterThan(0.452 - TOL);
    const d = guardCheck(best, o, TOL, Z);
    expect(d.tripped).toBe(false);
    expect(d.warning).toBeUndefined();
    // z = 0 (plain comparisons) counts it: the bound is what keeps it out.
    expect(guardCheck(best, o, TOL, 0).reason).toMatch(/while probe acceptance precision fell 45\.2% -> 33\.3%/);
  });

  it('a precision fall where generation on the same samples is above the best round does not count', () => {
    // The same-sample co-degradation of the train split, but 125 of 480 right (26.0 % > 24.0 %): the model's
    // own samples are right more often; its judge only got more lenient. Neither a trip nor a warning.
    const up = obs({ ...trainCoDegradation, trainGenerationAccuracy: rate(125, 480) });
    const d = guardCheck(best, up, TOL, Z);
    expect(d.tripped).toBe(false);
    expect(d.warning).toBeUndefined();
    // At the best round's value exactly it counts (not above).
    const at = { ...best, trainGenerationAccuracy: 120 / 480 };
    expect(
      guardCheck(at, obs({ ...trainCoDegradation, trainGenerationAccuracy: rate(120, 480) }), TOL, Z).tripped,
    ).toBe(true);
    // Probe: 25 of 240 right (10.4 % > 7.9 %): not counted; the train split's own fall still is.
    const probe = obs({ ...probeCoDegradation, generationAccuracy: rate(25, 240) });
    expect(guardCheck(best, probe, TOL, Z).tripped).toBe(false);
    // Only the signal on the samples whose generation rose is excused.
    const both = guardCheck(
      best,
      obs({ ...probeCoDegradation, ...trainCoDegradation, generationAccuracy: rate(25, 240) }),
      TOL,
      Z,
    );
    expect(both.reason).toMatch(/train-split acceptance precision fell/);
    expect(both.reason).not.toMatch(/probe acceptance precision/);
  });

  it('an accepted-nothing round has no precision: not stored as the best, never a fall', () => {
    const none = obs({ unification: rate(0, 240), acceptancePrecision: rate(0, 0) });
    expect(guardCheck(null, none, TOL, Z).best).not.toHaveProperty('acceptancePrecision');
    expect(guardCheck(best, none, TOL, Z).warning).toBeUndefined();
  });

  it('is part of the best-round score where both rounds have it: the rollback target is the most correct round', () => {
    // Higher precision, same accuracies: a better round (it stores its own precision).
    const higher = guardCheck(
      best,
      obs({ acceptancePrecision: rate(60, 67), trainAcceptancePrecision: rate(240, 246) }),
      TOL,
      Z,
    );
    expect(higher.tripped).toBe(false);
    expect(higher.best.round).toBe(3);
    expect(higher.best.acceptancePrecision).toBeCloseTo(60 / 67, 12);
    // A higher accuracy (fixed-set understanding +0.5 point) bought with a precision fall of 20 points and
    // no unification rise: a warning, and the old round stays the best.
    const worse = guardCheck(
      best,
      obs({ understandingAccuracy: rate(490, 720), trainAcceptancePrecision: rate(60, 246) }),
      TOL,
      Z,
    );
    expect(worse.tripped).toBe(false);
    expect(worse.warning).toMatch(/train-split acceptance precision fell/);
    expect(worse.best).toBe(best);
    // The same accuracy gain with precision about the same (probe +1.1, train +0.0 points): the new round is the best.
    const better = guardCheck(
      best,
      obs({ understandingAccuracy: rate(490, 720), acceptancePrecision: rate(31, 67) }),
      TOL,
      Z,
    );
    expect(better.best.round).toBe(3);
    // Equal scores keep the earlier round.
    const tie = guardCheck(
      best,
      {
        ...obs(),
        trainGenerationAccuracy: rate(24, 100),
        acceptancePrecision: rate(452, 1000),
        trainAcceptancePrecision: rate(447, 1000),
      },
      TOL,
      Z,
    );
    expect(tie.best.round).toBe(0);
  });

  it('a saved best round without precision is compared on the accuracies alone (a missing field neither helps nor hurts)', () => {
    const { acceptancePrecision: _a, trainAcceptancePrecision: _b, ...old } = best;
    // Same accuracies, any precision: not better than the old best.
    expect(guardCheck(old, obs({ acceptancePrecision: rate(67, 67) }), TOL, Z).best).toBe(old);
    // A higher accuracy: better, whatever its precision.
    expect(
      guardCheck(old, obs({ understandingAccuracy: rate(490, 720), acceptancePrecision: rate(1, 67) }), TOL, Z).best
        .round,
    ).toBe(3);
  });

  it('a saved best round from before the signal (no precision fields) skips the comparison', () => {
    const { acceptancePrecision: _a, trainAcceptancePrecision: _b, ...old } = best;
    // The fall alone (no rise): against the old best it is not even a warning.
    const fallOnly = obs({ trainAcceptancePrecision: rate(60, 246), acceptancePrecision: rate(12, 67) });
    expect(() => guardCheck(old, fallOnly, TOL, Z)).not.toThrow();
    const d = guardCheck(old, fallOnly, TOL, Z);
    expect(d).toEqual({ tripped: false, best: old });
    // With a rise on the same samples: no trip through precision either.
    expect(guardCheck(old, obs(trainCoDegradation), TOL, Z).tripped).toBe(false);
    // The next best round stores it, and from then on it is compared.
    const next = guardCheck(old, obs({ trainGenerationAccuracy: rate(130, 480) }), TOL, Z).best;
    expect(next.round).toBe(3);
    expect(next.trainAcceptancePrecision).toBeCloseTo(110 / 246, 12);
    expect(
      guardCheck(next, { ...obs(trainCoDegradation), round: 4, trainGenerationAccuracy: rate(125, 480) }, TOL, Z)
        .tripped,
    ).toBe(true);
  });
});

describe('guard: acceptance precision in the loop', () => {
  const metrics = (round: number): RoundMetrics => ({
    round,
    strategy: 'sft',
    nonunified: { ...rate(179, 480), perCategory: {} },
    acceptRate: rate(301, 480),
    external: {
      generationAccuracy: rate(113, 480),
      understandingAccuracy: rate(300, 480),
      falsePositiveRate: rate(201, 301),
      blame: { weakGeneration: rate(0, 0), weakUnderstanding: rate(0, 0) },
    },
    probe: {
      generationAccuracy: rate(19, 240),
      understandingAccuracy: rate(150, 240),
      nonunified: rate(132, 240),
      falsePositiveRate: rate(78, 108),
    },
    fixedProbe: {
      understandingAccuracy: rate(486, 720),
      falsePositiveRate: rate(0, 0),
      falseNegativeRate: rate(0, 0),
      items: { model: 240, supplied: 480 },
    },
    train: { sftExamples: 0, dpoPairs: 0, meanLoss: 0, trainingPrompts: 0, discardPool: 0 },
  });
  const config = (c: Partial<LoopConfig> = {}) =>
    ({ guardUnderstanding: 'fixed', guardTrainGeneration: true, guardPrecision: true, ...c }) as LoopConfig;

  it('watches 1 - falsePositiveRate on the same samples as each unification, with its accepted count', () => {
    const o = guardObservation(config(), 2, metrics(2))!;
    expect(o.acceptancePrecision).toEqual({ value: 1 - 78 / 108, count: 30, total: 108 });
    expect(o.unification).toEqual({ value: 1 - 132 / 240, count: 108, total: 240 });
    expect(o.trainAcceptancePrecision).toEqual({ value: 1 - 201 / 301, count: 100, total: 301 });
    expect(o.trainUnification).toEqual({ value: 1 - 179 / 480, count: 301, total: 480 });
    expect(o.labels?.precision).toBe('probe acceptance precision');
    // Train precision only with the train-split signals.
    expect(guardObservation(config({ guardTrainGeneration: false }), 2, metrics(2))).not.toHaveProperty(
      'trainAcceptancePrecision',
    );
    // Without a probe set: the train samples are the primary ones.
    const { probe: _p, ...noProbe } = metrics(2);
    const t = guardObservation(config(), 2, noProbe)!;
    expect(t.acceptancePrecision).toEqual({ value: 1 - 201 / 301, count: 100, total: 301 });
    expect(t.labels?.precision).toBe('train-split acceptance precision');
    // Probe metrics written before the probe false-positive rate was recorded: no probe precision.
    const { falsePositiveRate: _f, ...oldProbe } = metrics(2).probe!;
    expect(guardObservation(config(), 2, { ...metrics(2), probe: oldProbe })).not.toHaveProperty('acceptancePrecision');
  });

  it('guardPrecision false: no precision in the observation', () => {
    const o = guardObservation(config({ guardPrecision: false }), 2, metrics(2))!;
    expect(o).not.toHaveProperty('acceptancePrecision');
    expect(o).not.toHaveProperty('trainAcceptancePrecision');
  });

  // Recorded on the toy model at 4488be2 (before the signal): every round's guard field and the guard events.
  it('guardPrecision false restores the decisions from before the signal exactly', async () => {
    const recorded = JSON.parse(await readFile(join(import.meta.dirname, 'guard-before-precision.json'), 'utf8')) as {
      name: string;
      config: Partial<LoopConfig>;
      toy: Partial<ToyOptions>;
      guard: unknown[];
      guardEvents: unknown[];
    }[];
    expect(recorded.length).toBeGreaterThan(4);
    for (const c of recorded) {
      const r = await runSelfImprovement(opts({ ...c.config, guardPrecision: false }, { model: new ToyModel(c.toy) }));
      expect({ name: c.name, guard: r.rounds.map((m) => m.guard) }).toEqual({ name: c.name, guard: c.guard });
      expect(r.guardEvents).toEqual(c.guardEvents);
    }
  });
});

describe('guard: acceptance precision and saved runs', () => {
  async function stopAfterRound(config: Partial<LoopConfig>, dir: string, round: number): Promise<void> {
    class Stop extends Error {}
    await expect(
      runSelfImprovement(
        opts(config, {
          runDir: dir,
          onEvent: (e: LoopEvent) => {
            if (e.type === 'round-end' && e.round === round) throw new Stop('stop');
          },
        }),
      ),
    ).rejects.toThrow(Stop);
  }

  it('an old run directory (config without guardPrecision, best round without precision) resumes', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 4 };
    const ref = await runSelfImprovement(opts(config));
    const dir = await tempDir();
    await stopAfterRound(config, dir, 1);
    // Make it look like a run directory written before the signal existed.
    const cpath = join(dir, 'config.json');
    const saved = JSON.parse(await readFile(cpath, 'utf8')) as { config: Record<string, unknown> };
    expect(saved.config.guardPrecision).toBe(true);
    delete saved.config.guardPrecision;
    await writeFile(cpath, JSON.stringify(saved, null, 2) + '\n');
    const spath = join(dir, 'state.json');
    const rec = unseal<{ bestRound: Record<string, unknown> }>(spath, await readFile(spath, 'utf8'));
    expect(rec.bestRound).toHaveProperty('acceptancePrecision');
    delete rec.bestRound.acceptancePrecision;
    delete rec.bestRound.trainAcceptancePrecision;
    await writeFile(spath, seal(rec));
    // Resumes with the default config (guardPrecision true) and with it off.
    const r = await runSelfImprovement(opts(config, { runDir: dir, resume: true }));
    expect(r.rounds.length).toBe(5);
    expect(r.rounds.map((m) => m.nonunified)).toEqual(ref.rounds.map((m) => m.nonunified));
    expect(r.config.guardPrecision).toBe(true);
    expect(r.guardEvents).toEqual(ref.guardEvents);
  });

  it('a saved guardPrecision is compared on resume like any other option', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 3 };
    const dir = await tempDir();
    await stopAfterRound(config, dir, 1);
    await expect(
      runSelfImprovement(opts({ ...config, guardPrecision: false }, { runDir: dir, resume: true })),
    ).rejects.toThrow(ConfigMismatchError);
    await expect(
      runSelfImprovement(opts({ ...config, guardPrecision: false }, { runDir: dir, resume: true })),
    ).rejects.toThrow(/config\.guardPrecision: saved true, requested false/);
  });
});
