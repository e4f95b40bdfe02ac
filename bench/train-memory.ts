// Memory and speed of LoRA training on real-shaped checkpoints (issue: train the models people
// bring within their memory). For F16, Q8_0 and Q4_0 versions of a Llama-3.2-1B-shaped model
// (random weights, init-model's llama3-1b preset; MSR_REC_BENCH_MEMORY_PRESET picks another):
// peak RSS of a process that loads the model and trains LoRA (rank 8, all targets) against the
// model file's size, and training tokens/s beside scoring tokens/s of the same tokens. Loaded with
// repack: false (weights used in place); Q4_0 also with llama.cpp's default CPU repacking (the
// trainer reads the repacked weights' stored bytes from llama.cpp's mapping of the file; the
// process also holds llama.cpp's repacked copy). Plus the `train` suite's ratio (small preset,
// 8 × 128 tokens) on F32 and Q4_0 bases. Each measurement runs in its own process.
// Goal: peak <= 1.25 × file + the micro-batch's activations; training/scoring >= 0.25.
// Activations: the trainer's compute buffer (trainer.info.computeBytes, ggml's allocation for the
// forward + backward graph of the micro-batch: the forward's tensors the backward reads, the
// logits and dLoss/dlogits rows, the backward's temporaries), which grows with the micro-batch's
// tokens; everything else (Node, the model and its vocabulary, the LoRA parameters, gradients and
// AdamW moments) counts against the 1.25 × file.
// The train-memory-gpu suite (a machine with an NVIDIA GPU and the CUDA addon): LoRA training on the GPU of a
// Llama-3-8B-shaped model (MSR_REC_BENCH_MEMORY_GPU_PRESET, MSR_REC_BENCH_MEMORY_GPU_TYPES, default
// Q4_0,F16; 4 samples of MSR_REC_BENCH_MEMORY_GPU_TOKENS, default 256): the peak of the device's
// used memory over the run (nvidia-smi, every 50 ms) against 24 GiB (goal: Q4_0 fits), and
// training tokens/s beside GPU scoring tokens/s of the same tokens.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { native } from "../src/engine/bindings.js";
import { MODEL_GENERATOR_VERSION, defaultVocab, initModel, type ModelPreset } from "../src/gguf/init-model.js";
import { packageRoot } from "../src/util/paths.js";
import { newResult, type BenchResult } from "./lib.js";
import { nvidiaGpuVisible } from "./support/nvidia-smi.js";

const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const child = fileURLToPath(new URL(`./support/train-memory-child${ext}`, import.meta.url));
const threads = Number(process.env.MSR_REC_BENCH_THREADS ?? 2);

/** The preset in F16 (written by init-model) and quantized from that file by llama.cpp's quantizer. */
export async function modelPath(preset: ModelPreset, type: "F32" | "F16" | "Q8_0" | "Q4_0"): Promise<string> {
  const dir = join(packageRoot, ".cache", "bench-models");
  mkdirSync(dir, { recursive: true });
  const path = (t: string) => join(dir, `${preset}-${t.toLowerCase()}-v${MODEL_GENERATOR_VERSION}.gguf`);
  const float = type === "F32" ? "F32" : "F16";
  if (!existsSync(path(float))) initModel({ preset, vocab: defaultVocab(preset), seed: 1, out: path(float), weightType: float });
  if (type !== float && !existsSync(path(type))) {
    const tmp = `${path(type)}.tmp-${process.pid}`;
    await native().quantizeModel(path(float), tmp, type, { threads });
    renameSync(tmp, path(type));
  }
  return path(type);
}

interface ChildResult {
  rssLoaded: number;
  rssTrainer: number;
  peakTrain: number;
  weightCopyBytes: number;
  mappedWeightBytes: number;
  transposeBytes: number;
  computeBytes: number;
  device: string;
  deviceName: string;
  gpuBeforeMiB: number | null;
  gpuPeakMiB: number | null;
  tokens: number;
  trainMs: number;
  scoreMs: number;
}

