/**
 * The DPO loss family (TRL's DPOTrainer semantics): pair-level losses with gradients (`dpoLoss`) and the
 * fused path from logits. Policy: defaults, validation and errors live here; the formulas are written
 * down in native/include/unigap/dpo.h.
 *
 * Where it runs. `dpoLoss` (B pair values) runs on the CPU; DeviceTensor inputs are a typed error
 * (its CUDA route is not wired). `dpoLossFromLogits` with DeviceTensor logits (or { data: DeviceTensor,
 * dims }) runs on the GPU with `device: 'cuda'` (and with 'auto' on a device of compute capability
 * 9.x, where the path was GPU-verified, see lib/device.ts): the two passes over the logits run on a
 * CUDA stream of their own, the pair-level loss on the host between them (exactly the CPU's
 * unigap_dpo_loss). Labels and mask are then DeviceTensors
 * and offsets host arrays or a DeviceTensor, as for scoreLogprobs (lib/kernels/logprobs.ts); the
 * references and weights stay host arrays (B values, read by the host loss). Every per-pair result,
 * metric and count is a host value as on the CPU; the gradient is a DeviceTensor (new, or the logits
 * tensor itself with inPlace).
 */
import { assertIsaUsable } from '../backend.js';
import { InvalidTypeError, InvalidValueError, ShapeMismatchError } from '../errors.js';
import {
  DeviceTensor,
  cudaDpoFromLogits,
  cudaDpoFromLogitsAsync,
  routeKernelDevice,
  type DeviceOption,
} from '../device.js';
import { loadNative } from '../native.js';
import {
  prepareDeviceLogprobsCall,
  prepareLogprobsCall,
  runDeviceLogprobs,
  type DeviceLogitsInput,
  type LogitsInput,
  type LogprobsDeviceInputOptions,
  type LogprobsInputOptions,
  type NativeLogprobsCall,
  type PreparedDeviceLogprobs,
} from './logprobs.js';
import { checkOptions, describe, requireArray, requireEnum, requireNumber } from '../validate.js';

/** TRL's loss types (DPOConfig.loss_type). */
export const DPO_LOSS_TYPES = Object.freeze([
  'sigmoid',
  'hinge',
  'ipo',
  'exo_pair',
  'nca_pair',
  'robust',
  'bco_pair',
  'sppo_hard',
  'aot',
  'aot_unpaired',
  'apo_zero',
  'apo_down',
  'discopop',
  'sigmoid_norm',
  'sft',
] as const);
export type DpoLossType = (typeof DPO_LOSS_TYPES)[number];

/** TRL's f_divergence_type (js = 'js_divergence', alpha = 'alpha_divergence'). */
export const F_DIVERGENCES = Object.freeze(['reverse_kl', 'forward_kl', 'js', 'alpha'] as const);
export type FDivergence = (typeof F_DIVERGENCES)[number];

type Floats = Float32Array | Float64Array;

/** Per-pair sequence log-probs (sums over completion tokens), B each. */
export interface DpoInputs {
  policyChosen: Floats;
  policyRejected: Floats;
  /** Reference log-probs; required unless `referenceFree`. */
  referenceChosen?: Floats;
  referenceRejected?: Floats;
  /** Completion-token counts (Int32Array, B each): required by 'ipo', 'sigmoid_norm' (both) and 'sft' (chosen). */
  chosenTokens?: Int32Array;
  rejectedTokens?: Int32Array;
  /** Reference log-probs taken as 0 (TRL's reference_free); the reference arrays are then ignored. Default false. */
  referenceFree?: boolean;
}

