// One training run from files: load the model, read and tokenize the SFT data, run the loop with
// checkpoints and a JSON-lines log, and write the adapter (LoRA) or the model (full). Used by
// `msr-rec train`.
import { existsSync } from "node:fs";
import { loadModel } from "../engine/model.js";
import { openTrainer, type Trainer } from "../engine/trainer.js";
import { runTrainingLoop, stepsPerEpoch, type StepLog } from "./loop.js";
import { readSftJsonl } from "./sft-data.js";
import { modelSampleTokenizer, tokenizeSamples } from "./samples.js";
import { checkTrainRunOptions, trainerOptionsFor, type TrainRunOptions } from "./options.js";

export async function runTraining(o: TrainRunOptions): Promise<{ logs: StepLog[]; out: string }> {
  // Checked before the model loads: a bad option fails in milliseconds, not after the load.
  checkTrainRunOptions(o);
  if (!existsSync(o.model)) throw new Error(`--model: no model file at ${o.model}`);
  const records = readSftJsonl(o.data);
  const device = o.device ?? "auto";
  // Offloading every layer is a no-op without a GPU backend, so "auto" trains on the CPU there.
  // repack: false: the trainer uses quantized weights in place instead of copying repacked ones.
  const model = await loadModel(o.model, {
    ...(o.threads ? { threads: o.threads } : {}),
    gpuLayers: device === "cpu" ? 0 : 999,
    repack: false,
  });
  const totalSteps = o.epochs * stepsPerEpoch(records.length, o.batchSize);
  let trainer: Trainer;
  try {
    // Built off the JS thread: a progress bar or a host application keeps running meanwhile.
    trainer = await openTrainer(model, {
      ...trainerOptionsFor(o, totalSteps),
      device,
      ...(o.dequantize ? { dequantize: true } : {}),
    });
  } catch (e) {
    model.dispose();
    // The engine's refusal names the library option; say the command line's too.
    if (e instanceof Error && /dequantize: true/.test(e.message))
      throw new Error(`${e.message} (msr-rec train: --dequantize)`);
    throw e;
  }
  try {
    const samples = tokenizeSamples(modelSampleTokenizer(model), records);
    const save = (path: string) => (o.mode === "lora" ? trainer.saveAdapter(path) : trainer.saveModel(path));
    const logs = await runTrainingLoop(trainer, samples, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      seed: o.seed,
      alpha: o.alpha,
      beta: o.beta,
      logPath: o.logPath,
      checkpointPath: o.checkpointPath ?? `${o.out}.ckpt`,
      checkpointEvery: o.checkpointEvery,
      resume: o.resume,
      maxSteps: o.maxSteps,
      onStep: (l) => o.onStep?.(l, totalSteps),
      onEpochEnd: o.saveEachEpoch ? (e) => save(o.out.replace(/\.gguf$/i, "") + `.epoch${e + 1}.gguf`) : undefined,
    });
    await save(o.out);
    return { logs, out: o.out };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
