/**
 * The run directory:
 *
 *   config.json                 the resolved LoopConfig and the run identity (model, prompt sets)
 *   metrics.jsonl               one RoundMetrics per line, round 0 (baseline) first
 *   pool-<round>.json           the prompt-pool state and the round's evaluation samples (sealed)
 *   checkpoints/round-<r>.bin   weights, float32 little-endian, tensors back to back
 *   checkpoints/round-<r>.json  the index: names, offsets, lengths, sha256 of the .bin (sealed)
 *   fixed-probe.json            the fixed labelled probe set built at round 0 (sealed; written once)
 *   fixed-probe-base.json       the round-0 self-judgments (accept) of that set, for the understanding win
 *                               rate (sealed; written once; absent in run directories made before it existed)
 *   state.json                  the commit record: last finished round and the sha256 of every file above
 *
 * Every file is written atomically (temp file, fsync, rename, fsync of the directory), and state.json is
 * written last, so a crash (even kill -9) at any point leaves the previous round's commit intact: the
 * round in progress is redone on resume. "Sealed" JSON is `{"sha256":"<hex>","body":<json>}` with the
 * hash of the exact body text; a truncated or edited file fails its checksum and raises
 * CorruptStateError, never being used silently.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { PoolState } from './curriculum.js';
import { InvalidValueError } from '../errors.js';
import { ConfigMismatchError, CorruptStateError } from './errors.js';
import type { FixedProbeItem, LoopConfig, ModelState, Prompt, PromptSamples, RoundMetrics } from './types.js';

export const RUN_FORMAT = 'unigap-run/1';

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Write `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await rename(tmp, path);
  } catch (e) {
    // A failed write (disk full, EFBIG) must not leave the partial temp file taking space; the
    // previous committed file is untouched either way.
    rmSync(tmp, { force: true });
    throw e;
  }
  const dir = path.slice(0, Math.max(path.lastIndexOf('/'), 0)) || '.';
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  }
}

const SEAL_PREFIX_LEN = '{"sha256":"'.length + 64 + '","body":'.length;

export function seal(body: unknown): string {
  const text = JSON.stringify(body);
  return `{"sha256":"${sha256(text)}","body":${text}}`;
}

/** Parse a sealed file's text; CorruptStateError when truncated, malformed or the checksum disagrees. */
export function unseal<T>(path: string, text: string): T {
  if (!text.startsWith('{"sha256":"') || text.length < SEAL_PREFIX_LEN + 1 || !text.endsWith('}'))
    throw new CorruptStateError(path, 'truncated or not a unigap sealed file');
  const want = text.slice('{"sha256":"'.length, '{"sha256":"'.length + 64);
  const body = text.slice(SEAL_PREFIX_LEN, -1);
  if (sha256(body) !== want) throw new CorruptStateError(path, 'checksum mismatch (file truncated or modified)');
  try {
    return JSON.parse(body) as T;
  } catch (e) {
    throw new CorruptStateError(path, 'unparseable JSON', { cause: e });
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CorruptStateError(path, `cannot read ${what}: ${(e as Error).message}`, { cause: e });
  }
}

// --- payload encoding: JSON with typed arrays tagged, so model payloads survive a resume ---

const TYPED: Record<string, new (xs: number[]) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
};

function encodeValue(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && v.constructor.name in TYPED)
    return { $typed: v.constructor.name, data: Array.from(v as unknown as ArrayLike<number>) };
  if (Array.isArray(v)) return v.map(encodeValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeValue(x)]));
  return v;
}

function decodeValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeValue);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$typed === 'string' && Array.isArray(o.data) && o.$typed in TYPED) return new TYPED[o.$typed](o.data);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decodeValue(x)]));
  }
  return v;
}

interface SavedSample {
  tokens: number[];
  payload?: unknown;
  pYes: number;
  accept: boolean;
  external?: boolean;
}
type SavedPromptSamples = { id: string; samples: SavedSample[] };

export function encodeSamples(data: readonly PromptSamples[]): SavedPromptSamples[] {
  return data.map((d) => ({
    id: d.prompt.id,
    samples: d.samples.map((s) => {
      const o: SavedSample = { tokens: Array.from(s.image.tokens), pYes: s.judgment.pYes, accept: s.judgment.accept };
      if (s.image.payload !== undefined) o.payload = encodeValue(s.image.payload);
      if (s.external !== undefined) o.external = s.external;
      return o;
    }),
  }));
}