export interface DpoLossOptions extends DeviceOption {
  /** β > 0, finite. Default 0.1. */
  beta?: number;
  /** One loss type or a list (TRL's combined losses, e.g. ['sigmoid', 'sft']). Default 'sigmoid'. */
  lossType?: DpoLossType | readonly DpoLossType[];
  /** One finite weight per loss type (TRL's loss_weights). Default all 1. */
  lossWeights?: readonly number[];
  /** ε in [0, 0.5): cDPO for sigmoid; robust, exo_pair (0 means 1e-3, TRL's EXO default), aot, aot_unpaired. Ignored by the others. Default 0. */
  labelSmoothing?: number;
  /** DiscoPOP τ > 0. Default 0.05. */
  discopopTau?: number;
  /** Default 'reverse_kl' (standard DPO). */
  fDivergence?: FDivergence;
  /** α-divergence coefficient (fDivergence 'alpha'); TRL's default 1.0 is reverse_kl. */
  alpha?: number;
  /** bco_pair's reward shift δ (TRL 0.x: the running mean of the rewards; TRL v1: 0). Default 0. */
  bcoDelta?: number;
  /** Per-pair weights (B finite numbers), multiplied into each per-pair loss before the mean. */
  weights?: Floats;
}

export interface DpoLossResult {
  /** Mean over pairs of `losses`. */
  loss: number;
  /** Per-pair losses (per sorted position for aot / aot_unpaired terms, as TRL). */
  losses: Float64Array;
  /** β·(policy − reference) on the raw log-ratios. */
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  /** chosenRewards − rejectedRewards. */
  margins: Float64Array;
  /** Mean of 1[chosenReward > rejectedReward]. */
  rewardAccuracy: number;
  /** d loss / d policyChosen[i] (of the mean loss). */
  gradChosen: Float64Array;
  /** d loss / d policyRejected[i]. */
  gradRejected: Float64Array;
}

/** What the native layer reads (lib/kernels/dpo.ts is its only caller). */
export interface NativeDpoArgs {
  policyChosen?: Float64Array;
  policyRejected?: Float64Array;
  referenceChosen?: Float64Array;
  referenceRejected?: Float64Array;
  chosenTokens?: Int32Array;
  rejectedTokens?: Int32Array;
  weights?: Float64Array;
  lossTypes: Int32Array;
  lossWeights: Float64Array;
  beta: number;
  labelSmoothing: number;
  discopopTau: number;
  fDivergence: number;
  alpha: number;
  bcoDelta: number;
  losses: Float64Array;
  chosenRewards: Float64Array;
  rejectedRewards: Float64Array;
  margins: Float64Array;
  gradChosen: Float64Array;
  gradRejected: Float64Array;
  /** [loss, rewardAccuracy] */
  scalars: Float64Array;
}

/** Outputs of the fused path that dpoLoss does not have. */
export interface NativeDpoFusedOut {
  gradOut: Float32Array | Uint16Array | null;
  policyChosen: Float64Array;
  policyRejected: Float64Array;
  chosenTokens: Int32Array;
  rejectedTokens: Int32Array;
  /** [logits/chosen, logits/rejected, entropy, token accuracy, chosen tokens, rejected tokens] */
  metrics: Float64Array;
}

declare module '../native.js' {
  interface NativeBinding {
    dpoLoss(args: NativeDpoArgs): void;
    dpoFromLogits(call: NativeLogprobsCall, args: NativeDpoArgs, out: NativeDpoFusedOut): void;
    dpoFromLogitsAsync(call: NativeLogprobsCall, args: NativeDpoArgs, out: NativeDpoFusedOut): Promise<void>;
  }
}

const OPTION_KEYS = [
  'beta',
  'lossType',
  'lossWeights',
  'labelSmoothing',
  'discopopTau',
  'fDivergence',
  'alpha',
  'bcoDelta',
  'weights',
] as const;
const DPO_LOSS_KEYS = [...OPTION_KEYS, 'device'] as const;
const INPUT_KEYS = [
  'policyChosen',
  'policyRejected',
  'referenceChosen',
  'referenceRejected',
  'chosenTokens',
  'rejectedTokens',
  'referenceFree',
] as const;

/** Validated options in native form (shared by dpoLoss and the fused path). */
export interface ResolvedDpoOptions {
  lossTypes: DpoLossType[];
  native: Pick<
    NativeDpoArgs,
    'lossTypes' | 'lossWeights' | 'beta' | 'labelSmoothing' | 'discopopTau' | 'fDivergence' | 'alpha' | 'bcoDelta'
  >;
  weights?: Float64Array;
}

