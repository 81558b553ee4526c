/**
 * A small real unified model for the loop tests: a tabular softmax policy. Prompt = one attribute value
 * a_s in [0, A) per slot s; image = one token per slot (vocab A). Generation samples token x_s from
 * softmax(W[s, a_s, :] / T); understanding reads the SAME table through Bayes' rule (uniform prior over
 * attribute values): q_s(a | x) = p(x | a) / sum_a' p(x | a'), pYes = prod_s q_s(a_s | x_s). So one SGD
 * step on the generation logits also moves the judge (the paper's shared backbone). The external judge
 * checks x_s == a_s in every slot.
 */
import type {
  ExternalJudge,
  GeneratedImage,
  Judgment,
  LogitsBatch,
  ModelState,
  Prompt,
  TrainSequence,
  UnifiedModel,
} from '../../lib/index.js';
import { randn, rng } from '../helpers.js';

export interface ToyOptions {
  slots: number;
  values: number;
  /** Diagonal strength of the initial table (how often the base model is right). */
  signal: number;
  /** Noise scale of the initial table. */
  noise: number;
  seed: number;
  /**
   * How the judge reads the table, per slot: 0 = Bayes posterior q(a | x) only; 1 = closeness to the
   * model's own mode, p(x | a) / max_v p(v | a) (self-consistency: "is this what I would draw?");
   * in between, the geometric mix q^(1 - m) r^m.
   */
  judgeMix: number;
  /** SGD momentum (0: plain SGD); its velocity is exposed as optimizer state. */
  momentum: number;
}

export const TOY_DEFAULTS: ToyOptions = {
  slots: 2,
  values: 8,
  signal: 2.5,
  noise: 1.0,
  seed: 1,
  judgeMix: 0,
  momentum: 0,
};

function attrs(p: Prompt): number[] {
  return p.id.split('-').slice(1).map(Number);
}

/** Every prompt of the toy world, split into train and probe (disjoint, deterministic). */
export function toyPrompts(o: Pick<ToyOptions, 'slots' | 'values'>, probeShare = 1 / 3, seed = 5) {
  const all: Prompt[] = [];
  const total = o.values ** o.slots;
  for (let k = 0; k < total; k++) {
    const a: number[] = [];
    let r = k;
    for (let s = 0; s < o.slots; s++) {
      a.push(r % o.values);
      r = Math.floor(r / o.values);
    }
    all.push({
      id: `p-${a.join('-')}`,
      text: a.map((v, s) => `slot${s}=${v}`).join(' '),
      category: a[0] < o.values / 2 ? 'color' : 'shape',
    });
  }
  const rand = rng(seed);
  const probe: Prompt[] = [];
  const train: Prompt[] = [];
  for (const p of all) (rand() < probeShare ? probe : train).push(p);
  return { train, probe };
}

export class ToyModel implements UnifiedModel {
  readonly name = 'toy-tabular';
  readonly vocabSize: number;
  readonly o: ToyOptions;
  W: Float32Array;
  velocity: Float32Array;
  private last: TrainSequence[] = [];
  forwardCalls = 0;

  constructor(options: Partial<ToyOptions> = {}) {
    this.o = { ...TOY_DEFAULTS, ...options };
    const { slots, values, signal, noise, seed } = this.o;
    this.vocabSize = values;
    this.W = randn(slots * values * values, seed, noise);
    this.velocity = new Float32Array(this.W.length);
    for (let s = 0; s < slots; s++) for (let a = 0; a < values; a++) this.W[(s * values + a) * values + a] += signal;
  }

  private row(s: number, a: number): Float32Array {
    const V = this.o.values;
    return this.W.subarray((s * V + a) * V, (s * V + a + 1) * V);
  }

  private softmax(row: ArrayLike<number>, t = 1): number[] {
    let m = -Infinity;
    for (let i = 0; i < row.length; i++) m = Math.max(m, row[i] / t);
    const e = Array.from(row, (z) => Math.exp(z / t - m));
    const z = e.reduce((x, y) => x + y, 0);
    return e.map((x) => x / z);
  }

  generate(prompt: Prompt, n: number, { temperature, seed }: { temperature: number; seed: number }): GeneratedImage[] {
    const a = attrs(prompt);
    const rand = rng(seed);
    const out: GeneratedImage[] = [];
    for (let i = 0; i < n; i++) {
      const tokens = new Int32Array(this.o.slots);
      for (let s = 0; s < this.o.slots; s++) {
        const p = this.softmax(this.row(s, a[s]), temperature);
        let u = rand();
        let v = 0;
        while (v < p.length - 1 && u >= p[v]) u -= p[v++];
        tokens[s] = v;
      }
      out.push({ tokens, payload: { slots: Array.from(tokens) } });
    }
    return out;
  }

  judge(prompt: Prompt, image: GeneratedImage): Judgment {
    const a = attrs(prompt);
    const mix = this.o.judgeMix;
    let pYes = 1;
    for (let s = 0; s < this.o.slots; s++) {
      const x = image.tokens[s];
      let den = 0;
      for (let b = 0; b < this.o.values; b++) den += this.softmax(this.row(s, b))[x];
      const own = this.softmax(this.row(s, a[s]));
      const q = own[x] / den;
      const r = own[x] / Math.max(...own);
      pYes *= Math.pow(q, 1 - mix) * Math.pow(r, mix);
    }
    // Geometric mean over slots: "every part of the prompt is there" with a per-part confidence.
    pYes = Math.pow(pYes, 1 / this.o.slots);
    return { pYes, accept: pYes >= 0.5 };
  }

  forward(batch: TrainSequence[]): LogitsBatch {
    this.forwardCalls++;
    const { slots, values } = this.o;
    const rows = batch.length * slots;
    const logits = new Float32Array(rows * values);
    const labels = new Int32Array(rows);
    const offsets = new Int32Array(batch.length + 1);
    batch.forEach((seq, i) => {
      const a = attrs(seq.prompt);
      for (let s = 0; s < slots; s++) {
        const r = i * slots + s;
        logits.set(this.row(s, a[s]), r * values);
        labels[r] = seq.tokens[s];
      }
      offsets[i + 1] = (i + 1) * slots;
    });
    this.last = batch;
    return { logits, vocab: values, labels, offsets };
  }

  step(grad: Float32Array, { learningRate }: { learningRate: number }): void {
    const { slots, values, momentum } = this.o;
    const g = new Float32Array(this.W.length);
    this.last.forEach((seq, i) => {
      const a = attrs(seq.prompt);
      for (let s = 0; s < slots; s++) {
        const off = (s * values + a[s]) * values;
        const r = i * slots + s;
        for (let v = 0; v < values; v++) g[off + v] += grad[r * values + v];
      }
    });
    for (let k = 0; k < g.length; k++) {
      this.velocity[k] = momentum * this.velocity[k] + g[k];
      this.W[k] -= learningRate * this.velocity[k];
    }
  }

  optimizerState(): ModelState {
    return { velocity: this.velocity.slice() };
  }

  restoreOptimizer(state: ModelState): void {
    this.velocity = state.velocity.slice();
  }

  snapshot(): ModelState {
    return { W: this.W.slice() };
  }

  restore(state: ModelState): void {
    this.W = state.W.slice();
  }
}

export const toyJudge: ExternalJudge = {
  name: 'toy-truth',
  verify(prompt: Prompt, image: GeneratedImage): boolean {
    const a = attrs(prompt);
    return a.every((v, s) => image.tokens[s] === v);
  },
};
