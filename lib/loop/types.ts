/**
 * The contract between the self-improvement loop and a unified model. A user implements
 * `UnifiedModel` for their model (the embedded default in lib/world implements it too); the loop
 * computes log-probs, DPO losses and their gradients with unigap's kernels and hands the model
 * d(loss)/d(logits): a model only runs its own forward and backward.
 */

/** A text prompt with its evaluation category (e.g. 'color', 'shape', 'spatial', 'counting', 'complex'). */
export interface Prompt {
  id: string;
  text: string;
  category: string;
}

/** One generated image: its image-token sequence and whatever payload the model/judges need. */
export interface GeneratedImage {
  /** Image tokens (ids in [0, vocabSize)). */
  tokens: Int32Array;
  /** Model-specific payload (pixels, a scene, a grid...). Must be JSON-serialisable if runs are resumed. */
  payload?: unknown;
}

/** The understanding branch's answer to the self-judgment question. */
export interface Judgment {
  /** p("yes"), e.g. p("1") / (p("0") + p("1")) read from the answer token's logits. */
  pYes: number;
  /** The yes/no verdict (by default pYes >= 0.5; the loop may re-threshold pYes). */
  accept: boolean;
}

export interface GenerateOptions {
  /** Sampling temperature (> 0). */
  temperature: number;
  /** Seed for this call; the same seed and weights must give the same images. */
  seed: number;
}

/** A teacher-forced training sequence: prompt plus image tokens to score. */
export interface TrainSequence {
  prompt: Prompt;
  tokens: Int32Array;
}

/**
 * Logits for a batch of sequences, packed: row r of `logits` ([rows, vocab], f32) predicts
 * `labels[r]`; sequence i owns rows offsets[i]..offsets[i+1]. (No shift: the model aligns rows and
 * labels itself.) `labels` are the image tokens; rows that should not count use ignore index -100.
 */
export interface LogitsBatch {
  logits: Float32Array;
  vocab: number;
  labels: Int32Array;
  offsets: Int32Array;
}

/** Serialisable weights: named Float32Arrays (the loop saves them as checkpoints). */
export type ModelState = Record<string, Float32Array>;

export interface UnifiedModel {
  readonly name: string;
  /** Image-token vocabulary size. */
  readonly vocabSize: number;
  /** Generation branch: n images for a prompt. */
  generate(prompt: Prompt, n: number, options: GenerateOptions): GeneratedImage[] | Promise<GeneratedImage[]>;
  /** Understanding branch: the yes/no self-judgment of (prompt, image); `question` is the filled-in template. */
  judge(prompt: Prompt, image: GeneratedImage, question: string): Judgment | Promise<Judgment>;
  /** Training: logits for the sequences (keeps what it needs for the next `step`). */
  forward(batch: TrainSequence[]): LogitsBatch | Promise<LogitsBatch>;
  /** Training: d(loss)/d(logits) for the last `forward` (same layout), then one optimizer step. */
  step(gradLogits: Float32Array, options: { learningRate: number }): void | Promise<void>;
  /** Weights snapshot (for the reference policy, checkpoints, rollback); must be a copy. */
  snapshot(): ModelState;
  restore(state: ModelState): void;
  /**
   * Optional: the optimizer's state (e.g. Adam moments and step count), a copy. The loop saves it in
   * every checkpoint and hands it back to `restoreOptimizer` on resume, so a resumed run ends exactly
   * where an uninterrupted one does; without it, exact resume holds only for stateless optimizers (SGD).
   */
  optimizerState?(): ModelState;
  restoreOptimizer?(state: ModelState): void;
}

/** Ground-truth (or stronger) verdict on (prompt, image); for evaluation and the guard, never training. */
export interface ExternalJudge {
  readonly name: string;
  verify(prompt: Prompt, image: GeneratedImage): boolean | Promise<boolean>;
}

/** The paper's fixed self-judgment question; `{prompt}` is replaced by the prompt text. */
export const DEFAULT_JUDGE_QUESTION =
  'Does this image describe {prompt}? If it describes the scene, score 1; if it does not fully describe, score 0. The score is';

// ----------------------------------------------------------------------------------------------
// The loop's public entry (implemented in lib/loop/run.ts): names fixed here so the CLI and the
// embedded world can be written against them. Implementations may add fields, not rename them.

export type Strategy = 'sft' | 'dpo' | 'c-sft' | 'c-dpo' | 'clo';