const toF64 = (a: Floats): Float64Array => (a instanceof Float64Array ? a : Float64Array.from(a));

/** Validate the options (B known) and turn them into native form. Throws typed errors. */
export function resolveDpoOptions(fn: string, options: DpoLossOptions | undefined, B: number): ResolvedDpoOptions {
  const o = checkOptions(fn, options, OPTION_KEYS);
  const beta = o.beta === undefined ? 0.1 : requireNumber(fn, 'beta', o.beta, { min: 0, minExclusive: true });
  const rawTypes = o.lossType === undefined ? ['sigmoid'] : o.lossType;
  let lossTypes: DpoLossType[];
  if (typeof rawTypes === 'string') lossTypes = [requireEnum(fn, 'lossType', rawTypes, DPO_LOSS_TYPES)];
  else if (Array.isArray(rawTypes)) {
    if (rawTypes.length < 1 || rawTypes.length > 16)
      throw new InvalidValueError(`${fn}: lossType must list 1 to 16 loss types, got ${rawTypes.length}`);
    lossTypes = rawTypes.map((t, i) => requireEnum(fn, `lossType[${i}]`, t, DPO_LOSS_TYPES));
  } else
    throw new InvalidTypeError(
      `${fn}: lossType must be a loss type name or an array of them, got ${describe(rawTypes)}`,
    );
  let lossWeights: number[];
  if (o.lossWeights === undefined) lossWeights = lossTypes.map(() => 1);
  else {
    if (!Array.isArray(o.lossWeights))
      throw new InvalidTypeError(`${fn}: lossWeights must be an array of numbers, got ${describe(o.lossWeights)}`);
    if (o.lossWeights.length !== lossTypes.length)
      throw new ShapeMismatchError(
        `${fn}: lossWeights has ${o.lossWeights.length} entries but lossType lists ${lossTypes.length} loss types`,
      );
    lossWeights = o.lossWeights.map((w, i) => requireNumber(fn, `lossWeights[${i}]`, w));
  }
  const labelSmoothing =
    o.labelSmoothing === undefined
      ? 0
      : requireNumber(fn, 'labelSmoothing', o.labelSmoothing, { min: 0, max: 0.5, maxExclusive: true });
  const discopopTau =
    o.discopopTau === undefined
      ? 0.05
      : requireNumber(fn, 'discopopTau', o.discopopTau, { min: 0, minExclusive: true });
  const fDivergence =
    o.fDivergence === undefined ? 'reverse_kl' : requireEnum(fn, 'fDivergence', o.fDivergence, F_DIVERGENCES);
  const alpha = o.alpha === undefined ? 1.0 : requireNumber(fn, 'alpha', o.alpha);
  const bcoDelta = o.bcoDelta === undefined ? 0 : requireNumber(fn, 'bcoDelta', o.bcoDelta);
  let weights: Float64Array | undefined;
  if (o.weights !== undefined) {
    const w = requireArray<Floats>(fn, 'weights', o.weights, [Float32Array, Float64Array]);
    if (w.length !== B)
      throw new ShapeMismatchError(`${fn}: weights has ${w.length} elements, expected ${B} (one per pair)`);
    for (let i = 0; i < B; i++)
      if (!Number.isFinite(w[i])) throw new InvalidValueError(`${fn}: weights[${i}] must be finite, got ${w[i]}`);
    weights = toF64(w);
  }
  return {
    lossTypes,
    weights,
    native: {
      lossTypes: Int32Array.from(lossTypes, (t) => DPO_LOSS_TYPES.indexOf(t)),
      lossWeights: Float64Array.from(lossWeights),
      beta,
      labelSmoothing,
      discopopTau,
      fDivergence: F_DIVERGENCES.indexOf(fDivergence),
      alpha,
      bcoDelta,
    },
  };
}

function requireCounts(fn: string, name: string, v: unknown, B: number): Int32Array {
  const a = requireArray<Int32Array>(fn, name, v, [Int32Array]);
  if (a.length !== B) throw new ShapeMismatchError(`${fn}: ${name} has ${a.length} elements, expected ${B}`);
  for (let i = 0; i < B; i++)
    if (a[i] < 0) throw new InvalidValueError(`${fn}: ${name}[${i}] must be >= 0, got ${a[i]}`);
  return a;
}

