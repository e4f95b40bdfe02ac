export {
  loadModel,
  Model,
  type LoadModelOptions,
  type ModelInfo,
  type GenerateOptions,
  type GenerateResult,
  type GenerateProfile,
} from "./model.js";
export {
  Scorer,
  type ScoreRequest,
  type ScoreResult,
  type ScoreOptions,
  type ScoreProfile,
  type ScorerOptions,
} from "./scorer.js";
export { LoraAdapter, type LoraChoice } from "./lora.js";
export { addonPath, type NativeNumerics as Numerics } from "./bindings.js";
export {
  Trainer,
  createTrainer,
  openTrainer,
  DEFAULT_LORA_TARGETS,
  type TrainerOptions,
  type StepOptions,
  type StepResult,
  type EvalResult,
  type LoraTarget,
  type TrainProfile,
  type PolicyEvalResult,
  type PolicyStepResult,
} from "./trainer.js";
export {
  groupAdvantages,
  completionTokenCount,
  type PolicySample,
  type PolicyEvalSample,
  type PolicyOptions,
  type PolicyLossType,
} from "./policy.js";