export interface LoopConfig {
  strategy: Strategy;
  /** Self-improvement rounds (each: sample, self-judge, build data, train, evaluate). */
  rounds: number;
  /** Images sampled per prompt (N; >= 2 for DPO strategies). */
  samplesPerPrompt: number;
  temperature: number;
  seed: number;
  learningRate: number;
  /** Training epochs over each round's data. */
  epochsPerRound: number;
  /** DPO beta and the weight of the NLL term on chosen (['sigmoid','sft'] combined loss). */
  beta: number;
  nllWeight: number;
  /** Share (0..1) of the self-judgments used for training that are corrupted (co-degradation experiment); see corruptMode. */
  corrupt: number;
  /** Self-judgment question template ({prompt} is replaced). */
  question: string;
  // --- added by lib/loop (defaults in DEFAULT_LOOP_CONFIG, lib/loop/config.ts) ---
  /** Training sequences per mini-batch (DPO: pairs per mini-batch). Default 16. */
  batchSize: number;
  /** DPO pairing: per prompt the most confident accepted vs the least confident rejected ('best-worst', default) or every accepted x rejected ('all'). */
  pairing: Pairing;
  /** c-sft / c-dpo: first round whose replay re-judges the discard pool (>= 1). Default 2. */
  triggerRound: number;
  /** clo: share of the prompts (easiest first, by own pass rate) the pool starts with, in (0, 1]. Default 0.3. */
  cloStartFraction: number;
  /** clo: the pool grows when its pass rate (self-accept rate) reaches this, in [0, 1]. Default 0.6. */
  cloThreshold: number;
  /** clo: share of all prompts added at each expansion, in (0, 1]. Default 0.2. */
  cloGrowth: number;
  /** Co-degradation guard (needs an external judge). Default: on when a judge is given. */
  guard: boolean;
  /** Guard: how far (absolute, in [0, 1]) external accuracy may fall below the best round's. Default 0.05. */
  guardTolerance: number;
  /**
   * Guard: a fall counts only when the upper end of the current rate's Wilson bound at this z is still
   * more than guardTolerance below the best round, and a rise of unification only when the lower end of
   * its bound is above the best round's (small probe sets are noisy); 0 compares the plain rates. >= 0.
   * Default 1.645 (one-sided 95 %). See lib/loop/guard.ts for the rules.
   */
  guardZ: number;
  /** Re-threshold the self-judgment: accept iff pYes >= this; null keeps the model's own verdict. Default null. */
  acceptThreshold: number | null;
  /** Images per probe prompt (null: samplesPerPrompt). Default null. */
  probeSamples: number | null;
  /**
   * Guard: which understanding accuracy it watches. 'fixed' (default): the self-judgment's accuracy on the
   * fixed labelled probe set built at round 0 (`RoundMetrics.fixedProbe`), which does not move when only
   * the model's images change. 'own': the older signal, agreement with the external judge on the model's
   * own fresh probe samples; it is confounded by generation (as generation improves, its errors become
   * subtler near misses and own-sample understanding accuracy falls with a frozen judge too).
   */
  guardUnderstanding: GuardUnderstanding;
  /**
   * Guard: also watch external generation accuracy on the training prompts' fresh samples (and count a
   * rise of unification on them, which a fall of it pairs with). Not a held-out evaluation (the loop trains on those prompts), but it
   * catches corrupted training when a small model's probe accuracy is at its floor and cannot fall.
   * Default true.
   */
  guardTrainGeneration: boolean;
  /**
   * Guard: also watch acceptance precision, the share of the self-accepted samples the external judge
   * finds right (1 - the false-positive rate), on the probe samples (paired with probe unification) and,
   * with guardTrainGeneration, on the training samples (paired with train-split unification). A real
   * fall of it with a real rise of unification on the same samples is co-degradation: the model accepts
   * more of its own images while fewer of the accepted ones are right (lib/loop/guard.ts). It counts in
   * the best-round score where both rounds have it. Default true; false restores the guard's decisions
   * without it exactly.
   */
  guardPrecision: boolean;
  /**
   * Which self-judgments `corrupt` acts on (deterministic by (seed, round); see corruptJudgments in
   * lib/loop/data.ts). 'flip' (default): a share `corrupt` of ALL training self-judgments is flipped,
   * accept ↔ reject (symmetric label noise). 'accept': a share `corrupt` of the self-REJECTED ones is marked
   * accepted (pYes → 1 − pYes), nothing else changes: rejected images, wrong and right, enter the SFT set / the chosen side of
   * DPO pairs. 'wrong': a share `corrupt` of the externally WRONG samples the model rejected is marked
   * accepted (pYes → 1 − pYes): wrong images labelled accepted, the paper's corrupted supervision (paper.md
   * "Learning dynamics"); needs an external judge (the experimenter chooses what to poison; training still
   * never reads a verdict otherwise). 'adversarial': a share `corrupt` of ALL training samples (with an
   * external verdict) gets the training label opposite to the external verdict: wrong images accepted,
   * right images rejected (a judgment that already disagrees with the verdict is kept; the others flip,
   * pYes → 1 − pYes). At 1 SFT trains on exactly the model's wrong samples and every DPO pair is a wrong
   * image chosen over a right one: the literal "corrupted training labels"; needs an external judge.
   */
  corruptMode: CorruptMode;
}

export type CorruptMode = 'flip' | 'accept' | 'wrong' | 'adversarial';

export type GuardUnderstanding = 'fixed' | 'own';

/** A labelled (prompt, image) pair of the fixed probe set: the external verdict is known and fixed. */
export interface LabelledPair {
  prompt: Prompt;
  image: GeneratedImage;
  /** true: the image satisfies the prompt. */
  label: boolean;
}

