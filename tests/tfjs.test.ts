/**
 * unigap/tfjs: logprobsOp and dpoLossOp against the same computation composed from tf ops
 * (logSoftmax, one-hot gather, logSigmoid...), forward and gradient, on the CPU backend and the WASM
 * backend, with no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidTypeError, ShapeMismatchError, UnknownOptionError } from '../lib/index.js';
import {
  dpoLossOp,
  logprobsOp,
  setTfjs,
  type DpoOpResult,
  type LogprobsReduction,
  type Tfjs,
} from '../lib/tfjs/index.js';
import { packageRoot } from '../lib/native.js';
import { randn, rng, runNode } from './helpers.js';

const IGNORE = -100;

/** Can the WASM backend start under this Node? (reason printed and the suite skipped if not) */
async function wasmAvailable(): Promise<string | null> {
  try {
    const ok = await tf.setBackend('wasm');
    await tf.ready();
    return ok ? null : 'tf.setBackend("wasm") returned false';
  } catch (e) {
    return `the WASM backend failed to initialize: ${(e as Error).message}`;
  } finally {
    await tf.setBackend('cpu');
  }
}
const wasmSkipReason = await wasmAvailable();
if (wasmSkipReason) console.log(`[tfjs.test] skipping the WASM backend: ${wasmSkipReason}`);

// ----------------------------------------------------------------------------- composed references

/** Row r's counted target (or -1): with shift, the label at r + 1 within r's sequence. */
function alignedTargets(labels: Int32Array, offsets: Int32Array, shift: boolean, mask?: Uint8Array): Int32Array {
  const out = new Int32Array(labels.length).fill(-1);
  for (let s = 0; s + 1 < offsets.length; s++)
    for (let r = offsets[s]; r < offsets[s + 1]; r++) {
      const k = shift ? r + 1 : r;
      if (k >= offsets[s + 1]) continue;
      if (labels[k] === IGNORE || (mask && mask[k] === 0)) continue;
      out[r] = labels[k];
    }
  return out;
}

/** [N, B] membership matrix (row r belongs to sequence s). */
function membership(offsets: Int32Array, n: number): tf.Tensor2D {
  const b = offsets.length - 1;
  const m = new Float32Array(n * b);
  for (let s = 0; s < b; s++) for (let r = offsets[s]; r < offsets[s + 1]; r++) m[r * b + s] = 1;
  return tf.tensor2d(m, [n, b]);
}

/** Per-row log p(target) from tf ops only: logSoftmax(z/τ) picked by a one-hot, 0 where not counted. */
function composedTokenLogprobs(logits2d: tf.Tensor, targets: Int32Array, temperature: number): tf.Tensor1D {
  const v = logits2d.shape[1] as number;
  const lsm = tf.logSoftmax(tf.div(logits2d, temperature));
  const onehot = tf.oneHot(
    tf.tensor1d(
      Array.from(targets, (y) => Math.max(y, 0)),
      'int32',
    ),
    v,
  );
  const valid = tf.tensor1d(Array.from(targets, (y) => (y >= 0 ? 1 : 0)));
  return tf.mul(tf.sum(tf.mul(lsm, onehot), 1), valid) as tf.Tensor1D;
}

interface Case {
  logits: Float32Array;
  labels: Int32Array;
  shape: number[];
  offsets: Int32Array;
}

function makeCase(shape: number[], seed: number, offsets?: Int32Array, promptRows = 2): Case {
  const v = shape[shape.length - 1];
  const n = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  const off =
    offsets ??
    (shape.length === 3 ? Int32Array.from({ length: shape[0] + 1 }, (_, i) => i * shape[1]) : Int32Array.of(0, n));
  const r = rng(seed);
  const labels = new Int32Array(n);
  for (let s = 0; s + 1 < off.length; s++)
    for (let t = off[s]; t < off[s + 1]; t++) labels[t] = t - off[s] < promptRows ? IGNORE : Math.floor(r() * v);
  return { logits: randn(n * v, seed + 1, 2), labels, shape, offsets: off };
}

