import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ConfigMismatchError, CorruptStateError } from '../../lib/loop/errors.js';
import { rngFor } from '../../lib/loop/rng.js';
import { runSelfImprovement } from '../../lib/loop/run.js';
import { decodeFixedProbeBase, seal, unseal } from '../../lib/loop/state.js';
import type { LoopConfig, LoopEvent, RunResult } from '../../lib/loop/types.js';
import { BASE, cleanTempDirs, opts, tempDir } from './fixtures.js';
import { ToyModel, type ToyOptions } from './toy.js';

afterAll(cleanTempDirs);

class Interrupt extends Error {}

/** Run with a fresh model, throwing out of onEvent at event number `at` (a crash mid-round). */
async function interrupted(
  config: Partial<LoopConfig>,
  runDir: string,
  at: number,
  toy: Partial<ToyOptions> = {},
): Promise<number> {
  let n = 0;
  try {
    await runSelfImprovement(
      opts(config, {
        model: new ToyModel(toy),
        runDir,
        onEvent: (e: LoopEvent) => {
          if (n++ === at)
            throw new Interrupt(`stopped at event ${at} (${e.type}, round ${'round' in e ? e.round : '?'})`);
        },
      }),
    );
  } catch (e) {
    if (!(e instanceof Interrupt)) throw e;
    return n;
  }
  return -1;
}

/**
 * Run with the default toy model, throwing out of onEvent at the first training step of `round` (rounds
 * before it committed, `round` not). Returns that step's event number (> 0 when it was reached).
 */
async function stopInRound(config: Partial<LoopConfig>, runDir: string, round: number): Promise<number> {
  let n = 0;
  let stopAt = -1;
  try {
    await runSelfImprovement(
      opts(config, {
        runDir,
        onEvent: (e) => {
          n++;
          if (e.type === 'train-step' && e.round === round) {
            stopAt = n;
            throw new Interrupt('mid-round');
          }
        },
      }),
    );
  } catch (e) {
    if (!(e instanceof Interrupt)) throw e;
  }
  return stopAt;
}

async function uninterrupted(
  config: Partial<LoopConfig>,
  toy: Partial<ToyOptions> = {},
): Promise<{ r: RunResult; W: Float32Array; dir: string }> {
  const dir = await tempDir();
  const model = new ToyModel(toy);
  const r = await runSelfImprovement(opts(config, { model, runDir: dir }));
  return { r, W: model.W, dir };
}

async function countEvents(config: Partial<LoopConfig>, toy: Partial<ToyOptions>): Promise<number> {
  let n = 0;
  await runSelfImprovement(opts(config, { model: new ToyModel(toy), onEvent: () => n++ }));
  return n;
}