function measure(path: string, repack: boolean, samples: number, len: number, steps: number, gpuLayers = 0): ChildResult {
  const r = spawnSync(process.execPath, [child, path, repack ? "1" : "0", String(samples), String(len), String(steps), String(threads), String(gpuLayers)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`train-memory child failed on ${path} (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult;
}

/** A CUDA addon and a GPU that nvidia-smi sees: the GPU section runs. */
function hasGpu(): boolean {
  return /CUDA/.test(native().systemInfo()) && nvidiaGpuVisible();
}

/** LoRA training of the GPU preset with every layer offloaded: peak device memory and tokens/s (the train-memory-gpu suite). */
export async function gpuSection(res: BenchResult): Promise<void> {
  if (!hasGpu()) {
    res.results.push({ name: "GPU section skipped: no CUDA addon or no NVIDIA GPU", value: 0, unit: "n/a" });
    return;
  }
  const preset = (process.env.MSR_REC_BENCH_MEMORY_GPU_PRESET ?? "llama3-8b") as ModelPreset;
  const types = (process.env.MSR_REC_BENCH_MEMORY_GPU_TYPES ?? "Q4_0,F16").split(",").map((t) => t.trim().toUpperCase()) as ("F16" | "Q8_0" | "Q4_0")[];
  const len = Number(process.env.MSR_REC_BENCH_MEMORY_GPU_TOKENS ?? 256);
  const budgetMiB = 24 * 1024;
  for (const type of types) {
    const path = await modelPath(preset, type);
    const m = measure(path, false, 4, len, 3, 999);
    const tag = `${preset} ${type} on the GPU`;
    if (!res.machine.startsWith(m.deviceName)) res.machine = `${m.deviceName}; ${res.machine}`;
    res.results.push(
      { name: `${tag}: model file`, value: statSync(path).size / 2 ** 20, unit: "MiB" },
      { name: `${tag}: trainer device`, value: m.device === "gpu" ? 1 : 0, unit: m.device },
      { name: `${tag}: compute buffer (activations)`, value: m.computeBytes / 2 ** 20, unit: "MiB" },
      { name: `${tag}: LoRA training (4 x ${len} tokens)`, value: m.tokens / (m.trainMs / 1000), unit: "tokens/s" },
      { name: `${tag}: scoring (same tokens)`, value: m.tokens / (m.scoreMs / 1000), unit: "tokens/s" },
    );
    res.ratios[`${tag}: training/scoring throughput`] = m.scoreMs / m.trainMs;
    if (m.gpuPeakMiB !== null && m.gpuBeforeMiB !== null) {
      const used = m.gpuPeakMiB - m.gpuBeforeMiB;
      res.results.push({ name: `${tag}: peak GPU memory of the process (device peak minus use before the load)`, value: used, unit: "MiB" });
      res.ratios[`${tag}: peak GPU memory / 24 GiB`] = used / budgetMiB;
    } else {
      res.results.push({ name: `${tag}: nvidia-smi gave no memory samples`, value: 0, unit: "n/a" });
    }
  }
}

export async function run(): Promise<BenchResult> {
  const res = newResult("train-memory");
  const mib = (b: number) => b / 2 ** 20;
  const preset = (process.env.MSR_REC_BENCH_MEMORY_PRESET ?? "llama3-1b") as ModelPreset;
  const len = Number(process.env.MSR_REC_BENCH_MEMORY_TOKENS ?? 64);
  const cases: ["F16" | "Q8_0" | "Q4_0", boolean][] = [["F16", false], ["Q8_0", false], ["Q4_0", false], ["Q4_0", true]];
  for (const [type, repack] of cases) {
    const path = await modelPath(preset, type);
    const file = statSync(path).size;
    const m = measure(path, repack, 1, len, 2);
    const tag = `${preset} ${type}${repack ? " (repacked load)" : ""}`;
    res.results.push(
      { name: `${tag} model file`, value: mib(file), unit: "MiB" },
      { name: `${tag} RSS after load`, value: mib(m.rssLoaded), unit: "MiB" },
      { name: `${tag} peak RSS, LoRA training`, value: mib(m.peakTrain), unit: "MiB" },
      { name: `${tag} RSS with the trainer built`, value: mib(m.rssTrainer), unit: "MiB" },
      { name: `${tag} compute buffer (activations)`, value: mib(m.computeBytes), unit: "MiB" },
      { name: `${tag} peak RSS minus the compute buffer`, value: mib(m.peakTrain - m.computeBytes), unit: "MiB" },
      { name: `${tag} trainer's copies of repacked weights`, value: mib(m.weightCopyBytes), unit: "MiB" },
      { name: `${tag} repacked weights read from the file mapping`, value: mib(m.mappedWeightBytes), unit: "MiB" },
      { name: `${tag} cached transposes`, value: mib(m.transposeBytes), unit: "MiB" },
      { name: `${tag} LoRA training (${len} tokens)`, value: m.tokens / (m.trainMs / 1000), unit: "tokens/s" },
      { name: `${tag} scoring (same tokens)`, value: m.tokens / (m.scoreMs / 1000), unit: "tokens/s" },
    );
    res.ratios[`${tag} peak RSS / file size`] = m.peakTrain / file;
    res.ratios[`${tag} (peak RSS - activations) / file size`] = (m.peakTrain - m.computeBytes) / file;
    res.ratios[`${tag} training/scoring throughput`] = m.scoreMs / m.trainMs;
  }
  // The `train` suite's measurement on the small preset, F32 against a Q4_0 base.
  for (const type of ["F32", "Q4_0"] as const) {
    const m = measure(await modelPath("small", type), false, 8, 128, 4);
    res.results.push(
      { name: `small ${type} LoRA training`, value: m.tokens / (m.trainMs / 1000), unit: "tokens/s" },
      { name: `small ${type} scoring (forward only)`, value: m.tokens / (m.scoreMs / 1000), unit: "tokens/s" },
    );
    res.ratios[`small ${type} training/scoring throughput`] = m.scoreMs / m.trainMs;
  }
  return res;
}
