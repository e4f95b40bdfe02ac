// The one place the pipeline opens the native engine: models load with the run's thread and GPU
// settings; adapters are handed to generate/score as the engine's LoRA choice lists.
import { loadModel, type LoadModelOptions, type LoraChoice, type Model } from "../engine/index.js";
import type { RunConfig } from "./config.js";
import type { InferenceEngine } from "./stages/infer.js";

export type EngineModel = Model;
export type LoraSelection = readonly LoraChoice[];

export async function openModel(path: string, c: RunConfig): Promise<Model> {
  const opts: LoadModelOptions = { gpuLayers: c.model.gpuLayers, repack: c.model.repack };
  if (c.model.threads !== undefined) opts.threads = c.model.threads;
  if (c.model.numerics !== "auto") opts.numerics = c.model.numerics;
  return loadModel(path, opts);
}

/** Loads an adapter and wraps it as the engine's LoRA selection (scale 1). */
export async function loadAdapter(model: Model, path: string): Promise<LoraSelection> {
  return [{ adapter: await model.loadLora(path), scale: 1 }];
}

/** The engine view inference uses, with adapters cached by path. */
export async function openInferenceEngine(
  c: RunConfig,
  modelPath: string,
): Promise<InferenceEngine<LoraSelection> & { threads: number; dispose(): void }> {
  const model = await openModel(modelPath, c);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  const adapters = new Map<string, LoraSelection>();
  return {
    generate: (prompts, opts) => model.generate(prompts, { ...opts, parallel: c.infer.batchSize }),
    threads: model.info.threads,
    scorer,
    tokenize: (text, o) => model.tokenize(text, o),
    detokenize: (tokens) => model.detokenize(tokens),
    adapter: async (path) => {
      let a = adapters.get(path);
      if (!a) adapters.set(path, (a = await loadAdapter(model, path)));
      return a;
    },
    dispose: () => {
      scorer.dispose();
      model.dispose();
    },
  };
}