function composedLogprobs(
  x: tf.Tensor,
  c: Case,
  o: { shift?: boolean; temperature?: number; reduction?: LogprobsReduction; mask?: Uint8Array },
): tf.Tensor {
  const v = c.shape[c.shape.length - 1];
  const n = c.labels.length;
  const targets = alignedTargets(c.labels, c.offsets, o.shift ?? false, o.mask);
  const tok = composedTokenLogprobs(tf.reshape(x, [n, v]), targets, o.temperature ?? 1);
  if (o.reduction === 'none') return tf.reshape(tok, c.shape.slice(0, -1));
  const sums = tf.reshape(tf.matMul(tf.reshape(tok, [1, n]), membership(c.offsets, n)), [-1]);
  if (o.reduction === 'mean') {
    const counts = new Float32Array(c.offsets.length - 1);
    for (let s = 0; s < counts.length; s++)
      for (let r = c.offsets[s]; r < c.offsets[s + 1]; r++) if (targets[r] >= 0) counts[s]++;
    return tf.div(sums, tf.tensor1d(Array.from(counts, (k) => Math.max(k, 1))));
  }
  return sums;
}

/** TRL's sigmoid (+ optional sft) and ipo losses composed from tf ops, from the 2B summed log-probs. */
function composedDpo(
  seqLogp: tf.Tensor,
  ref: Float32Array,
  counts: Float32Array,
  o: { beta: number; lossType: 'sigmoid' | 'ipo' | 'sigmoid+sft' },
): tf.Scalar {
  const b = ref.length / 2;
  const pc = tf.slice(seqLogp, 0, b);
  const pr = tf.slice(seqLogp, b, b);
  const rc = tf.tensor1d(ref.subarray(0, b));
  const rr = tf.tensor1d(ref.subarray(b));
  if (o.lossType === 'ipo') {
    const nc = tf.tensor1d(Array.from(counts.subarray(0, b), (k) => Math.max(k, 1)));
    const nr = tf.tensor1d(Array.from(counts.subarray(b), (k) => Math.max(k, 1)));
    const y = tf.sub(tf.sub(tf.div(tf.sub(pc, rc), nc), tf.div(tf.sub(pr, rr), nr)), 1 / (2 * o.beta));
    return tf.mean(tf.square(y));
  }
  const z = tf.mul(tf.sub(tf.sub(pc, rc), tf.sub(pr, rr)), o.beta);
  // log σ(z) = −softplus(−z): tf.logSigmoid's gradient reads its input from the forward's closure, which
  // tfjs 4.22 has already disposed when that input is an intermediate (it throws inside tf.grad).
  let loss = tf.neg(tf.mean(tf.neg(tf.softplus(tf.neg(z)))));
  if (o.lossType === 'sigmoid+sft') {
    const chosenTokens = counts.subarray(0, b).reduce((a, k) => a + k, 0);
    loss = tf.add(loss, tf.div(tf.neg(tf.sum(pc)), Math.max(chosenTokens, 1)));
  }
  return loss as tf.Scalar;
}

function countsOf(c: Case, shift: boolean): Float32Array {
  const t = alignedTargets(c.labels, c.offsets, shift);
  const out = new Float32Array(c.offsets.length - 1);
  for (let s = 0; s < out.length; s++) for (let r = c.offsets[s]; r < c.offsets[s + 1]; r++) if (t[r] >= 0) out[s]++;
  return out;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) - rtol * Math.abs(want[i]);
    if (!(err <= atol) && (at < 0 || err > worst)) {
      worst = err;
      at = i;
    }
  }
  if (at >= 0) expect.fail(`${what}[${at}]: got ${got[at]}, want ${want[at]} (|err| beyond ${atol} + ${rtol}·|want|)`);
}

/** Run fn and check tfjs holds exactly as many tensors after as before. */
function noLeak<T>(fn: () => T): T {
  const before = tf.memory().numTensors;
  const out = fn();
  expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
  return out;
}

// ---------------------------------------------------------------------------------------- suites

