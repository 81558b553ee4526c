/** The `unigap` command end to end: dist/cli.js in child processes, after a build. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { packageRoot } from '../lib/native.js';

const cli = join(packageRoot, 'dist', 'cli.js');
const work = mkdtempSync(join(tmpdir(), 'unigap-cli-'));
const env = { ...process.env, UNIGAP_CACHE_DIR: join(work, 'cache') };
// Small settings: a 1-epoch pretraining (cached after the first call), 4 samples per prompt.
const small = ['--samples', '4', '--pretrain-epochs', '1', '--no-progress'];

function unigap(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: work, env, encoding: 'utf8' });
}

function readJsonl(path: string): unknown[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

beforeAll(() => {
  try {
    execFileSync(
      process.execPath,
      [join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: packageRoot,
        stdio: 'pipe',
      },
    );
  } catch {
    // Type errors elsewhere in the tree still emit; the tests below fail if the CLI did not build.
  }
  expect(existsSync(cli)).toBe(true);
  // Pretrain the small model once so the parallel runs below share the cache.
  const r = unigap('run', '--rounds', '0', '--out', join(work, 'warmup'), ...small);
  expect(r.status, r.stderr).toBe(0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('unigap run', () => {
  it('runs 2 rounds end to end and writes parseable outputs', () => {
    const out = join(work, 'run2');
    const r = unigap('run', '--rounds', '2', '--seed', '3', '--out', out, ...small);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/round\s+gen acc\s+und acc\s+und fixed\s+nonunified\s+weak gen\s+weak und\s+false pos/);
    expect(r.stdout).toMatch(/understanding \(fixed probe set\) \d+\.\d% → \d+\.\d%/);
    expect(r.stdout).toMatch(/baseline → final: generation/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.config.strategy).toBe('clo');
    expect(report.config.seed).toBe(3);
    expect(report.config.samplesPerPrompt).toBe(4);
    expect(report.rounds[0].round).toBe(0);
    expect(report.rounds.length).toBe(report.stoppedEarly ? report.guardEvents[0].round + 1 : 3);
    for (const m of report.rounds) {
      expect(m.external.generationAccuracy.total).toBe(60 * 4);
      expect(m.nonunified.value).toBeGreaterThanOrEqual(0);
      expect(m.probe.generationAccuracy.total).toBeGreaterThan(0);
      // The fixed probe set: round-0 samples of the 30 probe prompts plus 16 constructed pairs each.
      expect(m.fixedProbe.items).toEqual({ model: 30 * 4, supplied: 30 * 16 });
      expect(m.fixedProbe.understandingAccuracy.total).toBe(30 * 20);
    }
    expect(existsSync(join(out, 'fixed-probe.json'))).toBe(true);
    expect(report.samples.before).toHaveLength(5);
    expect(report.test.before.samples).toBe(30 * 8);
    expect(report.test.after.generationAccuracy).toBeGreaterThanOrEqual(0);
    expect(r.stdout).toMatch(/held-out test split/);
    expect(report.judgeFixedSet.train.before.items).toBe(60 * 16);
    expect(report.judgeFixedSet.test.after.accuracy).toBeGreaterThan(0);
    expect(report.samples.after[0].images[0].tokens).toHaveLength(16);
    const metrics = readJsonl(join(out, 'metrics.jsonl'));
    expect(metrics).toEqual(report.rounds);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThan(40); // 2 charts + 40 sample images
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained
  });

  it('--corrupt-mode reaches the loop config (default adversarial; accept on request)', () => {
    const acc = join(work, 'corrupt-accept');
    const r = unigap(
      'run',
      '--strategy',
      'sft',
      '--rounds',
      '1',
      '--corrupt',
      '0.5',
      '--corrupt-mode',
      'accept',
      '--out',
      acc,
      ...small,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/corrupt 0\.5 \(accept\)/);
    const report = JSON.parse(readFileSync(join(acc, 'report.json'), 'utf8'));
    expect(report.config).toMatchObject({ corrupt: 0.5, corruptMode: 'accept' });
    const dflt = join(work, 'corrupt-default');
    expect(unigap('run', '--rounds', '0', '--corrupt', '0.5', '--out', dflt, ...small).status).toBe(0);
    expect(JSON.parse(readFileSync(join(dflt, 'report.json'), 'utf8')).config.corruptMode).toBe('adversarial');
  });

  it('refuses to overwrite a run without --resume', () => {
    const out = join(work, 'twice');
    expect(unigap('run', '--rounds', '0', '--out', out, ...small).status).toBe(0);
    const r = unigap('run', '--rounds', '0', '--out', out, ...small);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/already holds a run/);
  });

  it('without --out, a second run gets a fresh directory', () => {
    expect(unigap('run', '--rounds', '0', '--seed', '7', ...small).status).toBe(0);
    expect(unigap('run', '--rounds', '0', '--seed', '7', ...small).status).toBe(0);
    expect(existsSync(join(work, 'runs', 'clo-seed7', 'report.json'))).toBe(true);
    expect(existsSync(join(work, 'runs', 'clo-seed7-2', 'report.json'))).toBe(true);
  });

  it('--resume after an interrupted run ends where an uninterrupted run does', async () => {
    const args = ['run', '--strategy', 'sft', '--rounds', '6', '--seed', '5', '--no-guard', ...small];
    const ref = join(work, 'ref');
    expect(unigap(...args, '--out', ref).status).toBe(0);
    const out = join(work, 'interrupted');
    const child = spawn(process.execPath, [cli, ...args, '--out', out], { cwd: work, env, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | number | null>((res) =>
      child.on('exit', (code, signal) => res(signal ?? code)),
    );
    // Kill it (SIGKILL: no cleanup) as soon as round 1 is committed.
    const metrics = join(out, 'metrics.jsonl');
    while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').filter(Boolean).length >= 2)) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    const how = await exited;
    const refReport = JSON.parse(readFileSync(join(ref, 'report.json'), 'utf8'));
    if (how !== 'SIGKILL' || refReport.rounds.length <= 2) return expect.fail('the run was not interrupted mid-way');
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    const r = unigap(...args, '--out', out, '--resume');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.rounds).toEqual(refReport.rounds);
    expect(report.guardEvents).toEqual(refReport.guardEvents);
    expect(report.samples.after).toEqual(refReport.samples.after);
  });
});

describe('unigap flags', () => {
  it.each([
    [['run', '--strategy', 'ppo'], /Allowed choices are sft, dpo, c-sft, c-dpo, clo/],
    [['run', '--rounds', '-1'], /--rounds <R>.*expected an integer/],
    [['run', '--rounds', 'two'], /--rounds <R>.*expected an integer/],
    [['run', '--samples', '0'], /--samples <N>.*expected an integer in \[1/],
    [['run', '--corrupt', '1.5'], /--corrupt <P>.*expected a number in \[0, 1\]/],
    [['run', '--corrupt-mode', 'acept'], /--corrupt-mode <mode>.*Allowed choices are flip, accept, wrong, adversarial/],
    [['run', '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j → clear message, non-zero exit', (args, message) => {
    const r = unigap(...args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^unigap: error/);
  });

  it('--help lists every run option', () => {
    const r = unigap('run', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /--corrupt-mode <mode>[\s\S]*choices:\s+"flip",\s+"accept",\s+"wrong",\s+"adversarial",\s+default:\s+"adversarial"/,
    );
    for (const f of [
      '--strategy',
      '--rounds',
      '--samples',
      '--seed',
      '--corrupt',
      '--corrupt-mode',
      '--out',
      '--resume',
      '--no-guard',
    ])
      expect(r.stdout).toContain(f);
  });

  it('info prints the backend report', () => {
    const r = unigap('info');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('cpu');
  });
});
