/**
 * The SIGKILL schedule of the durability test (tests/hardening/durability.test.ts), apart from the
 * processes so that its termination can be tested deterministically (kill-schedule.test.ts).
 *
 * Each run directory is resumed (or started: --resume on an empty directory starts the run) again and
 * again; every attempt gets a kill moment drawn uniformly from [0, 1.1 × refMs) (refMs: the duration of an
 * uninterrupted run) until `kills` kills have happened, then attempts run to the end. An attempt that
 * ends before its kill moment finishes its directory (the caller checks it against the reference), and
 * the next directory starts.
 *
 * How many kills a directory yields depends on timing: a resumed run is shorter than a fresh one, and a
 * reference measured on a busy machine (a large refMs) makes most kill moments fall after the run has
 * ended. So the number of directories needed to reach `kills` is not fixed; the schedule goes on until
 * the kills are done, with `maxDirs` (default 4 × kills) only as a bound against a run that never gets
 * killed (e.g. a broken spawn).
 */

/** Run one attempt on directory `dir`, SIGKILLed after `delayMs` (Infinity: never); was it killed? */
export type Attempt = (dir: number, delayMs: number) => Promise<{ killed: boolean; note?: string }>;

export interface ScheduleOptions {
  kills: number;
  refMs: number;
  rand: () => number;
  attempt: Attempt;
  /** Bound on the number of run directories (default 4 × kills). */
  maxDirs?: number;
  /** Bound on the attempts in one directory (default 60). */
  maxAttempts?: number;
  /** Where each attempt is noted (pass one to quote it in the caller's failure messages). */
  log?: string[];
}

export async function killSchedule(o: ScheduleOptions): Promise<{ kills: number; dirs: number; log: string[] }> {
  const log = o.log ?? [];
  const maxDirs = o.maxDirs ?? 4 * o.kills;
  const maxAttempts = o.maxAttempts ?? 60;
  let kills = 0;
  let dirs = 0;
  while (kills < o.kills) {
    if (dirs >= maxDirs)
      throw new Error(
        `only ${kills} of ${o.kills} kills in ${dirs} run directories (refMs ${o.refMs}):\n${log.join('\n')}`,
      );
    const dir = dirs++;
    let finished = false;
    for (let attempt = 0; attempt < maxAttempts && !finished; attempt++) {
      // A random moment anywhere from process start-up to past the end of an uninterrupted run.
      const delay = kills < o.kills ? Math.floor(o.rand() * o.refMs * 1.1) : Infinity;
      const r = await o.attempt(dir, delay);
      if (r.killed) {
        kills++;
        log.push(`dir ${dir}: killed after ${delay} ms${r.note ? ` (${r.note})` : ''}`);
      } else {
        finished = true;
        log.push(`dir ${dir}: finished at attempt ${attempt}${r.note ? ` (${r.note})` : ''}`);
      }
    }
    if (!finished) throw new Error(`dir ${dir} never finished in ${maxAttempts} attempts:\n${log.join('\n')}`);
  }
  return { kills, dirs, log };
}
