/**
 * Example 1: score a batch of sequences and compute the DPO loss, from plain typed arrays (no
 * framework). Run: `node --import tsx examples/01-score-and-dpo.ts`
 *
 * A DPO batch is 2B sequences laid out [chosen_1..chosen_B; rejected_1..rejected_B]: logits
 * [2B, T, V] (Float32Array, or bf16/f16 bits in a Uint16Array with `dtype`) and labels [2B·T]
 * (Int32Array; -100 marks prompt tokens, which are not scored). With `shift: true` the logits at
 * position t score the label at t + 1, as a causal language model predicts the next token.
 */
import { pathToFileURL } from 'node:url';

import { dpoLoss, dpoLossFromLogits, logprobsBackward, scoreLogprobs } from 'unigap';

/** A deterministic toy batch: random logits for policy and reference, prompt rows ignored. */
export function toyBatch(pairs: number, T: number, V: number, seed = 1) {
  let x = seed >>> 0;
  const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x / 4294967296);
  const S = 2 * pairs;
  const policyLogits = Float32Array.from({ length: S * T * V }, () => (next() - 0.5) * 6);
  // The reference model: the policy before training, here the same logits slightly perturbed.
  const referenceLogits = Float32Array.from(policyLogits, (v) => v + (next() - 0.5) * 0.5);
  const promptLength = 2;
  const labels = Int32Array.from({ length: S * T }, (_, i) => (i % T < promptLength ? -100 : Math.floor(next() * V)));
  return { policyLogits, referenceLogits, labels, shape: [S, T, V] };
}

export function main(options: { pairs?: number; T?: number; V?: number; log?: boolean } = {}) {
  const { pairs = 4, T = 16, V = 64, log = true } = options;
  const B = pairs;
  const { policyLogits, referenceLogits, labels, shape } = toyBatch(B, T, V);
  const input = { shape, shift: true };

  // 1. Score: per-sequence summed log-probs (plus means, entropy and token accuracy on request).
  const policy = scoreLogprobs(policyLogits, labels, { ...input, entropy: true, accuracy: true });
  const reference = scoreLogprobs(referenceLogits, labels, input);
  const referenceChosen = reference.seqSum.subarray(0, B);
  const referenceRejected = reference.seqSum.subarray(B);

  // 2. DPO from the sequence log-probs (TRL's sigmoid loss, β = 0.1), with d(loss)/d(log-probs).
  const pairLoss = dpoLoss(
    {
      policyChosen: policy.seqSum.subarray(0, B),
      policyRejected: policy.seqSum.subarray(B),
      referenceChosen,
      referenceRejected,
    },
    { beta: 0.1 },
  );

  // 3. The same loss fused from the logits, with d(loss)/d(logits) in the same call (two passes).
  const fused = dpoLossFromLogits(policyLogits, labels, { ...input, referenceChosen, referenceRejected, beta: 0.1 });

  // 4. The chain rule by hand: the pair gradients as upstream of the log-prob backward.
  const seq = Float32Array.from([...pairLoss.gradChosen, ...pairLoss.gradRejected]);
  const { gradient } = logprobsBackward(policyLogits, labels, { seq }, { ...input, lse: policy.tokenLse });
  let maxGradDiff = 0;
  for (let i = 0; i < gradient.length; i++)
    maxGradDiff = Math.max(maxGradDiff, Math.abs(gradient[i] - (fused.gradient as Float32Array)[i]));

  if (log) {
    console.log(`batch: ${B} pairs × ${T} tokens, vocabulary ${V} (shape [${shape.join(', ')}])`);
    console.log('policy log p(sequence):', Array.from(policy.seqSum, (v) => v.toFixed(2)).join(' '));
    console.log('counted tokens:', Array.from(policy.seqCount).join(' '));
    console.log(`mean entropy over scored tokens: ${meanOverScored(policy.tokenEntropy!, labels, T).toFixed(3)}`);
    console.log(`DPO loss (from log-probs): ${pairLoss.loss.toFixed(6)}, reward accuracy ${pairLoss.rewardAccuracy}`);
    console.log(
      `DPO loss (fused from logits): ${fused.loss.toFixed(6)}, token accuracy ${fused.metrics.tokenAccuracy}`,
    );
    console.log('margins:', Array.from(pairLoss.margins, (v) => v.toFixed(3)).join(' '));
    console.log(`max |fused gradient − chain-rule gradient|: ${maxGradDiff.toExponential(2)}`);
  }
  return {
    seqSum: policy.seqSum,
    seqCount: policy.seqCount,
    loss: pairLoss.loss,
    fusedLoss: fused.loss,
    rewardAccuracy: pairLoss.rewardAccuracy,
    margins: pairLoss.margins,
    maxGradDiff,
  };
}

/** Mean over the scored rows: with shift, row r scores labels[r + 1] within its sequence. */
function meanOverScored(values: Float32Array, labels: Int32Array, T: number): number {
  let s = 0;
  let n = 0;
  for (let r = 0; r < values.length; r++)
    if (r % T < T - 1 && labels[r + 1] !== -100) {
      s += values[r];
      n++;
    }
  return n ? s / n : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
