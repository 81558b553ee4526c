#!/usr/bin/env node
/**
 * The main job's experiments (issue 7 "What it must show"), serially, on the built package (dist/).
 *
 * 1. Coupling probe (does training generation on (P, x) raise the judge's p_yes(P, x)?), on three
 *    pretrained models (pretraining seed 0): `v1` = world v1 (concatenating prompt encoder, no prompt
 *    dropout, so π(x|∅) is an input the generator never saw; Bayes-link weight fitted by calibration),
 *    `link` = v1 + prompt dropout 0.1 (∅ trained as the marginal) + Bayes-link weight 1 per nat, and
 *    `v3` = the default (link + the convolutional prompt encoder). For each: the judge's scalars, AUCs
 *    on fixed constructed pairs (judge, its cosine part, the PMI alone), and 5 SFT steps (fresh Adam,
 *    lr 0.002, the loop's token-mean NLL) on one batch of 16 own samples of 16 train prompts: mean change
 *    of the judge's logit, log π(x|y), log π(x|∅) and the PMI for the trained pairs, the same prompts'
 *    untrained samples and the trained images under another prompt.
 * 2. The loop, loop seeds 0, 1, 2 (`unigap run` defaults: 5 rounds, N = 8), guard on, every run that the
 *    guard stopped rerun with --no-guard: v3 sft / clo clean and --corrupt 0.5 / 1 in each corruption
 *    mode (wrong = the default, flip, accept); link and v1 sft / clo clean and --corrupt 1 (wrong).
 * 3. Who selects the SFT data (v3 and v1, loop seeds 0-2): online SFT by hand (each round that round's fresh samples, i.e. clo without
 *    the curriculum), 5 rounds, training set chosen by the model's own judge or by the external validator; the judge scored on the FIXED round-0
 *    own samples of the train prompts (co-improvement where the paper measures it) and on constructed pairs.
 * 4. `--corrupt-mode adversarial` (`--set adversarial` runs only this, about 2.5 minutes of CPU): v3 sft / clo,
 *    clean and --corrupt 0.5 / 1, loop seeds 0, 1, 2, guard on, a run the guard stopped rerun with --no-guard;
 *    then section 3's online SFT by hand (v3) on the self-accepted samples vs exactly the wrong ones.
 *
 * 5. `--set codegrade` (not part of `all`; about 3 minutes of CPU): why Nonunified does not fall under corrupted
 *    self-judgments. Section 3's online SFT by hand (v3, loop seeds 0-2) with stronger, principled corruptions:
 *    `falsepos` trains on exactly the model's own false positives (wrong images it accepts: the wrong images it
 *    rates highly), and `+und` variants also train the understanding branch (binary cross-entropy, joint steps
 *    as in pretraining) on every own sample with the corrupted dataset's label (accepted = in the training
 *    set). Each round also samples the probe prompts and applies the loop's guard (guardCheck, tolerance 0.05,
 *    z 1.645) to the loop's signals, without rollback: where the loop's guard would stop the run, with the
 *    acceptance-precision signals (config.guardPrecision, the default) and without them.
 *
 *   npx tsc -p tsconfig.build.json && node scripts/world-experiments.mjs [--seeds 0,1,2] [--out DIR] [--set all|probe|loop|select|adversarial|codegrade]
 *
 * Writes DIR/results.json and prints the markdown tables of bench/results/world-experiments.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { runWorldJob, labelledPairs } = await import('../dist/world/job.js');
const { loadPretrainedModel, NULL_PROMPT } = await import('../dist/world/pretrain.js');
const { worldSplits } = await import('../dist/world/prompts.js');
const { scoreLogprobs } = await import('../dist/index.js');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const seeds = arg('--seeds', '0,1,2').split(',').map(Number);
const outRoot = arg('--out', '/tmp/unigap-world-experiments');
const set = arg('--set', 'all');
if (!['all', 'probe', 'loop', 'select', 'adversarial', 'codegrade'].includes(set))
  throw new Error(`--set must be all, probe, loop, select, adversarial or codegrade, got ${set}`);
rmSync(outRoot, { recursive: true, force: true });
mkdirSync(outRoot, { recursive: true });

/** The models (pretraining config overrides): world v1 (before this change), v1 + the coupled Bayes link, v3 (default). */
const MODELS = {
  v1: { nullPromptRate: 0, model: { bayesLinkWeight: null, encoder: 'concat' } },
  link: { model: { encoder: 'concat' } },
  v3: {},
};

