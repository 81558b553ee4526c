/**
 * Contract checks on what a UnifiedModel / ExternalJudge adapter returns. A broken adapter is an
 * AdapterError naming the method and the problem, raised before the value reaches a kernel or a file.
 */
import { describe } from '../validate.js';
import { AdapterError } from './errors.js';
import type {
  ExternalJudge,
  GeneratedImage,
  Judgment,
  LogitsBatch,
  Prompt,
  TrainSequence,
  UnifiedModel,
} from './types.js';

const MODEL_METHODS = ['generate', 'judge', 'forward', 'step', 'snapshot', 'restore'] as const;

export function checkModel(model: unknown): UnifiedModel {
  if (!model || typeof model !== 'object')
    throw new AdapterError('model', `must be an object implementing UnifiedModel, got ${describe(model)}`);
  const m = model as Record<string, unknown>;
  for (const k of MODEL_METHODS)
    if (typeof m[k] !== 'function') throw new AdapterError('model', `UnifiedModel.${k} must be a function`);
  for (const k of ['optimizerState', 'restoreOptimizer'])
    if (m[k] !== undefined && typeof m[k] !== 'function')
      throw new AdapterError('model', `UnifiedModel.${k} must be a function when given`);
  if (!Number.isSafeInteger(m.vocabSize) || (m.vocabSize as number) < 1)
    throw new AdapterError('model', `vocabSize must be a positive integer, got ${describe(m.vocabSize)}`);
  if (typeof m.name !== 'string') throw new AdapterError('model', `name must be a string, got ${describe(m.name)}`);
  return model as UnifiedModel;
}

export function checkJudge(judge: unknown): ExternalJudge {
  if (!judge || typeof judge !== 'object' || typeof (judge as ExternalJudge).verify !== 'function')
    throw new AdapterError('judge', `must be an object with a verify(prompt, image) method, got ${describe(judge)}`);
  return judge as ExternalJudge;
}

export function checkImages(images: unknown, n: number, vocab: number, prompt: Prompt): GeneratedImage[] {
  if (!Array.isArray(images))
    throw new AdapterError(
      'generate',
      `must return an array of images, got ${describe(images)} for prompt '${prompt.id}'`,
    );
  if (images.length !== n)
    throw new AdapterError('generate', `returned ${images.length} images for prompt '${prompt.id}', asked for ${n}`);
  images.forEach((img: GeneratedImage, i) => {
    if (!img || !(img.tokens instanceof Int32Array))
      throw new AdapterError(
        'generate',
        `image ${i} of prompt '${prompt.id}' must have tokens: Int32Array, got ${describe(img?.tokens)}`,
      );
    for (let t = 0; t < img.tokens.length; t++) {
      const v = img.tokens[t];
      if (v < 0 || v >= vocab)
        throw new AdapterError(
          'generate',
          `image ${i} of prompt '${prompt.id}' has token ${v} at position ${t}, outside [0, ${vocab})`,
        );
    }
  });
  return images;
}

export function checkJudgment(j: unknown, prompt: Prompt): Judgment {
  const o = j as Judgment;
  if (!o || typeof o !== 'object')
    throw new AdapterError('judge', `must return {pYes, accept}, got ${describe(j)} for prompt '${prompt.id}'`);
  if (typeof o.pYes !== 'number' || !(o.pYes >= 0 && o.pYes <= 1))
    throw new AdapterError(
      'judge',
      `pYes must be a number in [0, 1], got ${describe(o.pYes)} for prompt '${prompt.id}'`,
    );
  if (typeof o.accept !== 'boolean')
    throw new AdapterError('judge', `accept must be a boolean, got ${describe(o.accept)} for prompt '${prompt.id}'`);
  return o;
}

export function checkVerdict(v: unknown, prompt: Prompt): boolean {
  if (typeof v !== 'boolean')
    throw new AdapterError('verify', `must return a boolean, got ${describe(v)} for prompt '${prompt.id}'`);
  return v;
}

/**
 * A forward's LogitsBatch must match the batch: Float32Array logits [rows, vocab] with the model's
 * vocab, Int32Array labels [rows], Int32Array offsets [batch + 1] from 0 to rows, non-decreasing, and
 * each sequence's counted labels (not -100) equal to its image tokens in order.
 */
export function checkLogitsBatch(lb: unknown, batch: readonly TrainSequence[], vocab: number): LogitsBatch {
  const b = lb as LogitsBatch;
  const bad = (msg: string) => new AdapterError('forward', msg);
  if (!b || typeof b !== 'object') throw bad(`must return a LogitsBatch, got ${describe(lb)}`);
  if (!(b.logits instanceof Float32Array)) throw bad(`logits must be a Float32Array, got ${describe(b.logits)}`);
  if (!(b.labels instanceof Int32Array)) throw bad(`labels must be an Int32Array, got ${describe(b.labels)}`);
  if (!(b.offsets instanceof Int32Array)) throw bad(`offsets must be an Int32Array, got ${describe(b.offsets)}`);
  if (b.vocab !== vocab) throw bad(`vocab is ${describe(b.vocab)}, the model's vocabSize is ${vocab}`);
  const rows = b.labels.length;
  if (b.logits.length !== rows * vocab)
    throw bad(`logits has ${b.logits.length} elements, expected rows x vocab = ${rows} x ${vocab} = ${rows * vocab}`);
  if (b.offsets.length !== batch.length + 1)
    throw bad(`offsets has ${b.offsets.length} entries, expected batch size + 1 = ${batch.length + 1}`);
  if (b.offsets[0] !== 0 || b.offsets[batch.length] !== rows)
    throw bad(`offsets must run from 0 to rows (${rows}), got ${b.offsets[0]}..${b.offsets[batch.length]}`);
  for (let i = 0; i < batch.length; i++) {
    const [a, e] = [b.offsets[i], b.offsets[i + 1]];
    if (e < a) throw bad(`offsets must be non-decreasing (sequence ${i}: ${a} > ${e})`);
    const tokens = batch[i].tokens;
    let k = 0;
    for (let r = a; r < e; r++) {
      const y = b.labels[r];
      if (y === -100) continue;
      if (k >= tokens.length || y !== tokens[k])
        throw bad(
          `labels of sequence ${i} (prompt '${batch[i].prompt.id}') do not match its image tokens at token ${k} (label ${y}, token ${tokens[k] ?? 'none'})`,
        );
      k++;
    }
    if (k !== tokens.length)
      throw bad(
        `sequence ${i} (prompt '${batch[i].prompt.id}') has ${k} counted labels for ${tokens.length} image tokens`,
      );
  }
  return b;
}

/** Locate the first NaN logit (for the message when a kernel's output came back NaN). */
export function findNaN(lb: LogitsBatch): { row: number; sequence: number } | null {
  const { logits, vocab, offsets } = lb;
  for (let i = 0; i < logits.length; i++)
    if (Number.isNaN(logits[i])) {
      const row = Math.floor(i / vocab);
      let s = 0;
      while (s + 1 < offsets.length && offsets[s + 1] <= row) s++;
      return { row, sequence: s };
    }
  return null;
}
