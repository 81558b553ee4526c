/**
 * The embedded world's small unified model. One SHARED trunk serves both branches, so training the
 * generation branch moves the understanding branch (the coupling Han et al. analyse):
 *
 *   trunk         h = tanh(W · mean_i tanh(Wc [E(w_{i-1}); E(w_i); E(w_{i+1})] + bc) + b)  (prompt → hidden;
 *                 a width-3 convolution over the words, the same weights at every position; config.encoder
 *                 'concat' is the older h = tanh(W · concat_i(wordEmb[w_i] + posEmb[i]) + b))
 *   image summary e(x, j) = tokenEmb[x] ⊙ cellEmb[j]                             (shared by both branches)
 *   generation    z_t = tanh(Wh h + Ws Σ_{j<t} e(x_j, j) + cell_t);  logits_t = Wo z_t + bo
 *                 autoregressive over the cells in raster order (a VQ-token generator in miniature)
 *   understanding u = Wp h + bp;  r_j = tanh((W1 e(x_j, j)) ⊙ (Wq h + bq) + b1);  v = W2 Σ_j r_j + b2
 *                 (a prompt-gated reading of every cell, summed: presence, counts, positions)
 *                 p_yes = σ(scale · cos(u, v) + λ · pmi(x; y) + bias)
 *                 a CLIP-style match (cosine by unigap's kernel) plus the Bayes link: the generator's own
 *                 pmi(x; y) = (log π(x|y) − log π(x|∅)) / cells, λ = cells (1 per nat: Bayes' rule;
 *                 config.bayesLinkWeight) and π(x|∅) the marginal (pretraining's prompt dropout trains ∅)
 *
 * Shared: wordEmb, the convolution (or posEmb), trunk W/b (prompt side) and tokenEmb, cellEmb (image
 * side). The loop trains only the generation loss (forward → logits, step ← d loss / d logits); hand-written backprop in
 * float64 with parameters kept float32-representable so snapshots restore exactly. Adam optimizer.
 */
import type {
  GenerateOptions,
  GeneratedImage,
  Judgment,
  LogitsBatch,
  ModelState,
  Prompt,
  TrainSequence,
  UnifiedModel,
} from '../loop/types.js';
import { pairedCosine } from '../index.js';
import { PROMPT_WORDS } from './prompts.js';
import { CELLS, IMAGE_VOCAB_SIZE, makeRng } from './scene.js';

export interface WorldModelConfig {
  /** Word embedding width (default 12). */
  wordDim: number;
  /** Shared trunk width (default 64). */
  hidden: number;
  /** Image-token / cell embedding width (default 16). */
  imageDim: number;
  /** Generation branch width (default 64). */
  genHidden: number;
  /** Understanding branch image width (default 32). */
  matchHidden: number;
  /** Width of the matched prompt / image vectors (default 32). */
  matchDim: number;
  /** Longest prompt in words; longer prompts are truncated (default 12). */
  maxWords: number;
  /**
   * Prompt encoder: 'concat' (the words' embeddings plus position embeddings, concatenated, one dense
   * layer: every word position has its own weights) or 'conv' (a width-3 convolution over the words with
   * the same weights at every position, tanh, mean-pooled, then the dense layer: "red circle" reads the
   * same wherever it stands in the prompt; default). Held out, 'conv' generalises better (world v3).
   */
  encoder: 'concat' | 'conv';
  /** Initialisation seed (default 1). */
  seed: number;
  /**
   * Add the generator's prompt-image PMI to the understanding logit, λ · (log π(x|y) − log π(x|∅)) / cells
   * with λ learned (default true): the Bayes link log π(y|x) = log π(x|y) − log π(x) + C that ties
   * the two branches of a real unified model together.
   */
  bayesLink: boolean;
  /**
   * The Bayes link's weight λ, or null to fit it in calibrateJudge with the scale and bias. pmi is per cell,
   * so the default CELLS is weight 1 per nat of the sequence PMI: Bayes' rule itself, log π(y|x) =
   * log π(x|y) − log π(x) + C, so that a change of the generator's log π(x|y) moves the judge's logit by
   * the same amount (the coupling the paper analyses). A fitted λ (null) shrinks towards the PMI's
   * noise and leaves the judge to the discriminative match (measured: λ ≈ 0.19 per nat, 5× weaker).
   */
  bayesLinkWeight: number | null;
}

export const DEFAULT_MODEL_CONFIG: WorldModelConfig = {
  wordDim: 12,
  hidden: 64,
  imageDim: 16,
  genHidden: 64,
  matchHidden: 32,
  matchDim: 32,
  maxWords: 12,
  encoder: 'conv',
  seed: 1,
  bayesLink: true,
  bayesLinkWeight: CELLS,
};

export const MODEL_WORDS: readonly string[] = ['<pad>', '<unk>', ...PROMPT_WORDS];
const WORD_INDEX = new Map(MODEL_WORDS.map((w, i) => [w, i]));