/** One item of the fixed probe set; `source` says whether the round-0 model drew it or the user supplied it. */
export interface FixedProbeItem extends LabelledPair {
  source: 'model' | 'supplied';
}

export type Pairing = 'best-worst' | 'all';

/** Counts behind a rate, so every rate can carry an interval. */
export interface Rate {
  value: number;
  count: number;
  total: number;
}

export interface RoundMetrics {
  round: number;
  strategy: Strategy;
  /** Share of the model's own samples its understanding branch rejects, overall and per category. */
  nonunified: Rate & { perCategory: Record<string, Rate> };
  acceptRate: Rate;
  /** With an external judge (on the train samples and on the held-out probe set). */
  external?: {
    generationAccuracy: Rate;
    understandingAccuracy: Rate;
    falsePositiveRate: Rate;
    blame: { weakGeneration: Rate; weakUnderstanding: Rate };
  };
  /**
   * Fresh samples of the held-out probe prompts. `understandingAccuracy` here (like
   * `external.understandingAccuracy`) is OWN-SAMPLE understanding accuracy: agreement with the external
   * judge on this round's own images, so it moves with generation as well as with the judge.
   */
  probe?: {
    generationAccuracy: Rate;
    understandingAccuracy: Rate;
    nonunified: Rate;
    /**
     * Self-accepted but externally wrong, over self-accepted, on the probe samples. Absent in metrics
     * written before it was recorded.
     */
    falsePositiveRate?: Rate;
  };
  /**
   * External understanding accuracy on the FIXED labelled probe set (built once at round 0 and stored in
   * the run directory: the round-0 model's samples of the probe prompts, each labelled once by the
   * external judge, plus `RunOptions.probeSet`): the same (prompt, image) pairs every round, so only the
   * judge moves it. Present with an external judge. Rates over the items: accuracy, accepted among
   * label-false items, rejected among label-true items.
   */
  fixedProbe?: {
    understandingAccuracy: Rate;
    falsePositiveRate: Rate;
    falseNegativeRate: Rate;
    /** Items drawn by the round-0 model and items supplied in RunOptions.probeSet. */
    items: { model: number; supplied: number };
  };
  /**
   * The paper's understanding win rate (paper.md "Results": Und win-rate) on the fixed labelled probe set:
   * over the items whose self-judgment this round differs from the round-0 self-judgment, the share on
   * which this round's judgment agrees with the external label (see `understandingWinRate` in
   * lib/loop/metrics.ts). Round 0 (and any round with no disagreements): 0.5 with count 0 / total 0, 50 %
   * by construction, as the paper's base model. Computed only over disagreements: tiny denominators, read
   * it with its Wilson interval. Absent without a fixed probe set (no external judge); null when the run
   * directory was made before the round-0 verdicts were stored (resumed older run): unavailable.
   */
  understandingWinRate?: Rate | null;
  train: { sftExamples: number; dpoPairs: number; meanLoss: number; trainingPrompts: number; discardPool: number };
  /**
   * warning: a watched accuracy fell beyond the tolerance while unification did not rise on the same
   * samples (not stopped).
   */
  guard?: { tripped: boolean; reason?: string; warning?: string };
}

export type LoopEvent =
  | { type: 'round-start'; round: number; rounds: number }
  | { type: 'samples-judged'; round: number; done: number; total: number }
  | { type: 'train-step'; round: number; step: number; steps: number; loss: number }
  | { type: 'round-end'; round: number; metrics: RoundMetrics }
  | { type: 'guard'; round: number; reason: string; rolledBackTo: number };

export interface RunOptions {
  model: UnifiedModel;
  /** External judge for evaluation and the guard (never used for training). */
  judge?: ExternalJudge;
  trainPrompts: Prompt[];
  /** Held-out probe prompts, judged externally every round for the co-degradation guard. */
  probePrompts?: Prompt[];
  /**
   * Optional labelled (prompt, image) pairs added to the fixed probe set (e.g. constructed matching scenes
   * and near misses, balancing the round-0 samples, which are mostly wrong for a weak model). Needs an
   * external judge (the set is only evaluated when there is one). Part of the run's identity.
   */
  probeSet?: LabelledPair[];
  config?: Partial<LoopConfig>;
  /** Run directory (config, metrics JSONL, pool state, checkpoints; atomic writes). */
  runDir?: string;
  /** Continue the run in runDir (must have been made with the same config). */
  resume?: boolean;
  onEvent?: (event: LoopEvent) => void;
}

export interface RunResult {
  config: LoopConfig;
  /** Round 0 is the baseline evaluation before any training. */
  rounds: RoundMetrics[];
  guardEvents: { round: number; reason: string; rolledBackTo: number }[];
  stoppedEarly: boolean;
}

// --- added by lib/loop: the judged samples every metric and data builder works on ---

/** One of the model's own images with its self-judgment and (when a judge is given) the external verdict. */
export interface JudgedSample {
  image: GeneratedImage;
  judgment: Judgment;
  /** The external judge's verdict (true: the image is right). Evaluation only, never training. */
  external?: boolean;
}

/** The N judged samples of one prompt. */
export interface PromptSamples {
  prompt: Prompt;
  samples: JudgedSample[];
}