/** Which token counts the loss types need. */
export function countsNeeded(types: readonly DpoLossType[]): { chosen: boolean; rejected: boolean; by?: DpoLossType } {
  const both = types.find((t) => t === 'ipo' || t === 'sigmoid_norm');
  if (both) return { chosen: true, rejected: true, by: both };
  if (types.includes('sft')) return { chosen: true, rejected: false, by: 'sft' };
  return { chosen: false, rejected: false };
}

/** Allocate the outputs of B pairs (NaN-filled so an unwritten element shows). */
export function allocDpoOutputs(B: number) {
  const f = () => new Float64Array(B).fill(NaN);
  return {
    losses: f(),
    chosenRewards: f(),
    rejectedRewards: f(),
    margins: f(),
    gradChosen: f(),
    gradRejected: f(),
    scalars: new Float64Array(2).fill(NaN),
  };
}

export function wrapDpoResult(out: ReturnType<typeof allocDpoOutputs>): DpoLossResult {
  return {
    loss: out.scalars[0],
    losses: out.losses,
    chosenRewards: out.chosenRewards,
    rejectedRewards: out.rejectedRewards,
    margins: out.margins,
    rewardAccuracy: out.scalars[1],
    gradChosen: out.gradChosen,
    gradRejected: out.gradRejected,
  };
}

/**
 * The DPO loss over B preference pairs, with gradients w.r.t. the policy log-probs. Exactly TRL's
 * formulas (see native/include/unigap/dpo.h); computed in float64.
 *
 * @example
 * const r = dpoLoss({ policyChosen, policyRejected, referenceChosen, referenceRejected }, { beta: 0.1 });
 * r.loss; r.gradChosen; r.rewardAccuracy;
 */
export function dpoLoss(inputs: DpoInputs, options?: DpoLossOptions): DpoLossResult {
  const fn = 'dpoLoss';
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs))
    throw new InvalidTypeError(`${fn}: inputs must be an object, got ${describe(inputs)}`);
  const inp = checkOptions(fn, inputs, INPUT_KEYS);
  const { device, ...dpoOptions } = checkOptions(fn, options, DPO_LOSS_KEYS);
  routeKernelDevice(fn, 'dpo.loss', device, Object.values(inp), 'unwired');
  const pc = requireArray<Floats>(fn, 'policyChosen', inp.policyChosen, [Float32Array, Float64Array]);
  const B = pc.length;
  if (B === 0) throw new ShapeMismatchError(`${fn}: policyChosen is empty; at least one pair is required`);
  const pr = requireArray<Floats>(fn, 'policyRejected', inp.policyRejected, [Float32Array, Float64Array]);
  if (pr.length !== B) throw new ShapeMismatchError(`${fn}: policyRejected has ${pr.length} elements, expected ${B}`);
  const refFree = inp.referenceFree === undefined ? false : inp.referenceFree;
  if (typeof refFree !== 'boolean')
    throw new InvalidTypeError(`${fn}: referenceFree must be a boolean, got ${describe(refFree)}`);
  let rc: Float64Array | undefined;
  let rr: Float64Array | undefined;
  if (!refFree) {
    if (inp.referenceChosen === undefined || inp.referenceRejected === undefined)
      throw new InvalidTypeError(
        `${fn}: referenceChosen and referenceRejected are required (or pass referenceFree: true)`,
      );
    const a = requireArray<Floats>(fn, 'referenceChosen', inp.referenceChosen, [Float32Array, Float64Array]);
    const b = requireArray<Floats>(fn, 'referenceRejected', inp.referenceRejected, [Float32Array, Float64Array]);
    if (a.length !== B) throw new ShapeMismatchError(`${fn}: referenceChosen has ${a.length} elements, expected ${B}`);
    if (b.length !== B)
      throw new ShapeMismatchError(`${fn}: referenceRejected has ${b.length} elements, expected ${B}`);
    rc = toF64(a);
    rr = toF64(b);
  }
  const opts = resolveDpoOptions(fn, dpoOptions, B);
  const need = countsNeeded(opts.lossTypes);
  let ct: Int32Array | undefined;
  let rt: Int32Array | undefined;
  if (inp.chosenTokens !== undefined) ct = requireCounts(fn, 'chosenTokens', inp.chosenTokens, B);
  else if (need.chosen)
    throw new InvalidTypeError(
      `${fn}: chosenTokens (Int32Array of completion-token counts) is required by loss type '${need.by}'`,
    );
  if (inp.rejectedTokens !== undefined) rt = requireCounts(fn, 'rejectedTokens', inp.rejectedTokens, B);
  else if (need.rejected)
    throw new InvalidTypeError(
      `${fn}: rejectedTokens (Int32Array of completion-token counts) is required by loss type '${need.by}'`,
    );

  const out = allocDpoOutputs(B);
  loadNative().dpoLoss({
    policyChosen: toF64(pc),
    policyRejected: toF64(pr),
    referenceChosen: rc,
    referenceRejected: rr,
    chosenTokens: ct,
    rejectedTokens: rt,
    weights: opts.weights,
    ...opts.native,
    ...out,
  });
  return wrapDpoResult(out);
}

