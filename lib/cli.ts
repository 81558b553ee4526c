#!/usr/bin/env node
/**
 * The `unigap` command.
 *   unigap info                  the backend report (ISA tier, CUDA, threads)
 *   unigap run [options]         the main job: self-improvement on the embedded world
 *   unigap compare [options]     every strategy on the same seed, side by side
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';

import { backendInfo } from './index.js';
import { CORRUPT_MODES } from './loop/config.js';
import { atomicWrite } from './loop/state.js';
import type { CorruptMode, LoopEvent, Strategy } from './loop/types.js';
import { DEFAULT_PRETRAIN_CONFIG } from './world/pretrain.js';
import { WORLD_LOOP_DEFAULTS, WORLD_STRATEGIES, runWorldJob, type WorldJobResult } from './world/job.js';
import { formatRoundTable, renderCompareHtml, type CompareEntry } from './world/report.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return '0.0.0';
  }
}

function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}].`,
      );
    return n;
  };
}

function numArg(min: number, max: number, minExclusive = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (minExclusive && n === min))
      throw new InvalidArgumentError(`expected a number in ${minExclusive ? '(' : '['}${min}, ${max}].`);
    return n;
  };
}

/** runs/<base>; a fresh runs/<base>-2, -3... when it exists (so `npm start` twice just works), unless resuming. */
function defaultOut(base: string, resume: boolean): string {
  const first = join('runs', base);
  if (resume || !existsSync(first)) return first;
  for (let i = 2; ; i++) if (!existsSync(`${first}-${i}`)) return `${first}-${i}`;
}

interface CommonOptions {
  rounds: number;
  samples: number;
  seed: number;
  corrupt: number;
  corruptMode: CorruptMode;
  lr: number;
  pretrainEpochs?: number;
  guard: boolean;
  progress: boolean;
}

