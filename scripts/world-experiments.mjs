#!/usr/bin/env node
/**
 * The main job's experiments (issue 7 "What it must show"), serially, on the built package (dist/):
 * for loop seeds 0, 1, 2 (pretraining seed 0, the cached default model), `unigap run` defaults
 * (5 rounds, N = 8): sft and clo clean and with --corrupt 0.5 / 0.75 / 1, guard on; every run the guard
 * stopped again with --no-guard to see every round (a run it did not stop is its own --no-guard run);
 * clean and --corrupt 0.5 also with the old guard signals (own-sample understanding, probe generation
 * only) for comparison. Then the false-positive corruption (`--corrupt-mode accept`: a share P of the
 * self-REJECTED training samples marked accepted): sft and clo at --corrupt 0.5 and 1, guard on and
 * --no-guard (always run, so every round is seen).
 *
 *   npx tsc -p tsconfig.build.json && node scripts/world-experiments.mjs [--seeds 0,1,2] [--out DIR] [--set all|flip|accept]
 *
 * --set flip: only the first group (clean and --corrupt-mode flip); --set accept: only the accept group.
 *
 * Writes DIR/results.json (every run's per-round metrics, test split before/after, guard events) and
 * prints the markdown tables of bench/results/world-experiments.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { runWorldJob } = await import('../dist/world/job.js');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const seeds = arg('--seeds', '0,1,2').split(',').map(Number);
const outRoot = arg('--out', '/tmp/unigap-world-experiments');
const set = arg('--set', 'all');
if (!['all', 'flip', 'accept'].includes(set)) throw new Error(`--set must be all, flip or accept, got ${set}`);
rmSync(outRoot, { recursive: true, force: true });
mkdirSync(outRoot, { recursive: true });

const v = (r) => (r ? r.value : null);
function summarize(name, res, seconds) {
  const rounds = res.result.rounds.map((m) => ({
    round: m.round,
    trainGen: v(m.external?.generationAccuracy),
    probeGen: v(m.probe?.generationAccuracy),
    fixedUnd: v(m.fixedProbe?.understandingAccuracy),
    fixedFP: v(m.fixedProbe?.falsePositiveRate),
    fixedFN: v(m.fixedProbe?.falseNegativeRate),
    ownUnd: v(m.external?.understandingAccuracy),
    probeOwnUnd: v(m.probe?.understandingAccuracy),
    nonunified: v(m.nonunified),
    probeNonunified: v(m.probe?.nonunified),
    falsePositive: v(m.external?.falsePositiveRate),
    sftExamples: m.train.sftExamples,
    tripped: m.guard?.tripped ?? null,
    warning: m.guard?.warning ?? null,
  }));
  const t = res.report.test;
  return {
    name,
    seconds,
    rounds,
    test: {
      before: {
        gen: t.before.generationAccuracy,
        und: t.before.understandingAccuracy,
        nonunified: t.before.nonunified,
      },
      after: { gen: t.after.generationAccuracy, und: t.after.understandingAccuracy, nonunified: t.after.nonunified },
    },
    judgeFixedSet: {
      train: [res.report.judgeFixedSet.train.before.accuracy, res.report.judgeFixedSet.train.after.accuracy],
      test: [res.report.judgeFixedSet.test.before.accuracy, res.report.judgeFixedSet.test.after.accuracy],
    },
    guardEvents: res.result.guardEvents,
  };
}

// The guard as it was before the fixed probe set: own-sample probe understanding, probe generation only.
const OLD_GUARD = { guardUnderstanding: 'own', guardTrainGeneration: false };

const results = [];
async function runOne({ strategy, seed, corrupt, mode, variant }) {
  const guard = variant !== 'noguard';
  const tag = mode === 'accept' ? `${strategy}-accept${corrupt}-s${seed}` : `${strategy}-c${corrupt}-s${seed}`;
  const name = `${tag}-${variant}`;
  const fields = { strategy, seed, corrupt, mode, guard, variant };
  // A flip run the guard did not stop is its own --no-guard run (same seed, same rounds).
  if (!guard && mode === 'flip') {
    const g = results.find((r) => r.name === `${tag}-guard`);
    if (g && !g.guardEvents.length) {
      results.push({ ...g, ...fields, name, sameAs: g.name });
      return;
    }
  }
  const t0 = Date.now();
  const loop = { ...(variant === 'oldguard' ? OLD_GUARD : {}), corruptMode: mode };
  const res = await runWorldJob({ strategy, seed, corrupt, guard, loop, out: join(outRoot, name) });
  const s = summarize(name, res, (Date.now() - t0) / 1000);
  Object.assign(s, fields);
  results.push(s);
  const last = s.rounds.at(-1);
  console.error(
    `${name}: ${s.seconds.toFixed(1)} s; final train gen ${(100 * last.trainGen).toFixed(1)}%, NU ${(100 * last.nonunified).toFixed(1)}%` +
      (s.guardEvents.length ? `; guard r${s.guardEvents[0].round}` : ''),
  );
}

if (set !== 'accept')
  for (const seed of seeds)
    for (const strategy of ['sft', 'clo'])
      for (const corrupt of [0, 0.5, 0.75, 1])
        for (const variant of corrupt <= 0.5 ? ['guard', 'noguard', 'oldguard'] : ['guard', 'noguard'])
          await runOne({ strategy, seed, corrupt, mode: 'flip', variant });
if (set !== 'flip')
  for (const seed of seeds)
    for (const strategy of ['sft', 'clo'])
      for (const corrupt of [0.5, 1])
        for (const variant of ['guard', 'noguard']) await runOne({ strategy, seed, corrupt, mode: 'accept', variant });
writeFileSync(join(outRoot, 'results.json'), JSON.stringify({ seeds, results }, null, 2) + '\n');

// --- markdown tables ---
const p = (x) => (x === null || x === undefined ? '-' : (100 * x).toFixed(1));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cols = [
  ['train gen', (r) => r.trainGen],
  ['probe gen', (r) => r.probeGen],
  ['und fixed', (r) => r.fixedUnd],
  ['fixed FP', (r) => r.fixedFP],
  ['fixed FN', (r) => r.fixedFN],
  ['und own', (r) => r.ownUnd],
  ['Nonunified', (r) => r.nonunified],
];
// The accept group also shows how many wrong images the judge passes on its own samples.
const acceptCols = [...cols, ['own FP (wrong among accepted)', (r) => r.falsePositive]];
const VARIANT_LABEL = { guard: '', noguard: ' --no-guard', oldguard: ' (old guard)' };
const runLabel = (g) =>
  `${g.strategy}${g.corrupt ? ` --corrupt ${g.corrupt}` : ''}${g.mode === 'accept' ? ' --corrupt-mode accept' : ''}${VARIANT_LABEL[g.variant]}`;
const inGroup = (g) => (r) =>
  r.strategy === g.strategy && r.corrupt === g.corrupt && r.mode === g.mode && r.variant === g.variant;

function guardCell(r) {
  if (r.guardEvents.length)
    return `r${r.guardEvents[0].round} → r${r.guardEvents[0].rolledBackTo}: ${r.guardEvents[0].reason
      .replace(/^co-degradation at round \d+: /, '')
      .replace(/\(tolerance.*$/, '')
      .trim()}`;
  if (!r.guard) return 'off';
  const w = r.rounds.filter((m) => m.warning);
  return w.length
    ? `none; warnings r${w.map((m) => m.round).join(',')} (${w[0].warning.replace(/^.*not stopped\): /, '').replace(/ vs best round.*$/, '')})`
    : 'none';
}

function tables(groups, rs0, columns, perRound) {
  const lines = [];
  lines.push('### Means over seeds (round 0 → final round)');
  lines.push('');
  lines.push(`| run | ${columns.map((c) => c[0]).join(' | ')} | test gen (before → after) | guard trips |`);
  lines.push(`|---|${columns.map(() => '---').join('|')}|---|---|`);
  for (const g of groups) {
    const rs = rs0.filter(inGroup(g));
    if (!rs.length) continue;
    const cells = columns.map(
      ([, f]) => `${p(mean(rs.map((r) => f(r.rounds[0]))))} → ${p(mean(rs.map((r) => f(r.rounds.at(-1)))))}`,
    );
    const tg = `${p(mean(rs.map((r) => r.test.before.gen)))} → ${p(mean(rs.map((r) => r.test.after.gen)))}`;
    const trips = rs.filter((r) => r.guardEvents.length).length;
    lines.push(
      `| ${runLabel(g)} | ${cells.join(' | ')} | ${tg} | ${g.variant !== 'noguard' ? `${trips}/${rs.length}` : '-'} |`,
    );
  }
  lines.push('');
  lines.push('### Per seed');
  lines.push('');
  lines.push(`| run | seed | ${columns.map((c) => c[0]).join(' | ')} | test gen | guard | s |`);
  lines.push(`|---|---|${columns.map(() => '---').join('|')}|---|---|---|`);
  for (const r of rs0) {
    if (r.sameAs) continue;
    const cells = columns.map(([, f]) => `${p(f(r.rounds[0]))} → ${p(f(r.rounds.at(-1)))}`);
    lines.push(
      `| ${r.name} | ${r.seed} | ${cells.join(' | ')} | ${p(r.test.before.gen)} → ${p(r.test.after.gen)} | ${guardCell(r)} | ${r.seconds.toFixed(0)} |`,
    );
  }
  lines.push('');
  lines.push(`### Per round, every round run without the guard (${perRound.map((c) => c[0]).join(' / ')}, %)`);
  lines.push('');
  for (const r of rs0) {
    if (r.guard) continue;
    lines.push(
      `- ${r.name.replace(/-noguard$/, '')}: ${r.rounds.map((m) => `r${m.round} ${perRound.map(([, f]) => p(f(m))).join('/')}`).join(', ')}`,
    );
  }
  lines.push('');
  lines.push(
    '### Understanding on fixed constructed pairs of train / test prompts (measureJudge, 16 per prompt), before → after',
  );
  lines.push('');
  lines.push('| run | train prompts (960 pairs) | test prompts (480 pairs) |');
  lines.push('|---|---|---|');
  for (const g of groups) {
    if (g.variant !== 'noguard') continue;
    const rs = rs0.filter(inGroup(g));
    if (!rs.length) continue;
    const ba = (k) =>
      `${p(mean(rs.map((r) => r.judgeFixedSet[k][0])))} → ${p(mean(rs.map((r) => r.judgeFixedSet[k][1])))}`;
    lines.push(`| ${runLabel({ ...g, variant: 'guard' })} (mean) | ${ba('train')} | ${ba('test')} |`);
  }
  return lines;
}

const lines = [];
lines.push(
  `Seeds ${seeds.join(', ')}; values in %. Round 0 = baseline; "final" = last round run (after a guard trip: the tripping round).`,
);
lines.push('');
const flipGroups = [];
for (const corrupt of [0, 0.5, 0.75, 1])
  for (const strategy of ['sft', 'clo'])
    for (const variant of ['guard', 'noguard', 'oldguard'])
      flipGroups.push({ strategy, corrupt, mode: 'flip', variant });
const flipResults = results.filter((r) => r.mode === 'flip');
if (flipResults.length) {
  const perRound = [
    ['train gen', (m) => m.trainGen],
    ['und fixed', (m) => m.fixedUnd],
    ['Nonunified', (m) => m.nonunified],
  ];
  lines.push(...tables(flipGroups, flipResults, cols, perRound));
  lines.push('');
}
const acceptGroups = [];
for (const corrupt of [0.5, 1])
  for (const strategy of ['sft', 'clo'])
    for (const variant of ['guard', 'noguard']) acceptGroups.push({ strategy, corrupt, mode: 'accept', variant });
const acceptResults = results.filter((r) => r.mode === 'accept');
if (acceptResults.length) {
  lines.push('## --corrupt-mode accept (false positives enter training)');
  lines.push('');
  const perRound = [
    ['train gen', (m) => m.trainGen],
    ['probe gen', (m) => m.probeGen],
    ['und fixed', (m) => m.fixedUnd],
    ['und own', (m) => m.ownUnd],
    ['own FP', (m) => m.falsePositive],
    ['Nonunified', (m) => m.nonunified],
  ];
  lines.push(...tables(acceptGroups, acceptResults, acceptCols, perRound));
  lines.push('');
  lines.push('SFT examples per round (self-accepted + corrupted-to-accepted samples trained on), --no-guard runs:');
  lines.push('');
  for (const r of acceptResults.filter((x) => !x.guard))
    lines.push(
      `- ${r.name.replace(/-noguard$/, '')}: ${r.rounds.map((m) => `r${m.round} ${m.sftExamples}`).join(', ')}`,
    );
}
console.log(lines.join('\n'));
