import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CorruptStateError } from '../../lib/loop/errors.js';
import { guardCheck } from '../../lib/loop/guard.js';
import { rate } from '../../lib/loop/metrics.js';
import { deriveSeed, mulberry32 } from '../../lib/loop/rng.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import { atomicWrite, decodeSamples, encodeSamples, seal, unseal } from '../../lib/loop/state.js';
import { cleanTempDirs, opts, ps, tempDir } from './fixtures.js';

afterAll(cleanTempDirs);

describe('guard decisions', () => {
  const best = { round: 1, generationAccuracy: 0.6, understandingAccuracy: 0.8, unification: 0.5 };
  const obs = (gen: [number, number], und: [number, number], unification: number) => ({
    round: 3,
    generationAccuracy: rate(...gen),
    understandingAccuracy: rate(...und),
    unification,
  });

  const summaryOf = (o: ReturnType<typeof obs>) => ({
    round: o.round,
    generationAccuracy: o.generationAccuracy.value,
    understandingAccuracy: o.understandingAccuracy.value,
    unification: o.unification,
  });

  it('trips only when unification rose and an accuracy fell beyond the tolerance', () => {
    // gen 0.5 (fell 0.1 > 0.05), unification up: trip.
    const d = guardCheck(best, obs([50, 100], [80, 100], 0.7), 0.05, 0);
    expect(d.tripped).toBe(true);
    expect(d.reason).toBe(
      'co-degradation at round 3: unification rose 50.0% -> 70.0% while generation accuracy fell 60.0% -> 50.0% (tolerance 5.0%) vs best round 1',
    );
    expect(d.best).toBe(best);
    // Same fall but unification did not rise: plain degradation, not co-degradation (a warning).
    const plain = guardCheck(best, obs([50, 100], [80, 100], 0.5), 0.05, 0);
    expect(plain.tripped).toBe(false);
    expect(plain.warning).toBe(
      'degradation at round 3 without a rise in unification (not co-degradation; not stopped): generation accuracy fell 60.0% -> 50.0% vs best round 1',
    );
    expect(guardCheck(best, obs([60, 100], [80, 100], 0.5), 0.05, 0).warning).toBeUndefined();
    // A fall within the tolerance.
    expect(guardCheck(best, obs([56, 100], [76, 100], 0.9), 0.05, 0).tripped).toBe(false);
    // Understanding alone.
    expect(guardCheck(best, obs([60, 100], [70, 100], 0.9), 0.05, 0).reason).toMatch(
      /understanding accuracy fell 80.0% -> 70.0%/,
    );
  });

  it('with z > 0 a fall on a small sample must clear the Wilson bound too', () => {
    // 5/10 = 0.5: the one-sided upper bound at z 1.645 is ~0.75 > 0.6 - 0.05: noise, no trip.
    expect(guardCheck(best, obs([5, 10], [8, 10], 0.9), 0.05, 1.645).tripped).toBe(false);
    // 500/1000: upper ~0.526 < 0.55: a real fall.
    expect(guardCheck(best, obs([500, 1000], [800, 1000], 0.9), 0.05, 1.645).tripped).toBe(true);
  });

  it('watches train-split generation and unification when given; labels name the signals', () => {
    const b = { ...best, trainGenerationAccuracy: 0.4, trainUnification: 0.5 };
    const o = {
      ...obs([60, 100], [80, 100], 0.5),
      trainGenerationAccuracy: rate(20, 100),
      trainUnification: 0.7,
      labels: { generation: 'probe generation accuracy', understanding: 'fixed-set understanding accuracy' },
    };
    const d = guardCheck(b, o, 0.05, 0);
    expect(d.reason).toBe(
      'co-degradation at round 3: train-split unification rose 50.0% -> 70.0% while train-split generation accuracy fell 40.0% -> 20.0% (tolerance 5.0%) vs best round 1',
    );
    // Train-split unification flat: a fall alone is not co-degradation.
    expect(guardCheck(b, { ...o, trainUnification: 0.5 }, 0.05, 0).tripped).toBe(false);
    // Best round: the sum of every watched accuracy.
    const up = guardCheck(b, { ...o, trainGenerationAccuracy: rate(50, 100), trainUnification: 0.4 }, 0.05, 0);
    expect(up.best).toEqual({ ...summaryOf(o), trainGenerationAccuracy: 0.5, trainUnification: 0.4 });
  });

  it('tracks the best round by mean external accuracy (ties keep the earlier round)', () => {
    let b = guardCheck(null, obs([60, 100], [80, 100], 0.5), 0.05).best;
    expect(b.round).toBe(3);
    b = guardCheck(b, { ...obs([70, 100], [70, 100], 0.4), round: 4 }, 0.05).best;
    expect(b.round).toBe(3);
    b = guardCheck(b, { ...obs([70, 100], [71, 100], 0.4), round: 5 }, 0.05).best;
    expect(b.round).toBe(5);
  });
});