/** Progress bars (cli-progress) fed by the loop's events; silent when stderr is not a terminal. */
function progressBars(enabled: boolean, label: string) {
  if (!enabled || !process.stderr.isTTY) return { onEvent: undefined, onPretrain: undefined, stop: () => {} };
  const multi = new cliProgress.MultiBar(
    {
      format: ' {stage} |{bar}| {value}/{total} {info}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  let rounds: cliProgress.SingleBar | null = null;
  let step: cliProgress.SingleBar | null = null;
  let pre: cliProgress.SingleBar | null = null;
  const pad = (s: string) => s.padEnd(16);
  return {
    onPretrain: (epoch: number, epochs: number) => {
      pre ??= multi.create(epochs, 0, { stage: pad('pretraining'), info: '(first run only; cached)' });
      pre.update(epoch);
    },
    onEvent: (e: LoopEvent) => {
      if (e.type === 'round-start') {
        rounds ??= multi.create(e.rounds + 1, 0, { stage: pad(`${label} rounds`), info: '' });
        step ??= multi.create(1, 0, { stage: pad(''), info: '' });
        rounds.update(e.round, { info: `round ${e.round}${e.round === 0 ? ' (baseline)' : ''}` });
      } else if (e.type === 'samples-judged' && step) {
        step.setTotal(e.total);
        step.update(e.done, { stage: pad(`sample+judge r${e.round}`), info: '' });
      } else if (e.type === 'train-step' && step) {
        step.setTotal(e.steps);
        step.update(e.step, { stage: pad(`train r${e.round}`), info: `loss ${e.loss.toFixed(3)}` });
      } else if (e.type === 'round-end' && rounds) {
        const m = e.metrics;
        const gen = m.external ? `gen ${(100 * m.external.generationAccuracy.value).toFixed(1)}% ` : '';
        rounds.update(e.round + 1, { info: `${gen}nonunified ${(100 * m.nonunified.value).toFixed(1)}%` });
      } else if (e.type === 'guard') {
        multi.log(`guard tripped at round ${e.round}: ${e.reason} (rolled back to round ${e.rolledBackTo})\n`);
      }
    },
    stop: () => multi.stop(),
  };
}

function summary(r: WorldJobResult): string {
  const rounds = r.result.rounds;
  const first = rounds[0];
  const last = rounds[rounds.length - 1];
  const f = (x: { value: number } | undefined) => (x ? `${(100 * x.value).toFixed(1)}%` : '-');
  const lines = [
    '',
    formatRoundTable(rounds),
    '',
    `baseline → final: generation ${f(first.external?.generationAccuracy)} → ${f(last.external?.generationAccuracy)}, ` +
      `understanding (own samples) ${f(first.external?.understandingAccuracy)} → ${f(last.external?.understandingAccuracy)}, ` +
      `understanding (fixed probe set) ${f(first.fixedProbe?.understandingAccuracy)} → ${f(last.fixedProbe?.understandingAccuracy)}, ` +
      `Nonunified ${f(first.nonunified)} → ${f(last.nonunified)}`,
  ];
  const t = r.report.test;
  const q = (v: number) => `${(100 * v).toFixed(1)}%`;
  lines.push(
    `held-out test split (final weights): generation ${q(t.before.generationAccuracy)} → ${q(t.after.generationAccuracy)}, ` +
      `understanding ${q(t.before.understandingAccuracy)} → ${q(t.after.understandingAccuracy)}, ` +
      `Nonunified ${q(t.before.nonunified)} → ${q(t.after.nonunified)}`,
  );
  for (const k of ['train', 'test'] as const) {
    const j = r.report.judgeFixedSet[k];
    lines.push(
      `understanding on a fixed labelled set (${j.before.items} ${k} pairs): accuracy ${q(j.before.accuracy)} → ${q(j.after.accuracy)}, ` +
        `false positives ${q(j.before.falsePositiveRate)} → ${q(j.after.falsePositiveRate)}`,
    );
  }
  if (r.result.guardEvents.length)
    for (const g of r.result.guardEvents)
      lines.push(`GUARD round ${g.round}: ${g.reason} (rolled back to round ${g.rolledBackTo})`);
  else lines.push('guard events: none');
  for (const m of rounds) if (m.guard?.warning) lines.push(`guard warning: ${m.guard.warning}`);
  lines.push(`report: ${r.reportHtml} (also report.json; per-round metrics in metrics.jsonl)`);
  return lines.join('\n');
}

function addCommon(cmd: Command): Command {
  return cmd
    .option('--rounds <R>', 'self-improvement rounds after the baseline', intArg(0, 1000), WORLD_LOOP_DEFAULTS.rounds)
    .option('--samples <N>', 'images sampled per prompt', intArg(1, 1000), WORLD_LOOP_DEFAULTS.samplesPerPrompt)
    .option('--seed <S>', 'loop seed (sampling, data order, corruption)', intArg(0), 0)
    .option('--corrupt <P>', 'share of training self-judgments corrupted (co-degradation experiment)', numArg(0, 1), 0)
    .addOption(
      new Option(
        '--corrupt-mode <mode>',
        "what --corrupt does: adversarial = the training label of a share P of all training samples becomes the opposite of the external judge's verdict (wrong images accepted, right images rejected: corrupted training labels; at P = 1 training sees exactly the wrong images); wrong = mark a share P of the self-rejected images the external judge finds wrong accepted (wrong images added as accepted); flip = flip accept/reject of a share P of all training self-judgments; accept = mark a share P of all self-rejected ones accepted",
      )
        .choices([...CORRUPT_MODES])
        .default('adversarial'),
    )
    .option('--lr <x>', 'learning rate (Adam)', numArg(0, 1, true), WORLD_LOOP_DEFAULTS.learningRate)
    .option(
      '--pretrain-epochs <E>',
      `pretraining epochs when no cached model matches (default ${DEFAULT_PRETRAIN_CONFIG.epochs}; fewer: a weaker model, for quick checks)`,
      intArg(1, 1000),
    )
    .option('--no-guard', 'disable the co-degradation guard (it rolls back and stops when external accuracy falls)')
    .option('--no-progress', 'no progress bars');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('unigap')
    .description("Turn a unified multimodal model's self-contradiction into a training signal.")
    .version(version())
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (s, write) => write(s.startsWith('error') ? `unigap: ${s}` : s) });

  program
    .command('info')
    .description('print the backend report (ISA tier, CUDA, threads)')
    .action(() => console.log(JSON.stringify(backendInfo(), null, 2)));

  addCommon(
    program
      .command('run')
      .description('run the self-improvement loop on the embedded world and write a report')
      .addOption(new Option('--strategy <name>', 'training strategy').choices([...WORLD_STRATEGIES]).default('clo'))
      .option('--out <DIR>', 'run directory (default runs/<strategy>-seed<S>, or a fresh -2, -3... if it exists)')
      .option('--resume', 'continue the run in --out', false),
  ).action(async (o: CommonOptions & { strategy: Strategy; out?: string; resume: boolean }) => {
    const out = o.out ?? defaultOut(`${o.strategy}-seed${o.seed}`, o.resume);
    console.log(
      `unigap run: strategy ${o.strategy}, ${o.rounds} rounds, N=${o.samples}, seed ${o.seed}, corrupt ${o.corrupt}${o.corrupt ? ` (${o.corruptMode})` : ''} → ${out}`,
    );
    const bars = progressBars(o.progress, o.strategy);
    let r: WorldJobResult;
    try {
      r = await runWorldJob({
        strategy: o.strategy,
        rounds: o.rounds,
        samples: o.samples,
        seed: o.seed,
        corrupt: o.corrupt,
        learningRate: o.lr,
        pretrain: o.pretrainEpochs ? { epochs: o.pretrainEpochs } : undefined,
        guard: o.guard,
        loop: { corruptMode: o.corruptMode },
        out,
        resume: o.resume,
        onEvent: bars.onEvent,
        onPretrain: bars.onPretrain,
      });
    } finally {
      bars.stop();
    }
    console.log(summary(r));
  });

  addCommon(
    program
      .command('compare')
      .description('run every strategy on the same seed and draw them side by side')
      .option('--out <DIR>', 'output directory (default runs/compare-seed<S>)'),
  ).action(async (o: CommonOptions & { out?: string }) => {
    const out = o.out ?? defaultOut(`compare-seed${o.seed}`, false);
    mkdirSync(out, { recursive: true });
    const entries: CompareEntry[] = [];
    const rows: string[][] = [];
    for (const strategy of WORLD_STRATEGIES) {
      console.log(`unigap compare: ${strategy} (${o.rounds} rounds, N=${o.samples}, seed ${o.seed})`);
      const bars = progressBars(o.progress, strategy);
      let r: WorldJobResult;
      try {
        r = await runWorldJob({
          strategy,
          rounds: o.rounds,
          samples: strategy === 'dpo' || strategy === 'c-dpo' ? Math.max(2, o.samples) : o.samples,
          seed: o.seed,
          corrupt: o.corrupt,
          learningRate: o.lr,
          pretrain: o.pretrainEpochs ? { epochs: o.pretrainEpochs } : undefined,
          guard: o.guard,
          loop: { corruptMode: o.corruptMode },
          out: join(out, strategy),
          onEvent: bars.onEvent,
          onPretrain: bars.onPretrain,
        });
      } finally {
        bars.stop();
      }
      const rs = r.result.rounds;
      const f = (x: { value: number } | undefined) => (x ? `${(100 * x.value).toFixed(1)}%` : '-');
      const a = rs[0];
      const b = rs[rs.length - 1];
      rows.push([
        strategy,
        `${f(a.external?.generationAccuracy)} → ${f(b.external?.generationAccuracy)}`,
        `${f(a.external?.understandingAccuracy)} → ${f(b.external?.understandingAccuracy)}`,
        `${f(a.fixedProbe?.understandingAccuracy)} → ${f(b.fixedProbe?.understandingAccuracy)}`,
        `${f(a.nonunified)} → ${f(b.nonunified)}`,
        `${f(a.probe?.generationAccuracy)} → ${f(b.probe?.generationAccuracy)}`,
        r.result.guardEvents.length ? `tripped r${r.result.guardEvents[0].round}` : 'none',
      ]);
      entries.push({ strategy, rounds: rs, guardEvents: r.result.guardEvents });
    }
    await atomicWrite(join(out, 'compare.json'), JSON.stringify({ seed: o.seed, entries }, null, 2) + '\n');
    await atomicWrite(join(out, 'compare.html'), renderCompareHtml(o.seed, entries));
    const head = ['strategy', 'gen acc', 'und acc (own)', 'und fixed', 'nonunified', 'probe gen', 'guard'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join('  ');
    console.log(['', line(head), ...rows.map(line), '', `report: ${join(out, 'compare.html')}`].join('\n'));
  });
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    console.error(`unigap: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