for (const backend of ['cpu', 'wasm'] as const) {
  describe.skipIf(backend === 'wasm' && wasmSkipReason !== null)(`unigap/tfjs on the ${backend} backend`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
      await tf.ready();
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    const logprobCases: {
      name: string;
      shape: number[];
      offsets?: Int32Array;
      opts: { shift?: boolean; temperature?: number; reduction?: LogprobsReduction; mask?: Uint8Array };
      backward?: 'fused' | 'lse';
    }[] = [
      { name: '[B,T,V] sum, shift', shape: [3, 7, 53], opts: { shift: true } },
      { name: '[B,T,V] mean, τ = 0.7', shape: [2, 9, 31], opts: { reduction: 'mean', temperature: 0.7 } },
      { name: '[B,T,V] none, shift', shape: [2, 5, 17], opts: { reduction: 'none', shift: true } },
      {
        name: '[N,V] packed offsets, sum, shift, lse backward',
        shape: [13, 29],
        offsets: Int32Array.of(0, 4, 4, 13),
        opts: { shift: true },
        backward: 'lse',
      },
      {
        name: '[N,V] mask, none, lse backward',
        shape: [11, 19],
        opts: { reduction: 'none', mask: Uint8Array.from({ length: 11 }, (_, i) => (i % 3 === 1 ? 0 : 1)) },
        backward: 'lse',
      },
    ];

    for (const lc of logprobCases) {
      it(`logprobsOp ${lc.name}: value and gradient equal the tf-composed op, no leaks`, () => {
        const c = makeCase(lc.shape, 11, lc.offsets);
        const x = tf.tensor(c.logits, lc.shape);
        const labels = tf.tensor(c.labels, lc.shape.slice(0, -1), 'int32');
        const options = {
          ...lc.opts,
          ...(lc.offsets ? { offsets: lc.offsets } : {}),
          ...(lc.backward ? { backward: lc.backward } : {}),
        };
        // Forward (no tape: the op makes no gradient).
        const [got, want] = noLeak(() =>
          tf.tidy(() => [logprobsOp(x, labels, options).dataSync(), composedLogprobs(x, c, lc.opts).dataSync()]),
        );
        expect(got.length).toBeGreaterThan(0);
        expectClose(got, want, 1e-5, 2e-5, 'logprobs');
        // Gradient of a weighted sum (a non-uniform dy), through tf.grad.
        const outLen = got.length;
        const w = tf.tensor(randn(outLen, 5), [outLen]);
        const loss = (op: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(tf.reshape(op(t), [-1]), w));
        const gGot = noLeak(() => {
          const g = tf.grad(loss((t) => logprobsOp(t, labels, options)))(x);
          const d = g.dataSync().slice();
          g.dispose();
          return d;
        });
        const gWant = tf.tidy(() =>
          tf
            .grad(loss((t) => composedLogprobs(t, c, lc.opts)))(x)
            .dataSync(),
        );
        expectClose(gGot, gWant, 1e-4, 1e-6, 'd/dlogits');
        // And with dy = 1 (the fast path that skips the scaling).
        const g1 = tf.tidy(() =>
          tf
            .grad((t: tf.Tensor) => tf.sum(logprobsOp(t, labels, options)))(x)
            .dataSync(),
        );
        const g1Want = tf.tidy(() =>
          tf
            .grad((t: tf.Tensor) => tf.sum(composedLogprobs(t, c, lc.opts)))(x)
            .dataSync(),
        );
        expectClose(g1, g1Want, 1e-4, 1e-6, 'd/dlogits (dy = 1)');
        tf.dispose([x, labels, w]);
      });
    }

    it('logprobsOp: fused and lse backward agree exactly enough, and gradients flow through a model', () => {
      const c = makeCase([2, 6, 23], 3);
      const labels = c.labels;
      const w = tf.variable(tf.tensor2d(randn(8 * 23, 9, 0.3), [8, 23]));
      const h = tf.tensor3d(randn(2 * 6 * 8, 10), [2, 6, 8]);
      const grads = (backward: 'fused' | 'lse') =>
        noLeak(() => {
          const { value, grads } = tf.variableGrads(
            () =>
              tf.neg(
                tf.mean(
                  logprobsOp(tf.matMul(h.reshape([12, 8]), w).reshape([2, 6, 23]), labels, { shift: true, backward }),
                ),
              ) as tf.Scalar,
          );
          const out = { loss: value.dataSync()[0], g: grads[w.name].dataSync().slice() };
          tf.dispose([value, ...Object.values(grads)]);
          return out;
        });
      const a = grads('fused');
      const b = grads('lse');
      const ref = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () =>
            tf.neg(
              tf.mean(composedLogprobs(tf.matMul(h.reshape([12, 8]), w).reshape([2, 6, 23]), c, { shift: true })),
            ) as tf.Scalar,
        );
        return { loss: value.dataSync()[0], g: grads[w.name].dataSync().slice() };
      });
      expect(Math.abs(a.loss - ref.loss)).toBeLessThan(1e-4);
      expectClose(a.g, ref.g, 1e-4, 1e-5, 'dW fused');
      expectClose(b.g, a.g, 1e-5, 1e-6, 'dW lse vs fused');
      tf.dispose([w, h]);
    });

    const dpoCases = [
      { lossType: 'sigmoid' as const, beta: 0.1, shift: true },
      { lossType: 'sigmoid+sft' as const, beta: 0.5, shift: false },
      { lossType: 'ipo' as const, beta: 0.2, shift: true },
    ];
    for (const dc of dpoCases) {
      it(`dpoLossOp ${dc.lossType} (β ${dc.beta}${dc.shift ? ', shift' : ''}): loss and gradient equal the tf-composed DPO, no leaks`, () => {
        const B = 3;
        const c = makeCase([2 * B, 6, 37], 21 + dc.beta * 10);
        const x = tf.tensor(c.logits, c.shape);
        const ref = Float32Array.from(randn(2 * B, 77, 3), (v) => v - 20);
        const counts = countsOf(c, dc.shift);
        const options = {
          beta: dc.beta,
          shift: dc.shift,
          ...(dc.lossType === 'sigmoid+sft'
            ? { lossType: ['sigmoid', 'sft'] as const, lossWeights: [1, 1] }
            : { lossType: dc.lossType }),
        };
        const composed = (t: tf.Tensor) =>
          composedDpo(composedLogprobs(t, c, { shift: dc.shift }), ref, counts, dc as never);
        let reported: DpoOpResult | undefined;
        const refTensor = tf.tensor1d(ref);
        // Forward only (no tape), reporting its result.
        noLeak(() =>
          tf.tidy(() => {
            dpoLossOp(x, c.labels, refTensor, { ...options, onResult: (r) => (reported = r) });
          }),
        );
        // Loss and gradient through tf.valueAndGrad (the op's input is the logits themselves).
        const { lossGot, gGot } = noLeak(() => {
          const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => dpoLossOp(t, c.labels, refTensor, options))(x);
          const out = { lossGot: value.dataSync()[0], gGot: grad.dataSync().slice() };
          tf.dispose([value, grad]);
          return out;
        });
        const { lossWant, gWant } = tf.tidy(() => {
          const { value, grad } = tf.valueAndGrad(composed)(x);
          return { lossWant: value.dataSync()[0], gWant: grad.dataSync().slice() };
        });
        expect(Math.abs(lossGot - lossWant), `loss ${lossGot} vs ${lossWant}`).toBeLessThan(
          1e-5 + 1e-5 * Math.abs(lossWant),
        );
        expectClose(gGot, gWant, 1e-4, 1e-7, 'd loss / d logits');
        expect(reported).toBeDefined();
        expect(reported!.loss).toBeCloseTo(lossGot, 5);
        expect(reported!.chosenRewards.length).toBe(B);
        // A scaled upstream (dy = 3) scales the gradient.
        const g3 = tf.tidy(() =>
          tf
            .grad((t: tf.Tensor) => tf.mul(dpoLossOp(t, c.labels, refTensor, options), 3))(x)
            .dataSync(),
        );
        expectClose(
          g3,
          Float32Array.from(gGot, (v) => 3 * v),
          1e-5,
          1e-7,
          '3 · gradient',
        );
        tf.dispose([x, refTensor]);
      });
    }

    it('dpoLossOp: reference-free, packed offsets, forward-only under tidy, no leaks', () => {
      const off = Int32Array.of(0, 5, 9, 16, 20);
      const c = makeCase([20, 13], 8, off, 1);
      const x = tf.tensor2d(c.logits, [20, 13]);
      const zeros = new Float32Array(4);
      const counts = countsOf(c, true);
      const lossGot = noLeak(() =>
        tf.tidy(() => dpoLossOp(x, c.labels, null, { offsets: off, shift: true, beta: 0.3 }).dataSync()[0]),
      );
      const lossWant = tf.tidy(
        () =>
          composedDpo(composedLogprobs(x, c, { shift: true }), zeros, counts, {
            beta: 0.3,
            lossType: 'sigmoid',
          }).dataSync()[0],
      );
      expect(Math.abs(lossGot - lossWant)).toBeLessThan(1e-5);
      const gGot = noLeak(() => {
        const g = tf.grad((t: tf.Tensor) => dpoLossOp(t, c.labels, null, { offsets: off, shift: true, beta: 0.3 }))(x);
        const d = g.dataSync().slice();
        g.dispose();
        return d;
      });
      const gWant = tf.tidy(() =>
        tf
          .grad((t: tf.Tensor) =>
            composedDpo(composedLogprobs(t, c, { shift: true }), zeros, counts, { beta: 0.3, lossType: 'sigmoid' }),
          )(x)
          .dataSync(),
      );
      expectClose(gGot, gWant, 1e-4, 1e-7, 'd loss / d logits (reference-free, packed)');
      x.dispose();
    });

    it('typed errors before any native call, and nothing leaks on error', () => {
      const x = tf.tensor3d(randn(2 * 3 * 5, 1), [2, 3, 5]);
      const lab = new Int32Array(6);
      const vec = tf.tensor1d([1, 2]);
      const ints = x.cast('int32');
      const odd = tf.tensor3d(randn(15, 1), [3, 1, 5]);
      const floatLabels = tf.tensor2d(Float32Array.from(lab), [2, 3]);
      noLeak(() => {
        expect(() => logprobsOp(x, new Int32Array(5))).toThrow(ShapeMismatchError);
        expect(() => logprobsOp(vec, lab)).toThrow(ShapeMismatchError);
        expect(() => logprobsOp(x, lab, { reducton: 'sum' } as never)).toThrow(UnknownOptionError);
        expect(() => logprobsOp(ints, lab)).toThrow(InvalidTypeError);
        expect(() => logprobsOp(x, floatLabels)).toThrow(InvalidTypeError);
        expect(() => logprobsOp(x, Float32Array.from(lab) as never)).toThrow(InvalidTypeError);
        expect(() => dpoLossOp(x, lab, new Float32Array(3))).toThrow(ShapeMismatchError);
        expect(() => dpoLossOp(odd, new Int32Array(3), null)).toThrow(ShapeMismatchError);
        expect(() => dpoLossOp(x, lab, null, { beta: -1 })).toThrow(RangeError);
        expect(() => logprobsOp(x, Int32Array.of(0, 1, 2, 3, 4, 9))).toThrow(RangeError);
      });
      tf.dispose([x, vec, ints, odd, floatLabels]);
    });
  });
}