// ------------------------------------------------------------------------------ fused from logits

/** Options of {@link dpoLossFromLogits}: how to read the logits (as scoreLogprobs), the DPO options, the references. */
export interface DpoFromLogitsOptions extends LogprobsInputOptions, DpoLossOptions {
  /** Precomputed reference log-probs (B each, pair order); required unless `referenceFree`. */
  referenceChosen?: Floats;
  referenceRejected?: Floats;
  /** Reference log-probs taken as 0. Default false. */
  referenceFree?: boolean;
  /** Compute d(loss)/d(logits) (the second pass). Default true. */
  gradient?: boolean;
  /** Write the gradient over the logits (the result's `gradient` is then the logits array). Default false. */
  inPlace?: boolean;
}

/** TRL's logged metrics that need the logits. */
export interface DpoLogitMetrics {
  /** Mean raw logit over the chosen completion tokens (TRL logits/chosen); 0 when there are none. */
  logitsChosen: number;
  /** Same over the rejected completion tokens (TRL logits/rejected). */
  logitsRejected: number;
  /** Mean token entropy over every completion token of the 2B sequences (TRL entropy). */
  entropy: number;
  /** Share of chosen completion tokens whose argmax is the label (TRL mean_token_accuracy). */
  tokenAccuracy: number;
  /** Completion tokens counted, chosen and rejected. */
  chosenTokens: number;
  rejectedTokens: number;
}

export interface DpoFromLogitsResult extends DpoLossResult {
  /** Policy log-probs (sums over completion tokens) of each pair's chosen / rejected sequence. */
  policyChosen: Float64Array;
  policyRejected: Float64Array;
  /** Completion-token counts per sequence (what ipo / sigmoid_norm / sft normalise by). */
  chosenTokens: Int32Array;
  rejectedTokens: Int32Array;
  /** d(loss)/d(logits), the logits' shape and type (the logits array itself with inPlace); absent with gradient: false. */
  gradient?: Float32Array | Uint16Array;
  metrics: DpoLogitMetrics;
}

const LOGPROBS_INPUT_KEYS = ['dtype', 'shape', 'offsets', 'shift', 'ignoreIndex', 'mask', 'temperature'] as const;
const FUSED_KEYS = [
  ...LOGPROBS_INPUT_KEYS,
  'device',
  ...OPTION_KEYS,
  'referenceChosen',
  'referenceRejected',
  'referenceFree',
  'gradient',
  'inPlace',
] as const;

/** {@link DpoFromLogitsOptions} of DeviceTensor logits: mask a u8 DeviceTensor; offsets host or device. */
export interface DpoFromLogitsDeviceOptions
  extends Omit<DpoFromLogitsOptions, 'mask' | 'offsets'>, LogprobsDeviceInputOptions {}