describe('runs: resume', () => {
  for (const [strategy, extra, toy] of [
    ['clo', {}, {}],
    ['c-dpo', { triggerRound: 2 }, {}],
    ['sft', {}, { momentum: 0.5 }],
    ['clo', { corrupt: 1, rounds: 8 }, { judgeMix: 1 }],
  ] as [LoopConfig['strategy'], Partial<LoopConfig>, Partial<ToyOptions>][]) {
    it(`${strategy} ${JSON.stringify({ ...extra, ...toy })}: resuming after interruptions at random points ends where the uninterrupted run ends`, async () => {
      const config: Partial<LoopConfig> = { strategy, rounds: 5, ...extra };
      const ref = await uninterrupted(config, toy);
      const total = await countEvents(config, toy);
      const rand = rngFor(2024, 0, `resume-test:${strategy}`);
      const dir = await tempDir();
      // Two crashes at random events, then a clean resume.
      const first = Math.floor(rand() * total);
      expect(await interrupted(config, dir, first, toy)).toBeGreaterThan(0);
      let n = 0;
      try {
        await runSelfImprovement(
          opts(config, {
            model: new ToyModel(toy),
            runDir: dir,
            resume: true,
            onEvent: () => {
              if (n++ === Math.floor(rand() * 30)) throw new Interrupt('again');
            },
          }),
        );
      } catch (e) {
        if (!(e instanceof Interrupt)) throw e;
      }
      const model = new ToyModel(toy);
      const r = await runSelfImprovement(opts(config, { model, runDir: dir, resume: true }));
      expect(r).toEqual(ref.r);
      expect(Array.from(model.W)).toEqual(Array.from(ref.W));
      // The metrics file holds exactly one line per round, identical to the uninterrupted run's.
      expect(await readFile(join(dir, 'metrics.jsonl'), 'utf8')).toBe(
        await readFile(join(ref.dir, 'metrics.jsonl'), 'utf8'),
      );
      // Resuming a finished run returns its result without training again.
      const again = new ToyModel(toy);
      expect(await runSelfImprovement(opts(config, { model: again, runDir: dir, resume: true }))).toEqual(ref.r);
      expect(again.forwardCalls).toBe(0);
    });
  }

  it('ignores stale temp files and the files of an uncommitted round', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 3 };
    const ref = await uninterrupted(config);
    const dir = await tempDir();
    // Stop inside round 2's training: round 1 is the last commit.
    expect(await stopInRound(config, dir, 2)).toBeGreaterThan(0);
    // What a kill -9 during a write leaves behind: a half-written temp file and a next-round file.
    await writeFile(join(dir, 'state.json.tmp-99999'), '{"sha256":"00');
    await writeFile(join(dir, 'pool-0002.json'), 'garbage');
    await writeFile(join(dir, 'checkpoints', 'round-0002.bin.tmp-99999'), 'garbage');
    const model = new ToyModel();
    const r = await runSelfImprovement(opts(config, { model, runDir: dir, resume: true }));
    expect(r).toEqual(ref.r);
    expect(Array.from(model.W)).toEqual(Array.from(ref.W));
    const left = [...(await readdir(dir)), ...(await readdir(join(dir, 'checkpoints')))];
    expect(left.filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses to resume with another config, naming the differences', async () => {
    const dir = await tempDir();
    await runSelfImprovement(opts({ strategy: 'sft', rounds: 1 }, { runDir: dir }));
    const err = await runSelfImprovement(
      opts({ strategy: 'sft', rounds: 1, learningRate: 1 }, { runDir: dir, resume: true }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigMismatchError);
    expect(err.code).toBe('ERR_UNIGAP_CONFIG_MISMATCH');
    expect(err.differences).toEqual(['config.learningRate: saved 3, requested 1']);
    // Other prompts are another run too.
    const o = opts({ strategy: 'sft', rounds: 1 }, { runDir: dir, resume: true });
    const err2 = await runSelfImprovement({ ...o, trainPrompts: o.trainPrompts.slice(1) }).catch((e) => e);
    expect(err2).toBeInstanceOf(ConfigMismatchError);
    expect(err2.message).toMatch(/trainPrompts/);
    // A fresh (non-resume) run never overwrites a run directory.
    await expect(runSelfImprovement(opts({ strategy: 'sft', rounds: 1 }, { runDir: dir }))).rejects.toThrow(
      /already holds a run/,
    );
  });

  it('never uses a truncated or modified file: typed CorruptStateError', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 2 };
    const dir = await tempDir();
    await runSelfImprovement(opts(config, { runDir: dir }));
    const files = {
      state: join(dir, 'state.json'),
      metrics: join(dir, 'metrics.jsonl'),
      pool: join(
        dir,
        (await readdir(dir)).find((f) => f.startsWith('pool-'))!,
      ),
      bin: join(
        dir,
        'checkpoints',
        (await readdir(join(dir, 'checkpoints'))).find((f) => f.endsWith('.bin'))!,
      ),
    };
    for (const [name, path] of Object.entries(files)) {
      const orig = await readFile(path);
      for (const damage of ['truncate', 'flip'] as const) {
        const bad = Buffer.from(orig);
        if (damage === 'flip') bad[Math.floor(bad.length / 2)] ^= 0x01;
        await writeFile(path, damage === 'truncate' ? bad.subarray(0, Math.floor(bad.length * 0.7)) : bad);
        const err = await runSelfImprovement(opts(config, { runDir: dir, resume: true })).catch((e) => e);
        expect(err, `${name} ${damage}`).toBeInstanceOf(CorruptStateError);
        expect(err.code).toBe('ERR_UNIGAP_CORRUPT_STATE');
        expect(err.path).toBe(path);
      }
      await writeFile(path, orig);
    }
    // Restored files resume fine.
    await runSelfImprovement(opts(config, { runDir: dir, resume: true }));
  });
});

