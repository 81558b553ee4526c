/**
 * One round of training through unigap's kernels (the only module of lib/loop that calls them, and only
 * through the public facade): the model runs its own forward and backward; the loop turns its logits
 * into log-probs, losses and d(loss)/d(logits).
 *
 * - SFT: image-token NLL, the mean over every image token of the mini-batch (TRL's token mean):
 *   loss = -sum_seq seqSum / tokens; upstream d loss / d seqSum = -1 / tokens, fused with the forward.
 * - DPO: TRL's combined ['sigmoid', 'sft'] loss with weights [1, nllWeight] over (chosen, rejected) pairs;
 *   the reference log-probs are those of the policy at the start of the round (the reference policy),
 *   computed once with scoreLogprobs before the first step; each step is one fused dpoLossFromLogits
 *   call over the [chosen; rejected] logits (policy log-probs, losses and d(loss)/d(logits)).
 * Logits of 2^20 elements or more go through the kernels' Async variants (off the main thread).
 * Mini-batches of `batchSize` sequences (DPO: pairs), `epochsPerRound` passes, order shuffled per epoch
 * from (seed, round, epoch).
 */
import { dpoLossFromLogits, dpoLossFromLogitsAsync, scoreLogprobs, scoreLogprobsAsync } from '../index.js';
import { checkLogitsBatch, findNaN } from './adapter.js';
import { isDpoStrategy } from './config.js';
import { buildDpoPairs, buildSftSet, type DpoPair, type SftExample } from './data.js';
import { AdapterError } from './errors.js';
import { rngFor, shuffleInPlace } from './rng.js';
import type { LogitsBatch, LoopConfig, LoopEvent, PromptSamples, TrainSequence, UnifiedModel } from './types.js';

export interface TrainStats {
  sftExamples: number;
  dpoPairs: number;
  /** Example-weighted mean of the mini-batch losses over the round (0 when nothing trained). */
  meanLoss: number;
  /** Prompts that contributed at least one example / pair. */
  trainingPrompts: number;
  steps: number;
}

type TrainConfig = Pick<
  LoopConfig,
  'strategy' | 'seed' | 'learningRate' | 'epochsPerRound' | 'batchSize' | 'beta' | 'nllWeight' | 'pairing'
>;

/** Logits this large are scored off the main thread (the event loop stays free for progress output). */
const ASYNC_ELEMENTS = 1 << 20;

function nanError(lb: LogitsBatch, i: number): AdapterError {
  const at = findNaN(lb);
  return new AdapterError(
    'forward',
    at
      ? `logits contain NaN (row ${at.row}, sequence ${at.sequence})`
      : `log-probs of sequence ${i} are NaN (a row of -Infinity logits?)`,
  );
}

/** Score a forward's logits; NaN anywhere in the sums is the adapter's fault (NaN logits). */
async function score(lb: LogitsBatch, gradSeq?: Float32Array) {
  const rows = lb.labels.length;
  const options = {
    shape: [rows, lb.vocab],
    offsets: lb.offsets,
    ...(gradSeq ? { gradient: { seq: gradSeq, inPlace: true } } : {}),
  };
  const r =
    lb.logits.length >= ASYNC_ELEMENTS
      ? await scoreLogprobsAsync(lb.logits, lb.labels, options)
      : scoreLogprobs(lb.logits, lb.labels, options);
  for (let i = 0; i < r.seqSum.length; i++) if (Number.isNaN(r.seqSum[i])) throw nanError(lb, i);
  return r;
}

function batches(n: number, size: number, order: number[]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(order.slice(i, i + size));
  return out;
}

function epochOrder(n: number, c: TrainConfig, round: number, epoch: number): number[] {
  return shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    rngFor(c.seed, round, `shuffle:${epoch}`),
  );
}

async function trainSft(
  model: UnifiedModel,
  examples: SftExample[],
  c: TrainConfig,
  round: number,
  emit: (e: LoopEvent) => void,
): Promise<{ lossSum: number; weight: number; steps: number }> {
  const perEpoch = Math.ceil(examples.length / c.batchSize);
  const steps = perEpoch * c.epochsPerRound;
  let step = 0;
  let lossSum = 0;
  let weight = 0;
  for (let epoch = 0; epoch < c.epochsPerRound; epoch++)
    for (const idx of batches(examples.length, c.batchSize, epochOrder(examples.length, c, round, epoch))) {
      const seqs: TrainSequence[] = idx.map((i) => ({ prompt: examples[i].prompt, tokens: examples[i].tokens }));
      const tokens = seqs.reduce((k, s) => k + s.tokens.length, 0);
      step++;
      if (tokens === 0) continue;
      const lb = checkLogitsBatch(await model.forward(seqs), seqs, model.vocabSize);
      const r = await score(lb, new Float32Array(seqs.length).fill(-1 / tokens));
      let sum = 0;
      for (let i = 0; i < r.seqSum.length; i++) sum += r.seqSum[i];
      const loss = -sum / tokens;
      await model.step(r.gradient as Float32Array, { learningRate: c.learningRate });
      lossSum += loss * seqs.length;
      weight += seqs.length;
      emit({ type: 'train-step', round, step, steps, loss });
    }
  return { lossSum, weight, steps: step };
}

