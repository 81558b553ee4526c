/**
 * unigap/tfjs: a TensorFlow.js DPO training step with unigap's fused op (dpoLossOp) against the same
 * step with the loss composed from tf ops (logSoftmax, one-hot gather, mask, sum, softplus), on the
 * tfjs CPU backend and the WASM backend, in one run. Also the loss alone (forward + gradient w.r.t.
 * the logits, no model) and logprobsOp's two backward designs ('fused' vs 'lse') against tf ops.
 *
 * Shapes: 2B = 8 sequences (4 pairs) × T = 64 tokens × V = 2048 vocabulary (1 M logits, 4 MB f32),
 * prompt = the first 8 tokens of each sequence (ignored), shift (causal LM). The model of the training
 * step is one dense layer h [8·64, 32] × W [32, 2048] → logits; the step is optimizer.minimize (SGD).
 * `npm run bench -- tfjs`; BENCH_TFJS_SMALL=1 for a quick look at V = 512 (not saved).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { backendInfo } from '../lib/index.js';
import { dpoLossOp, logprobsOp } from '../lib/tfjs/index.js';
import { printHeader, runCases, saveResults, type BenchCase, type BenchRow } from './common.js';

const small = process.env.BENCH_TFJS_SMALL === '1';
const [P, T, V, H] = small ? [4, 64, 512, 32] : [4, 64, 2048, 32];
const S = 2 * P;
const PROMPT = 8;
const BETA = 0.1;

function lcg(seed: number) {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x / 4294967296);
}

const rand = lcg(1);
const labels = Int32Array.from({ length: S * T }, (_, i) => (i % T < PROMPT ? -100 : Math.floor(rand() * V)));
// The composed path's shifted targets: row t of a sequence scores label t + 1.
const shiftedIdx = new Int32Array(S * (T - 1));
const shiftedValid = new Float32Array(S * (T - 1));
for (let s = 0; s < S; s++)
  for (let t = 0; t < T - 1; t++) {
    const y = labels[s * T + t + 1];
    shiftedIdx[s * (T - 1) + t] = y < 0 ? 0 : y;
    shiftedValid[s * (T - 1) + t] = y < 0 ? 0 : 1;
  }
const refLogp = Float32Array.from({ length: S }, () => -(T - PROMPT) * Math.log(V) + (rand() - 0.5) * 4);

/** Summed log p of the shifted labels per sequence, from tf ops only. */
function composedSeqLogp(logits: tf.Tensor3D, onehot: tf.Tensor, valid: tf.Tensor): tf.Tensor1D {
  const lsm = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [S, T - 1, V]));
  return tf.sum(tf.mul(tf.sum(tf.mul(lsm, onehot), 2), valid), 1) as tf.Tensor1D;
}

/** TRL's sigmoid DPO from tf ops (log σ(z) = −softplus(−z): tf.logSigmoid's gradient breaks on intermediates). */
function composedDpo(seqLogp: tf.Tensor1D, ref: tf.Tensor1D): tf.Scalar {
  const ratio = tf.sub(seqLogp, ref);
  const z = tf.mul(tf.sub(tf.slice(ratio, 0, P), tf.slice(ratio, P, P)), BETA);
  return tf.mean(tf.softplus(tf.neg(z))) as tf.Scalar;
}

