/**
 * Training data from self-judgments (paper.md "Self-improvement recipe"): the SFT set is every
 * self-accepted (prompt, image); a DPO pair per prompt is the most confident accepted (chosen) against
 * the least confident rejected (rejected), confidence = pYes; the discard pool holds prompts with no
 * accepted sample. External verdicts are never read here.
 */
import { rngFor } from './rng.js';
import type { CorruptMode, Pairing, Prompt, PromptSamples } from './types.js';

export interface SftExample {
  prompt: Prompt;
  tokens: Int32Array;
}

export interface DpoPair {
  prompt: Prompt;
  chosen: Int32Array;
  rejected: Int32Array;
  chosenPYes: number;
  rejectedPYes: number;
}

/** Every self-accepted (prompt, image), in prompt then sample order. */
export function buildSftSet(data: readonly PromptSamples[]): SftExample[] {
  const out: SftExample[] = [];
  for (const { prompt, samples } of data)
    for (const s of samples) if (s.judgment.accept) out.push({ prompt, tokens: s.image.tokens });
  return out;
}

/**
 * DPO pairs. 'best-worst' (default): per prompt with at least one accepted and one rejected sample, the
 * accepted one with the highest pYes against the rejected one with the lowest pYes (ties: the earlier
 * sample). 'all': every accepted x rejected pair of the prompt, in sample order.
 */
export function buildDpoPairs(data: readonly PromptSamples[], pairing: Pairing = 'best-worst'): DpoPair[] {
  const out: DpoPair[] = [];
  for (const { prompt, samples } of data) {
    const acc = samples.filter((s) => s.judgment.accept);
    const rej = samples.filter((s) => !s.judgment.accept);
    if (!acc.length || !rej.length) continue;
    if (pairing === 'all') {
      for (const a of acc)
        for (const r of rej)
          out.push({
            prompt,
            chosen: a.image.tokens,
            rejected: r.image.tokens,
            chosenPYes: a.judgment.pYes,
            rejectedPYes: r.judgment.pYes,
          });
      continue;
    }
    let best = acc[0];
    for (const a of acc) if (a.judgment.pYes > best.judgment.pYes) best = a;
    let worst = rej[0];
    for (const r of rej) if (r.judgment.pYes < worst.judgment.pYes) worst = r;
    out.push({
      prompt,
      chosen: best.image.tokens,
      rejected: worst.image.tokens,
      chosenPYes: best.judgment.pYes,
      rejectedPYes: worst.judgment.pYes,
    });
  }
  return out;
}

/** Ids of the prompts with no self-accepted sample (the discard pool B), in input order. */
export function discardPool(data: readonly PromptSamples[]): string[] {
  return data.filter((d) => !d.samples.some((s) => s.judgment.accept)).map((d) => d.prompt.id);
}

/**
 * The co-degradation experiment: corrupt a `share` (in [0, 1]) of the self-judgments that enter training,
 * chosen at random but deterministically by (seed, round). Each corrupted judgment gets
 * accept = !accept and pYes = 1 - pYes (so confidence-based pairing follows the corruption). Returns new
 * objects; the input is not modified. External verdicts are carried unchanged.
 *
 * `mode` (LoopConfig.corruptMode) says which judgments are eligible:
 * - 'flip' (default): every judgment; exactly round(share * samples) are flipped, accept ↔ reject
 *   (symmetric label noise: at share 0.5 the labels carry no information).
 * - 'accept': only the self-REJECTED judgments; exactly round(share * rejected) are marked accepted, the
 *   accepted ones are untouched. False positives enter the SFT set / the chosen side of DPO pairs: the
 *   generator learns its own rejected images, wrong and right alike.
 * - 'wrong': only the self-rejected judgments of samples whose external verdict is `false`; exactly
 *   round(share * those) are marked accepted. Wrong images labelled accepted, nothing else: the paper's
 *   corrupted supervision (paper.md "Learning dynamics"). The one place a verdict decides training data:
 *   the experimenter poisons the set on purpose (the loop requires a judge for it).
 * - 'adversarial': every sample with an external verdict is eligible; exactly round(share * those) are
 *   chosen and their training label becomes the OPPOSITE of the verdict (wrong images accepted, right
 *   images rejected). A chosen sample whose self-judgment already disagrees with the verdict (a false
 *   positive or false negative of the model) keeps its judgment unchanged; the others are flipped
 *   (pYes → 1 − pYes). At share 1 the accepted set is exactly the wrong images (SFT trains on exactly the
 *   model's wrong samples; every DPO pair is a wrong chosen against a right rejected); the unchosen samples
 *   keep the model's self-judgment. Corrupted training labels in the literal sense: a share `share` of the
 *   labels is set against the truth. Like 'wrong', it reads verdicts on purpose (the loop requires a judge).
 * Samples without an external verdict are never corrupted in 'wrong' and 'adversarial'.
 */
export function corruptJudgments(
  data: readonly PromptSamples[],
  share: number,
  seed: number,
  round: number,
  mode: CorruptMode = 'flip',
): PromptSamples[] {
  const copy = data.map((d) => ({ prompt: d.prompt, samples: d.samples.map((s) => ({ ...s })) }));
  if (share <= 0) return copy;
  const all = copy.flatMap((d) => d.samples);
  const flat =
    mode === 'accept'
      ? all.filter((s) => !s.judgment.accept)
      : mode === 'wrong'
        ? all.filter((s) => !s.judgment.accept && s.external === false)
        : mode === 'adversarial'
          ? all.filter((s) => typeof s.external === 'boolean')
          : all;
  const k = Math.round(share * flat.length);
  // Partial Fisher-Yates: the first k indices of a seeded permutation.
  const idx = flat.map((_, i) => i);
  const rand = rngFor(seed, round, mode === 'flip' ? 'corrupt' : `corrupt-${mode}`);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
    const s = flat[idx[i]];
    // adversarial: the label becomes !external; a judgment that already says so is left as it is.
    if (mode === 'adversarial' && s.judgment.accept === !s.external) continue;
    s.judgment = { pYes: 1 - s.judgment.pYes, accept: !s.judgment.accept };
  }
  return copy;
}
