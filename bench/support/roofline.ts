// The roofline measurement shared by the `roofline` suite (llama3-1b shapes on the CPU or a GPU)
// and the `gpu-8b` suite (the Llama-3-8B table): our engine against llama.cpp's own benchmark
// tools, built from the same source, on the same model files and machine, in one run:
//   - scorer prompt processing tokens/s vs `llama-bench -p 512 -n 0`;
//   - batched generation tokens/s at 64 parallel sequences, without and with a grammar, vs
//     `llama-batched-bench -npp 128 -ntg 128 -npl 64` (its S_TG);
//   - the whole MSR-Rec inference of synthetic users (both sides generated, both PPLs, Eq. 3
//     fusion) through src/infer/bidirectional.ts, split into its generation part and its
//     scoring-and-fusion part (whole / generation is what fusion costs on top of generating).
// Each weight type runs in its own process (bench/support/roofline-child.ts). When the tools cannot
// be built or run, our numbers are still reported and a result says why the tools' are missing.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { native } from "../../src/engine/bindings.js";
import { newResult, oneOfEach, type BenchResult, type FlagValues, type SuiteFlags } from "../lib.js";
import type { ChildArgs, ChildResult } from "./roofline-child.js";
import {
  batchedBenchTgSpeed,
  buildLlamaTools,
  parseLlamaBenchJson,
  runTool,
  toolsIn,
  type LlamaTools,
} from "./llama-tools.js";
import { presetNamed, quantizedModelPath } from "./models.js";
import { gpuName } from "./nvidia-smi.js";

export const WEIGHT_TYPES = ["F16", "Q8_0", "Q4_0"] as const;

/** The flags both suites take; `defaults` sets the preset, types, users and tokens. */
export function rooflineFlags(defaults: { preset: string; types: string[]; users: number; tokens: number }) {
  return {
    preset: { kind: "string", default: defaults.preset, help: "init-model preset of the measured model" },
    types: {
      kind: "list",
      default: defaults.types,
      help: `weight types, each in its own process (${WEIGHT_TYPES.join(", ")})`,
    },
    users: { kind: "number", default: defaults.users, help: "synthetic users of the inference run" },
    tokens: { kind: "number", default: defaults.tokens, help: "new tokens generated per side in the inference run" },
    "gpu-layers": { kind: "number", help: "layers offloaded (default: 99 with a CUDA addon, else 0)" },
    parallel: {
      kind: "number",
      help: "sequences generated together in the inference run (default: 256 on the GPU, 32 on the CPU)",
    },
    threads: { kind: "number", default: 2, help: "CPU threads of the quantizer" },
    "llama-tools": {
      kind: "string",
      help: "a folder holding llama-bench and llama-batched-bench (default: built into .cache/llama-tools-<cpu|cuda>)",
    },
    "llama-tools-cmake-args": {
      kind: "string",
      default: "",
      help: "extra configure arguments for that build, space-separated",
    },
  } as const satisfies SuiteFlags;
}

export type RooflineArgs = FlagValues<ReturnType<typeof rooflineFlags>>;

/** What a suite holds its numbers against. */
export interface RooflineGoals {
  /** Scorer tokens/s over llama-bench pp512. */
  scorer: number;
  /** Generation at 64 parallel over llama-batched-bench S_TG (with and without a grammar). */
  generation: number;
  /** When set, the inference time is also scaled to this many users against these limits. */
  scaleTo?: { users: number; wholeS: number; scoreFuseS: number };
}

const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const childScript = fileURLToPath(new URL(`./roofline-child${ext}`, import.meta.url));

