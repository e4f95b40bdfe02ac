// Kept so that existing imports (scripts/candidate-likelihood.mjs, older callers) keep working:
// the model half of a run now lives in one file per job.
export { baseModelPath, baseStage, catalogLine, itemSentence, pretrainCorpus } from "./stage-base.js";
export { trainStage } from "./stage-train.js";
export { openInferenceEngine } from "./engine.js";
export { reasoningQuality } from "./stage-quality.js";