async function backendCases(backend: 'cpu' | 'wasm', isa: string): Promise<BenchCase[] | string> {
  try {
    if (!(await tf.setBackend(backend))) return 'setBackend returned false';
    await tf.ready();
  } catch (e) {
    return (e as Error).message;
  }
  const r = lcg(7);
  const h = tf.tensor2d(
    Float32Array.from({ length: S * T * H }, () => r() - 0.5),
    [S * T, H],
  );
  const W = tf.variable(
    tf.tensor2d(
      Float32Array.from({ length: H * V }, () => (r() - 0.5) * 0.2),
      [H, V],
    ),
  );
  const logits0 = tf.tensor3d(
    Float32Array.from({ length: S * T * V }, () => (r() - 0.5) * 6),
    [S, T, V],
  );
  const onehot = tf.oneHot(tf.tensor2d(shiftedIdx, [S, T - 1], 'int32'), V);
  const valid = tf.tensor2d(shiftedValid, [S, T - 1]);
  const ref = tf.tensor1d(refLogp);
  const labelsT = tf.tensor2d(labels, [S, T], 'int32');
  const opt = tf.train.sgd(1e-3);
  const model = () => tf.reshape(tf.matMul(h, W), [S, T, V]) as tf.Tensor3D;
  const unigapLoss = (logits: tf.Tensor3D) => dpoLossOp(logits, labelsT, ref, { shift: true, beta: BETA });
  const composedLoss = (logits: tf.Tensor3D) => composedDpo(composedSeqLogp(logits, onehot, valid), ref);

  // Same numbers first (and the same gradient w.r.t. the logits), so the rows compare like with like.
  tf.tidy(() => {
    const a = tf.valueAndGrad(unigapLoss)(logits0);
    const b = tf.valueAndGrad(composedLoss)(logits0);
    const dl = Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0]);
    const dg = tf.max(tf.abs(tf.sub(a.grad, b.grad))).dataSync()[0];
    console.log(`[${backend}] unigap vs composed: |Δloss| ${dl.toExponential(2)}, max |Δgrad| ${dg.toExponential(2)}`);
    if (!(dl < 1e-4 && dg < 1e-5)) throw new Error(`[${backend}] unigap and composed disagree`);
  });

  const tag = `tfjs ${backend}`;
  const stepShape = `${S}×${T}×${V}, H ${H}`;
  const opShape = `${S}×${T}×${V}`;
  const time = small ? 600 : 1500;
  const step = (loss: (l: tf.Tensor3D) => tf.Scalar) => () => {
    const v = opt.minimize(() => loss(model()), true, [W]);
    v?.dispose();
  };
  const valueAndGrad = (f: (l: tf.Tensor3D) => tf.Tensor) => () =>
    tf.tidy(() => {
      const { value, grad } = tf.valueAndGrad((l: tf.Tensor3D) => tf.sum(f(l)) as tf.Scalar)(logits0);
      grad.dataSync();
      return value.dataSync()[0];
    });
  const cases: BenchCase[] = [
    {
      op: 'DPO train step (dense + loss)',
      provider: `unigap/${tag}`,
      isa,
      dtype: 'f32',
      shape: stepShape,
      time,
      fn: step(unigapLoss),
    },
    {
      op: 'DPO train step (dense + loss)',
      provider: `tf ops/${tag}`,
      isa: '-',
      dtype: 'f32',
      shape: stepShape,
      time,
      fn: step(composedLoss),
    },
    {
      op: 'DPO loss fwd+bwd (logits)',
      provider: `unigap/${tag}`,
      isa,
      dtype: 'f32',
      shape: opShape,
      time,
      fn: valueAndGrad(unigapLoss),
    },
    {
      op: 'DPO loss fwd+bwd (logits)',
      provider: `tf ops/${tag}`,
      isa: '-',
      dtype: 'f32',
      shape: opShape,
      time,
      fn: valueAndGrad(composedLoss),
    },
    {
      op: 'seq logprobs fwd+bwd (logits)',
      provider: `unigap fused/${tag}`,
      isa,
      dtype: 'f32',
      shape: opShape,
      time,
      fn: valueAndGrad((l) => logprobsOp(l, labelsT, { shift: true, backward: 'fused' })),
    },
    {
      op: 'seq logprobs fwd+bwd (logits)',
      provider: `unigap lse/${tag}`,
      isa,
      dtype: 'f32',
      shape: opShape,
      time,
      fn: valueAndGrad((l) => logprobsOp(l, labelsT, { shift: true, backward: 'lse' })),
    },
    {
      op: 'seq logprobs fwd+bwd (logits)',
      provider: `tf ops/${tag}`,
      isa: '-',
      dtype: 'f32',
      shape: opShape,
      time,
      fn: valueAndGrad((l) => composedSeqLogp(l, onehot, valid)),
    },
  ];
  const dispose = () => {
    tf.dispose([h, W, logits0, onehot, valid, ref, labelsT]);
    opt.dispose();
  };
  return Object.assign(cases, { dispose });
}

async function main() {
  printHeader('tfjs');
  const isa = backendInfo().cpu.isa ?? '-';
  console.log(`tfjs ${tf.version.tfjs}; shapes: ${S} sequences × ${T} tokens × ${V} vocabulary, dense H ${H}\n`);
  const rows: BenchRow[] = [];
  const skipped: Record<string, string> = {};
  for (const backend of ['cpu', 'wasm'] as const) {
    const cases = await backendCases(backend, isa);
    if (typeof cases === 'string') {
      console.log(`[${backend}] skipped: ${cases}`);
      skipped[backend] = cases;
      continue;
    }
    const before = tf.memory().numTensors;
    rows.push(...(await runCases(cases)));
    if (tf.memory().numTensors !== before) throw new Error(`[${backend}] the bench leaked tensors`);
    (cases as unknown as { dispose(): void }).dispose();
  }
  for (const op of new Set(rows.map((r) => r.op)))
    for (const backend of ['cpu', 'wasm']) {
      const rs = rows.filter((r) => r.op === op && r.provider.endsWith(`tfjs ${backend}`));
      const base = rs.find((r) => r.provider.startsWith('tf ops'));
      for (const r of rs)
        if (base && r !== base)
          console.log(`${op} [${backend}] ${r.provider}: ${(base.p50Ms / r.p50Ms).toFixed(2)}× vs tf ops`);
    }
  if (!small)
    saveResults('tfjs', rows, {
      tfjs: tf.version.tfjs,
      shapes: { sequences: S, tokens: T, vocab: V, hidden: H, promptTokens: PROMPT, beta: BETA },
      skipped,
    });
}

await main();
