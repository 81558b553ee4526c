/**
 * The guard's measurement design (lib/loop/guard.ts): understanding is watched on a FIXED labelled probe
 * set built at round 0, generation on the probe prompts AND on the training prompts' fresh samples.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CorruptStateError } from '../../lib/loop/errors.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import type { GeneratedImage, Judgment, LabelledPair, Prompt, RoundMetrics } from '../../lib/loop/types.js';
import { rng } from '../helpers.js';
import { cleanTempDirs, opts, probe, tempDir } from './fixtures.js';
import { ToyModel } from './toy.js';

afterAll(cleanTempDirs);

const attrs = (p: Prompt) => p.id.split('-').slice(1).map(Number);

/**
 * A judge that never changes and is lenient on near misses: it accepts an image when at least one slot
 * is right. As generation improves, far misses (both slots wrong: rightly rejected) turn into near
 * misses (one slot wrong: wrongly accepted), so own-sample understanding accuracy falls although the
 * judge itself is exactly the same: a pure sample-shift effect.
 */
class FrozenLenientJudgeToy extends ToyModel {
  override judge(prompt: Prompt, image: GeneratedImage): Judgment {
    const a = attrs(prompt);
    const right = a.filter((v, s) => image.tokens[s] === v).length;
    return { pYes: right / a.length, accept: right >= 1 };
  }
}

/**
 * A model that does not generalize at all to prompts it was not built on: its images for them are
 * uniform noise, and its judgments of them come from its initial weights (training never reaches them).
 * So on the probe prompts nothing can move; only the training prompts show what training does.
 */
class NoGeneralizationToy extends ToyModel {
  private readonly initial: ToyModel;
  constructor(
    private readonly unseen: Set<string>,
    o: ConstructorParameters<typeof ToyModel>[0],
  ) {
    super(o);
    this.initial = new ToyModel(o);
  }
  override judge(prompt: Prompt, image: GeneratedImage): Judgment {
    return this.unseen.has(prompt.id) ? this.initial.judge(prompt, image) : super.judge(prompt, image);
  }
  override generate(prompt: Prompt, n: number, o: { temperature: number; seed: number }): GeneratedImage[] {
    if (!this.unseen.has(prompt.id)) return super.generate(prompt, n, o);
    const rand = rng(o.seed);
    return Array.from({ length: n }, () => {
      const tokens = Int32Array.from({ length: this.o.slots }, () => Math.floor(rand() * this.o.values));
      return { tokens, payload: { slots: Array.from(tokens) } };
    });
  }
}

const ownUnd = (m: RoundMetrics) => m.probe!.understandingAccuracy.value;
const fixedUnd = (m: RoundMetrics) => m.fixedProbe!.understandingAccuracy.value;
const lenient = () => new FrozenLenientJudgeToy({ signal: 0.5, noise: 0.5 });