describe('unigap/tfjs without a usable tape probe or without tfjs', () => {
  it('a gradient the forward did not make is recomputed in the backward (both ops)', () => {
    // An engine whose state hides the tape: the forward then skips the fused gradient.
    const blind = { ...tf, engine: () => ({ state: { gradientDepth: 0, kernelDepth: 0 } }) } as unknown as Tfjs;
    const c = makeCase([4, 5, 21], 31);
    const x = tf.tensor(c.logits, c.shape);
    const ref = new Float32Array(4).fill(-30);
    const grads = () =>
      tf.tidy(() => [
        tf
          .grad((t: tf.Tensor) =>
            tf.sum(tf.mul(logprobsOp(t, c.labels, { shift: true }), tf.tensor1d([1, -2, 3, 0.5]))),
          )(x)
          .dataSync(),
        tf
          .grad((t: tf.Tensor) => tf.mul(dpoLossOp(t, c.labels, ref, { shift: true }), 2))(x)
          .dataSync(),
      ]);
    const [lpFused, dpoFused] = grads();
    setTfjs(blind);
    try {
      const [lpRecomputed, dpoRecomputed] = noLeak(grads);
      expectClose(lpRecomputed, lpFused, 1e-5, 1e-7, 'logprobs gradient (recomputed)');
      expectClose(dpoRecomputed, dpoFused, 1e-5, 1e-8, 'DPO gradient (recomputed)');
    } finally {
      setTfjs(tf);
    }
    x.dispose();
  });

  it('TfjsUnavailableError (code ERR_UNIGAP_TFJS_UNAVAILABLE) when @tensorflow/tfjs-core cannot be loaded', () => {
    // Make require('@tensorflow/tfjs-core') fail in a fresh process, as if the optional peer were absent.
    const dir = mkdtempSync(join(tmpdir(), 'unigap-tfjs-'));
    const hide = join(dir, 'hide-tfjs.cjs');
    writeFileSync(
      hide,
      `const M = require('module'); const r = M._resolveFilename;
       M._resolveFilename = function (req, ...a) {
         if (req.startsWith('@tensorflow/')) { const e = new Error("Cannot find module '" + req + "'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
         return r.call(this, req, ...a);
       };`,
    );
    const out = runNode(
      `const m = await import(${JSON.stringify(join(packageRoot, 'dist', 'tfjs', 'index.js'))});
       try { m.logprobsOp({}, new Int32Array(1)); console.log('no error'); }
       catch (e) { console.log(e.name, e.code, e.message.includes('npm install @tensorflow/tfjs')); }`,
      { NODE_OPTIONS: `--require ${hide}` },
    );
    expect(out.trim()).toBe('TfjsUnavailableError ERR_UNIGAP_TFJS_UNAVAILABLE true');
  });
});