export function decodeSamples(
  path: string,
  saved: SavedPromptSamples[],
  prompts: Map<string, Prompt>,
): PromptSamples[] {
  return saved.map((d) => {
    const prompt = prompts.get(d.id);
    if (!prompt) throw new CorruptStateError(path, `unknown prompt id '${d.id}'`);
    return {
      prompt,
      samples: d.samples.map((s) => {
        const image: PromptSamples['samples'][number]['image'] = { tokens: Int32Array.from(s.tokens) };
        if (s.payload !== undefined) image.payload = decodeValue(s.payload);
        const out: PromptSamples['samples'][number] = { image, judgment: { pYes: s.pYes, accept: s.accept } };
        if (s.external !== undefined) out.external = s.external;
        return out;
      }),
    };
  });
}

// --- the run's persistent state ---

/** What identifies a run besides its config: resuming with other prompts or another model is a mismatch. */
export interface RunIdentity {
  model: string;
  vocabSize: number;
  /** The external judge's name, or null without one. */
  judge: string | null;
  /** sha256 over the prompts' (id, text, category). */
  trainPrompts: string;
  probePrompts: string;
  /** sha256 over RunOptions.probeSet (prompts, tokens, labels), or null without one. */
  probeSet: string | null;
}

export function promptsDigest(prompts: readonly Prompt[]): string {
  return sha256(JSON.stringify(prompts.map((p) => [p.id, p.text, p.category])));
}

/**
 * Config keys added after run directories were first written. A saved config.json without one of them
 * was made before it existed; resuming it does not count the key as a difference. guardPrecision: the
 * resumed rounds watch acceptance precision, compared from the first best round that stores it (a saved
 * best round without it skips that comparison, lib/loop/guard.ts).
 */
export const ADDED_CONFIG_KEYS: readonly string[] = ['guardPrecision'];

/** The guard's record of the best round (highest sum of the watched external accuracies, precision counted where both rounds have it). */
export interface BestRound {
  round: number;
  generationAccuracy: number;
  understandingAccuracy: number;
  unification: number;
  /** When the guard watches the training prompts too (config.guardTrainGeneration). */
  trainGenerationAccuracy?: number;
  trainUnification?: number;
  /**
   * The best round's acceptance precision (externally right among the self-accepted samples) on the
   * probe samples / the training samples, when the guard watches it (config.guardPrecision). Absent in
   * run directories saved before the signal existed (the guard then skips that comparison) and when the
   * best round accepted no sample.
   */
  acceptancePrecision?: number;
  trainAcceptancePrecision?: number;
}

// --- the fixed probe set ---

interface SavedFixedItem {
  prompt: Prompt;
  tokens: number[];
  payload?: unknown;
  label: boolean;
  source: FixedProbeItem['source'];
}

export function encodeFixedProbe(items: readonly FixedProbeItem[]): SavedFixedItem[] {
  return items.map((it) => {
    const o: SavedFixedItem = {
      prompt: { id: it.prompt.id, text: it.prompt.text, category: it.prompt.category },
      tokens: Array.from(it.image.tokens),
      label: it.label,
      source: it.source,
    };
    if (it.image.payload !== undefined) o.payload = encodeValue(it.image.payload);
    return o;
  });
}

export function decodeFixedProbe(path: string, saved: unknown): FixedProbeItem[] {
  if (!Array.isArray(saved)) throw new CorruptStateError(path, 'fixed probe set is not a list');
  return saved.map((o: SavedFixedItem, i) => {
    if (
      !o ||
      !o.prompt ||
      typeof o.prompt.id !== 'string' ||
      !Array.isArray(o.tokens) ||
      typeof o.label !== 'boolean' ||
      (o.source !== 'model' && o.source !== 'supplied')
    )
      throw new CorruptStateError(path, `fixed probe item ${i} is malformed`);
    const image: FixedProbeItem['image'] = { tokens: Int32Array.from(o.tokens) };
    if (o.payload !== undefined) image.payload = decodeValue(o.payload);
    return { prompt: o.prompt, image, label: o.label, source: o.source };
  });
}