describe('run-state files', () => {
  it('sealed JSON round-trips and rejects truncation and edits', () => {
    const text = seal({ a: [1, 2.5, 'x'], b: null });
    expect(unseal('f', text)).toEqual({ a: [1, 2.5, 'x'], b: null });
    expect(() => unseal('f', text.slice(0, -3))).toThrow(CorruptStateError);
    expect(() => unseal('f', text.replace('2.5', '2.6'))).toThrow(/checksum mismatch/);
    expect(() => unseal('f', '')).toThrow(/truncated/);
  });

  it('samples with typed-array payloads survive encoding', () => {
    const d = ps('p', 'color', [
      [0.25, true, false],
      [0.75, false, true],
    ]);
    d.samples[0].image.payload = { grid: Uint8Array.of(1, 2, 3), nested: [{ f: Float32Array.of(0.5) }], s: 'x' };
    const back = decodeSamples('f', JSON.parse(JSON.stringify(encodeSamples([d]))), new Map([['p', d.prompt]]));
    expect(back).toEqual([d]);
    expect((back[0].samples[0].image.payload as { grid: Uint8Array }).grid).toBeInstanceOf(Uint8Array);
    expect(() => decodeSamples('f', encodeSamples([d]), new Map())).toThrow(/unknown prompt id 'p'/);
  });

  it('a run directory in use by a live process is refused; a dead holder is taken over', async () => {
    const dir = await tempDir();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'run.lock'), String(process.ppid));
    await expect(runSelfImprovement(opts({ rounds: 0 }, { runDir: dir }))).rejects.toThrow(/in use by another run/);
    await writeFile(join(dir, 'run.lock'), '999999999');
    const r = await runSelfImprovement(opts({ rounds: 0 }, { runDir: dir }));
    expect(r.rounds.length).toBe(1);
  });
});

describe('seeded randomness', () => {
  it('derived seeds differ by seed, round and purpose, and are stable', () => {
    const a = deriveSeed(7, 3, 'sample:p1');
    expect(deriveSeed(7, 3, 'sample:p1')).toBe(a);
    const others = [deriveSeed(8, 3, 'sample:p1'), deriveSeed(7, 4, 'sample:p1'), deriveSeed(7, 3, 'sample:p2')];
    expect(new Set([a, ...others]).size).toBe(4);
    expect(deriveSeed(2 ** 40 + 7, 3, 'x')).not.toBe(deriveSeed(7, 3, 'x'));
    const r = mulberry32(a);
    const xs = Array.from({ length: 1000 }, r);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });
});

describe('atomicWrite', () => {
  it('a failed commit leaves no temp file behind and the previous content intact', async () => {
    const dir = await tempDir();
    const target = join(dir, 'round-0001.bin');
    await atomicWrite(target, 'previous');
    // Make the rename fail: the target becomes a non-empty directory.
    const blocked = join(dir, 'blocked');
    await mkdir(join(blocked, 'inner'), { recursive: true });
    await expect(atomicWrite(blocked, 'new bytes')).rejects.toThrow();
    const names = await readdir(dir);
    expect(names.filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(names).toContain('round-0001.bin');
  });
});

describe('resume finishes an interrupted cleanup', () => {
  it('files of older rounds left by a kill between commit and cleanup are removed on resume', async () => {
    const dir = await tempDir();
    await runSelfImprovement(opts({ rounds: 2 }, { runDir: dir }));
    const ck = join(dir, 'checkpoints');
    const before = (await readdir(ck)).sort();
    // What a kill right after state.json's rename leaves: the previous round's files still there.
    await writeFile(join(ck, 'round-0001.bin'), 'stale');
    await writeFile(join(ck, 'round-0001.json'), 'stale');
    await writeFile(join(dir, 'pool-0001.json'), 'stale');
    await runSelfImprovement(opts({ rounds: 2 }, { runDir: dir, resume: true }));
    expect((await readdir(ck)).sort()).toEqual(before);
    expect((await readdir(dir)).filter((n) => n === 'pool-0001.json')).toEqual([]);
  });
});
