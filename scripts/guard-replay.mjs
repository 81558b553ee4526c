#!/usr/bin/env node
/**
 * Replay the loop's co-degradation guard over finished run directories (config.json + metrics.jsonl),
 * with the built guard (dist/), once with config.guardPrecision as given and once with it off: where each
 * rule would have stopped the run. The guard reads only the round metrics, and training does not depend
 * on it until it trips, so replaying a run's unguarded metrics gives the guarded run's decisions up to
 * its trip. For the output of `scripts/world-experiments.mjs` (a ROOT/NAME-guard directory per guarded
 * run, plus ROOT/NAME-noguard when the guard stopped it) it replays the unguarded view of every run.
 *
 *   npx tsc -p tsconfig.build.json && node scripts/guard-replay.mjs ROOT... [--json]
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const { guardObservation } = await import('../dist/loop/run.js');
const { guardCheck } = await import('../dist/loop/guard.js');

const args = process.argv.slice(2);
const json = args.includes('--json');
const roots = args.filter((a) => !a.startsWith('--'));
if (!roots.length) throw new Error('usage: node scripts/guard-replay.mjs ROOT... [--json]');

/** The guard's decisions over a run's rounds: the first trip (if any) and the rounds with a warning. */
function replay(config, metrics) {
  let best = null;
  const warnings = [];
  for (const m of metrics) {
    const obs = guardObservation(config, m.round, m);
    if (!obs) return { trip: null, warnings };
    const d = guardCheck(best, obs, config.guardTolerance, config.guardZ);
    if (d.tripped) return { trip: { round: m.round, rolledBackTo: best.round, reason: d.reason }, warnings };
    if (d.warning) warnings.push({ round: m.round, warning: d.warning });
    best = d.best;
  }
  return { trip: null, warnings };
}

const out = [];
for (const root of roots) {
  const names = readdirSync(root).filter((n) => existsSync(join(root, n, 'config.json')));
  const guarded = names.filter((n) => n.endsWith('-guard'));
  for (const name of guarded.length ? guarded : names) {
    const noguard = join(root, name.replace(/-guard$/, '-noguard'));
    const dir = name.endsWith('-guard') && existsSync(noguard) ? noguard : join(root, name);
    const { config } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const run = name.replace(/-guard$/, '');
    const withPrecision = replay({ ...config, guardPrecision: config.guardPrecision ?? true }, metrics);
    const without = replay({ ...config, guardPrecision: false }, metrics);
    out.push({ run, rounds: metrics.length - 1, withPrecision, without });
  }
}
if (json) console.log(JSON.stringify(out, null, 2));
else {
  const cell = (r) =>
    `${r.trip ? `trip r${r.trip.round} (→ r${r.trip.rolledBackTo})` : 'no trip'}${r.warnings.length ? `; warnings r${r.warnings.map((w) => w.round).join(',')}` : ''}`;
  for (const r of out) console.log(`${r.run}: with precision ${cell(r.withPrecision)}; without ${cell(r.without)}`);
  const n = (k) => out.filter((r) => r[k].trip).length;
  console.log(`trips: with precision ${n('withPrecision')}/${out.length}, without ${n('without')}/${out.length}`);
}