async function trainDpo(
  model: UnifiedModel,
  pairs: DpoPair[],
  c: TrainConfig,
  round: number,
  emit: (e: LoopEvent) => void,
): Promise<{ lossSum: number; weight: number; steps: number }> {
  const seqsOf = (idx: number[]): TrainSequence[] => [
    ...idx.map((i) => ({ prompt: pairs[i].prompt, tokens: pairs[i].chosen })),
    ...idx.map((i) => ({ prompt: pairs[i].prompt, tokens: pairs[i].rejected })),
  ];
  // Reference log-probs: the policy at the start of the round, before any step.
  const refChosen = new Float64Array(pairs.length);
  const refRejected = new Float64Array(pairs.length);
  const inOrder = pairs.map((_, i) => i);
  for (const idx of batches(pairs.length, c.batchSize, inOrder)) {
    const seqs = seqsOf(idx);
    const r = await score(checkLogitsBatch(await model.forward(seqs), seqs, model.vocabSize));
    idx.forEach((p, k) => {
      refChosen[p] = r.seqSum[k];
      refRejected[p] = r.seqSum[idx.length + k];
    });
  }
  const lossType = c.nllWeight > 0 ? (['sigmoid', 'sft'] as const) : (['sigmoid'] as const);
  const lossWeights = c.nllWeight > 0 ? [1, c.nllWeight] : [1];
  const perEpoch = Math.ceil(pairs.length / c.batchSize);
  const steps = perEpoch * c.epochsPerRound;
  let step = 0;
  let lossSum = 0;
  let weight = 0;
  for (let epoch = 0; epoch < c.epochsPerRound; epoch++)
    for (const idx of batches(pairs.length, c.batchSize, epochOrder(pairs.length, c, round, epoch))) {
      const b = idx.length;
      const seqs = seqsOf(idx);
      const lb = checkLogitsBatch(await model.forward(seqs), seqs, model.vocabSize);
      // Fused: policy log-probs, the pair losses and d(loss)/d(logits) (written over the logits).
      const options = {
        shape: [lb.labels.length, lb.vocab],
        offsets: lb.offsets,
        referenceChosen: Float64Array.from(idx, (i) => refChosen[i]),
        referenceRejected: Float64Array.from(idx, (i) => refRejected[i]),
        beta: c.beta,
        lossType,
        lossWeights,
        inPlace: true,
      };
      const d =
        lb.logits.length >= ASYNC_ELEMENTS
          ? await dpoLossFromLogitsAsync(lb.logits, lb.labels, options)
          : dpoLossFromLogits(lb.logits, lb.labels, options);
      for (let k = 0; k < b; k++)
        if (Number.isNaN(d.policyChosen[k]) || Number.isNaN(d.policyRejected[k]))
          throw nanError(lb, Number.isNaN(d.policyChosen[k]) ? k : b + k);
      await model.step(d.gradient as Float32Array, { learningRate: c.learningRate });
      step++;
      lossSum += d.loss * b;
      weight += b;
      emit({ type: 'train-step', round, step, steps, loss: d.loss });
    }
  return { lossSum, weight, steps: step };
}

/** Train one round on the strategy's data (SFT for sft / c-sft / clo, DPO for dpo / c-dpo). */
export async function trainRound(
  model: UnifiedModel,
  data: readonly PromptSamples[],
  c: TrainConfig,
  round: number,
  emit: (e: LoopEvent) => void,
): Promise<TrainStats> {
  if (isDpoStrategy(c.strategy)) {
    const pairs = buildDpoPairs(data, c.pairing);
    const t = await trainDpo(model, pairs, c, round, emit);
    return {
      sftExamples: 0,
      dpoPairs: pairs.length,
      meanLoss: t.weight ? t.lossSum / t.weight : 0,
      trainingPrompts: new Set(pairs.map((p) => p.prompt.id)).size,
      steps: t.steps,
    };
  }
  const examples = buildSftSet(data);
  const t = await trainSft(model, examples, c, round, emit);
  return {
    sftExamples: examples.length,
    dpoPairs: 0,
    meanLoss: t.weight ? t.lossSum / t.weight : 0,
    trainingPrompts: new Set(examples.map((e) => e.prompt.id)).size,
    steps: t.steps,
  };
}
