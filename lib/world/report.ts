/**
 * Reports of the main job: the per-round table for the terminal and a self-contained report.html
 * (inline SVG charts and sample images, no scripts, no external resources).
 */
import type { LoopConfig, Prompt, Rate, RoundMetrics, RunResult } from '../loop/types.js';
import type { WorldModelConfig } from './model.js';
import type { GapMeasurement, PretrainConfig, measureJudge } from './pretrain.js';

type JudgeMeasurement = ReturnType<typeof measureJudge>;
import { renderSvg } from './render.js';

export interface SampleRow {
  prompt: Prompt;
  images: { tokens: number[]; external: boolean; pYes: number }[];
}

export interface WorldReport {
  tool: string;
  world: {
    version: number;
    model: WorldModelConfig;
    pretrain: PretrainConfig;
    pretrainedFromCache: boolean;
    splits: { train: number; probe: number; test: number };
  };
  config: LoopConfig;
  rounds: RoundMetrics[];
  guardEvents: RunResult['guardEvents'];
  stoppedEarly: boolean;
  samples: { before: SampleRow[]; after: SampleRow[] };
  /** The held-out test split (never trained on, never seen by the loop), before and after: final weights. */
  test: { before: GapMeasurement; after: GapMeasurement };
  /** The understanding branch on fixed labelled sets of train / test prompts (isolates the judge from the images). */
  judgeFixedSet: Record<'train' | 'test', { before: JudgeMeasurement; after: JudgeMeasurement }>;
  seconds: number;
}

const pct = (r: { value: number } | undefined) => (r ? `${(100 * r.value).toFixed(1)}%` : '-');
/** A rate with its counts, e.g. "57.1% (12/21)"; null: unavailable ('n/a'), undefined: not measured ('-'). */
const pctOf = (r: Rate | null | undefined) =>
  r === null ? 'n/a' : r === undefined ? '-' : `${(100 * r.value).toFixed(1)}% (${r.count}/${r.total})`;

/**
 * The per-round table (plain text, aligned columns). 'und acc' / 'probe und' are own-sample understanding
 * accuracy (agreement with the validator on this round's own images: moves with generation too); 'und fixed'
 * is understanding accuracy on the loop's fixed labelled probe set (same pairs every round: only the judge
 * moves it; the guard watches it); 'und win' is the paper's understanding win rate on that set (over the items
 * whose self-judgment differs from round 0's, the share now agreeing with the label; round 0: 50 % by
 * construction, 0/0; 'n/a' for a resumed run directory made before round 0's verdicts were stored).
 */