function runChild(a: ChildArgs): ChildResult {
  const r = spawnSync(process.execPath, [childScript, JSON.stringify(a)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`roofline child failed on ${a.path} (exit ${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 160);
}

export async function runRoofline(suite: string, args: RooflineArgs, goals: RooflineGoals): Promise<BenchResult> {
  const cudaAddon = /CUDA/.test(native().systemInfo());
  const gpu = gpuName();
  const res = newResult(suite);
  if (gpu) res.machine = `${gpu}; ${res.machine}`;
  const preset = presetNamed(args.preset);
  const types = oneOfEach("types", args.types, WEIGHT_TYPES);
  const { users, tokens } = args;
  const gpuLayers = args["gpu-layers"] ?? (cudaAddon ? 99 : 0);
  const parallel = args.parallel ?? (gpuLayers > 0 ? 256 : 32);
  res.results.push({
    name: `addon backend: ${cudaAddon ? "CUDA" : "CPU"}, ${gpuLayers} layers offloaded`,
    value: gpuLayers,
    unit: "layers",
  });

  let tools: LlamaTools | null = null;
  let toolsError = "";
  try {
    const backend = cudaAddon ? "cuda" : "cpu";
    const dir = args["llama-tools"];
    if (dir) {
      tools = toolsIn(dir, backend);
      if (!tools) throw new Error(`no llama-bench and llama-batched-bench in ${dir}`);
    } else {
      const t0 = performance.now();
      tools = buildLlamaTools(backend, args["llama-tools-cmake-args"].split(" ").filter(Boolean));
      res.results.push({
        name: `llama.cpp tools (${backend}) build`,
        value: (performance.now() - t0) / 1000,
        unit: "s",
      });
    }
  } catch (e) {
    toolsError = firstLine(e);
  }

  for (const type of types) {
    const path = await quantizedModelPath(preset, type, args.threads);
    const tag = `${preset} ${type}`;
    const m = runChild({ path, gpuLayers, users, tokens, parallel });
    const ourPp = m.scorerTokens / (m.scorerMs / 1000);
    const ourTg = (m.genTokens - m.genTokens1) / ((m.genMs - m.genMs1) / 1000);
    const ourTgGrammar = (m.grammarTokens - m.grammarTokens1) / ((m.grammarMs - m.grammarMs1) / 1000);
    const scoreFuseS = (m.inferMs - m.inferGenerateMs) / 1000;
    res.results.push(
      { name: `${tag}: model file`, value: statSync(path).size / 2 ** 30, unit: "GiB" },
      { name: `${tag}: load`, value: m.loadMs / 1000, unit: "s" },
      {
        name: `${tag}: ours, scorer, 16 x 512 tokens (256 prompt + 256 scored), micro-batch 512`,
        value: ourPp,
        unit: "tokens/s",
      },
      {
        name: `${tag}: ours, generation, 64 prompts x 128 tokens, 128 new, 64 parallel (prompt processing removed)`,
        value: ourTg,
        unit: "tokens/s",
      },
      {
        name: `${tag}: ours, generation under a grammar (any text without a line break), 64 parallel (prompt processing removed)`,
        value: ourTgGrammar,
        unit: "tokens/s",
      },
      {
        name: `${tag}: ours, generation, 64 parallel, including prompt processing`,
        value: m.genTokens / (m.genMs / 1000),
        unit: "tokens/s",
      },
      { name: `${tag}: inference, users`, value: m.users, unit: "users" },
      { name: `${tag}: inference, mean prompt length`, value: m.promptTokensMean, unit: "tokens" },
      {
        name: `${tag}: inference, whole (${tokens} new tokens per side, ${parallel} parallel)`,
        value: m.inferMs / 1000,
        unit: "s",
      },
      { name: `${tag}: inference, generation part`, value: m.inferGenerateMs / 1000, unit: "s" },
      {
        name: `${tag}: inference, scoring and fusion part (parse, one scorer call, Eq. 3)`,
        value: scoreFuseS,
        unit: "s",
      },
      {
        name: `${tag}: inference, the scorer call alone (${m.inferScoredRequests} requests)`,
        value: m.inferScoreMs / 1000,
        unit: "s",
      },
      { name: `${tag}: inference, tokens generated`, value: m.inferGenerated, unit: "tokens" },
      {
        name: `${tag}: inference, generation rate`,
        value: m.inferGenerated / (m.inferGenerateMs / 1000),
        unit: "tokens/s",
      },
      {
        name: `${tag}: building the synthetic users' prompts (not in the inference time)`,
        value: m.casesMs / 1000,
        unit: "s",
      },
      { name: `${tag}: peak host RSS`, value: m.peakRssBytes / 2 ** 20, unit: "MiB" },
    );
    if (m.gpuMemoryUsedMiB !== null)
      res.results.push({
        name: `${tag}: GPU memory in use after inference (whole device)`,
        value: m.gpuMemoryUsedMiB,
        unit: "MiB",
      });
    res.ratios[`${tag}: whole inference / its generation part (1.0 = fusion costs nothing on top)`] =
      m.inferMs / m.inferGenerateMs;
    if (goals.scaleTo) {
      // Scaled to the goal's user count when fewer were run (a linear estimate: flagged in the name).
      const { users: goalUsers, wholeS, scoreFuseS: fuseS } = goals.scaleTo;
      const scale = goalUsers / m.users;
      const est = scale === 1 ? "" : ` (x${scale.toFixed(1)} estimate from ${m.users} users)`;
      res.ratios[`${tag}: whole inference of ${goalUsers} users / ${wholeS} s goal${est}`] =
        (scale * m.inferMs) / 1000 / wholeS;
      res.ratios[`${tag}: scoring and fusion of ${goalUsers} users / ${fuseS} s goal${est}`] =
        (scale * scoreFuseS) / fuseS;
    }
    if (!tools) {
      res.results.push({
        name: `${tag}: llama.cpp tools unavailable, no baseline: ${toolsError}`,
        value: 0,
        unit: "n/a",
      });
      continue;
    }
    try {
      const lb = parseLlamaBenchJson(
        runTool(tools.bench, ["-m", path, "-p", "512", "-n", "0", "-ngl", String(gpuLayers), "-o", "json"]).stdout,
        512,
      );
      res.results.push({ name: `${tag}: llama-bench pp512`, value: lb.avg_ts, unit: "tokens/s" });
      res.ratios[`${tag}: scorer / llama-bench pp512 (goal >= ${goals.scorer})`] = ourPp / lb.avg_ts;
    } catch (e) {
      res.results.push({ name: `${tag}: llama-bench failed: ${firstLine(e)}`, value: 0, unit: "n/a" });
    }
    try {
      // Each of the 64 sequences holds 128 prompt + 128 generated tokens.
      const out = runTool(tools.batchedBench, [
        "-m",
        path,
        "-c",
        String(64 * 256),
        "-b",
        "2048",
        "-ub",
        "512",
        "-npp",
        "128",
        "-ntg",
        "128",
        "-npl",
        "64",
        "-ngl",
        String(gpuLayers),
        "--output-format",
        "jsonl",
      ]);
      const sTg = batchedBenchTgSpeed(out.stdout + out.stderr, 64, 128, 128);
      res.results.push({
        name: `${tag}: llama-batched-bench S_TG, npp 128, ntg 128, npl 64`,
        value: sTg,
        unit: "tokens/s",
      });
      res.ratios[`${tag}: generation 64 parallel / llama-batched-bench S_TG (goal >= ${goals.generation})`] =
        ourTg / sTg;
      res.ratios[
        `${tag}: generation 64 parallel under a grammar / llama-batched-bench S_TG (goal >= ${goals.generation})`
      ] = ourTgGrammar / sTg;
    } catch (e) {
      res.results.push({ name: `${tag}: llama-batched-bench failed: ${firstLine(e)}`, value: 0, unit: "n/a" });
    }
  }
  return res;
}
