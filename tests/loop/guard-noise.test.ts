/**
 * The guard's rise test is noise-bounded like its fall test (lib/loop/guard.ts, "Decision rules"), and a
 * generation fall pairs only with a rise of unification on the same prompts' samples.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { guardCheck, type GuardObservation } from '../../lib/loop/guard.js';
import { rate, wilson } from '../../lib/loop/metrics.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import type { BestRound } from '../../lib/loop/state.js';
import type { LoopConfig, LoopEvent } from '../../lib/loop/types.js';
import { cleanTempDirs, opts, tempDir } from './fixtures.js';
import { ToyModel } from './toy.js';

afterAll(cleanTempDirs);

const Z = 1.645;

// The figures of v3-clo-adversarial1-s0 (bench/results/world-experiments.md, before this change): at
// round 3 probe unification 29.6 % of 240 samples vs 27.9 % at the best round, train-split generation
// 14.2 % of 480 vs 24.0 %, train-split unification 41.2 % of 480 vs 51.2 %.
const best: BestRound = {
  round: 0,
  generationAccuracy: 0.079,
  understandingAccuracy: 0.675,
  unification: 0.279,
  trainGenerationAccuracy: 0.24,
  trainUnification: 0.512,
};
const obs = (o: Partial<GuardObservation> = {}): GuardObservation => ({
  round: 3,
  generationAccuracy: rate(11, 240),
  understandingAccuracy: rate(481, 720),
  unification: rate(71, 240),
  trainGenerationAccuracy: rate(68, 480),
  trainUnification: rate(198, 480),
  ...o,
});

describe('guard: noise-bounded rises', () => {
  it('a noise-level rise of probe unification no longer trips (the old rule did)', () => {
    // 71/240 = 29.6 % > 27.9 %, but its one-sided lower bound is ~24.9 %: not a rise.
    expect(wilson(rate(71, 240), Z).low).toBeLessThan(best.unification);
    const d = guardCheck(best, obs(), 0.05, Z);
    expect(d.tripped).toBe(false);
    // The train-split fall is real: a warning (plain degradation), naming it.
    expect(d.warning).toBe(
      'degradation at round 3 without a rise in unification (not co-degradation; not stopped): ' +
        'train-split generation accuracy fell 24.0% -> 14.2% vs best round 0',
    );
    // z = 0 keeps the plain comparison, so the 1.7-point probe rise counts; it still does not trip here,
    // because the fall is on the training prompts (the same-samples rule, below) ...
    expect(guardCheck(best, obs(), 0.05, 0).tripped).toBe(false);
    // ... but it does with a probe generation fall.
    const probeFall = guardCheck(best, obs({ generationAccuracy: rate(2, 240) }), 0.05, 0);
    expect(probeFall.tripped).toBe(true);
    expect(probeFall.reason).toMatch(/^co-degradation at round 3: unification rose 27\.9% -> 29\.6% while/);
  });

  it('a real rise with a real fall on the same samples still trips, and the reason gives the bound', () => {
    // Train-split unification 51.2 % -> 70.0 % of 480 (lower bound ~66.4 %), generation 24.0 -> 14.2 %.
    const d = guardCheck(best, obs({ trainUnification: rate(336, 480) }), 0.05, Z);
    expect(d.tripped).toBe(true);
    expect(d.best).toBe(best);
    expect(d.reason).toMatch(
      /^co-degradation at round 3: train-split unification rose 51\.2% -> 70\.0% \(lower bound 66\.\d%\) while train-split generation accuracy fell 24\.0% -> 14\.2% \(tolerance 5\.0%, z 1\.645\) vs best round 0$/,
    );
    // Probe: a real rise (40 % of 240, lower bound ~35 %) with a real probe generation fall.
    const p = guardCheck(
      { ...best, generationAccuracy: 0.2 },
      obs({ unification: rate(96, 240), generationAccuracy: rate(12, 240) }),
      0.05,
      Z,
    );
    expect(p.tripped).toBe(true);
    expect(p.reason).toMatch(
      /^co-degradation at round 3: unification rose 27\.9% -> 40\.0% \(lower bound \d+\.\d%\) while generation accuracy fell 20\.0% -> 5\.0%/,
    );
  });

  it('the rise must clear the bound: the same relative rise trips on many samples, not on few', () => {
    const b: BestRound = { round: 1, generationAccuracy: 0.6, understandingAccuracy: 0.8, unification: 0.5 };
    const o = (acc: [number, number], uni: [number, number]): GuardObservation => ({
      round: 2,
      generationAccuracy: rate(...acc),
      understandingAccuracy: rate(80, 100),
      unification: rate(...uni),
    });
    // 55 % of 40: lower bound ~42 % < 50 %: noise.
    expect(guardCheck(b, o([400, 1000], [22, 40]), 0.05, Z).tripped).toBe(false);
    // 55 % of 4000: lower bound ~53.7 % > 50 %: a real rise.
    expect(guardCheck(b, o([400, 1000], [2200, 4000]), 0.05, Z).tripped).toBe(true);
    // z = 0: any rise counts.
    expect(guardCheck(b, o([400, 1000], [22, 40]), 0.05, 0).tripped).toBe(true);
  });

  it('a plain-number unification (the older API) is compared plainly', () => {
    const b: BestRound = { round: 1, generationAccuracy: 0.6, understandingAccuracy: 0.8, unification: 0.5 };
    const o: GuardObservation = {
      round: 2,
      generationAccuracy: rate(400, 1000),
      understandingAccuracy: rate(80, 100),
      unification: 0.51,
    };
    const d = guardCheck(b, o, 0.05, Z);
    expect(d.tripped).toBe(true);
    expect(d.reason).toBe(
      'co-degradation at round 2: unification rose 50.0% -> 51.0% while generation accuracy fell 60.0% -> 40.0% (tolerance 5.0%, z 1.645) vs best round 1',
    );
    expect(guardCheck(b, { ...o, unification: 0.5 }, 0.05, Z).tripped).toBe(false);
    // The best round stores numbers either way.
    expect(guardCheck(null, o, 0.05, Z).best.unification).toBe(0.51);
    expect(guardCheck(null, { ...o, unification: rate(51, 100) }, 0.05, Z).best.unification).toBe(0.51);
  });
});

describe('guard: a fall pairs with a rise on the same samples', () => {
  it('a real probe rise does not combine with a train-split fall (warning names both)', () => {
    // Probe unification 27.9 % -> 45.0 % of 240 (real), train-split unification flat, train gen falls.
    const d = guardCheck(best, obs({ unification: rate(108, 240), trainUnification: rate(246, 480) }), 0.05, Z);
    expect(d.tripped).toBe(false);
    expect(d.warning).toMatch(
      /^degradation at round 3 without a rise in unification \(not co-degradation; not stopped\): train-split generation accuracy fell 24\.0% -> 14\.2% vs best round 0; on other prompts unification rose 27\.9% -> 45\.0% \(lower bound .*\)$/,
    );
  });

  it('an understanding fall (the fixed set) pairs with a real rise on either set', () => {
    const und = rate(380, 720); // 52.8 % vs 67.5 %: real
    const flat = { trainGenerationAccuracy: rate(115, 480), generationAccuracy: rate(19, 240) };
    const onProbe = guardCheck(
      best,
      obs({ ...flat, understandingAccuracy: und, unification: rate(108, 240) }),
      0.05,
      Z,
    );
    expect(onProbe.tripped).toBe(true);
    expect(onProbe.reason).toMatch(/unification rose .* while understanding accuracy fell 67\.5% -> 52\.8%/);
    const onTrain = guardCheck(
      best,
      obs({ ...flat, understandingAccuracy: und, trainUnification: rate(336, 480) }),
      0.05,
      Z,
    );
    expect(onTrain.tripped).toBe(true);
    expect(onTrain.reason).toMatch(/^co-degradation at round 3: train-split unification rose .* while understanding/);
    // No real rise anywhere: a warning.
    expect(guardCheck(best, obs({ ...flat, understandingAccuracy: und }), 0.05, Z).tripped).toBe(false);
  });
});

describe('guard: saved state', () => {
  it('the saved best round keeps its number fields, and a run resumed from it ends like the uninterrupted one', async () => {
    // A corrupted toy run the guard stops (resume.test.ts's fourth case); interrupt it after round 1's commit.
    const config: Partial<LoopConfig> = { strategy: 'clo', corrupt: 1, rounds: 8 };
    const ref = await runSelfImprovement(opts(config, { model: new ToyModel({ judgeMix: 1 }) }));
    expect(ref.stoppedEarly).toBe(true);
    expect(ref.guardEvents[0].round).toBeGreaterThan(1);

    const dir = await tempDir();
    class Stop extends Error {}
    await expect(
      runSelfImprovement(
        opts(config, {
          model: new ToyModel({ judgeMix: 1 }),
          runDir: dir,
          onEvent: (e: LoopEvent) => {
            if (e.type === 'round-end' && e.round === 1) throw new Stop('stop');
          },
        }),
      ),
    ).rejects.toThrow(Stop);
    const saved = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as {
      body: { round: number; bestRound: Record<string, unknown> };
    };
    expect(saved.body.round).toBe(1);
    const b = saved.body.bestRound;
    expect(Object.keys(b).sort()).toEqual(
      [
        'acceptancePrecision',
        'generationAccuracy',
        'round',
        'trainAcceptancePrecision',
        'trainGenerationAccuracy',
        'trainUnification',
        'understandingAccuracy',
        'unification',
      ].sort(),
    );
    for (const v of Object.values(b)) expect(typeof v).toBe('number');

    const resumed = await runSelfImprovement(
      opts(config, { model: new ToyModel({ judgeMix: 1 }), runDir: dir, resume: true }),
    );
    expect(resumed.rounds).toEqual(ref.rounds);
    expect(resumed.guardEvents).toEqual(ref.guardEvents);
    expect(resumed.stoppedEarly).toBe(true);
  });
});
