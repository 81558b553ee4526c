/**
 * The durability test's SIGKILL schedule (kill-schedule.ts) on simulated runs: deterministic, no
 * processes. Regression: the schedule used to stop after 12 run directories, so a reference run measured
 * on a busy machine (kill moments too late for the real runs) ended with fewer than 20 kills and failed
 * the test although every resumed run matched (seen as "expected 17 to be greater than or equal to 20").
 */
import { describe, expect, it } from 'vitest';

import { rng } from '../helpers.js';
import { killSchedule, type Attempt } from './kill-schedule.js';

const ROUNDS = 5;

/**
 * A simulated `unigap run --resume`: start-up `startMs`, then one commit every `roundMs` from the round
 * after the committed one through round ROUNDS, then the report (`endMs`). Killed when the kill moment
 * comes before the end; the directory keeps the rounds committed by then.
 */
function simulated(t: { startMs: number; roundMs: number; endMs: number }) {
  const committed = new Map<number, number>();
  const attempt: Attempt = async (dir, delay) => {
    const c = committed.get(dir) ?? -1;
    const total = t.startMs + (ROUNDS - c) * t.roundMs + t.endMs;
    if (delay >= total) return { killed: false, note: `resumed from round ${c}` };
    const done = Math.max(0, Math.floor((delay - t.startMs) / t.roundMs));
    committed.set(dir, Math.min(ROUNDS, c + done));
    return { killed: true };
  };
  return attempt;
}

// Timings as measured on 2 busy cores: a 4.6 s run whose reference took 6.5 s (the failing run's refMs).
const timing = { startMs: 1800, roundMs: 350, endMs: 700 };
const slowRefMs = 6540;

describe('SIGKILL schedule of the durability test', () => {
  it('reaches every kill even when the reference run was slow (kill moments mostly after the end)', async () => {
    const r = await killSchedule({ kills: 20, refMs: slowRefMs, rand: rng(20261126), attempt: simulated(timing) });
    expect(r.kills).toBe(20);
    // More directories than the former bound of 12: what made the test fail intermittently.
    expect(r.dirs).toBeGreaterThan(12);
  });

  it('the former bound (12 directories) falls short on the same timings', async () => {
    await expect(
      killSchedule({ kills: 20, refMs: slowRefMs, rand: rng(20261126), attempt: simulated(timing), maxDirs: 12 }),
    ).rejects.toThrow(/only 1\d of 20 kills in 12 run directories/);
  });

  it('with a reference as fast as the runs, fewer directories do', async () => {
    const r = await killSchedule({ kills: 20, refMs: 4600, rand: rng(20261126), attempt: simulated(timing) });
    expect(r.kills).toBe(20);
    expect(r.dirs).toBeLessThan(12);
  });

  it('still ends when no run is ever killed (a broken spawn), with the history', async () => {
    const never: Attempt = async () => ({ killed: false });
    await expect(killSchedule({ kills: 20, refMs: 1000, rand: rng(1), attempt: never })).rejects.toThrow(
      /only 0 of 20 kills in 80 run directories[^]*dir 79: finished at attempt 0/,
    );
  });

  it('a directory that never finishes is reported', async () => {
    let n = 0;
    const always: Attempt = async () => ({ killed: n++ < 1000 });
    await expect(
      killSchedule({ kills: 5, refMs: 1000, rand: rng(1), attempt: always, maxAttempts: 10 }),
    ).rejects.toThrow(/dir 0 never finished in 10 attempts/);
  });
});
