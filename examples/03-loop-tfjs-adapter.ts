/**
 * Example 3: drive the self-improvement loop with your own model: a user-written `UnifiedModel`
 * adapter around a TensorFlow.js model. Run: `node --import tsx examples/03-loop-tfjs-adapter.ts`
 *
 * The toy world: a prompt asks for an image of one of V colours; an image is L tokens (one colour
 * each) and is right when every token is the asked colour. The model has
 * - a generation branch (tfjs: prompt one-hot → dense(tanh) → dense → L×V logits), pretrained on
 *   noisy data so it is right only part of the time, and
 * - an understanding branch (tfjs: a logistic reader of how many tokens match), which answers the
 *   self-judgment question, leniently: it also accepts near misses.
 * The loop samples images, lets the model judge its own samples, builds DPO pairs (most vs least
 * confident) and trains the generation branch; unigap's kernels compute the log-probs, the DPO loss
 * and d(loss)/d(logits) from the logits the adapter returns, and the adapter backpropagates that
 * gradient through its tfjs model (a vector-Jacobian product) and takes an SGD step. An external
 * judge (the exact rule) only measures.
 */
import { pathToFileURL } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import {
  runSelfImprovement,
  type ExternalJudge,
  type GeneratedImage,
  type GenerateOptions,
  type Judgment,
  type LogitsBatch,
  type ModelState,
  type Prompt,
  type TrainSequence,
  type UnifiedModel,
} from 'unigap';

const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];

/** mulberry32: the adapter's own seeded sampler (same seed and weights → same images). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const colorOf = (p: Prompt) => COLORS.indexOf(p.text.replace('an image that is all ', ''));

/** The adapter: everything the loop needs, in terms of a tfjs model the user already has. */
export class TfjsColorModel implements UnifiedModel {
  readonly name = 'tfjs-color-model';
  readonly vocabSize = COLORS.length;
  readonly imageTokens: number;
  private readonly vars: tf.Variable[];
  /** The understanding branch: pYes = σ(scale · (matching share − threshold)). */
  private readonly reader = { scale: tf.scalar(10), threshold: tf.scalar(0.6) };
  private last: TrainSequence[] = [];

  constructor(imageTokens = 3, hidden = 16, seed = 3) {
    this.imageTokens = imageTokens;
    const V = this.vocabSize;
    const init = (shape: number[], s: number) =>
      tf.variable(tf.randomNormal(shape, 0, 1 / Math.sqrt(shape[0]), 'float32', seed + s));
    // tidy disposes the initial values; the variables (which share their data) survive it.
    this.vars = tf.tidy(() => [
      init([V, hidden], 0),
      tf.variable(tf.zeros([hidden])),
      init([hidden, imageTokens * V], 1),
    ]);
  }

  /** Generation logits [n, L, V] for n prompts (the model's own forward, tf ops only). */
  private logits(colors: number[]): tf.Tensor3D {
    const [w1, b1, w2] = this.vars;
    const x = tf.oneHot(tf.tensor1d(colors, 'int32'), this.vocabSize).toFloat();
    return tf
      .matMul(tf.tanh(tf.add(tf.matMul(x, w1), b1)), w2)
      .reshape([colors.length, this.imageTokens, this.vocabSize]);
  }