export function formatRoundTable(rounds: readonly RoundMetrics[]): string {
  const head = [
    'round',
    'gen acc',
    'und acc',
    'und fixed',
    'nonunified',
    'weak gen',
    'weak und',
    'false pos',
    'und win',
    'probe gen',
    'probe und',
    'train n',
    'guard',
  ];
  const rows = rounds.map((m) => [
    String(m.round),
    pct(m.external?.generationAccuracy),
    pct(m.external?.understandingAccuracy),
    pct(m.fixedProbe?.understandingAccuracy),
    pct(m.nonunified),
    pct(m.external?.blame.weakGeneration),
    pct(m.external?.blame.weakUnderstanding),
    pct(m.external?.falsePositiveRate),
    pctOf(m.understandingWinRate),
    pct(m.probe?.generationAccuracy),
    pct(m.probe?.understandingAccuracy),
    String(m.train.sftExamples + m.train.dpoPairs),
    m.guard?.tripped ? 'TRIPPED' : m.guard?.warning ? 'warn' : m.guard ? 'ok' : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface ChartSeries {
  name: string;
  color: string;
  /** One value in [0, 1] per x (null: no point). */
  values: (number | null)[];
  dashed?: boolean;
}

/** A line chart (inline SVG) of rates per round, y in 0..100 %. `marks` are x positions drawn as red rules. */
export function lineChartSvg(title: string, series: ChartSeries[], marks: number[] = []): string {
  const W = 520;
  const H = 260;
  const L = 44;
  const R = 150;
  const T = 28;
  const B = 34;
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const x = (i: number) => L + (n === 1 ? 0 : (i / (n - 1)) * (W - L - R));
  const y = (v: number) => T + (1 - v) * (H - T - B);
  const p: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
    `<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = k / 4;
    p.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    p.push(`<text x="${L - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v * 100}%</text>`);
  }
  for (let i = 0; i < n; i++)
    p.push(`<text x="${x(i)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${i}</text>`);
  p.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" font-size="11" text-anchor="middle">round</text>`);
  for (const m of marks)
    p.push(`<line x1="${x(m)}" x2="${x(m)}" y1="${T}" y2="${H - B}" stroke="#d22" stroke-dasharray="4 3"/>`);
  series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`));
    const segs = pts.filter((q): q is string => q !== null);
    if (segs.length)
      p.push(
        `<polyline points="${segs.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    for (const q of segs) {
      const [cx, cy] = q.split(',');
      p.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${s.color}"/>`);
    }
    const ly = T + 14 + si * 18;
    p.push(
      `<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    p.push(`<text x="${W - R + 38}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  p.push('</svg>');
  return p.join('');
}

function samplesHtml(rows: SampleRow[]): string {
  return rows
    .map(
      (r) =>
        `<div class="row"><div class="prompt"><b>${esc(r.prompt.category)}</b><br>${esc(r.prompt.text)}</div>` +
        r.images
          .map(
            (im) =>
              `<figure>${renderSvg(im.tokens, { cellSize: 18, border: im.external ? '#2a2' : '#d22', title: `${im.external ? 'correct' : 'wrong'}; self-judged p_yes ${im.pYes.toFixed(2)}` })}<figcaption>${im.external ? '✓' : '✗'} p=${im.pYes.toFixed(2)}</figcaption></figure>`,
          )
          .join('') +
        '</div>',
    )
    .join('\n');
}

/** The self-contained report.html. */
export function renderReportHtml(r: WorldReport): string {
  const rounds = r.rounds;
  const v = (f: (m: RoundMetrics) => { value: number } | undefined) => rounds.map((m) => f(m)?.value ?? null);
  const marks = r.guardEvents.map((g) => g.round);
  const train = lineChartSvg(
    'Training prompts (the model’s own samples)',
    [
      { name: 'generation acc.', color: '#1f6fd1', values: v((m) => m.external?.generationAccuracy) },
      { name: 'und. acc. (own)', color: '#2a9d4a', values: v((m) => m.external?.understandingAccuracy) },
      { name: 'Nonunified', color: '#d2702a', values: v((m) => m.nonunified) },
      { name: 'false positives', color: '#888', values: v((m) => m.external?.falsePositiveRate), dashed: true },
    ],
    marks,
  );
  const probe = lineChartSvg(
    'Held-out probe prompts',
    [
      { name: 'generation acc.', color: '#1f6fd1', values: v((m) => m.probe?.generationAccuracy) },
      { name: 'und. acc. (own)', color: '#2a9d4a', values: v((m) => m.probe?.understandingAccuracy), dashed: true },
      { name: 'und. acc. (fixed set)', color: '#0b6b2a', values: v((m) => m.fixedProbe?.understandingAccuracy) },
      { name: 'Nonunified', color: '#d2702a', values: v((m) => m.probe?.nonunified) },
    ],
    marks,
  );
  const c = r.config;
  const guard = r.guardEvents.length
    ? `<p class="guard">Guard tripped: ${r.guardEvents.map((g) => `round ${g.round}: ${esc(g.reason)} (rolled back to round ${g.rolledBackTo})`).join('; ')}</p>`
    : '<p>No guard events.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unigap run: ${esc(c.strategy)}, seed ${c.seed}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th{background:#f6f6f6}.charts{display:flex;flex-wrap:wrap;gap:16px}.guard{color:#b00;font-weight:bold}
.row{display:flex;align-items:center;gap:8px;margin:6px 0}.prompt{width:260px;font-size:12px}
figure{margin:0;text-align:center;font-size:11px}code{background:#f4f4f4;padding:1px 4px}
</style></head><body>
<h1>unigap self-improvement on the embedded world</h1>
<p>Strategy <code>${esc(c.strategy)}</code>, ${c.rounds} rounds, N = ${c.samplesPerPrompt} samples per prompt, seed ${c.seed},
corrupt ${c.corrupt}, learning rate ${c.learningRate}. ${r.world.splits.train} training prompts, ${r.world.splits.probe} held-out probe prompts.
Accuracies are judged by the exact external validator (never used for training); the Nonunified score is the share of
its own samples the model rejects; weak gen / weak und split the self-rejections by whether the validator agrees the
image is wrong; false positives are the self-accepted samples the validator rejects, over all self-accepted.
"und (own)" is understanding accuracy on the model's own samples of the round: it moves when generation changes
(better images fail in subtler ways), not only when the judge does. "und (fixed set)" is understanding accuracy on the
loop's fixed labelled probe set (${r.rounds[0]?.fixedProbe ? `${r.rounds[0].fixedProbe.items.model} round-0 model samples of the probe prompts plus ${r.rounds[0].fixedProbe.items.supplied} constructed matching scenes and near misses` : 'not measured'}),
the same pairs every round, so only the judge moves it. "und win-rate" is the paper's understanding win rate on
that set: over the items whose self-judgment differs from round 0's, the share now agreeing with the label (round 0:
50% by construction, 0/0; computed only over disagreements, so small counts are noisy). The guard watches probe and train-split generation accuracy,
fixed-set understanding accuracy (train-split generation accuracy is not a held-out evaluation: a guard signal only)${r.config.guardPrecision ? ' and acceptance precision (right among the self-accepted samples, 1 &minus; FP) on the probe and train samples' : ''}.</p>
${guard}
<div class="charts">${train}${probe}</div>
<h2>Per round</h2>
<table><tr><th>round</th><th>gen acc</th><th>und (own)</th><th>und (fixed set)</th><th>fixed FP</th><th>fixed FN</th><th>und win-rate (fixed set)</th><th>Nonunified</th><th>weak gen</th><th>weak und</th><th>false pos</th><th>probe gen</th><th>probe und (own)</th><th>probe NU</th><th>train n</th><th>guard</th></tr>
${rounds
  .map(
    (m) =>
      `<tr><td>${m.round}</td><td>${pct(m.external?.generationAccuracy)}</td><td>${pct(m.external?.understandingAccuracy)}</td><td>${pct(m.fixedProbe?.understandingAccuracy)}</td><td>${pct(m.fixedProbe?.falsePositiveRate)}</td><td>${pct(m.fixedProbe?.falseNegativeRate)}</td><td>${pctOf(m.understandingWinRate)}</td><td>${pct(m.nonunified)}</td><td>${pct(m.external?.blame.weakGeneration)}</td><td>${pct(m.external?.blame.weakUnderstanding)}</td><td>${pct(m.external?.falsePositiveRate)}</td><td>${pct(m.probe?.generationAccuracy)}</td><td>${pct(m.probe?.understandingAccuracy)}</td><td>${pct(m.probe?.nonunified)}</td><td>${m.train.sftExamples + m.train.dpoPairs}</td><td>${m.guard?.tripped ? 'TRIPPED' : m.guard?.warning ? `<span title="${esc(m.guard.warning)}">warn</span>` : m.guard ? 'ok' : '-'}</td></tr>`,
  )
  .join('\n')}
</table>
<h2>Held-out test split</h2>
<p>${r.world.splits.test} test prompts, 8 samples each, never seen by pretraining or the loop; "after" is the final weights
(after a guard trip: the weights it rolled back to).</p>
<table><tr><th></th><th>gen acc</th><th>und acc</th><th>Nonunified</th><th>false pos</th></tr>
${(['before', 'after'] as const)
  .map(
    (k) =>
      `<tr><td>${k}</td><td>${pct({ value: r.test[k].generationAccuracy })}</td><td>${pct({ value: r.test[k].understandingAccuracy })}</td><td>${pct({ value: r.test[k].nonunified })}</td><td>${pct({ value: r.test[k].falsePositiveRate })}</td></tr>`,
  )
  .join('\n')}
</table>
<p>Understanding on fixed labelled sets (16 pairs per prompt, half matching scenes, half near misses; new scenes
each): unlike understanding accuracy on the model's own samples, these do not move when only the images change.</p>
<table><tr><th>prompts</th><th>accuracy</th><th>false positives</th><th>false negatives</th></tr>
${(['train', 'test'] as const)
  .map((k) => {
    const j = r.judgeFixedSet[k];
    const ba = (f: (m: JudgeMeasurement) => number) => `${pct({ value: f(j.before) })} → ${pct({ value: f(j.after) })}`;
    return `<tr><td>${k} (${j.before.items} pairs)</td><td>${ba((m) => m.accuracy)}</td><td>${ba((m) => m.falsePositiveRate)}</td><td>${ba((m) => m.falseNegativeRate)}</td></tr>`;
  })
  .join('\n')}
</table>
<h2>Samples before (pretrained model)</h2>
<p>Green border: the validator accepts the image; red: it does not. p = the model’s own p_yes.</p>
${samplesHtml(r.samples.before)}
<h2>Samples after (final weights)</h2>
${samplesHtml(r.samples.after)}
<p><small>World v${r.world.version}; ${r.seconds.toFixed(1)} s.</small></p>
</body></html>
`;
}

/** One strategy's result inside `unigap compare`. */
export interface CompareEntry {
  strategy: string;
  rounds: RoundMetrics[];
  guardEvents: RunResult['guardEvents'];
}

const PALETTE = ['#1f6fd1', '#2a9d4a', '#d2702a', '#9a4ad6', '#c23b7a'];

/** Side-by-side report of every strategy on the same seed. */
export function renderCompareHtml(seed: number, entries: CompareEntry[]): string {
  const chart = (title: string, f: (m: RoundMetrics) => { value: number } | undefined) =>
    lineChartSvg(
      title,
      entries.map((e, i) => ({
        name: e.strategy,
        color: PALETTE[i % PALETTE.length],
        values: e.rounds.map((m) => f(m)?.value ?? null),
      })),
    );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unigap compare, seed ${seed}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}.charts{display:flex;flex-wrap:wrap;gap:16px}</style>
</head><body><h1>unigap compare (seed ${seed})</h1>
<p>Every strategy from the same pretrained model and seed. Each strategy's full report is in its own directory.</p>
<div class="charts">
${chart('Generation accuracy (train)', (m) => m.external?.generationAccuracy)}
${chart('Understanding accuracy (train, own samples)', (m) => m.external?.understandingAccuracy)}
${chart('Understanding accuracy (fixed probe set)', (m) => m.fixedProbe?.understandingAccuracy)}
${chart('Nonunified score (train)', (m) => m.nonunified)}
${chart('Generation accuracy (probe)', (m) => m.probe?.generationAccuracy)}
</div>
<ul>${entries.map((e) => `<li><a href="${esc(e.strategy)}/report.html">${esc(e.strategy)}</a>${e.guardEvents.length ? ` (guard: ${esc(e.guardEvents.map((g) => g.reason).join('; '))})` : ''}</li>`).join('')}</ul>
</body></html>
`;
}
