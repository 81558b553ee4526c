#!/usr/bin/env node
// Every round of several `npm run bench -- logprobs` runs in one markdown table, split by memory state.
// Each run rewrites bench/results/logprobs.json; copy it away after each run, then
//   node bench/ab/rounds-table.mjs RUN.json ... > table.md
// A round's values are computed within the round (its own read probe): the f32 forward's share of the
// probe, the f32 / bf16 time ratio and the onnxruntime-node / unigap f32 ratio, as the bench reports
// them per round. A round is marked "switch?" when no single state gives its values (a share below 60%
// or above 120% of the probe, or an onnxruntime ratio below 2.3x or above 3.5x): the memory state
// switched between the probe and a row. The state is the probe's: below / above 60 GB/s.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/ab/rounds-table.mjs RUN.json ...');
  process.exit(2);
}
const rows = [];
for (const f of files) {
  const run = JSON.parse(readFileSync(f, 'utf8'));
  const note = run.notes.find((n) => /before each round/.test(n)) ?? '';
  const m = /then ([\d. /]+) GB\/s before each round/.exec(note);
  if (!m) throw new Error(`${f}: no per-round probes in its notes`);
  const probes = m[1].split(' / ').map(Number);
  for (const s of run.summary)
    s.rounds.forEach((r, i) => {
      const share = r.f32ForwardShareOfReadBandwidth;
      const ort = r.onnxruntimeOverUnigapF32;
      rows.push({
        run: basename(f, '.json'),
        date: run.date,
        commit: run.commit,
        round: i + 1,
        probe: probes[i],
        shape: s.shape,
        share,
        bf16: r.bf16SpeedupOverF32,
        ort,
        fwdBwd: r.f32FwdBwdOverForward.out,
        switched: share < 0.6 || share > 1.2 || ort < 2.3 || ort > 3.5,
      });
    });
}
const pct = (x) => `${Math.round(100 * x)}%`;
const x2 = (x) => `${x.toFixed(2)}×`;
const range = (xs, f) => (xs.length ? `${f(Math.min(...xs))}-${f(Math.max(...xs))}` : '-');
console.log('| state | shape-rounds | f32 forward ≥ 80% of probe | bf16 ≥ 1.7× f32 | ≥ 2.5× onnxruntime |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, fast] of [
  ['probe < 60 GB/s', false],
  ['probe ≥ 60 GB/s', true],
]) {
  const g = rows.filter((r) => !r.switched && r.probe >= 60 === fast);
  const probes = g.map((r) => r.probe);
  const met = (f) => g.filter(f).length;
  console.log(
    `| ${name} (${range(probes, (p) => p.toFixed(0))} GB/s) | ${g.length} | ${range(
      g.map((r) => r.share),
      pct,
    )}: ${met((r) => r.share >= 0.8)} of ${g.length} | ${range(
      g.map((r) => r.bf16),
      x2,
    )}: ${met((r) => r.bf16 >= 1.7)} of ${g.length} | ${range(
      g.map((r) => r.ort),
      x2,
    )}: ${met((r) => r.ort >= 2.5)} of ${g.length} |`,
  );
}
console.log(`\n${rows.filter((r) => r.switched).length} of ${rows.length} shape-rounds left out (switch?).\n`);
console.log(
  '| run | ended (UTC) | commit | round | probe GB/s | shape | f32 share of probe | bf16 speed-up | ORT / unigap | f32 fwd+bwd / fwd | switch? |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows)
  console.log(
    `| ${r.run} | ${r.date.slice(11, 19)} | ${r.commit} | ${r.round} | ${r.probe.toFixed(1)} | ${r.shape} | ${pct(r.share)} | ${x2(
      r.bf16,
    )} | ${x2(r.ort)} | ${x2(r.fwdBwd)} | ${r.switched ? 'switch?' : ''} |`,
  );