const PARAM_NAMES = [
  'trunk.wordEmb',
  'trunk.posEmb',
  'trunk.w',
  'trunk.b',
  'image.tokenEmb',
  'image.cellEmb',
  'gen.wh',
  'gen.ws',
  'gen.cell',
  'gen.wo',
  'gen.bo',
  'und.wp',
  'und.bp',
  'und.w1',
  'und.wq',
  'und.bq',
  'und.b1',
  'und.w2',
  'und.b2',
  'und.scale',
  'und.bias',
  'und.pmi',
  // Last, so that adding them left the initialisation of the others unchanged.
  'trunk.conv.w',
  'trunk.conv.b',
] as const;
export type ParamName = (typeof PARAM_NAMES)[number];
/** The parameters both branches read. */
export const SHARED_PARAMS: readonly ParamName[] = [
  'trunk.wordEmb',
  'trunk.posEmb',
  'trunk.conv.w',
  'trunk.conv.b',
  'trunk.w',
  'trunk.b',
  'image.tokenEmb',
  'image.cellEmb',
];

type Params = Record<ParamName, Float64Array>;

/** The trunk's forward state: its dense layer's input, h, and (conv) the window activations. */
interface Enc {
  xin: Float64Array;
  h: Float64Array;
  acts?: Float64Array;
}

interface SeqCache extends Enc {
  words: Int32Array;
  tokens: Int32Array;
  /** z_t for every cell, [CELLS, genHidden]. */
  z: Float64Array;
  /** Σ_{j<t} e(x_j, j) before each cell, [CELLS, imageDim]. */
  s: Float64Array;
}

/** A similarity function for the understanding branch (pairs of rows of [n, dim] → cosines). */
export type CosineFn = (a: Float32Array, b: Float32Array, n: number, dim: number) => Float32Array;

/** The default: unigap's pairedCosine kernel (through the public facade). */
export const kernelCosine: CosineFn = (a, b, n, dim) =>
  pairedCosine({ data: a, dims: [n, dim] }, { data: b, dims: [n, dim] });

/** A plain TS cosine (float64 accumulation), for environments without the native addon. */
export function localCosine(a: Float32Array, b: Float32Array, n: number, dim: number): Float32Array {
  const out = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < dim; k++) {
      const x = a[r * dim + k];
      const y = b[r * dim + k];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[r] = ab / Math.max(Math.sqrt(aa * bb), 1e-12);
  }
  return out;
}

function pooledOf(r: Float64Array, width: number): Float64Array {
  const out = new Float64Array(width);
  for (let i = 0; i < r.length; i++) out[i % width] += r[i];
  return out;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** The embedded world's unified model (implements the loop's UnifiedModel contract). */
export class WorldModel implements UnifiedModel {
  readonly name = 'unigap-world';
  readonly vocabSize = IMAGE_VOCAB_SIZE;
  readonly config: WorldModelConfig;
  /** Parameters (float64 storage, float32-representable values). */
  readonly params: Params;
  /** Gradient accumulators, same layout as params. */
  readonly grads: Params;
  private readonly shapes: Record<ParamName, number[]>;
  private readonly adamM: Params;
  private readonly adamV: Params;
  private adamT = 0;
  private frozen = new Set<ParamName>();
  private cache: SeqCache[] = [];
  private cosine: CosineFn = kernelCosine;

  constructor(config: Partial<WorldModelConfig> = {}) {
    const c = { ...DEFAULT_MODEL_CONFIG, ...config };
    this.config = c;
    const V = IMAGE_VOCAB_SIZE;
    this.shapes = {
      'trunk.wordEmb': [MODEL_WORDS.length, c.wordDim],
      'trunk.posEmb': [c.maxWords, c.wordDim],
      'trunk.conv.w': [c.hidden, 3 * c.wordDim],
      'trunk.conv.b': [c.hidden],
      'trunk.w': [c.hidden, c.encoder === 'conv' ? c.hidden : c.maxWords * c.wordDim],
      'trunk.b': [c.hidden],
      'image.tokenEmb': [V, c.imageDim],
      'image.cellEmb': [CELLS, c.imageDim],
      'gen.wh': [c.genHidden, c.hidden],
      'gen.ws': [c.genHidden, c.imageDim],
      'gen.cell': [CELLS, c.genHidden],
      'gen.wo': [V, c.genHidden],
      'gen.bo': [V],
      'und.wp': [c.matchDim, c.hidden],
      'und.bp': [c.matchDim],
      'und.w1': [c.matchHidden, c.imageDim],
      'und.wq': [c.matchHidden, c.hidden],
      'und.bq': [c.matchHidden],
      'und.b1': [c.matchHidden],
      'und.w2': [c.matchDim, c.matchHidden],
      'und.b2': [c.matchDim],
      'und.scale': [1],
      'und.bias': [1],
      'und.pmi': [1],
    };
    const make = () =>
      Object.fromEntries(
        PARAM_NAMES.map((n) => [n, new Float64Array(this.shapes[n].reduce((a, b) => a * b, 1))]),
      ) as Params;
    this.params = make();
    this.grads = make();
    this.adamM = make();
    this.adamV = make();
    this.init(c.seed);
  }

