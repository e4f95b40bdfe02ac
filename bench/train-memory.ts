// Memory and speed of LoRA training on real-shaped checkpoints (the goal: train the models people
// bring within their memory). For F16, Q8_0 and Q4_0 versions of a Llama-3.2-1B-shaped model
// (random weights, init-model's llama3-1b preset; --preset picks another):
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
// The GPU half is the train-memory-gpu suite (train-memory-gpu.ts), which measures through the same
// child process.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { newResult, type BenchResult, type FlagValues, type SuiteFlags } from "./lib.js";
import { presetNamed, quantizedModelPath } from "./support/models.js";

export const description =
  "peak RSS of LoRA training vs the model file (Llama-3.2-1B shape, F16/Q8_0/Q4_0), training vs scoring";
export const flags = {
  preset: { kind: "string", default: "llama3-1b", help: "init-model preset of the measured model" },
  tokens: { kind: "number", default: 64, help: "tokens of the one training sample" },
  threads: { kind: "number", default: 2, help: "threads of the model, the trainer and the quantizer" },
} as const satisfies SuiteFlags;

const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const child = fileURLToPath(new URL(`./support/train-memory-child${ext}`, import.meta.url));

export interface ChildResult {
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

/** One measurement in its own process (bench/support/train-memory-child.ts). */
export function measure(
  path: string,
  repack: boolean,
  samples: number,
  len: number,
  steps: number,
  threads: number,
  gpuLayers = 0,
): ChildResult {
  const r = spawnSync(
    process.execPath,
    [child, path, repack ? "1" : "0", String(samples), String(len), String(steps), String(threads), String(gpuLayers)],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  if (r.status !== 0) throw new Error(`train-memory child failed on ${path} (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult;
}

export async function run(args: FlagValues<typeof flags>): Promise<BenchResult> {
  const res = newResult("train-memory");
  const mib = (b: number) => b / 2 ** 20;
  const preset = presetNamed(args.preset);
  const { tokens: len, threads } = args;
  const cases: ["F16" | "Q8_0" | "Q4_0", boolean][] = [
    ["F16", false],
    ["Q8_0", false],
    ["Q4_0", false],
    ["Q4_0", true],
  ];
  for (const [type, repack] of cases) {
    const path = await quantizedModelPath(preset, type, threads);
    const file = statSync(path).size;
    const m = measure(path, repack, 1, len, 2, threads);
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
    const m = measure(await quantizedModelPath("small", type, threads), false, 8, 128, 4, threads);
    res.results.push(
      { name: `small ${type} LoRA training`, value: m.tokens / (m.trainMs / 1000), unit: "tokens/s" },
      { name: `small ${type} scoring (forward only)`, value: m.tokens / (m.scoreMs / 1000), unit: "tokens/s" },
    );
    res.ratios[`small ${type} training/scoring throughput`] = m.scoreMs / m.trainMs;
  }
  return res;
}