/** {@link DpoFromLogitsResult} of DeviceTensor logits: host values, the gradient a DeviceTensor. */
export type DpoFromLogitsDeviceResult = Omit<DpoFromLogitsResult, 'gradient'> & {
  /** The logits' shape and dtype (the logits tensor itself with inPlace); absent with gradient: false. */
  gradient?: DeviceTensor;
};

interface PreparedFused {
  call: NativeLogprobsCall;
  args: NativeDpoArgs;
  out: NativeDpoFusedOut;
  pairs: ReturnType<typeof allocDpoOutputs>;
}

/** The pair-level part of a fused call (references, options, host outputs), validated; B = nSeq / 2. */
function prepareFusedPairs(fn: string, o: DpoFromLogitsOptions | DpoFromLogitsDeviceOptions, nSeq: number) {
  if (nSeq < 2 || nSeq % 2 !== 0)
    throw new ShapeMismatchError(
      `${fn}: the logits must hold 2B sequences ([chosen; rejected], B >= 1), got ${nSeq} sequence(s)`,
    );
  const B = nSeq / 2;
  const refFree = o.referenceFree === undefined ? false : o.referenceFree;
  if (typeof refFree !== 'boolean')
    throw new InvalidTypeError(`${fn}: referenceFree must be a boolean, got ${describe(refFree)}`);
  let rc: Float64Array | undefined;
  let rr: Float64Array | undefined;
  if (!refFree) {
    if (o.referenceChosen === undefined || o.referenceRejected === undefined)
      throw new InvalidTypeError(
        `${fn}: referenceChosen and referenceRejected (precomputed reference log-probs) are required (or pass referenceFree: true)`,
      );
    const a = requireArray<Floats>(fn, 'referenceChosen', o.referenceChosen, [Float32Array, Float64Array]);
    const b = requireArray<Floats>(fn, 'referenceRejected', o.referenceRejected, [Float32Array, Float64Array]);
    if (a.length !== B)
      throw new ShapeMismatchError(`${fn}: referenceChosen has ${a.length} elements, expected B = ${B} (nSeq / 2)`);
    if (b.length !== B)
      throw new ShapeMismatchError(`${fn}: referenceRejected has ${b.length} elements, expected B = ${B} (nSeq / 2)`);
    rc = toF64(a);
    rr = toF64(b);
  }
  const dpoOpts: DpoLossOptions = {};
  for (const k of OPTION_KEYS) if (o[k] !== undefined) (dpoOpts as Record<string, unknown>)[k] = o[k];
  const opts = resolveDpoOptions(fn, dpoOpts, B);
  const wantGrad = o.gradient === undefined ? true : o.gradient;
  if (typeof wantGrad !== 'boolean')
    throw new InvalidTypeError(`${fn}: gradient must be a boolean, got ${describe(wantGrad)}`);
  const inPlace = o.inPlace === undefined ? false : o.inPlace;
  if (typeof inPlace !== 'boolean')
    throw new InvalidTypeError(`${fn}: inPlace must be a boolean, got ${describe(inPlace)}`);
  if (inPlace && !wantGrad) throw new InvalidValueError(`${fn}: inPlace needs gradient: true`);
  const pairs = allocDpoOutputs(B);
  const args: NativeDpoArgs = {
    referenceChosen: rc,
    referenceRejected: rr,
    weights: opts.weights,
    ...opts.native,
    ...pairs,
  };
  const out = {
    policyChosen: new Float64Array(B).fill(NaN),
    policyRejected: new Float64Array(B).fill(NaN),
    chosenTokens: new Int32Array(B).fill(-1),
    rejectedTokens: new Int32Array(B).fill(-1),
    metrics: new Float64Array(6).fill(NaN),
  };
  return { args, out, pairs, wantGrad, inPlace };
}

function lpInputOptions(o: Record<string, unknown>): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const k of LOGPROBS_INPUT_KEYS) if (o[k] !== undefined) r[k] = o[k];
  return r;
}