  private init(seed: number): void {
    const rng = makeRng(seed);
    const randn = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
    for (const n of PARAM_NAMES) {
      const p = this.params[n];
      const shape = this.shapes[n];
      const fanIn = shape.length === 2 ? shape[1] : 1;
      let scale = 1 / Math.sqrt(fanIn);
      let offset = 0;
      if (n === 'trunk.wordEmb' || n === 'trunk.posEmb' || n === 'image.tokenEmb') scale = 0.5;
      if (n === 'image.cellEmb') [scale, offset] = [0.3, 1];
      if (n === 'gen.cell') scale = 0.1;
      if (n.endsWith('.b') || n.endsWith('.bo') || n.endsWith('.bp') || n.endsWith('.b1') || n.endsWith('.b2'))
        scale = 0;
      if (n === 'und.scale') [scale, offset] = [0, 5];
      if (n === 'und.bias' || n === 'und.pmi') scale = 0;
      if (n === 'und.bq') [scale, offset] = [0, 1];
      for (let i = 0; i < p.length; i++) p[i] = Math.fround(offset + scale * randn());
    }
  }

  /** Use another cosine implementation for the understanding branch (default: unigap's pairedCosine). */
  setCosine(fn: CosineFn): void {
    this.cosine = fn;
  }

  /** Parameter shapes (for tests and tools). */
  shapeOf(name: ParamName): readonly number[] {
    return this.shapes[name];
  }