describe('runs: kill -9', () => {
  it('a process killed with SIGKILL at a random moment resumes to the uninterrupted result', async () => {
    const { spawn } = await import('node:child_process');
    const config: Partial<LoopConfig> = { strategy: 'c-sft', rounds: 5, triggerRound: 2, seed: 11 };
    const ref = await uninterrupted(config);
    const rand = rngFor(77, 0, 'kill-test');
    const child = join(import.meta.dirname, 'child-run.ts');
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = await tempDir();
      const p = spawn(
        process.execPath,
        ['--import', 'tsx', child, dir, JSON.stringify({ ...BASE, ...config }), 'fresh'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      // Wait until at least round 0 is committed, then kill at a random moment.
      const t0 = Date.now();
      while (Date.now() - t0 < 30_000) {
        const has = await readFile(join(dir, 'state.json')).then(
          () => true,
          () => false,
        );
        if (has || p.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 400)));
      const finished = p.exitCode !== null;
      p.kill('SIGKILL');
      await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.on('exit', r)));
      if (finished) {
        expect(out).toContain('done');
        continue;
      }
      expect(p.signalCode).toBe('SIGKILL');
      const model = new ToyModel();
      const r = await runSelfImprovement(opts(config, { model, runDir: dir, resume: true }));
      expect(r).toEqual(ref.r);
      expect(Array.from(model.W)).toEqual(Array.from(ref.W));
      return;
    }
    throw new Error('the child finished before every kill; slow it down');
  });
});

describe('runs: resume keeps the understanding win rate', () => {
  it('a resumed run reports the same win rates as an uninterrupted one (round-0 verdicts are stored)', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 4 };
    const ref = await uninterrupted(config);
    const wins = (r: RunResult) => r.rounds.map((m) => m.understandingWinRate);
    expect(wins(ref.r)[0]).toEqual({ value: 0.5, count: 0, total: 0 });
    expect(wins(ref.r).some((w) => w && w.total > 0)).toBe(true);
    expect(await readFile(join(ref.dir, 'fixed-probe-base.json'), 'utf8')).toMatch(/^\{"sha256":"/);
    // Interrupt inside round 2 (rounds 0 and 1 committed), and once more after resuming.
    for (const stop of [2, 3]) {
      const dir = await tempDir();
      expect(await stopInRound(config, dir, stop)).toBeGreaterThan(0);
      const r = await runSelfImprovement(opts(config, { runDir: dir, resume: true }));
      expect(wins(r)).toEqual(wins(ref.r));
      const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      expect(lines.map((l) => JSON.parse(l).understandingWinRate)).toEqual(wins(ref.r));
    }
  });

  it('an older run directory without the round-0 verdicts still resumes: the win rate is unavailable (null)', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 3 };
    const ref = await uninterrupted(config);
    const dir = await tempDir();
    expect(await stopInRound(config, dir, 2)).toBeGreaterThan(0);
    // Make it look like a run directory written before the verdicts were stored.
    const statePath = join(dir, 'state.json');
    const rec = unseal<Record<string, unknown>>(statePath, await readFile(statePath, 'utf8'));
    expect(rec.fixedProbeBase).toBeTruthy();
    delete rec.fixedProbeBase;
    await writeFile(statePath, seal(rec));
    await rm(join(dir, 'fixed-probe-base.json'));
    const r = await runSelfImprovement(opts(config, { runDir: dir, resume: true }));
    // Rounds 0 and 1 were committed with their win rates; the rounds run after the resume cannot compute one.
    expect(r.rounds.map((m) => m.understandingWinRate)).toEqual([
      ...ref.r.rounds.slice(0, 2).map((m) => m.understandingWinRate),
      null,
      null,
    ]);
    // Every other metric is unchanged.
    expect(r.rounds.map(({ understandingWinRate: _, ...m }) => m)).toEqual(
      ref.r.rounds.map(({ understandingWinRate: _, ...m }) => m),
    );
    expect(r.guardEvents).toEqual(ref.r.guardEvents);
  });

  it('a damaged round-0 verdicts file is a CorruptStateError', async () => {
    const config: Partial<LoopConfig> = { strategy: 'sft', rounds: 1 };
    const dir = await tempDir();
    await runSelfImprovement(opts(config, { runDir: dir }));
    const path = join(dir, 'fixed-probe-base.json');
    const orig = await readFile(path, 'utf8');
    const verdicts = unseal<boolean[]>(path, orig);
    // One verdict flipped, resealed: a valid sealed file that no longer matches state.json.
    await writeFile(path, seal([!verdicts[0], ...verdicts.slice(1)]));
    const err = await runSelfImprovement(opts(config, { runDir: dir, resume: true })).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptStateError);
    expect(err.path).toBe(path);
    // A list of another length than the fixed set, or not booleans, is refused when decoded.
    expect(() => decodeFixedProbeBase(path, verdicts.slice(1), verdicts.length)).toThrow(CorruptStateError);
    expect(() => decodeFixedProbeBase(path, verdicts.map(Number), verdicts.length)).toThrow(CorruptStateError);
    expect(decodeFixedProbeBase(path, verdicts, verdicts.length)).toEqual(verdicts);
    await writeFile(path, orig);
    await runSelfImprovement(opts(config, { runDir: dir, resume: true }));
  });
});