function prepareFused(fn: string, logits: unknown, labels: unknown, o: DpoFromLogitsOptions): PreparedFused {
  // Shared normalization of the logits / labels / grouping with scoreLogprobs (validated, typed errors).
  const p = prepareLogprobsCall(fn, logits, labels, {
    ...(lpInputOptions(o as Record<string, unknown>) as LogprobsInputOptions),
    mode: 'forward',
  });
  const { args, out, pairs, wantGrad, inPlace } = prepareFusedPairs(fn, o, p.nSeq);
  const data = p.call.logits;
  const gradOut = !wantGrad
    ? null
    : inPlace
      ? data
      : data instanceof Float32Array
        ? new Float32Array(data.length)
        : new Uint16Array(data.length);
  // The fused core keeps its own O(N) scratch: drop the forward outputs the logprobs call allocated.
  const call: NativeLogprobsCall = {
    ...p.call,
    tokenLogp: null,
    tokenEntropy: null,
    tokenCorrect: null,
    tokenLse: null,
    seqSum: null,
    seqCount: null,
    seqMean: null,
    seqLogitSum: null,
  };
  return { call, args, out: { gradOut, ...out }, pairs } satisfies PreparedFused;
}

interface PreparedFusedDevice {
  lp: PreparedDeviceLogprobs;
  args: NativeDpoArgs;
  out: Omit<NativeDpoFusedOut, 'gradOut'> & { gradOut: DeviceTensor | null };
  pairs: ReturnType<typeof allocDpoOutputs>;
}

/** The device twin of prepareFused: every check first, then the gradient (and uploaded offsets) allocated. */
function prepareFusedDevice(
  fn: string,
  logits: unknown,
  labels: unknown,
  o: DpoFromLogitsDeviceOptions,
): PreparedFusedDevice {
  // Validates the logits / labels / mask / offsets, then (beforeAlloc) the pair part, then uploads
  // default or host offsets; no forward outputs (the fused core keeps its own scratch).
  let pairPart: ReturnType<typeof prepareFusedPairs> | undefined;
  const lp = prepareDeviceLogprobsCall(
    fn,
    logits,
    labels,
    lpInputOptions(o as Record<string, unknown>) as LogprobsDeviceInputOptions,
    'forward',
    false,
    (nSeq) => {
      pairPart = prepareFusedPairs(fn, o, nSeq);
    },
  );
  const { args, out, pairs, wantGrad, inPlace } = pairPart!;
  let gradOut: DeviceTensor | null = null;
  if (wantGrad) {
    if (inPlace) gradOut = lp.call.logits;
    else {
      try {
        gradOut = DeviceTensor.empty(lp.shape, lp.dtype, { device: lp.call.logits.device });
      } catch (e) {
        for (const t of lp.temps) t.dispose();
        throw e;
      }
      lp.fresh.push(gradOut);
    }
  }
  return { lp, args, out: { gradOut, ...out }, pairs };
}

function fusedResult(p: PreparedFused | PreparedFusedDevice): DpoFromLogitsResult & DpoFromLogitsDeviceResult {
  const m = p.out.metrics;
  const r = {
    ...wrapDpoResult(p.pairs),
    policyChosen: p.out.policyChosen,
    policyRejected: p.out.policyRejected,
    chosenTokens: p.out.chosenTokens,
    rejectedTokens: p.out.rejectedTokens,
    metrics: {
      logitsChosen: m[0],
      logitsRejected: m[1],
      entropy: m[2],
      tokenAccuracy: m[3],
      chosenTokens: m[4],
      rejectedTokens: m[5],
    },
  } as DpoFromLogitsResult & DpoFromLogitsDeviceResult;
  if (p.out.gradOut) (r as { gradient?: unknown }).gradient = p.out.gradOut;
  return r;
}

type FusedPlan = { where: 'cpu'; plan: PreparedFused } | { where: 'cuda'; plan: PreparedFusedDevice };

