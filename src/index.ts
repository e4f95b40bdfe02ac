// msr-rec public API.
export * from "./engine/index.js";
// Prompts, teachers and reasoning synthesis.
export {
  fillTemplate,
  formatTitleList,
  formatTrainingTarget,
  formatBehaviorTarget,
  splitTarget,
  REASONING_START,
  REASONING_END,
  type PromptContext,
} from "./prompts/build.js";
export {
  loadTemplates,
  loadTallrecTemplate,
  PROMPT_KINDS,
  type PromptKind,
  type PromptTemplates,
} from "./prompts/templates.js";
export {
  readPreparedDataset,
  sampleFor,
  samplesFor,
  contextFor,
  trainPositions,
  type PreparedDataset,
  type PromptSample,
  type Split,
} from "./prompts/dataset.js";
export { PromptPool, buildPromptsParallel } from "./prompts/pool.js";
export {
  OpenAIChatClient,
  OpenAITeacher,
  ChatRequestError,
  type EndpointConfig,
  type ChatResult,
} from "./teacher/openai.js";
export { RulesTeacher } from "./teacher/rules.js";
export { AnswerStore, type StoredAnswer } from "./teacher/store.js";
export {
  synthesize,
  mergeShards,
  parseShard,
  type ReasoningRecord,
  type SynthesisStats,
  type SynthesisJob,
} from "./teacher/synthesize.js";
// Splitting work over scheduler tasks: shard folders checked by fingerprint, the CPUs a process may use.
export { ShardFolders, type ShardMarker } from "./util/shard-folders.js";
export {
  fingerprint,
  fileDigest,
  describeChange,
  type Fingerprint,
  type FingerprintInputs,
} from "./util/fingerprint.js";
export {
  parseShardSpec,
  resolveSchedulerShard,
  type Shard,
  type ShardSpec,
  type ArrayLayout,
} from "./util/scheduler-shard.js";
export { allowedCpus, cpuLimits, describeCpus, type CpuLimits } from "./util/cpus.js";
export { prunePath, parseChain } from "./teacher/prune.js";
export type { Teacher, TeacherAnswer, TeacherRequest } from "./teacher/types.js";
// Metrics.
export { matchTitle, matchTitleStrict, type TitleMatch } from "./eval/title-match.js";
export { recommendationMetrics, type RecommendationMetrics, type RecommendationOutcome } from "./eval/metrics.js";
export { meteorScore, singleMeteorScore, meteorText, meteorTokens } from "./eval/meteor.js";
export { porterStem } from "./eval/porter.js";
export { bertScore, bertScoreFromVectors, type BertScore, type TokenEmbedder } from "./eval/bertscore.js";
export { gptScore, GPTSCORE_ASPECTS, type ContinuationScorer, type GptScoreAspect } from "./eval/gptscore.js";
// Data: readers, the METHOD §1 protocol, prepared-dataset folders, the synthetic catalog, baselines.
export type { Item, Interaction, UserSplit, DatasetStats, RawDataset, ReadOptions } from "./data/types.js";
export { Rng, hashString } from "./util/random.js";
export {
  applyProtocol,
  kcoreFilter,
  userSequences,
  recentHistory,
  HISTORY_LENGTH,
  DEFAULT_KCORE,
  DEFAULT_USERS,
  DEFAULT_CANDIDATES,
  DEFAULT_SEED,
  type ProtocolOptions,
  type PreparedData,
} from "./data/protocol.js";
export {
  readDataset,
  readDatasetSync,
  writeDataset,
  formatStatsTable,
  type Dataset,
  type DatasetFileStats,
} from "./data/dataset.js";
export { readSource, SOURCE_FORMATS, type SourceFormat } from "./data/read.js";
export { parsePythonLiteral, type PyValue } from "./data/formats/python-literal.js";
export { generateSynthetic, prepareSynthetic, type SyntheticOptions } from "./data/synthetic.js";
export { exportRecbole } from "./data/export-recbole.js";
export {
  BASELINES,
  buildBaseline,
  evaluateBaseline,
  type BaselineName,
  type BaselineResult,
} from "./eval/baselines.js";
// Training: samples, schedules, the loop and one-call runs (the Trainer itself is in ./engine).
export {
  tokenizeSample,
  tokenizeSamples,
  modelSampleTokenizer,
  type SftRecord,
  type TrainSample,
} from "./train/samples.js";
export { toNativeBatch, Segment, type TokenizedSample } from "./engine/train-batch.js";
export { learningRate, type ScheduleKind, type ScheduleOptions } from "./engine/schedule.js";
export { runTrainingLoop, epochOrder, stepsPerEpoch, type TrainLoopOptions, type StepLog } from "./train/loop.js";
export { runTraining } from "./train/run.js";
export { TRAIN_DEFAULTS, type TrainRunOptions } from "./train/options.js";
export { parseSftJsonl, readSftJsonl } from "./train/sft-data.js";
export { loadAdapterWeights } from "./train/adapter-weights.js";
// Pipeline: run config, stages, bidirectional inference with PPL fusion, report.
export {
  RunConfigSchema,
  PRESETS,
  parseRunConfig,
  presetConfig,
  loadRunConfig,
  trainVariants,
  type RunConfig,
  type RunConfigInput,
  type PresetName,
} from "./pipeline/config.js";
export { runPipeline, type RunOptions, type RunSummary } from "./pipeline/run.js";
export { STAGES, type StageName } from "./pipeline/stages.js";
export {
  renderResultsMarkdown,
  renderResultsTable,
  type MetricsFile,
  type MetricsRow,
  type PredictionRecord,
} from "./run/results.js";
export {
  fuseByPerplexity,
  fuseEq3,
  perplexityFromLogprobs,
  type FusionDecision,
  type SideOutcome,
} from "./infer/fusion.js";
export { inferBidirectional, type InferenceCase, type BidirectionalResult } from "./infer/bidirectional.js";
export { parseOutput, candidateGrammar } from "./infer/parse.js";
export { renderReport, writeReport, collectReportData, type ReportData } from "./report/index.js";