  /** Prompt words → ids (unknown words → <unk>, truncated to maxWords). */
  tokenizePrompt(text: string): Int32Array {
    const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean).slice(0, this.config.maxWords);
    return Int32Array.from(words, (w) => WORD_INDEX.get(w) ?? 1);
  }

  // --------------------------------------------------------------------------------- trunk

  private encode(words: Int32Array): Enc {
    const { wordDim: D, hidden: H, maxWords: L } = this.config;
    const { 'trunk.wordEmb': E, 'trunk.posEmb': P, 'trunk.w': W, 'trunk.b': B } = this.params;
    let xin: Float64Array;
    let acts: Float64Array | undefined;
    if (this.config.encoder === 'conv') {
      // a_i = tanh(Wc [E(w_{i-1}); E(w_i); E(w_{i+1})] + bc) for each word i (pad outside), xin = mean_i a_i.
      const { 'trunk.conv.w': Wc, 'trunk.conv.b': Bc } = this.params;
      const n = words.length;
      xin = new Float64Array(H);
      acts = new Float64Array(n * H);
      for (let i = 0; i < n; i++) {
        for (let r = 0; r < H; r++) {
          let acc = Bc[r];
          for (let q = 0; q < 3; q++) {
            const w = i + q - 1 >= 0 && i + q - 1 < n ? words[i + q - 1] : 0;
            const off = r * 3 * D + q * D;
            for (let k = 0; k < D; k++) acc += Wc[off + k] * E[w * D + k];
          }
          const a = Math.tanh(acc);
          acts[i * H + r] = a;
          xin[r] += a / n;
        }
      }
    } else {
      xin = new Float64Array(L * D);
      for (let i = 0; i < L; i++) {
        const w = i < words.length ? words[i] : 0;
        for (let k = 0; k < D; k++) xin[i * D + k] = E[w * D + k] + P[i * D + k];
      }
    }
    const h = new Float64Array(H);
    const LD = xin.length;
    for (let r = 0; r < H; r++) {
      let acc = B[r];
      const off = r * LD;
      for (let k = 0; k < LD; k++) acc += W[off + k] * xin[k];
      h[r] = Math.tanh(acc);
    }
    return { xin, h, acts };
  }

  private encodeBackward(words: Int32Array, enc: Enc, dh: Float64Array): void {
    const { wordDim: D, hidden: H, maxWords: L } = this.config;
    const { xin, h } = enc;
    const W = this.params['trunk.w'];
    const { 'trunk.wordEmb': gE, 'trunk.posEmb': gP, 'trunk.w': gW, 'trunk.b': gB } = this.grads;
    const LD = xin.length;
    const dx = new Float64Array(LD);
    for (let r = 0; r < H; r++) {
      const da = dh[r] * (1 - h[r] * h[r]);
      if (da === 0) continue;
      gB[r] += da;
      const off = r * LD;
      for (let k = 0; k < LD; k++) {
        gW[off + k] += da * xin[k];
        dx[k] += da * W[off + k];
      }
    }
    if (this.config.encoder === 'conv') {
      const E = this.params['trunk.wordEmb'];
      const Wc = this.params['trunk.conv.w'];
      const { 'trunk.conv.w': gWc, 'trunk.conv.b': gBc } = this.grads;
      const acts = enc.acts!;
      const n = words.length;
      for (let i = 0; i < n; i++) {
        for (let r = 0; r < H; r++) {
          const a = acts[i * H + r];
          const dc = (dx[r] / n) * (1 - a * a);
          if (dc === 0) continue;
          gBc[r] += dc;
          for (let q = 0; q < 3; q++) {
            const w = i + q - 1 >= 0 && i + q - 1 < n ? words[i + q - 1] : 0;
            const off = r * 3 * D + q * D;
            for (let k = 0; k < D; k++) {
              gWc[off + k] += dc * E[w * D + k];
              gE[w * D + k] += dc * Wc[off + k];
            }
          }
        }
      }
      return;
    }
    for (let i = 0; i < L; i++) {
      const w = i < words.length ? words[i] : 0;
      for (let k = 0; k < D; k++) {
        gE[w * D + k] += dx[i * D + k];
        gP[i * D + k] += dx[i * D + k];
      }
    }
  }

  // ----------------------------------------------------------------------------- generation

  /** One generation step: z = tanh(Wh h + Ws s + cell_t) (gh = Wh h precomputed). */
  private genStep(gh: Float64Array, s: Float64Array, t: number, z: Float64Array, zOff: number): void {
    const { genHidden: G, imageDim: DI } = this.config;
    const { 'gen.ws': Ws, 'gen.cell': Gc } = this.params;
    for (let r = 0; r < G; r++) {
      let acc = gh[r] + Gc[t * G + r];
      for (let k = 0; k < DI; k++) acc += Ws[r * DI + k] * s[k];
      z[zOff + r] = Math.tanh(acc);
    }
  }

  private genHead(z: Float64Array, zOff: number, out: Float32Array | Float64Array, outOff: number): void {
    const { genHidden: G } = this.config;
    const { 'gen.wo': Wo, 'gen.bo': Bo } = this.params;
    for (let v = 0; v < IMAGE_VOCAB_SIZE; v++) {
      let acc = Bo[v];
      for (let r = 0; r < G; r++) acc += Wo[v * G + r] * z[zOff + r];
      out[outOff + v] = acc;
    }
  }

  private projectH(W: Float64Array, h: Float64Array, rows: number): Float64Array {
    const H = this.config.hidden;
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let k = 0; k < H; k++) acc += W[r * H + k] * h[k];
      out[r] = acc;
    }
    return out;
  }

  /** Add e(x, j) = tokenEmb[x] ⊙ cellEmb[j] into s. */
  private addCell(s: Float64Array, token: number, cell: number): void {
    const DI = this.config.imageDim;
    const { 'image.tokenEmb': T, 'image.cellEmb': C } = this.params;
    for (let k = 0; k < DI; k++) s[k] += T[token * DI + k] * C[cell * DI + k];
  }

  generate(prompt: Prompt, n: number, options: GenerateOptions): GeneratedImage[] {
    const { genHidden: G, imageDim: DI } = this.config;
    const temperature = options.temperature;
    if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
    const rng = makeRng(options.seed);
    const { h } = this.encode(this.tokenizePrompt(prompt.text));
    const gh = this.projectH(this.params['gen.wh'], h, G);
    const z = new Float64Array(G);
    const logits = new Float64Array(IMAGE_VOCAB_SIZE);
    const out: GeneratedImage[] = [];
    for (let i = 0; i < n; i++) {
      const s = new Float64Array(DI);
      const tokens = new Int32Array(CELLS);
      for (let t = 0; t < CELLS; t++) {
        this.genStep(gh, s, t, z, 0);
        this.genHead(z, 0, logits, 0);
        let max = -Infinity;
        for (let v = 0; v < logits.length; v++) max = Math.max(max, logits[v] / temperature);
        let sum = 0;
        for (let v = 0; v < logits.length; v++) sum += logits[v] = Math.exp(logits[v] / temperature - max);
        let u = rng() * sum;
        let tok = logits.length - 1;
        for (let v = 0; v < logits.length; v++) {
          u -= logits[v];
          if (u < 0) {
            tok = v;
            break;
          }
        }
        tokens[t] = tok;
        this.addCell(s, tok, t);
      }
      out.push({ tokens });
    }
    return out;
  }

  /** Teacher-forced generation pass of one sequence: logits rows written at `out[outOff..]`. */
  private genForwardSeq(
    words: Int32Array,
    tokens: ArrayLike<number>,
    out: Float32Array | Float64Array,
    outOff: number,
  ): SeqCache {
    const { genHidden: G, imageDim: DI } = this.config;
    const V = IMAGE_VOCAB_SIZE;
    if (tokens.length !== CELLS) throw new RangeError(`a world image has ${CELLS} tokens, got ${tokens.length}`);
    const enc = this.encode(words);
    const h = enc.h;
    const gh = this.projectH(this.params['gen.wh'], h, G);
    const z = new Float64Array(CELLS * G);
    const sAll = new Float64Array(CELLS * DI);
    const s = new Float64Array(DI);
    for (let t = 0; t < CELLS; t++) {
      sAll.set(s, t * DI);
      this.genStep(gh, s, t, z, t * G);
      this.genHead(z, t * G, out, outOff + t * V);
      this.addCell(s, tokens[t], t);
    }
    return { ...enc, words, tokens: Int32Array.from(tokens), z, s: sAll };
  }

  forward(batch: TrainSequence[]): LogitsBatch {
    const V = IMAGE_VOCAB_SIZE;
    const logits = new Float32Array(batch.length * CELLS * V);
    const labels = new Int32Array(batch.length * CELLS);
    const offsets = new Int32Array(batch.length + 1);
    this.cache = batch.map((seq, i) => {
      labels.set(seq.tokens, i * CELLS);
      offsets[i + 1] = (i + 1) * CELLS;
      return this.genForwardSeq(this.tokenizePrompt(seq.prompt.text), seq.tokens, logits, i * CELLS * V);
    });
    return { logits, vocab: V, labels, offsets };
  }

  /** Accumulate d loss / d params for the last forward, given d loss / d logits (no optimizer step). */
  backward(gradLogits: Float32Array | Float64Array): void {
    const V = IMAGE_VOCAB_SIZE;
    if (gradLogits.length !== this.cache.length * CELLS * V)
      throw new RangeError(
        `gradLogits has ${gradLogits.length} values, the last forward made ${this.cache.length * CELLS * V}`,
      );
    this.cache.forEach((c, i) => this.genBackwardSeq(c, gradLogits, i * CELLS * V));
  }

  private genBackwardSeq(c: SeqCache, gradLogits: Float32Array | Float64Array, off: number): void {
    const { genHidden: G, imageDim: DI, hidden: H } = this.config;
    const V = IMAGE_VOCAB_SIZE;
    const P = this.params;
    const g = this.grads;
    const { 'image.tokenEmb': T, 'image.cellEmb': C } = P;
    const dgh = new Float64Array(G);
    const ds = new Float64Array(CELLS * DI);
    const dz = new Float64Array(G);
    for (let t = 0; t < CELLS; t++) {
      const row = off + t * V;
      dz.fill(0);
      for (let v = 0; v < V; v++) {
        const d = gradLogits[row + v];
        if (d === 0) continue;
        g['gen.bo'][v] += d;
        for (let r = 0; r < G; r++) {
          g['gen.wo'][v * G + r] += d * c.z[t * G + r];
          dz[r] += d * P['gen.wo'][v * G + r];
        }
      }
      for (let r = 0; r < G; r++) {
        const zr = c.z[t * G + r];
        const dp = dz[r] * (1 - zr * zr);
        if (dp === 0) continue;
        g['gen.cell'][t * G + r] += dp;
        dgh[r] += dp;
        for (let k = 0; k < DI; k++) {
          g['gen.ws'][r * DI + k] += dp * c.s[t * DI + k];
          ds[t * DI + k] += dp * P['gen.ws'][r * DI + k];
        }
      }
    }
    // s_t = Σ_{j<t} e(x_j, j): cell j receives Σ_{t>j} ds_t.
    const acc = new Float64Array(DI);
    for (let j = CELLS - 2; j >= 0; j--) {
      for (let k = 0; k < DI; k++) acc[k] += ds[(j + 1) * DI + k];
      const x = c.tokens[j];
      for (let k = 0; k < DI; k++) {
        g['image.tokenEmb'][x * DI + k] += acc[k] * C[j * DI + k];
        g['image.cellEmb'][j * DI + k] += acc[k] * T[x * DI + k];
      }
    }
    const dh = new Float64Array(H);
    for (let r = 0; r < G; r++) {
      if (dgh[r] === 0) continue;
      for (let k = 0; k < H; k++) {
        g['gen.wh'][r * H + k] += dgh[r] * c.h[k];
        dh[k] += dgh[r] * P['gen.wh'][r * H + k];
      }
    }
    this.encodeBackward(c.words, c, dh);
  }

  /**
   * The generator's pointwise mutual information of prompt and image, per cell:
   * (log π(x|y) − log π(x|∅)) / CELLS, with ∅ the empty prompt. With `grad`, also the d pmi / d logits
   * of both passes (for backprop).
   */
  private pmi(words: Int32Array, tokens: ArrayLike<number>, withGrad: boolean) {
    const V = IMAGE_VOCAB_SIZE;
    const lc = new Float64Array(CELLS * V);
    const ln = new Float64Array(CELLS * V);
    const cond = this.genForwardSeq(words, tokens, lc, 0);
    const nul = this.genForwardSeq(new Int32Array(0), tokens, ln, 0);
    let value = 0;
    for (const [l, sign] of [
      [lc, 1],
      [ln, -1],
    ] as const) {
      for (let t = 0; t < CELLS; t++) {
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, l[t * V + v]);
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(l[t * V + v] - max);
        const lse = max + Math.log(sum);
        value += (sign * (l[t * V + tokens[t]] - lse)) / CELLS;
        if (withGrad) {
          // d pmi / d logits = sign (onehot − softmax) / CELLS, stored in place.
          for (let v = 0; v < V; v++) l[t * V + v] = (-sign * Math.exp(l[t * V + v] - lse)) / CELLS;
          l[t * V + tokens[t]] += sign / CELLS;
        }
      }
    }
    return { value, cond, nul, dCond: lc, dNul: ln };
  }

  step(gradLogits: Float32Array, options: { learningRate: number }): void {
    this.backward(gradLogits);
    this.applyGradients(options.learningRate);
  }

  // -------------------------------------------------------------------------- understanding

  /** Prompt-gated image reading: r_j = tanh((W1 e_j) ⊙ (Wq h + bq) + b1), v = W2 Σ_j r_j + b2. */
  private imageMatch(
    tokens: ArrayLike<number>,
    h: Float64Array,
  ): { e: Float64Array; a: Float64Array; gate: Float64Array; r: Float64Array; v: Float64Array } {
    const { imageDim: DI, matchHidden: HU, matchDim: M } = this.config;
    const P = this.params;
    const { 'image.tokenEmb': T, 'image.cellEmb': C } = P;
    const gate = this.projectH(P['und.wq'], h, HU);
    for (let r = 0; r < HU; r++) gate[r] += P['und.bq'][r];
    const aAll = new Float64Array(CELLS * HU);
    const e = new Float64Array(CELLS * DI);
    const r = new Float64Array(CELLS * HU);
    const pooled = new Float64Array(HU);
    for (let j = 0; j < CELLS; j++) {
      const x = tokens[j];
      for (let k = 0; k < DI; k++) e[j * DI + k] = T[x * DI + k] * C[j * DI + k];
      for (let a = 0; a < HU; a++) {
        let acc = 0;
        for (let k = 0; k < DI; k++) acc += P['und.w1'][a * DI + k] * e[j * DI + k];
        aAll[j * HU + a] = acc;
        const t = Math.tanh(acc * gate[a] + P['und.b1'][a]);
        r[j * HU + a] = t;
        pooled[a] += t;
      }
    }
    const v = new Float64Array(M);
    for (let a = 0; a < M; a++) {
      let acc = P['und.b2'][a];
      for (let k = 0; k < HU; k++) acc += P['und.w2'][a * HU + k] * pooled[k];
      v[a] = acc;
    }
    return { e, a: aAll, gate, r, v };
  }

  private promptMatch(h: Float64Array): Float64Array {
    const u = this.projectH(this.params['und.wp'], h, this.config.matchDim);
    for (let r = 0; r < u.length; r++) u[r] += this.params['und.bp'][r];
    return u;
  }

  /** p_yes for many (prompt, image) pairs at once; the cosines run through the configured kernel. */
  judgeMany(items: { prompt: Prompt; tokens: ArrayLike<number> }[]): number[] {
    const M = this.config.matchDim;
    const U = new Float32Array(items.length * M);
    const Vv = new Float32Array(items.length * M);
    const hCache = new Map<string, { h: Float64Array; u: Float64Array }>();
    items.forEach((it, i) => {
      let hu = hCache.get(it.prompt.text);
      if (!hu) {
        const h = this.encode(this.tokenizePrompt(it.prompt.text)).h;
        hu = { h, u: this.promptMatch(h) };
        hCache.set(it.prompt.text, hu);
      }
      U.set(hu.u, i * M);
      Vv.set(this.imageMatch(it.tokens, hu.h).v, i * M);
    });
    const cos = items.length ? this.cosine(U, Vv, items.length, M) : new Float32Array(0);
    const scale = this.params['und.scale'][0];
    const bias = this.params['und.bias'][0];
    const lambda = this.params['und.pmi'][0];
    return Array.from(cos, (c, i) => {
      const link =
        this.config.bayesLink && lambda !== 0
          ? lambda * this.pmi(this.tokenizePrompt(items[i].prompt.text), items[i].tokens, false).value
          : 0;
      return sigmoid(scale * c + bias + link);
    });
  }

  judge(prompt: Prompt, image: GeneratedImage, _question: string): Judgment {
    const pYes = this.judgeMany([{ prompt, tokens: image.tokens }])[0];
    return { pYes, accept: pYes >= 0.5 };
  }

  /**
   * Understanding loss (mean binary cross-entropy of p_yes against labels) and its gradient,
   * accumulated into `grads` (pretraining and tests; the loop never calls this).
   */
  judgeLossBackward(items: { prompt: Prompt; tokens: ArrayLike<number>; label: boolean }[], weight = 1): number {
    const { imageDim: DI, matchHidden: HU, matchDim: M, hidden: H } = this.config;
    const P = this.params;
    const g = this.grads;
    const { 'image.tokenEmb': T, 'image.cellEmb': C } = P;
    let loss = 0;
    const w = weight / Math.max(items.length, 1);
    for (const it of items) {
      const words = this.tokenizePrompt(it.prompt.text);
      const enc = this.encode(words);
      const h = enc.h;
      const u = this.promptMatch(h);
      const { e, a: aAll, gate, r, v } = this.imageMatch(it.tokens, h);
      let uv = 0;
      let uu = 0;
      let vv = 0;
      for (let k = 0; k < M; k++) {
        uv += u[k] * v[k];
        uu += u[k] * u[k];
        vv += v[k] * v[k];
      }
      const nu = Math.max(Math.sqrt(uu), 1e-12);
      const nv = Math.max(Math.sqrt(vv), 1e-12);
      const cos = uv / (nu * nv);
      const scale = P['und.scale'][0];
      const lambda = P['und.pmi'][0];
      // λ = 0 (main pretraining, before calibrateJudge) needs no PMI pass: its gradient path is zero.
      const link = this.config.bayesLink && lambda !== 0 ? this.pmi(words, it.tokens, true) : null;
      const logit = scale * cos + P['und.bias'][0] + (link ? lambda * link.value : 0);
      const p = sigmoid(logit);
      const y = it.label ? 1 : 0;
      loss += -(y * Math.log(Math.max(p, 1e-12)) + (1 - y) * Math.log(Math.max(1 - p, 1e-12))) / items.length;
      const dlogit = (p - y) * w;
      g['und.scale'][0] += dlogit * cos;
      g['und.bias'][0] += dlogit;
      if (link) {
        g['und.pmi'][0] += dlogit * link.value;
        const k = dlogit * lambda;
        if (k !== 0) {
          for (let i = 0; i < link.dCond.length; i++) {
            link.dCond[i] *= k;
            link.dNul[i] *= k;
          }
          this.genBackwardSeq(link.cond, link.dCond, 0);
          this.genBackwardSeq(link.nul, link.dNul, 0);
        }
      }
      const dc = dlogit * scale;
      const du = new Float64Array(M);
      const dv = new Float64Array(M);
      for (let k = 0; k < M; k++) {
        du[k] = dc * (v[k] / (nu * nv) - (cos * u[k]) / (nu * nu));
        dv[k] = dc * (u[k] / (nu * nv) - (cos * v[k]) / (nv * nv));
      }
      const dh = new Float64Array(H);
      for (let r = 0; r < M; r++) {
        g['und.bp'][r] += du[r];
        for (let k = 0; k < H; k++) {
          g['und.wp'][r * H + k] += du[r] * h[k];
          dh[k] += du[r] * P['und.wp'][r * H + k];
        }
      }
      const dR = new Float64Array(HU);
      const pooled = pooledOf(r, HU);
      for (let a = 0; a < M; a++) {
        g['und.b2'][a] += dv[a];
        for (let k = 0; k < HU; k++) {
          g['und.w2'][a * HU + k] += dv[a] * pooled[k];
          dR[k] += dv[a] * P['und.w2'][a * HU + k];
        }
      }
      const dGate = new Float64Array(HU);
      const de = new Float64Array(DI);
      for (let j = 0; j < CELLS; j++) {
        de.fill(0);
        for (let a = 0; a < HU; a++) {
          const rj = r[j * HU + a];
          const dpre = dR[a] * (1 - rj * rj);
          g['und.b1'][a] += dpre;
          dGate[a] += dpre * aAll[j * HU + a];
          const da = dpre * gate[a];
          for (let k = 0; k < DI; k++) {
            g['und.w1'][a * DI + k] += da * e[j * DI + k];
            de[k] += da * P['und.w1'][a * DI + k];
          }
        }
        const x = it.tokens[j];
        for (let k = 0; k < DI; k++) {
          g['image.tokenEmb'][x * DI + k] += de[k] * C[j * DI + k];
          g['image.cellEmb'][j * DI + k] += de[k] * T[x * DI + k];
        }
      }
      for (let a = 0; a < HU; a++) {
        g['und.bq'][a] += dGate[a];
        for (let k = 0; k < H; k++) {
          g['und.wq'][a * H + k] += dGate[a] * h[k];
          dh[k] += dGate[a] * P['und.wq'][a * H + k];
        }
      }
      this.encodeBackward(words, enc, dh);
    }
    return loss;
  }

  /**
   * Fit the understanding head's three scalars (scale, λ, bias) by logistic regression (Newton's method)
   * on labelled (prompt, image) pairs, the rest of the model fixed: a calibration pass after
   * pretraining that also learns how much the judge trusts the Bayes link. Returns the final loss.
   */
  calibrateJudge(items: { prompt: Prompt; tokens: ArrayLike<number>; label: boolean }[], iterations = 25): number {
    const M = this.config.matchDim;
    const feats = items.map((it) => {
      const words = this.tokenizePrompt(it.prompt.text);
      const h = this.encode(words).h;
      const u = this.promptMatch(h);
      const v = this.imageMatch(it.tokens, h).v;
      let uv = 0;
      let uu = 0;
      let vv = 0;
      for (let k = 0; k < M; k++) {
        uv += u[k] * v[k];
        uu += u[k] * u[k];
        vv += v[k] * v[k];
      }
      const cos = uv / Math.max(Math.sqrt(uu) * Math.sqrt(vv), 1e-24);
      const pmi = this.config.bayesLink ? this.pmi(words, it.tokens, false).value : 0;
      return [cos, pmi, 1, it.label ? 1 : 0];
    });
    const P = this.params;
    const w = [P['und.scale'][0], P['und.pmi'][0], P['und.bias'][0]];
    const fixed = this.config.bayesLink ? this.config.bayesLinkWeight : 0;
    if (fixed !== null) w[1] = fixed;
    const dims = fixed === null ? [0, 1, 2] : [0, 2];
    const lossAt = (x: number[]) => {
      let l = 0;
      for (const f of feats) {
        const p = sigmoid(x[0] * f[0] + x[1] * f[1] + x[2] * f[2]);
        l -= (f[3] ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12))) / feats.length;
      }
      return l;
    };
    let loss = lossAt(w);
    for (let iter = 0; iter < iterations; iter++) {
      const g = [0, 0, 0];
      const Hm = [
        [1e-3, 0, 0],
        [0, 1e-3, 0],
        [0, 0, 1e-3],
      ];
      for (const f of feats) {
        const p = sigmoid(w[0] * f[0] + w[1] * f[1] + w[2] * f[2]);
        for (const a of dims) {
          g[a] += ((p - f[3]) * f[a]) / feats.length;
          for (const b of dims) Hm[a][b] += (p * (1 - p) * f[a] * f[b]) / feats.length;
        }
      }
      // Newton direction: solve H d = g on the active dims by Gaussian elimination.
      const n = dims.length;
      const A = dims.map((a) => [...dims.map((b) => Hm[a][b]), g[a]]);
      for (let i = 0; i < n; i++) {
        for (let r = i + 1; r < n; r++) {
          const f = A[r][i] / A[i][i];
          for (let c = i; c <= n; c++) A[r][c] -= f * A[i][c];
        }
      }
      const d = new Array<number>(n).fill(0);
      for (let i = n - 1; i >= 0; i--) {
        let acc = A[i][n];
        for (let c = i + 1; c < n; c++) acc -= A[i][c] * d[c];
        d[i] = acc / A[i][i];
      }
      // Backtracking line search: Newton steps can overshoot on (nearly) separable data.
      let t = 1;
      let next = w;
      let nextLoss = Infinity;
      while (t > 1e-6) {
        next = [...w];
        dims.forEach((a, i) => (next[a] -= t * d[i]));
        nextLoss = lossAt(next);
        if (nextLoss <= loss) break;
        t /= 2;
      }
      if (!(nextLoss <= loss)) break;
      const done = loss - nextLoss < 1e-10;
      w.splice(0, 3, ...next);
      loss = nextLoss;
      if (done) break;
    }
    P['und.scale'][0] = Math.fround(w[0]);
    P['und.pmi'][0] = Math.fround(w[1]);
    P['und.bias'][0] = Math.fround(w[2]);
    return loss;
  }

  // ------------------------------------------------------------------------------ optimizer

  zeroGrad(): void {
    for (const n of PARAM_NAMES) this.grads[n].fill(0);
  }

  /** One Adam step on the accumulated gradients (then zeroes them); values stay float32-representable. */
  applyGradients(learningRate: number): void {
    if (!(learningRate >= 0)) throw new RangeError(`learningRate must be >= 0, got ${learningRate}`);
    const b1 = 0.9;
    const b2 = 0.999;
    this.adamT++;
    const c1 = 1 - Math.pow(b1, this.adamT);
    const c2 = 1 - Math.pow(b2, this.adamT);
    for (const n of PARAM_NAMES) {
      if (this.frozen.has(n)) {
        this.grads[n].fill(0);
        continue;
      }
      const p = this.params[n];
      const gr = this.grads[n];
      const m = this.adamM[n];
      const v = this.adamV[n];
      for (let i = 0; i < p.length; i++) {
        const gi = gr[i];
        // Moments stay float32-representable too, so a snapshot restores the optimizer exactly.
        m[i] = Math.fround(b1 * m[i] + (1 - b1) * gi);
        v[i] = Math.fround(b2 * v[i] + (1 - b2) * gi * gi);
        p[i] = Math.fround(p[i] - (learningRate * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8));
      }
      gr.fill(0);
    }
  }

  /** Keep these parameters fixed in every later optimizer step (e.g. SHARED_PARAMS, to cut the coupling). */
  freeze(names: readonly ParamName[]): void {
    this.frozen = new Set(names);
  }

  /** Reset the optimizer's moments (e.g. between pretraining and self-improvement). */
  resetOptimizer(): void {
    for (const n of PARAM_NAMES) {
      this.adamM[n].fill(0);
      this.adamV[n].fill(0);
    }
    this.adamT = 0;
  }

  /**
   * Weights and the optimizer's state ('optim.m.<name>', 'optim.v.<name>', 'optim.t'), so that a run
   * resumed from a checkpoint continues exactly as an uninterrupted one.
   */
  snapshot(): ModelState {
    const state: ModelState = {};
    for (const n of PARAM_NAMES) state[n] = Float32Array.from(this.params[n]);
    for (const n of PARAM_NAMES) state[`optim.m.${n}`] = Float32Array.from(this.adamM[n]);
    for (const n of PARAM_NAMES) state[`optim.v.${n}`] = Float32Array.from(this.adamV[n]);
    state['optim.t'] = Float32Array.of(this.adamT);
    return state;
  }

  /** Load a snapshot or checkpoint. Without optimizer entries (weights only) the optimizer is reset. */
  restore(state: ModelState): void {
    const check = (key: string, n: ParamName) => {
      const src = state[key];
      if (!src || src.length !== this.params[n].length)
        throw new RangeError(
          `state is missing '${key}' or has the wrong size (${src?.length} vs ${this.params[n].length})`,
        );
    };
    for (const n of PARAM_NAMES) check(n, n);
    const withOptim = state['optim.t'] !== undefined;
    if (withOptim)
      for (const n of PARAM_NAMES) {
        check(`optim.m.${n}`, n);
        check(`optim.v.${n}`, n);
      }
    for (const n of PARAM_NAMES) this.params[n].set(state[n]);
    if (withOptim) {
      for (const n of PARAM_NAMES) {
        this.adamM[n].set(state[`optim.m.${n}`]);
        this.adamV[n].set(state[`optim.v.${n}`]);
      }
      this.adamT = state['optim.t'][0];
    } else this.resetOptimizer();
  }

  /** Parameter names in a stable order. */
  static get paramNames(): readonly ParamName[] {
    return PARAM_NAMES;
  }
}
