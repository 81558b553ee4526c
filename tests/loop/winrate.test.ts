import { afterAll, describe, expect, it } from 'vitest';

import { understandingWinRate, wilson } from '../../lib/loop/metrics.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import type { LoopConfig, Rate } from '../../lib/loop/types.js';
import { cleanTempDirs, opts } from './fixtures.js';

afterAll(cleanTempDirs);

const T = true;
const F = false;

describe('understandingWinRate', () => {
  it('no disagreements: 0.5 with 0 / 0 (50 % by construction, as the paper base model)', () => {
    const base = [T, F, T, F];
    expect(understandingWinRate(base, [...base], [T, T, F, F])).toEqual({ value: 0.5, count: 0, total: 0 });
    expect(understandingWinRate([], [], [])).toEqual({ value: 0.5, count: 0, total: 0 });
    // The interval of 0 / 0 is the whole [0, 1].
    expect(wilson(understandingWinRate([], [], []))).toEqual({ low: 0, high: 1 });
  });

  it('all wins and all losses', () => {
    // Items 0 and 2 flip, both towards the label; items 1 and 3 stay (their labels do not matter).
    expect(understandingWinRate([F, T, T, F], [T, T, F, F], [T, F, F, T])).toEqual({ value: 1, count: 2, total: 2 });
    // The same flips against the label.
    expect(understandingWinRate([T, T, F, F], [F, T, T, F], [T, F, F, T])).toEqual({ value: 0, count: 0, total: 2 });
  });

  it('mixed: wins over disagreements only', () => {
    const base = [T, T, T, F, F, F, T, F];
    const current = [F, T, F, T, F, T, T, T];
    const labels = [F, F, T, T, T, F, T, F];
    // Disagreements: items 0 (F, label F: win), 2 (F, label T: loss), 3 (T, label T: win), 5 (T, label F: loss),
    // 7 (T, label F: loss): 2 wins of 5.
    expect(understandingWinRate(base, current, labels)).toEqual({ value: 0.4, count: 2, total: 5 });
    // 21 disagreements with 12 wins, e.g. "57.1% (12/21)".
    const n = 30;
    const b = Array.from({ length: n }, () => F);
    const c = Array.from({ length: n }, (_, i) => i < 21);
    const l = Array.from({ length: n }, (_, i) => i < 12);
    const r = understandingWinRate(b, c, l);
    expect(r).toEqual({ value: 12 / 21, count: 12, total: 21 });
    expect((100 * r.value).toFixed(1)).toBe('57.1');
  });

  it('never NaN, survives JSON, and refuses misaligned inputs', () => {
    for (const r of [
      understandingWinRate([], [], []),
      understandingWinRate([T], [T], [F]),
      understandingWinRate([T], [F], [F]),
      understandingWinRate([T], [F], [T]),
    ]) {
      expect(Number.isFinite(r.value)).toBe(true);
      expect(r.value).toBeGreaterThanOrEqual(0);
      expect(r.value).toBeLessThanOrEqual(1);
      expect(JSON.parse(JSON.stringify(r))).toEqual(r);
      const w = wilson(r);
      expect(Number.isFinite(w.low) && Number.isFinite(w.high)).toBe(true);
    }
    expect(() => understandingWinRate([T, F], [T], [T, F])).toThrow(RangeError);
    expect(() => understandingWinRate([T], [T], [])).toThrow(RangeError);
  });
});

describe('runs: understanding win rate per round', () => {
  it('is in every round, 0.5 with 0 / 0 at round 0, and matches the fixed-set accuracy change', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 4 };
    const r = await runSelfImprovement(opts(config));
    expect(r.rounds).toHaveLength(5);
    expect(r.rounds[0].understandingWinRate).toEqual({ value: 0.5, count: 0, total: 0 });
    const acc0 = r.rounds[0].fixedProbe!.understandingAccuracy;
    let moved = false;
    for (const m of r.rounds) {
      const w = m.understandingWinRate as Rate;
      expect(w, `round ${m.round}`).toBeTruthy();
      expect(w.total).toBeLessThanOrEqual(acc0.total);
      expect(w.count).toBeLessThanOrEqual(w.total);
      expect(w.value).toBe(w.total ? w.count / w.total : 0.5);
      // On an item whose verdict did not change its correctness did not either; on a disagreement exactly one of
      // the two verdicts is right: correct(r) - correct(0) = wins - losses.
      expect(m.fixedProbe!.understandingAccuracy.count - acc0.count, `round ${m.round}`).toBe(2 * w.count - w.total);
      if (w.total > 0) moved = true;
    }
    // The loop moves the judge: some round disagrees with round 0 somewhere (not a vacuous check).
    expect(moved).toBe(true);
  });

  it('is absent without an external judge (no fixed probe set)', async () => {
    const r = await runSelfImprovement(opts({ strategy: 'sft', rounds: 1, guard: false }, { judge: undefined }));
    expect(r.rounds.every((m) => m.understandingWinRate === undefined)).toBe(true);
  });
});
