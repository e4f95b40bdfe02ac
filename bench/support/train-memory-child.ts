// One measurement of the train-memory suite in its own process, so that peak RSS (VmHWM) belongs
// to it alone: load the model, train LoRA (rank 8, all seven targets) for `steps` steps on one
// batch, then score the same tokens. Prints one JSON line: RSS after loading and after creating
// the trainer, peak RSS, the trainer's weight copies, mapped weights, cached transposes and compute
// buffer (the micro-batch's activations), and the times. Args: model path, repack (0|1), samples,
// tokens per sample, steps, threads, and optionally gpu layers: with gpu layers > 0 the model is
// offloaded, the trainer runs on the GPU, and nvidia-smi is polled every 50 ms while the model is
// loaded and trained: the peak of the device's used memory, minus its use before the load, is
// the process's peak GPU memory (the device must be otherwise idle).
import { readFileSync } from "node:fs";
import { native } from "../../src/engine/bindings.js";
import { createTrainer } from "../../src/engine/trainer.js";
import { pollGpuMemory } from "./nvidia-smi.js";
import { randomTrainSamples } from "./samples.js";

const kib = (key: string) =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

const [path, repack, nSamples, len, steps, threads, gpuLayersArg] = process.argv.slice(2);
const gpuLayers = Number(gpuLayersArg ?? 0);

const poll = gpuLayers > 0 ? pollGpuMemory() : null;
// The first samples are the device before the load (the poller starts before the model does).
await new Promise((r) => setTimeout(r, poll ? 300 : 0));
const model = await native().loadModel(path!, { threads: Number(threads), repack: repack === "1", gpuLayers });
const rssLoaded = kib("VmRSS");
const data = randomTrainSamples(Number(nSamples), Number(len), Math.min(model.info().vocabSize, 100000));
const tokens = data.reduce((a, s) => a + s.tokens.length, 0);
const trainer = createTrainer(model, {
  lora: { rank: 8, alpha: 32 },
  microBatchTokens: 512,
  optimizer: { lr: 1e-4 },
  device: gpuLayers > 0 ? "gpu" : "cpu",
});
const rssTrainer = kib("VmRSS");
const times: number[] = [];
for (let i = 0; i < Number(steps); i++) {
  const t0 = performance.now();
  await trainer.step(data);
  times.push(performance.now() - t0);
}
const peakTrain = kib("VmHWM");
const gpuSamples = poll ? await poll.stop() : [];
const info = trainer.info;
trainer.dispose();
// Scoring the same tokens (prompt = first half), after the peak was read: its KV cache is not training's.
const scorer = new (native().Scorer)(model, {
  contextSize: Math.max(256, Number(len) * 2),
  sequences: Math.min(8, Number(nSamples)),
});
const reqs = data.map((d) => ({
  prompt: d.tokens.slice(0, Number(len) / 2),
  continuation: d.tokens.slice(Number(len) / 2),
}));
await scorer.score(reqs);
const t0 = performance.now();
await scorer.score(reqs);
const scoreMs = performance.now() - t0;
scorer.dispose();
model.dispose();
const trainMs = times.length > 1 ? Math.min(...times.slice(1)) : times[0]!;
process.stdout.write(
  JSON.stringify({
    rssLoaded,
    rssTrainer,
    peakTrain,
    weightCopyBytes: info.weightCopyBytes,
    mappedWeightBytes: info.mappedWeightBytes,
    transposeBytes: info.transposeBytes,
    computeBytes: info.computeBytes,
    device: info.device,
    deviceName: info.deviceName,
    gpuBeforeMiB: gpuSamples.length > 0 ? gpuSamples[0]! : null,
    gpuPeakMiB: gpuSamples.length > 0 ? Math.max(...gpuSamples) : null,
    tokens,
    trainMs,
    scoreMs,
  }) + "\n",
);