/** The round-0 self-judgments of the fixed probe set, checked against the set's size. */
export function decodeFixedProbeBase(path: string, saved: unknown, items: number): boolean[] {
  if (!Array.isArray(saved) || saved.some((v) => typeof v !== 'boolean'))
    throw new CorruptStateError(path, 'round-0 verdicts of the fixed probe set are not a list of booleans');
  if (saved.length !== items)
    throw new CorruptStateError(
      path,
      `round-0 verdicts of the fixed probe set: ${saved.length} verdicts for ${items} items`,
    );
  return saved as boolean[];
}

/** Digest of user-supplied labelled pairs (part of the run identity). */
export function probeSetDigest(
  items: readonly { prompt: Prompt; image: { tokens: Int32Array }; label: boolean }[],
): string {
  return sha256(
    JSON.stringify(
      items.map((it) => [it.prompt.id, it.prompt.text, it.prompt.category, Array.from(it.image.tokens), it.label]),
    ),
  );
}

/** Everything needed to continue after round `round`, besides the weights. */
export interface LoopState {
  round: number;
  pool: PoolState;
  /** The evaluation samples of every training prompt at the end of `round` (from the current weights). */
  evalSamples: PromptSamples[];
  /** The fixed labelled probe set (built at round 0; null without an external judge). */
  fixedProbe: FixedProbeItem[] | null;
  /**
   * The round-0 self-judgments (accept) of the fixed probe set, item by item (for the understanding win
   * rate); null (or absent) without a fixed set, or when resuming a run directory made before they were stored.
   */
  fixedProbeBase?: boolean[] | null;
  best: BestRound | null;
  guardEvents: { round: number; reason: string; rolledBackTo: number }[];
  stoppedEarly: boolean;
}

interface CommitRecord {
  format: string;
  round: number;
  checkpoint: { index: string; sha256: string };
  best: { round: number; index: string; sha256: string } | null;
  pool: { path: string; sha256: string };
  fixedProbe: { path: string; sha256: string } | null;
  /** Absent in run directories made before the round-0 verdicts were stored. */
  fixedProbeBase?: { path: string; sha256: string } | null;
  metrics: { lines: number; sha256: string };
  bestRound: BestRound | null;
  guardEvents: LoopState['guardEvents'];
  stoppedEarly: boolean;
}

interface SavedPool {
  round: number;
  frozen: SavedPromptSamples[];
  discard: string[];
  active: string[];
  evalSamples: SavedPromptSamples[];
}