const p = (x) => (x === null || x === undefined ? '-' : (100 * x).toFixed(1));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const lines = [];
const out = { seeds, probe: {}, results: [] };

// ------------------------------------------------------------------------------ 1. coupling probe

function seqLogprob(model, prompt, tokens) {
  const o = model.forward([{ prompt, tokens }]);
  const V = o.vocab;
  let s = 0;
  for (let t = 0; t < o.labels.length; t++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, o.logits[t * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(o.logits[t * V + v] - m);
    s += o.logits[t * V + o.labels[t]] - m - Math.log(z);
  }
  return s;
}

function auc(scores, labels) {
  let n = 0;
  let c = 0;
  for (let i = 0; i < scores.length; i++)
    if (labels[i])
      for (let j = 0; j < scores.length; j++)
        if (!labels[j]) {
          n++;
          c += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
        }
  return c / n;
}

// The loop's SFT step: token-mean NLL, d loss / d logits = (softmax - onehot) / tokens (unigap's kernel).
// With `judged` ({prompt, tokens, label}[]), the same step also carries the understanding loss (mean binary
// cross-entropy of p_yes, the model's judgeLossBackward) on those items: a joint step as in pretraining.
function sftStep(model, examples, judged = null) {
  const o = model.forward(examples);
  const rows = o.labels.length;
  const token = new Float32Array(rows).fill(-1 / rows);
  const r = scoreLogprobs(o.logits, o.labels, { shape: [rows, o.vocab], gradient: { token } });
  if (!judged) return model.step(r.gradient, { learningRate: 0.002 });
  model.backward(r.gradient);
  model.judgeLossBackward(judged);
  model.applyGradients(0.002);
}

function couplingProbe(name) {
  const { model } = loadPretrainedModel({ config: MODELS[name] });
  const P = model.params;
  const lambda = P['und.pmi'][0];
  const splits = worldSplits();
  const res = { scale: P['und.scale'][0], bias: P['und.bias'][0], lambdaPerNat: lambda / 16, auc: {}, steps: {} };
  const logitOf = (prompt, tokens) => {
    const q = model.judgeMany([{ prompt, tokens }])[0];
    return Math.log(q / (1 - q));
  };
  for (const split of ['train', 'probe']) {
    const items = labelledPairs(splits[split], 8, 3);
    const labels = items.map((i) => i.label);
    const logit = items.map((i) => logitOf(i.prompt, i.image.tokens));
    const pmi = items.map(
      (i) => seqLogprob(model, i.prompt, i.image.tokens) - seqLogprob(model, NULL_PROMPT, i.image.tokens),
    );
    res.auc[split] = {
      pairs: items.length,
      judge: auc(logit, labels),
      cosPart: auc(
        logit.map((l, k) => l - (lambda * pmi[k]) / 16),
        labels,
      ),
      pmi: auc(pmi, labels),
    };
  }
  const tp = splits.train;
  const data = tp.map((prompt, i) => ({
    prompt,
    images: model.generate(prompt, 4, { temperature: 1, seed: 500 + i }),
  }));
  const idx = Array.from({ length: 16 }, (_, k) => (k * 7) % tp.length);
  const trained = idx.map((i) => ({ prompt: data[i].prompt, tokens: data[i].images[0].tokens }));
  const sets = {
    'trained pairs (P, x)': trained.map((e) => [e.prompt, e.tokens]),
    'same prompt, untrained own sample (P, x′)': idx.map((i) => [data[i].prompt, data[i].images[1].tokens]),
    'another prompt, trained image (P′, x)': idx.map((i) => [
      data[(i + 1) % tp.length].prompt,
      data[i].images[0].tokens,
    ]),
  };
  const feats = (prompt, tokens) => {
    const a = seqLogprob(model, prompt, tokens);
    const b = seqLogprob(model, NULL_PROMPT, tokens);
    return [logitOf(prompt, tokens), a, b, a - b];
  };
  const before = Object.fromEntries(Object.entries(sets).map(([k, s]) => [k, s.map(([q, t]) => feats(q, t))]));
  for (let s = 0; s < 5; s++) sftStep(model, trained);
  for (const [k, s] of Object.entries(sets)) {
    const d = s.map(([q, t], i) => feats(q, t).map((v, j) => v - before[k][i][j]));
    const m = [0, 1, 2, 3].map((j) => mean(d.map((r) => r[j])));
    res.steps[k] = { dLogit: m[0], dCond: m[1], dNull: m[2], dPmi: m[3] };
  }
  return res;
}

if (set === 'all' || set === 'probe') {
  for (const name of Object.keys(MODELS)) out.probe[name] = couplingProbe(name);
  const f2 = (x) => x.toFixed(2);
  const f3 = (x) => x.toFixed(3);
  lines.push('### Coupling probe (pretraining seed 0)');
  lines.push('');
  lines.push(
    '| model | cos scale | bias | Bayes-link weight (per nat) | AUC train: judge / cos part / PMI | AUC probe: judge / cos part / PMI |',
  );
  lines.push('|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(out.probe))
    lines.push(
      `| ${name} | ${f2(r.scale)} | ${f2(r.bias)} | ${f2(r.lambdaPerNat)} | ${f3(r.auc.train.judge)} / ${f3(r.auc.train.cosPart)} / ${f3(r.auc.train.pmi)} | ${f3(r.auc.probe.judge)} / ${f3(r.auc.probe.cosPart)} / ${f3(r.auc.probe.pmi)} |`,
    );
  lines.push('');
  lines.push('5 SFT steps on one batch of 16 own samples (16 train prompts), mean change:');
  lines.push('');
  lines.push('| model | pairs | Δ judge logit | Δ log π(x\\|y) | Δ log π(x\\|∅) | Δ PMI (nats) |');
  lines.push('|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(out.probe))
    for (const [k, d] of Object.entries(r.steps))
      lines.push(`| ${name} | ${k} | ${f3(d.dLogit)} | ${f2(d.dCond)} | ${f2(d.dNull)} | ${f2(d.dPmi)} |`);
  lines.push('');
}

// ------------------------------------------------------------------------------------- 2. the loop

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
    test: { before: { gen: t.before.generationAccuracy }, after: { gen: t.after.generationAccuracy } },
    judgeFixedSet: {
      train: [res.report.judgeFixedSet.train.before.accuracy, res.report.judgeFixedSet.train.after.accuracy],
      test: [res.report.judgeFixedSet.test.before.accuracy, res.report.judgeFixedSet.test.after.accuracy],
    },
    guardEvents: res.result.guardEvents,
  };
}

async function runOne({ model, strategy, seed, corrupt, mode, guard }) {
  const tag = `${model}-${strategy}-${corrupt ? `${mode}${corrupt}` : 'clean'}-s${seed}`;
  const name = `${tag}-${guard ? 'guard' : 'noguard'}`;
  const t0 = Date.now();
  const res = await runWorldJob({
    strategy,
    seed,
    corrupt,
    guard,
    loop: { corruptMode: mode },
    pretrain: MODELS[model],
    out: join(outRoot, name),
  });
  const s = Object.assign(summarize(name, res, (Date.now() - t0) / 1000), {
    model,
    strategy,
    seed,
    corrupt,
    mode,
    guard,
  });
  out.results.push(s);
  const last = s.rounds.at(-1);
  console.error(
    `${name}: ${s.seconds.toFixed(1)} s; final train gen ${p(last.trainGen)}%, NU ${p(last.nonunified)}%` +
      (s.guardEvents.length ? `; guard r${s.guardEvents[0].round}` : ''),
  );
  return s;
}

const groups = [];
for (const strategy of ['sft', 'clo']) {
  groups.push({ model: 'v3', strategy, corrupt: 0, mode: 'wrong' });
  for (const mode of ['wrong', 'flip', 'accept'])
    for (const corrupt of [0.5, 1]) groups.push({ model: 'v3', strategy, corrupt, mode });
}
for (const model of ['link', 'v1'])
  for (const strategy of ['sft', 'clo'])
    for (const corrupt of [0, 1]) groups.push({ model, strategy, corrupt, mode: 'wrong' });

// 4. `--corrupt-mode adversarial` (the CLI default since commit 9ed9966): v3 sft / clo, clean and --corrupt 0.5 / 1.
const adversarialGroups = [];
for (const strategy of ['sft', 'clo']) {
  adversarialGroups.push({ model: 'v3', strategy, corrupt: 0, mode: 'adversarial' });
  for (const corrupt of [0.5, 1]) adversarialGroups.push({ model: 'v3', strategy, corrupt, mode: 'adversarial' });
}

if (set === 'all' || set === 'loop') await loopSection(groups, false);

/** Run every group on every seed (guard on; a run the guard stopped is rerun without it) and print its tables. */
async function loopSection(groups, extended) {
  const start = out.results.length;
  for (const seed of seeds)
    for (const g of groups) {
      const s = await runOne({ ...g, seed, guard: true });
      // A run the guard stopped is rerun without it, to see every round.
      if (s.guardEvents.length) await runOne({ ...g, seed, guard: false });
    }
  const results = out.results.slice(start); // this section's runs only
  const cols = [
    ['train gen', (r) => r.trainGen],
    ['probe gen', (r) => r.probeGen],
    ['und fixed', (r) => r.fixedUnd],
    ['fixed FP', (r) => r.fixedFP],
    ['fixed FN', (r) => r.fixedFN],
    ['own FP', (r) => r.falsePositive],
    ['Nonunified', (r) => r.nonunified],
    ...(extended ? [['probe Nonunified', (r) => r.probeNonunified]] : []),
  ];
  const label = (g) => `${g.model} ${g.strategy}${g.corrupt ? ` --corrupt ${g.corrupt} --corrupt-mode ${g.mode}` : ''}`;
  const inGroup = (g, guard) => (r) =>
    r.model === g.model &&
    r.strategy === g.strategy &&
    r.corrupt === g.corrupt &&
    (r.corrupt === 0 || r.mode === g.mode) &&
    r.guard === guard;
  // The unguarded view of a run: its --no-guard rerun when the guard stopped it, else the run itself.
  const unguarded = (g) =>
    seeds.map((seed) => {
      const rs = results.filter((r) => inGroup(g, r.guard)(r) && r.seed === seed);
      return rs.find((r) => !r.guard) ?? rs[0];
    });
  lines.push('### Means over seeds, without the guard (round 0 → round 5)');
  lines.push('');
  lines.push(
    `| run | ${cols.map((c) => c[0]).join(' | ')} | test gen | judge, train pairs | judge, test pairs | guard trips |`,
  );
  lines.push(`|---|${cols.map(() => '---').join('|')}|---|---|---|---|`);
  for (const g of groups) {
    const rs = unguarded(g);
    const ba = (f0, f1) => `${p(mean(rs.map(f0)))} → ${p(mean(rs.map(f1)))}`;
    const cells = cols.map(([, f]) =>
      ba(
        (r) => f(r.rounds[0]),
        (r) => f(r.rounds.at(-1)),
      ),
    );
    const trips = results.filter((r) => inGroup(g, true)(r) && r.guardEvents.length).length;
    lines.push(
      `| ${label(g)} | ${cells.join(' | ')} | ${ba(
        (r) => r.test.before.gen,
        (r) => r.test.after.gen,
      )} | ${ba(
        (r) => r.judgeFixedSet.train[0],
        (r) => r.judgeFixedSet.train[1],
      )} | ${ba(
        (r) => r.judgeFixedSet.test[0],
        (r) => r.judgeFixedSet.test[1],
      )} | ${trips}/${seeds.length} |`,
    );
  }
  lines.push('');
  lines.push('### Guard (runs with the guard on)');
  lines.push('');
  for (const r of results.filter((x) => x.guard)) {
    const ev = r.guardEvents[0];
    const w = r.rounds.filter((m) => m.warning);
    lines.push(
      `- ${r.name}: ${ev ? `tripped r${ev.round} → rolled back to r${ev.rolledBackTo}: ${ev.reason}` : 'no trip'}${w.length ? `; warnings r${w.map((m) => m.round).join(',')}` : ''}`,
    );
  }
  lines.push('');
  lines.push(
    `### Per round, without the guard (train gen / probe gen / und fixed / ${extended ? 'fixed FP / ' : ''}own FP / Nonunified${extended ? ' / probe Nonunified' : ''}, %)`,
  );
  lines.push('');
  for (const g of groups)
    for (const r of unguarded(g))
      lines.push(
        `- ${r.name.replace(/-(no)?guard$/, '')}: ${r.rounds
          .map(
            (m) =>
              `r${m.round} ${[m.trainGen, m.probeGen, m.fixedUnd, ...(extended ? [m.fixedFP] : []), m.falsePositive, m.nonunified, ...(extended ? [m.probeNonunified] : [])].map(p).join('/')}`,
          )
          .join(', ')}`,
      );
  lines.push('');
}

// ------------------------------------------------------------- 3. who selects the SFT data

/**
 * Online SFT by hand (clo without the curriculum; 5 rounds; each: N = 8 fresh samples per train prompt, the selected ones trained
 * one epoch, batch 16, lr 0.002, the loop's token-mean NLL), with the training set selected by the model's
 * own judge (self) or by the external validator (oracle). Measures the judge itself before and after: does
 * it co-improve when the supervision is clean?
 */
async function selection(name, seed, by, guard = false) {
  const { model } = loadPretrainedModel({ config: MODELS[name] });
  const { SceneValidator } = await import('../dist/world/validator.js');
  const { measureJudge } = await import('../dist/world/pretrain.js');
  const { mulberry32 } = await import('../dist/loop/rng.js');
  const validator = new SceneValidator();
  const splits = worldSplits();
  const probeSet = labelledPairs(splits.probe, 16);
  const judgeOn = (items) => {
    const q = model.judgeMany(items.map((i) => ({ prompt: i.prompt, tokens: i.image.tokens })));
    let right = 0;
    items.forEach((it, k) => (right += q[k] >= 0.5 === it.label ? 1 : 0));
    return right / items.length;
  };
  let fixedOwn = null; // the round-0 own samples, labelled once: only the judge moves its numbers
  let fixedLoop = null; // with `guard`: the loop's fixed probe set (round-0 probe samples + the 480 pairs)
  const rate = (count, total) => ({ value: total > 0 ? count / total : 0, count, total });
  // With `guard`: the probe prompts' fresh samples and the loop's guard signals (lib/loop/run.ts `observe`).
  const probeState = () => {
    const own = [];
    splits.probe.forEach((prompt, i) => {
      const images = model.generate(prompt, 8, { temperature: 1, seed: 7919 * (seed + 1) + 101 * round + 5000 + i });
      const q = model.judgeMany(images.map((im) => ({ prompt, tokens: im.tokens })));
      images.forEach((im, k) => own.push({ prompt, image: im, accept: q[k] >= 0.5, ok: validator.verify(prompt, im) }));
    });
    fixedLoop ??= [...own.map((o) => ({ prompt: o.prompt, image: o.image, label: o.ok })), ...probeSet];
    const q = model.judgeMany(fixedLoop.map((i) => ({ prompt: i.prompt, tokens: i.image.tokens })));
    const right = fixedLoop.filter((it, k) => q[k] >= 0.5 === it.label).length;
    const accepted = own.filter((o) => o.accept);
    return {
      gen: rate(own.filter((o) => o.ok).length, own.length),
      unification: rate(accepted.length, own.length),
      precision: rate(accepted.filter((o) => o.ok).length, accepted.length),
      fixedUnd: rate(right, fixedLoop.length),
    };
  };
  const state = () => {
    const own = [];
    splits.train.forEach((prompt, i) => {
      const images = model.generate(prompt, 8, { temperature: 1, seed: 7919 * (seed + 1) + 101 * round + i });
      const q = model.judgeMany(images.map((im) => ({ prompt, tokens: im.tokens })));
      images.forEach((im, k) =>
        own.push({ prompt, tokens: im.tokens, accept: q[k] >= 0.5, ok: validator.verify(prompt, im) }),
      );
    });
    fixedOwn ??= own.map((o) => ({ prompt: o.prompt, image: { tokens: o.tokens }, label: o.ok }));
    const q = model.judgeMany(fixedOwn.map((i) => ({ prompt: i.prompt, tokens: i.image.tokens })));
    const wrong = fixedOwn.filter((i) => !i.label).length;
    // The judge's logit on the round-0 wrong samples, and the Bayes link's part of it.
    const lam = model.params['und.pmi'][0];
    let logitWrong = 0;
    let linkWrong = 0;
    fixedOwn.forEach((it, k) => {
      if (it.label) return;
      logitWrong += Math.log(q[k] / (1 - q[k])) / wrong;
      linkWrong +=
        (lam * (seqLogprob(model, it.prompt, it.image.tokens) - seqLogprob(model, NULL_PROMPT, it.image.tokens))) /
        16 /
        wrong;
    });
    const acc = own.filter((o) => o.accept);
    const pr = guard ? probeState() : null;
    return {
      own,
      ...(pr && {
        probeGen: pr.gen.value,
        probeNonunified: 1 - pr.unification.value,
        fixedUnd: pr.fixedUnd.value,
        obs: {
          round,
          generationAccuracy: pr.gen,
          understandingAccuracy: pr.fixedUnd,
          unification: pr.unification,
          trainGenerationAccuracy: rate(own.filter((o) => o.ok).length, own.length),
          trainUnification: rate(acc.length, own.length),
          // The loop's acceptance-precision signals (config.guardPrecision): right among the self-accepted.
          acceptancePrecision: pr.precision,
          trainAcceptancePrecision: rate(acc.filter((o) => o.ok).length, acc.length),
          labels: {
            generation: 'probe generation accuracy',
            understanding: 'fixed-set understanding accuracy',
            trainGeneration: 'train-split generation accuracy',
            precision: 'probe acceptance precision',
            trainPrecision: 'train-split acceptance precision',
          },
        },
      }),
      fixedOwnAcc: judgeOn(fixedOwn),
      fixedOwnFP: fixedOwn.filter((i, k) => !i.label && q[k] >= 0.5).length / wrong,
      logitWrong,
      linkWrong,
      gen: own.filter((o) => o.ok).length / own.length,
      nonunified: 1 - acc.length / own.length,
      ownFP: acc.length ? acc.filter((o) => !o.ok).length / acc.length : 0,
      probeSet: judgeOn(probeSet),
      trainPairs: measureJudge(model, splits.train).accuracy,
      testPairs: measureJudge(model, splits.test).accuracy,
    };
  };
  let round = 0;
  const first = state();
  let cur = first;
  const rng = mulberry32(1000 + seed);
  const shuffle = (xs) => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  // The selection rule: which own samples form the (possibly corrupted) accepted set SFT trains on.
  // adversarial: the labels opposite to the verdict (--corrupt-mode adversarial at P = 1): the wrong samples.
  // falsepos: exactly the model's own false positives (self-accepted and externally wrong).
  const base = by.replace(/\+und$/, '');
  const selectors = {
    self: (o) => o.accept,
    oracle: (o) => o.ok,
    adversarial: (o) => !o.ok,
    falsepos: (o) => o.accept && !o.ok,
  };
  const selected = selectors[base];
  if (!selected) throw new Error(`selection: unknown selection '${by}'`);
  const und = by.endsWith('+und');
  // The loop's guard by hand, with the acceptance-precision signals (config.guardPrecision true, the
  // default) and without them (false: the rule before they existed), each without rollback.
  const { guardCheck } = await import('../dist/loop/guard.js');
  const withoutPrecision = ({ acceptancePrecision: _p, trainAcceptancePrecision: _t, ...o }) => o;
  const guards = guard
    ? [
        { key: 'guard', view: (o) => o },
        { key: 'guardNoPrecision', view: withoutPrecision },
      ].map((g) => ({ ...g, best: guardCheck(null, g.view(first.obs), 0.05, 1.645).best, trip: null, warnings: [] }))
    : [];
  for (round = 1; round <= 5; round++) {
    const data = shuffle(cur.own.filter(selected));
    // +und: the understanding branch is trained too, on every own sample of the round with the corrupted
    // dataset's label (accepted = selected into the training set), one pass per round spread over the SFT steps.
    const judged = und
      ? shuffle(cur.own.map((o) => ({ prompt: o.prompt, tokens: o.tokens, label: selected(o) })))
      : null;
    const steps = Math.ceil(data.length / 16);
    const per = judged ? Math.ceil(judged.length / Math.max(steps, 1)) : 0;
    for (let b = 0, k = 0; b < data.length; b += 16, k++)
      sftStep(model, data.slice(b, b + 16), judged && judged.slice(k * per, (k + 1) * per));
    cur = state();
    for (const g of guards) {
      if (g.trip) continue;
      const d = guardCheck(g.best, g.view(cur.obs), 0.05, 1.645);
      if (d.tripped) g.trip = { round, reason: d.reason };
      else {
        if (d.warning) g.warnings.push(round);
        g.best = d.best;
      }
    }
  }
  const { own: _a, obs: _c, ...before } = first;
  const { own: _b, obs: _d, ...after } = cur;
  const verdicts = Object.fromEntries(guards.map((g) => [g.key, { trip: g.trip, warnings: g.warnings }]));
  return { name, seed, by, before, after, ...verdicts };
}

/** Run `selection` for every (model, selection, seed) and print its table and per-seed lines. */
async function selectSection(names, bys, title) {
  const start = out.selection.length;
  for (const name of names)
    for (const by of bys)
      for (const seed of seeds) {
        const r = await selection(name, seed, by);
        out.selection.push(r);
        console.error(
          `select ${name} ${by} s${seed}: gen ${p(r.before.gen)} -> ${p(r.after.gen)}, probe-set judge ${p(r.before.probeSet)} -> ${p(r.after.probeSet)}`,
        );
      }
  const results = out.selection.slice(start);
  const f = (d, x) => (d ? x.toFixed(d) : p(x));
  const keys = [
    ['train gen', 'gen'],
    ['Nonunified', 'nonunified'],
    ['own FP', 'ownFP'],
    ['judge, round-0 own samples', 'fixedOwnAcc'],
    ['judge FP, round-0 own wrong samples', 'fixedOwnFP'],
    ['their mean judge logit', 'logitWrong', 2],
    ['its Bayes-link part', 'linkWrong', 2],
    ['judge, fixed probe pairs', 'probeSet'],
    ['judge, train pairs', 'trainPairs'],
    ['judge, test pairs', 'testPairs'],
  ];
  lines.push('');
  lines.push(title);
  lines.push('');
  lines.push(`| selection | ${keys.map((k) => k[0]).join(' | ')} |`);
  lines.push(`|---|${keys.map(() => '---').join('|')}|`);
  for (const name of names)
    for (const by of bys) {
      const rs = results.filter((r) => r.by === by && r.name === name);
      lines.push(
        `| ${name} ${by} (mean of seeds ${seeds.join(', ')}) | ${keys
          .map(([, k, d]) => `${f(d, mean(rs.map((r) => r.before[k])))} → ${f(d, mean(rs.map((r) => r.after[k])))}`)
          .join(' | ')} |`,
      );
    }
  lines.push('');
  for (const r of results)
    lines.push(
      `- ${r.name} ${r.by} s${r.seed}: ${keys.map(([l, k, d]) => `${l} ${f(d, r.before[k])} → ${f(d, r.after[k])}`).join(', ')}`,
    );
}

out.selection = [];
if (set === 'all' || set === 'select')
  await selectSection(
    ['v3', 'v1'],
    ['self', 'oracle'],
    "### Who selects the SFT data: the model's judge (self) or the external validator (oracle); online SFT by hand, 5 rounds (each round: that round's fresh selected samples of every train prompt, i.e. clo without the curriculum)",
  );
if (set === 'all' || set === 'adversarial') {
  lines.push('');
  lines.push('## --corrupt-mode adversarial (v3, the default model)');
  lines.push('');
  await loopSection(adversarialGroups, true);
  await selectSection(
    ['v3'],
    ['self', 'adversarial'],
    '### The judge on its own round-0 samples: online SFT by hand on the self-accepted samples (self) or on exactly the wrong ones (adversarial, labels opposite to the verdict: --corrupt-mode adversarial at P = 1), 5 rounds',
  );
}
// --------------------------------------- 5. why Nonunified does not fall under corrupted self-judgments

if (set === 'codegrade') {
  const bys = ['self', 'adversarial', 'falsepos', 'falsepos+und', 'adversarial+und', 'self+und'];
  const results = [];
  for (const by of bys)
    for (const seed of seeds) {
      const r = await selection('v3', seed, by, true);
      results.push(r);
      out.selection.push(r);
      console.error(
        `codegrade ${by} s${seed}: gen ${p(r.before.gen)} -> ${p(r.after.gen)}, NU ${p(r.before.nonunified)} -> ${p(r.after.nonunified)}` +
          (r.guard.trip ? `; guard r${r.guard.trip.round}` : '') +
          (r.guardNoPrecision.trip ? `; without precision r${r.guardNoPrecision.trip.round}` : ''),
      );
    }
  const f = (d, x) => (d ? x.toFixed(d) : p(x));
  const keys = [
    ['train gen', 'gen'],
    ['probe gen', 'probeGen'],
    ['Nonunified', 'nonunified'],
    ['probe Nonunified', 'probeNonunified'],
    ['own FP', 'ownFP'],
    ['judge FP, round-0 own wrong samples', 'fixedOwnFP'],
    ['their mean judge logit', 'logitWrong', 2],
    ['its Bayes-link part', 'linkWrong', 2],
    ['und fixed (loop set)', 'fixedUnd'],
    ['judge, train pairs', 'trainPairs'],
  ];
  lines.push('');
  lines.push(
    '### Stronger corruptions by hand (v3, online SFT, 5 rounds): self-accepted (self), exactly the wrong samples (adversarial), exactly the false positives (falsepos); +und: the understanding branch trained too on the corrupted labels',
  );
  lines.push('');
  lines.push(
    `| selection | ${keys.map((k) => k[0]).join(' | ')} | guard (loop rules, by hand) | guard without acceptance precision |`,
  );
  lines.push(`|---|${keys.map(() => '---').join('|')}|---|---|`);
  const tripCell = (rs, key) => {
    const trips = rs.filter((r) => r[key].trip);
    return `${trips.length}/${rs.length}${trips.length ? ` (r${trips.map((r) => r[key].trip.round).join(', r')})` : ''}`;
  };
  for (const by of bys) {
    const rs = results.filter((r) => r.by === by);
    lines.push(
      `| ${by} (mean of seeds ${seeds.join(', ')}) | ${keys
        .map(([, k, d]) => `${f(d, mean(rs.map((r) => r.before[k])))} → ${f(d, mean(rs.map((r) => r.after[k])))}`)
        .join(' | ')} | ${tripCell(rs, 'guard')} | ${tripCell(rs, 'guardNoPrecision')} |`,
    );
  }
  lines.push('');
  const verdict = (g) =>
    `${g.trip ? `would trip r${g.trip.round}: ${g.trip.reason}` : 'no trip'}${g.warnings.length ? `; warnings r${g.warnings.join(',')}` : ''}`;
  for (const r of results)
    lines.push(
      `- ${r.by} s${r.seed}: ${keys.map(([l, k, d]) => `${l} ${f(d, r.before[k])} → ${f(d, r.after[k])}`).join(', ')}; guard: ${verdict(
        r.guard,
      )}; without acceptance precision: ${verdict(r.guardNoPrecision)}`,
    );
}
writeFileSync(join(outRoot, 'results.json'), JSON.stringify(out, null, 2) + '\n');
console.log(lines.join('\n'));
