/**
 * unigap: the public entry. Everything a user imports is exported here, explicitly.
 */
export { backendInfo, setIsa } from './backend.js';
export type { BackendInfo, IsaTier } from './backend.js';
export {
  UnigapError,
  NativeLoadError,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  UnsupportedIsaError,
  DeviceUnavailableError,
  NativeError,
} from './errors.js';
export type { UnigapErrorCode } from './errors.js';
export type { Dtype, FloatArray, TensorLike } from './validate.js';

// --- logprobs (lib/kernels/logprobs.ts) ---
export { scoreLogprobs, scoreLogprobsAsync, logprobsBackward, logprobsBackwardAsync } from './kernels/logprobs.js';
export type {
  LogprobsDtype,
  LogitsInput,
  LogprobsInputOptions,
  LogprobsUpstream,
  ScoreLogprobsOptions,
  ScoreLogprobsGradientOptions,
  ScoreLogprobsResult,
  LogprobsBackwardOptions,
  LogprobsBackwardResult,
} from './kernels/logprobs.js';

// --- dpo (lib/kernels/dpo.ts) ---
export { dpoLoss, dpoLossFromLogits, dpoLossFromLogitsAsync, DPO_LOSS_TYPES, F_DIVERGENCES } from './kernels/dpo.js';
export type {
  DpoInputs,
  DpoLossOptions,
  DpoLossResult,
  DpoLossType,
  FDivergence,
  DpoFromLogitsOptions,
  DpoFromLogitsResult,
  DpoLogitMetrics,
} from './kernels/dpo.js';

// --- similarity (lib/kernels/similarity.ts) ---

// --- loop (lib/loop) ---
export { DEFAULT_JUDGE_QUESTION } from './loop/types.js';
export type {
  Prompt,
  GeneratedImage,
  Judgment,
  GenerateOptions,
  TrainSequence,
  LogitsBatch,
  ModelState,
  UnifiedModel,
  ExternalJudge,
} from './loop/types.js';

// --- world (lib/world) ---