  /** Supervised warm-up on noisy targets (right colour half the time): a base model with a gap. */
  pretrain(steps = 60, learningRate = 0.05, seed = 11): void {
    const r = rng(seed);
    const V = this.vocabSize;
    const colors = Array.from({ length: 8 * V }, (_, i) => i % V);
    const targets = colors.flatMap((c) =>
      Array.from({ length: this.imageTokens }, () => (r() < 0.5 ? c : Math.floor(r() * V))),
    );
    const opt = tf.train.adam(learningRate);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(targets, 'int32'), V));
    for (let s = 0; s < steps; s++)
      opt.minimize(
        () => tf.losses.softmaxCrossEntropy(y, this.logits(colors).reshape([-1, V])) as tf.Scalar,
        false,
        this.vars,
      );
    opt.dispose();
    y.dispose();
  }

  generate(prompt: Prompt, n: number, options: GenerateOptions): GeneratedImage[] {
    const L = this.imageTokens;
    const V = this.vocabSize;
    const probs = tf.tidy(() => tf.softmax(tf.div(this.logits([colorOf(prompt)]), options.temperature)).dataSync());
    const r = rng(options.seed);
    return Array.from({ length: n }, () => {
      const tokens = new Int32Array(L);
      for (let l = 0; l < L; l++) {
        let u = r();
        let v = 0;
        while (v < V - 1 && (u -= probs[l * V + v]) > 0) v++;
        tokens[l] = v;
      }
      return { tokens };
    });
  }

  judge(prompt: Prompt, image: GeneratedImage, _question: string): Judgment {
    const c = colorOf(prompt);
    const pYes = tf.tidy(() => {
      const share = tf.mean(tf.equal(tf.tensor1d(image.tokens, 'int32'), c).toFloat());
      return tf.sigmoid(tf.mul(this.reader.scale, tf.sub(share, this.reader.threshold))).dataSync()[0];
    });
    return { pYes, accept: pYes >= 0.5 };
  }

  /** Teacher-forced logits of the sequences, packed [rows, V]; rows of sequence i predict its tokens. */
  forward(batch: TrainSequence[]): LogitsBatch {
    this.last = batch;
    const L = this.imageTokens;
    const logits = tf.tidy(() => this.logits(batch.map((s) => colorOf(s.prompt))).dataSync() as Float32Array);
    const labels = new Int32Array(batch.length * L);
    batch.forEach((s, i) => labels.set(s.tokens, i * L));
    const offsets = Int32Array.from({ length: batch.length + 1 }, (_, i) => i * L);
    return { logits, vocab: this.vocabSize, labels, offsets };
  }

  /** d(loss)/d(logits) from the loop → d(loss)/d(weights) by tf (VJP: grad of ⟨logits, G⟩) → SGD. */
  step(gradLogits: Float32Array, options: { learningRate: number }): void {
    const colors = this.last.map((s) => colorOf(s.prompt));
    tf.tidy(() => {
      const g = tf.tensor3d(gradLogits, [colors.length, this.imageTokens, this.vocabSize]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(this.logits(colors), g)) as tf.Scalar, this.vars);
      for (const v of this.vars) v.assign(tf.sub(v, tf.mul(grads[v.name], options.learningRate)));
    });
  }

  snapshot(): ModelState {
    return Object.fromEntries(this.vars.map((v, i) => [`w${i}`, v.dataSync().slice() as Float32Array]));
  }

  restore(state: ModelState): void {
    tf.tidy(() => this.vars.forEach((v, i) => v.assign(tf.tensor(state[`w${i}`], v.shape))));
  }

  dispose(): void {
    tf.dispose([...this.vars, this.reader.scale, this.reader.threshold]);
  }
}

/** The ground truth: every token is the asked colour (measures only, never trains). */
export const exactJudge: ExternalJudge = {
  name: 'exact-colour-rule',
  verify: (prompt, image) => image.tokens.every((t) => t === colorOf(prompt)),
};

export async function main(options: { rounds?: number; samplesPerPrompt?: number; log?: boolean } = {}) {
  const { rounds = 3, samplesPerPrompt = 8, log = true } = options;
  await tf.setBackend('cpu');
  const before = tf.memory().numTensors;
  const model = new TfjsColorModel();
  model.pretrain();
  const prompts: Prompt[] = COLORS.map((c, i) => ({
    id: `p${i}`,
    text: `an image that is all ${c}`,
    category: 'color',
  }));
  const result = await runSelfImprovement({
    model,
    judge: exactJudge,
    trainPrompts: prompts,
    config: {
      strategy: 'dpo',
      rounds,
      samplesPerPrompt,
      beta: 0.5,
      learningRate: 0.5,
      batchSize: 8,
      seed: 1,
      guard: false,
    },
  });
  const accuracy = result.rounds.map((m) => m.external!.generationAccuracy.value);
  const nonunified = result.rounds.map((m) => m.nonunified.value);
  if (log)
    for (const m of result.rounds)
      console.log(
        `round ${m.round}: generation accuracy ${m.external!.generationAccuracy.value.toFixed(3)}, ` +
          `self-accept ${m.acceptRate.value.toFixed(3)}, non-unified ${m.nonunified.value.toFixed(3)}, ` +
          `false positives ${m.external!.falsePositiveRate.value.toFixed(3)}, DPO pairs ${m.train.dpoPairs}, loss ${m.train.meanLoss.toFixed(4)}`,
      );
  model.dispose();
  return { accuracy, nonunified, rounds: result.rounds, leaked: tf.memory().numTensors - before };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