describe('guard signals', () => {
  it('a clean run whose own-sample understanding falls only through sample shift does not trip', async () => {
    const r = await runSelfImprovement(opts({ strategy: 'sft', rounds: 6 }, { model: lenient() }));
    const [first, last] = [r.rounds[0], r.rounds.at(-1)!];
    // Generation improves and the (unchanged) judge agrees with more of it ...
    expect(last.external!.generationAccuracy.value).toBeGreaterThan(first.external!.generationAccuracy.value + 0.1);
    expect(last.nonunified.value).toBeLessThan(first.nonunified.value - 0.2);
    // ... own-sample understanding accuracy falls through the sample shift alone ...
    expect(ownUnd(last)).toBeLessThan(ownUnd(first) - 0.1);
    // ... while the fixed set sees the judge as it is: unchanged.
    expect(r.rounds.every((m) => fixedUnd(m) === fixedUnd(first))).toBe(true);
    expect(r.stoppedEarly).toBe(false);
    expect(r.rounds.every((m) => m.guard?.tripped === false)).toBe(true);

    // The old signal (own-sample understanding) would have stopped this clean run.
    const own = await runSelfImprovement(
      opts({ strategy: 'sft', rounds: 6, guardUnderstanding: 'own' }, { model: lenient() }),
    );
    expect(own.stoppedEarly).toBe(true);
    expect(own.guardEvents[0].reason).toMatch(/probe own-sample understanding accuracy fell/);
  });

  it('a corrupted run trips via train-split generation accuracy when the probe is at its floor', async () => {
    const unseen = new Set(probe.map((p) => p.id));
    const model = () => new NoGeneralizationToy(unseen, { judgeMix: 1 });
    const config = { strategy: 'clo' as const, corrupt: 1, rounds: 8 };
    // Watching the probe's accuracies only, the guard cannot see the fall: probe generation is noise every
    // round and the fixed set's judgments do not move.
    const blind = await runSelfImprovement(
      opts({ ...config, guardTrainGeneration: false, guardPrecision: false }, { model: model() }),
    );
    expect(blind.stoppedEarly).toBe(false);
    // The probe's acceptance precision (right among the self-accepted probe samples) does see it.
    const precise = await runSelfImprovement(opts({ ...config, guardTrainGeneration: false }, { model: model() }));
    expect(precise.stoppedEarly).toBe(true);
    expect(precise.guardEvents[0].reason).toMatch(/unification rose .* while probe acceptance precision fell/);
    const probeGen = blind.rounds.map((m) => m.probe!.generationAccuracy.value);
    expect(Math.max(...probeGen)).toBeLessThan(0.06);
    expect(new Set(blind.rounds.map(fixedUnd)).size).toBe(1);
    const [first, last] = [blind.rounds[0], blind.rounds.at(-1)!];
    expect(last.external!.generationAccuracy.value).toBeLessThan(first.external!.generationAccuracy.value - 0.15);
    expect(last.nonunified.value).toBeLessThan(first.nonunified.value);

    const r = await runSelfImprovement(opts(config, { model: model() }));
    expect(r.stoppedEarly).toBe(true);
    const g = r.guardEvents[0];
    expect(g.reason).toMatch(/train-split unification rose .* while train-split generation accuracy fell/);
    expect(g.reason).not.toMatch(/probe generation accuracy fell|understanding accuracy fell/);
    const best = r.rounds[g.rolledBackTo];
    const tripped = r.rounds.at(-1)!;
    expect(tripped.nonunified.value).toBeLessThan(best.nonunified.value);
    expect(tripped.external!.generationAccuracy.value).toBeLessThan(best.external!.generationAccuracy.value - 0.05);
  });

  it('the fixed probe set: round-0 probe samples labelled once, plus supplied pairs, stored for resume', async () => {
    const supplied: LabelledPair[] = probe.slice(0, 4).flatMap((p) => {
      const a = attrs(p);
      return [
        { prompt: p, image: { tokens: Int32Array.from(a) }, label: true },
        { prompt: p, image: { tokens: Int32Array.from(a.map((v) => (v + 1) % 8)) }, label: false },
      ];
    });
    const dir = await tempDir();
    const r = await runSelfImprovement(opts({ strategy: 'sft', rounds: 2 }, { probeSet: supplied, runDir: dir }));
    const f = r.rounds[0].fixedProbe!;
    expect(f.items).toEqual({ model: probe.length * 8, supplied: 8 });
    expect(f.understandingAccuracy.total).toBe(probe.length * 8 + 8);
    // Round-0 labels are the external verdicts of the round-0 probe samples.
    const pos = f.falseNegativeRate.total;
    expect(pos).toBe(r.rounds[0].probe!.generationAccuracy.count + 4);
    expect(r.rounds.every((m) => m.fixedProbe!.understandingAccuracy.total === f.understandingAccuracy.total)).toBe(
      true,
    );
    const saved = JSON.parse(await readFile(join(dir, 'fixed-probe.json'), 'utf8')) as { body: unknown[] };
    expect(saved.body.length).toBe(probe.length * 8 + 8);
    const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect((JSON.parse(lines[2]) as RoundMetrics).fixedProbe).toEqual(r.rounds[2].fixedProbe);
    // Resuming with other supplied pairs is another run.
    await expect(
      runSelfImprovement(
        opts({ strategy: 'sft', rounds: 2 }, { probeSet: supplied.slice(1), runDir: dir, resume: true }),
      ),
    ).rejects.toThrow(/probeSet/);
    // Resuming loads the stored set; a damaged set is refused, never rebuilt silently.
    const resumed = await runSelfImprovement(
      opts({ strategy: 'sft', rounds: 2 }, { probeSet: supplied, runDir: dir, resume: true }),
    );
    const fresh = await runSelfImprovement(opts({ strategy: 'sft', rounds: 2 }, { probeSet: supplied }));
    expect(resumed.rounds).toEqual(fresh.rounds);
    await writeFile(join(dir, 'fixed-probe.json'), JSON.stringify(saved).replace('"label":true', '"label":false'));
    await expect(
      runSelfImprovement(opts({ strategy: 'sft', rounds: 2 }, { probeSet: supplied, runDir: dir, resume: true })),
    ).rejects.toThrow(CorruptStateError);
  });

  it('bad probeSet input is a typed error', async () => {
    const p = probe[0];
    await expect(
      runSelfImprovement(
        opts({ rounds: 0 }, { probeSet: [{ prompt: p, image: { tokens: Int32Array.of(0, 9) }, label: true }] }),
      ),
    ).rejects.toThrow(/probeSet\[0\]\.image\.tokens has a token outside \[0, 8\)/);
    await expect(
      runSelfImprovement(
        opts(
          { rounds: 0 },
          { probeSet: [{ prompt: p, image: { tokens: Int32Array.of(0, 1) }, label: 1 as unknown as boolean }] },
        ),
      ),
    ).rejects.toThrow(/probeSet\[0\]\.label must be a boolean/);
    await expect(
      runSelfImprovement({
        ...opts({ rounds: 0 }, { probeSet: [{ prompt: p, image: { tokens: Int32Array.of(0, 1) }, label: true }] }),
        judge: undefined,
      }),
    ).rejects.toThrow(/probeSet needs an external judge/);
  });
});
