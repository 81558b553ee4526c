/**
 * Example 2: fine-tune a small TensorFlow.js model with DPO through `unigap/tfjs`.
 * Run: `node --import tsx examples/02-tfjs-dpo-finetune.ts` (BACKEND=wasm for the WASM backend).
 *
 * The model is a tiny next-token predictor (one-hot token → dense → dense → logits over V tokens). Preference
 * pairs share a prompt token; the chosen completion counts up (t, t+1, t+2, …) and the rejected one
 * is random. The reference model is the policy before training (frozen). `dpoLossOp` is an ordinary
 * differentiable tf op: `optimizer.minimize` trains through it, and its forward and backward run
 * unigap's fused native kernels on the logits.
 */
import { pathToFileURL } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { dpoLossOp, logprobsOp, type DpoOpResult } from 'unigap/tfjs';

export interface FinetuneOptions {
  pairs?: number;
  /** Tokens per sequence (1 prompt token + T − 1 completion tokens). */
  T?: number;
  vocab?: number;
  steps?: number;
  learningRate?: number;
  beta?: number;
  backend?: 'cpu' | 'wasm';
  log?: boolean;
}

/** Next-token logits from the current token: one-hot → dense(tanh) → dense (the WASM backend has no
 * gradient kernel for tf.layers.embedding's gather, so the one-hot is applied by a matrix product). */
function makeModel(vocab: number, dim: number): tf.Sequential {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      inputShape: [null, vocab],
      units: dim,
      activation: 'tanh',
      kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
    }),
  );
  model.add(tf.layers.dense({ units: vocab, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
  return model;
}

/** 2B sequences [chosen; rejected]: inputs [2B, T] and labels [2B·T] (the prompt position is ignored). */
function preferencePairs(pairs: number, T: number, vocab: number, seed = 7) {
  let x = seed >>> 0;
  const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x / 4294967296);
  const tokens = new Int32Array(2 * pairs * T);
  for (let p = 0; p < pairs; p++) {
    const start = Math.floor(next() * vocab);
    for (let t = 0; t < T; t++) {
      tokens[p * T + t] = (start + t) % vocab; // chosen: counts up
      tokens[(pairs + p) * T + t] = t === 0 ? start : Math.floor(next() * vocab); // rejected: random
    }
  }
  // With shift, the logits at t score the token at t + 1; label -100 keeps the prompt out.
  const labels = Int32Array.from(tokens, (v, i) => (i % T === 0 ? -100 : v));
  return { tokens, labels };
}

export async function main(options: FinetuneOptions = {}) {
  const { pairs = 8, T = 8, vocab = 24, steps = 30, learningRate = 0.01, beta = 0.1, log = true } = options;
  const backend = options.backend ?? ((process.env.BACKEND as 'cpu' | 'wasm' | undefined) || 'cpu');
  const previous = tf.getBackend();
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend '${backend}' is not available`);
  await tf.ready();
  const before = tf.memory().numTensors;

  const policy = makeModel(vocab, 16);
  const reference = makeModel(vocab, 16); // same seeds: the policy's starting point, never trained
  const { tokens, labels } = preferencePairs(pairs, T, vocab);
  const inputs = tf.tidy(() => tf.oneHot(tf.tensor2d(tokens, [2 * pairs, T], 'int32'), vocab).toFloat());

  // Reference log-probs, once (no gradient): summed over each sequence's completion tokens.
  const referenceLogprobs = tf.tidy(() => logprobsOp(reference.apply(inputs) as tf.Tensor3D, labels, { shift: true }));

  const optimizer = tf.train.adam(learningRate);
  const history: number[] = [];
  let last: DpoOpResult | undefined;
  for (let step = 0; step < steps; step++) {
    const loss = optimizer.minimize(
      () =>
        dpoLossOp(policy.apply(inputs) as tf.Tensor3D, labels, referenceLogprobs, {
          shift: true,
          beta,
          onResult: (r) => (last = r),
        }),
      true,
    );
    history.push(loss!.dataSync()[0]);
    loss!.dispose();
    if (log && (step % 10 === 0 || step === steps - 1))
      console.log(
        `step ${String(step).padStart(3)}  loss ${history[step].toFixed(4)}  reward accuracy ${last!.rewardAccuracy.toFixed(2)}  mean margin ${mean(last!.margins).toFixed(3)}`,
      );
  }

  optimizer.dispose();
  tf.dispose([inputs, referenceLogprobs]);
  policy.layers.forEach((l) => l.dispose());
  reference.layers.forEach((l) => l.dispose());
  const leaked = tf.memory().numTensors - before;
  if (previous && previous !== backend) await tf.setBackend(previous);
  if (log)
    console.log(
      `backend ${backend}: loss ${history[0].toFixed(4)} → ${history[steps - 1].toFixed(4)}; tensors left: ${leaked}`,
    );
  return {
    backend,
    history,
    initialLoss: history[0],
    finalLoss: history[steps - 1],
    rewardAccuracy: last!.rewardAccuracy,
    leaked,
  };
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
