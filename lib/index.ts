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
  DeviceLogits,
  DeviceLogitsInput,
  LogprobsDeviceInputOptions,
  LogprobsDeviceUpstream,
  LogprobsOutput,
  ScoreLogprobsDeviceGradientOptions,
  ScoreLogprobsDeviceOptions,
  ScoreLogprobsDeviceResult,
  ScoreLogprobsHostOutputResult,
  LogprobsBackwardDeviceOptions,
  LogprobsBackwardDeviceResult,
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
  DpoFromLogitsDeviceOptions,
  DpoFromLogitsDeviceResult,
} from './kernels/dpo.js';

// --- similarity (lib/kernels/similarity.ts) ---
export {
  pairedCosine,
  clipScore,
  similarityMatrix,
  similarityMatrixAsync,
  topkSimilarity,
  topkSimilarityAsync,
  retrievalRanks,
  retrievalRanksAsync,
} from './kernels/similarity.js';
export type {
  Embeddings,
  EmbeddingsInput,
  PairedCosineOptions,
  SimilarityMatrixOptions,
  TopkSimilarityOptions,
  TopkSimilarityResult,
  RetrievalRanksOptions,
  RetrievalRanksResult,
  ClipScoreOptions,
  DeviceEmbeddings,
  DeviceEmbeddingsInput,
  DeviceTopkSimilarityResult,
  SimilarityMatrixDeviceOptions,
  SimilarityPrecision,
} from './kernels/similarity.js';

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
  Strategy,
  Pairing,
  LoopConfig,
  Rate,
  RoundMetrics,
  LoopEvent,
  RunOptions,
  RunResult,
  JudgedSample,
  PromptSamples,
  GuardUnderstanding,
  LabelledPair,
  FixedProbeItem,
} from './loop/types.js';
export { runSelfImprovement } from './loop/run.js';
export { DEFAULT_LOOP_CONFIG, resolveConfig as resolveLoopConfig } from './loop/config.js';
export { nonunifiedScore, acceptRate, externalMetrics, passRates, rate, wilson } from './loop/metrics.js';
export type { ExternalMetrics } from './loop/metrics.js';
export { buildSftSet, buildDpoPairs, discardPool, corruptJudgments } from './loop/data.js';
export type { SftExample, DpoPair } from './loop/data.js';
export { guardCheck } from './loop/guard.js';
export type { GuardObservation, GuardDecision } from './loop/guard.js';
export { ConfigMismatchError, CorruptStateError, AdapterError } from './loop/errors.js';

// --- world (lib/world) ---
export { WorldModel, DEFAULT_MODEL_CONFIG, SHARED_PARAMS, kernelCosine, localCosine } from './world/model.js';
export type { WorldModelConfig, ParamName, CosineFn } from './world/model.js';
export { SceneValidator, satisfies, satisfiesConstraint } from './world/validator.js';
export {
  CATEGORIES,
  RELATIONS,
  DEFAULT_SPLIT_SIZES,
  worldSplits,
  parsePrompt,
  promptText,
  semanticKey,
  singleObjectPrompts,
  pretrainOnlyPrompts,
} from './world/prompts.js';
export type { Category, Relation, Constraint, ObjectDesc, SplitSizes, WorldSplits } from './world/prompts.js';
export { GRID_SIZE, CELLS, COLORS, SHAPES, IMAGE_VOCAB_SIZE, sceneToTokens, tokensToScene } from './world/scene.js';
export type { SceneObject, Color, Shape } from './world/scene.js';
export { sampleScene, sampleNearMiss } from './world/sampler.js';
export { renderSvg } from './world/render.js';
export type { RenderOptions } from './world/render.js';
export {
  DEFAULT_PRETRAIN_CONFIG,
  WORLD_VERSION,
  pretrain,
  loadPretrainedModel,
  measureGap,
  measureJudge,
  defaultCacheDir,
} from './world/pretrain.js';
export type { PretrainConfig, LoadPretrainedOptions, GapMeasurement } from './world/pretrain.js';
export { runWorldJob, worldModel, WORLD_LOOP_DEFAULTS, WORLD_STRATEGIES } from './world/job.js';
export type { WorldJobOptions, WorldJobResult } from './world/job.js';
export { formatRoundTable, renderReportHtml, renderCompareHtml, lineChartSvg } from './world/report.js';
export type { WorldReport, SampleRow, ChartSeries, CompareEntry } from './world/report.js';

// --- device ---
export {
  DeviceTensor,
  cudaDpoFromLogits,
  cudaDpoFromLogitsAsync,
  cudaLogprobsRun,
  cudaLogprobsRunAsync,
  cudaStatus,
  getDefaultDevice,
  isDeviceTensor,
  resolveDevice,
  setDefaultDevice,
  verifiedCudaPaths,
  verifiedCudaComputeCapabilities,
} from './device.js';
export type {
  Device,
  DeviceArray,
  DeviceDtype,
  DeviceLogprobsCall,
  DeviceOption,
  DeviceTensorOptions,
  ResolvedDevice,
} from './device.js';