function planFused(fn: string, logits: unknown, labels: unknown, options: unknown): FusedPlan {
  const o = checkOptions(fn, options as DpoFromLogitsOptions | undefined, FUSED_KEYS);
  const dataOf = logits !== null && typeof logits === 'object' ? (logits as { data?: unknown }).data : undefined;
  const where = routeKernelDevice(fn, 'dpo.fromLogits', o.device, [logits, labels, o.mask, o.offsets, dataOf], 'wired');
  if (where === 'cuda') return { where, plan: prepareFusedDevice(fn, logits, labels, o as DpoFromLogitsDeviceOptions) };
  return { where, plan: prepareFused(fn, logits, labels, o) };
}

function runFusedDevice<T>(p: PreparedFusedDevice, isAsync: boolean): T | Promise<T> {
  const c = p.lp.call;
  return runDeviceLogprobs(
    p.lp,
    () => cudaDpoFromLogits(c, p.args, p.out),
    () => cudaDpoFromLogitsAsync(c, p.args, p.out),
    () => fusedResult(p) as T,
    isAsync,
  );
}

/**
 * DPO straight from the policy's logits, fused: logits of the concatenated batch [chosen; rejected]
 * (2B sequences, laid out as scoreLogprobs takes them: `shape` [2B, T, V] or `offsets`; any of f32 /
 * bf16 / f16), labels, and precomputed reference log-probs → everything dpoLoss returns, the policy
 * log-probs and counts, TRL's logit metrics and d(loss)/d(logits), in two passes over the logits
 * (pass 1: log-probs and LSE; pass 2: the gradient from the kept LSE). DeviceTensor logits (with
 * `device: 'cuda'`) run both passes on the GPU: labels and mask are DeviceTensors too, the results
 * host values as here except the gradient, a DeviceTensor (see the top of this file).
 *
 * @example
 * const r = dpoLossFromLogits(logits, labels, {
 *   shape: [2 * B, T, V], shift: true, referenceChosen, referenceRejected, beta: 0.1,
 *   lossType: ['sigmoid', 'sft'], lossWeights: [1, 1],
 * });
 * r.loss; r.gradient; r.metrics.tokenAccuracy;
 */
export function dpoLossFromLogits(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options?: DpoFromLogitsDeviceOptions,
): DpoFromLogitsDeviceResult;
export function dpoLossFromLogits(
  logits: LogitsInput,
  labels: Int32Array,
  options?: DpoFromLogitsOptions,
): DpoFromLogitsResult;
export function dpoLossFromLogits(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  options?: DpoFromLogitsOptions | DpoFromLogitsDeviceOptions,
): DpoFromLogitsResult | DpoFromLogitsDeviceResult {
  const fn = 'dpoLossFromLogits';
  const p = planFused(fn, logits, labels, options);
  if (p.where === 'cuda') return runFusedDevice<DpoFromLogitsDeviceResult>(p.plan, false) as DpoFromLogitsDeviceResult;
  assertIsaUsable();
  loadNative().dpoFromLogits(p.plan.call, p.plan.args, p.plan.out);
  return fusedResult(p.plan);
}

/** {@link dpoLossFromLogits} off the main thread; keeps its inputs alive until the Promise settles. */
export async function dpoLossFromLogitsAsync(
  logits: DeviceLogitsInput,
  labels: DeviceTensor,
  options?: DpoFromLogitsDeviceOptions,
): Promise<DpoFromLogitsDeviceResult>;
export async function dpoLossFromLogitsAsync(
  logits: LogitsInput,
  labels: Int32Array,
  options?: DpoFromLogitsOptions,
): Promise<DpoFromLogitsResult>;
export async function dpoLossFromLogitsAsync(
  logits: LogitsInput | DeviceLogitsInput,
  labels: Int32Array | DeviceTensor,
  options?: DpoFromLogitsOptions | DpoFromLogitsDeviceOptions,
): Promise<DpoFromLogitsResult | DpoFromLogitsDeviceResult> {
  const fn = 'dpoLossFromLogitsAsync';
  const p = planFused(fn, logits, labels, options);
  if (p.where === 'cuda') return runFusedDevice<DpoFromLogitsDeviceResult>(p.plan, true);
  assertIsaUsable();
  await loadNative().dpoFromLogitsAsync(p.plan.call, p.plan.args, p.plan.out);
  return fusedResult(p.plan);
}