interface CheckpointIndex {
  format: string;
  round: number;
  bytes: number;
  sha256: string;
  tensors: { name: string; offset: number; length: number }[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const pad = (r: number) => String(r).padStart(4, '0');

export class RunDir {
  readonly dir: string;
  private checkpointShas = new Map<number, { index: string; sha256: string }>();
  private fixedProbeRef: { path: string; sha256: string } | null = null;
  private fixedProbeBaseRef: { path: string; sha256: string } | null = null;

  constructor(dir: string) {
    this.dir = dir;
  }

  private p(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /**
   * Take the directory's lock (run.lock, created exclusively, holding our pid) so two processes never
   * write one run. A lock left by a dead process (kill -9) is taken over. Returns the release function.
   */
  async lock(): Promise<() => void> {
    await mkdir(this.dir, { recursive: true });
    const path = this.p('run.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return () => {
          try {
            unlinkSync(path);
          } catch {
            // Already gone.
          }
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let pid = NaN;
        try {
          pid = Number(readFileSync(path, 'utf8'));
        } catch {
          // Vanished in between: retry.
        }
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
          throw new InvalidValueError(`${this.dir} is in use by another run (process ${pid}; lock ${path})`);
        try {
          unlinkSync(path);
        } catch {
          // Someone else took it over first; the next attempt decides.
        }
      }
    }
    throw new InvalidValueError(`${this.dir}: could not take the run lock (${path})`);
  }

  /** Does the directory hold a committed round? */
  async hasCommit(): Promise<boolean> {
    try {
      await readFile(this.p('state.json'));
      return true;
    } catch {
      return false;
    }
  }

  /** Start a fresh run: create the directory and write config.json. */
  async create(config: LoopConfig, identity: RunIdentity): Promise<void> {
    await mkdir(this.p('checkpoints'), { recursive: true });
    await atomicWrite(this.p('config.json'), JSON.stringify({ format: RUN_FORMAT, config, identity }, null, 2) + '\n');
  }

  /**
   * Check config.json against the requested config and identity; ConfigMismatchError lists every
   * difference. Returns false when there is no config.json (nothing was started).
   */
  async checkConfig(config: LoopConfig, identity: RunIdentity): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.p('config.json'), 'utf8');
    } catch {
      return false;
    }
    let saved: { format?: string; config?: Record<string, unknown>; identity?: Record<string, unknown> };
    try {
      saved = JSON.parse(text);
    } catch (e) {
      throw new CorruptStateError(this.p('config.json'), 'unparseable JSON', { cause: e });
    }
    if (saved.format !== RUN_FORMAT || !saved.config || !saved.identity)
      throw new CorruptStateError(this.p('config.json'), `not a ${RUN_FORMAT} run config`);
    const diffs: string[] = [];
    // Options added after run directories existed: a saved config without one predates it and resumes
    // under the requested value (the option then applies from the resumed round on).
    const later = new Set(ADDED_CONFIG_KEYS);
    const cmp = (prefix: string, a: Record<string, unknown>, b: Record<string, unknown>) => {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (prefix === 'config.' && later.has(k) && !(k in a)) continue;
        if (JSON.stringify(a[k]) !== JSON.stringify(b[k]))
          diffs.push(`${prefix}${k}: saved ${JSON.stringify(a[k])}, requested ${JSON.stringify(b[k])}`);
      }
    };
    cmp('config.', saved.config, config as unknown as Record<string, unknown>);
    cmp('', saved.identity, identity as unknown as Record<string, unknown>);
    if (diffs.length)
      throw new ConfigMismatchError(
        `cannot resume ${this.dir}: it was made with another config (${diffs.join('; ')})`,
        diffs,
      );
    return true;
  }

  async writeCheckpoint(round: number, state: ModelState): Promise<{ index: string; sha256: string }> {
    const names = Object.keys(state).sort();
    let total = 0;
    const tensors = names.map((name) => {
      const t = { name, offset: total, length: state[name].length };
      total += state[name].length * 4;
      return t;
    });
    const buf = Buffer.alloc(total);
    for (const t of tensors) {
      const a = state[t.name];
      if (LITTLE_ENDIAN) buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), t.offset);
      else for (let i = 0; i < a.length; i++) buf.writeFloatLE(a[i], t.offset + 4 * i);
    }
    const bin = `checkpoints/round-${pad(round)}.bin`;
    const index = `checkpoints/round-${pad(round)}.json`;
    await mkdir(this.p('checkpoints'), { recursive: true });
    await atomicWrite(this.p(bin), buf);
    const idx: CheckpointIndex = { format: RUN_FORMAT, round, bytes: total, sha256: sha256(buf), tensors };
    const text = seal(idx);
    await atomicWrite(this.p(index), text);
    const ref = { index, sha256: sha256(text) };
    this.checkpointShas.set(round, ref);
    return ref;
  }

  async readCheckpoint(ref: { index: string; sha256: string }): Promise<ModelState> {
    const ipath = this.p(ref.index);
    const text = await readText(ipath, 'checkpoint index');
    if (sha256(text) !== ref.sha256) throw new CorruptStateError(ipath, 'checkpoint index does not match state.json');
    const idx = unseal<CheckpointIndex>(ipath, text);
    const bpath = ipath.replace(/\.json$/, '.bin');
    let buf: Buffer;
    try {
      buf = await readFile(bpath);
    } catch (e) {
      throw new CorruptStateError(bpath, `cannot read checkpoint weights: ${(e as Error).message}`, { cause: e });
    }
    if (buf.byteLength !== idx.bytes)
      throw new CorruptStateError(
        bpath,
        `checkpoint has ${buf.byteLength} bytes, index says ${idx.bytes} (truncated?)`,
      );
    if (sha256(buf) !== idx.sha256) throw new CorruptStateError(bpath, 'checkpoint checksum mismatch');
    const out: ModelState = {};
    for (const t of idx.tensors) {
      if (t.offset < 0 || t.offset + 4 * t.length > buf.byteLength)
        throw new CorruptStateError(ipath, `tensor '${t.name}' lies outside the checkpoint`);
      const a = new Float32Array(t.length);
      if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(buf.subarray(t.offset, t.offset + 4 * t.length));
      else for (let i = 0; i < t.length; i++) a[i] = buf.readFloatLE(t.offset + 4 * i);
      out[t.name] = a;
    }
    return out;
  }

  /**
   * Commit round `state.round`: the checkpoint (already written by writeCheckpoint for this round, or
   * `checkpointRound`'s after a rollback), the pool, metrics.jsonl, then state.json.
   */
  async commit(state: LoopState, metrics: readonly RoundMetrics[], checkpointRound: number): Promise<void> {
    const ck = this.checkpointShas.get(checkpointRound);
    if (!ck) throw new Error(`internal: checkpoint of round ${checkpointRound} not written`);
    const best = state.best ? this.checkpointShas.get(state.best.round) : undefined;
    const poolPath = `pool-${pad(state.round)}.json`;
    const pool: SavedPool = {
      round: state.round,
      frozen: encodeSamples(state.pool.frozen),
      discard: state.pool.discard,
      active: state.pool.active,
      evalSamples: encodeSamples(state.evalSamples),
    };
    const poolText = seal(pool);
    await atomicWrite(this.p(poolPath), poolText);
    if (state.fixedProbe && !this.fixedProbeRef) {
      // Written once (the set never changes); later commits refer to the same file.
      const text = seal(encodeFixedProbe(state.fixedProbe));
      await atomicWrite(this.p('fixed-probe.json'), text);
      this.fixedProbeRef = { path: 'fixed-probe.json', sha256: sha256(text) };
    }
    if (state.fixedProbe && state.fixedProbeBase && !this.fixedProbeBaseRef) {
      // Written once, like the set itself.
      const text = seal(state.fixedProbeBase);
      await atomicWrite(this.p('fixed-probe-base.json'), text);
      this.fixedProbeBaseRef = { path: 'fixed-probe-base.json', sha256: sha256(text) };
    }
    const lines = metrics.map((m) => JSON.stringify(m) + '\n').join('');
    await atomicWrite(this.p('metrics.jsonl'), lines);
    const rec: CommitRecord = {
      format: RUN_FORMAT,
      round: state.round,
      checkpoint: ck,
      best: state.best && best ? { round: state.best.round, ...best } : null,
      pool: { path: poolPath, sha256: sha256(poolText) },
      fixedProbe: state.fixedProbe ? this.fixedProbeRef : null,
      fixedProbeBase: state.fixedProbe && state.fixedProbeBase ? this.fixedProbeBaseRef : null,
      metrics: { lines: metrics.length, sha256: sha256(lines) },
      bestRound: state.best,
      guardEvents: state.guardEvents,
      stoppedEarly: state.stoppedEarly,
    };
    await atomicWrite(this.p('state.json'), seal(rec));
    await this.cleanup(new Set([poolPath, ck.index, ...(rec.best ? [rec.best.index] : [])]));
  }

  /** Remove files of rounds no longer referenced and stale temp files (from a killed writer). */
  private async cleanup(keep: Set<string>): Promise<void> {
    const keepBins = new Set([...keep].filter((k) => k.endsWith('.json')).map((k) => k.replace(/\.json$/, '.bin')));
    for (const [sub, re] of [
      ['', /^pool-\d+\.json$|\.tmp-\d+$/],
      ['checkpoints', /^round-\d+\.(bin|json)$|\.tmp-\d+$/],
    ] as const) {
      let names: string[] = [];
      try {
        names = await readdir(this.p(sub));
      } catch {
        continue;
      }
      for (const n of names) {
        const rel = sub ? `${sub}/${n}` : n;
        if (re.test(n) && !keep.has(rel) && !keepBins.has(rel)) await rm(this.p(rel), { force: true });
      }
    }
    for (const [r] of [...this.checkpointShas])
      if (!keep.has(`checkpoints/round-${pad(r)}.json`)) this.checkpointShas.delete(r);
  }

  /** Load the last commit: state, metrics, the current weights and (for the guard) the best round's ref. */
  async load(
    prompts: Map<string, Prompt>,
  ): Promise<{ state: LoopState; metrics: RoundMetrics[]; weights: ModelState }> {
    const spath = this.p('state.json');
    const rec = unseal<CommitRecord>(spath, await readText(spath, 'state.json'));
    if (rec.format !== RUN_FORMAT) throw new CorruptStateError(spath, `unknown format '${rec.format}'`);
    const ppath = this.p(rec.pool.path);
    const poolText = await readText(ppath, 'pool state');
    if (sha256(poolText) !== rec.pool.sha256)
      throw new CorruptStateError(ppath, 'pool state does not match state.json');
    const pool = unseal<SavedPool>(ppath, poolText);
    const mpath = this.p('metrics.jsonl');
    const mtext = await readText(mpath, 'metrics');
    const all = mtext.split('\n');
    // Lines past the committed count belong to an unfinished round and are dropped.
    const committed = all.slice(0, rec.metrics.lines);
    const text = committed.map((l) => l + '\n').join('');
    if (committed.length !== rec.metrics.lines || sha256(text) !== rec.metrics.sha256)
      throw new CorruptStateError(mpath, `metrics.jsonl does not hold the ${rec.metrics.lines} committed rounds`);
    const metrics = committed.map((l) => JSON.parse(l) as RoundMetrics);
    let fixedProbe: FixedProbeItem[] | null = null;
    if (rec.fixedProbe) {
      const fpath = this.p(rec.fixedProbe.path);
      const ftext = await readText(fpath, 'fixed probe set');
      if (sha256(ftext) !== rec.fixedProbe.sha256)
        throw new CorruptStateError(fpath, 'fixed probe set does not match state.json');
      fixedProbe = decodeFixedProbe(fpath, unseal<unknown>(fpath, ftext));
      this.fixedProbeRef = rec.fixedProbe;
    }
    // Run directories made before the round-0 verdicts were stored have no reference: the win rate is
    // then unavailable (null), never guessed.
    let fixedProbeBase: boolean[] | null = null;
    if (fixedProbe && rec.fixedProbeBase) {
      const bpath = this.p(rec.fixedProbeBase.path);
      const btext = await readText(bpath, 'round-0 verdicts of the fixed probe set');
      if (sha256(btext) !== rec.fixedProbeBase.sha256)
        throw new CorruptStateError(bpath, 'round-0 verdicts of the fixed probe set do not match state.json');
      fixedProbeBase = decodeFixedProbeBase(bpath, unseal<unknown>(bpath, btext), fixedProbe.length);
      this.fixedProbeBaseRef = rec.fixedProbeBase;
    }
    const weights = await this.readCheckpoint(rec.checkpoint);
    this.checkpointShas.set(rec.round, rec.checkpoint);
    if (rec.best) this.checkpointShas.set(rec.best.round, { index: rec.best.index, sha256: rec.best.sha256 });
    // When the run was stopped by the guard, the current weights are the best round's.
    const ckRound = Number(/round-(\d+)\.json$/.exec(rec.checkpoint.index)?.[1] ?? rec.round);
    this.checkpointShas.set(ckRound, rec.checkpoint);
    // A kill between commit's state.json rename and its cleanup leaves files of older rounds: finish
    // that cleanup now, so a resumed run's directory ends exactly like an uninterrupted one.
    await this.cleanup(new Set([rec.pool.path, rec.checkpoint.index, ...(rec.best ? [rec.best.index] : [])]));
    return {
      state: {
        round: rec.round,
        pool: {
          frozen: decodeSamples(ppath, pool.frozen, prompts),
          discard: pool.discard,
          active: pool.active,
        },
        evalSamples: decodeSamples(ppath, pool.evalSamples, prompts),
        fixedProbe,
        fixedProbeBase,
        best: rec.bestRound,
        guardEvents: rec.guardEvents,
        stoppedEarly: rec.stoppedEarly,
      },
      metrics,
      weights,
    };
  }

  /** The weights of a committed round still on disk (the best round, for the guard's rollback). */
  async loadRound(round: number): Promise<ModelState> {
    const ref = this.checkpointShas.get(round);
    if (!ref) throw new CorruptStateError(this.p('checkpoints'), `no checkpoint of round ${round}`);
    return this.readCheckpoint(ref);
  }
}
