// The roofline measurement shared by the `roofline` suite (llama3-1b shapes on the CPU or a GPU)
// and the `gpu-8b` suite (the Llama-3-8B table): our engine against llama.cpp's own benchmark
// tools, built from the same source, on the same model files and machine, in one run, for each
// numerics mode (`fast` is llama.cpp's own path, the fair comparison; `invariant` is the
// batch-invariant default on the CPU, its cost shown beside it):
//   - scorer tokens/s vs `llama-bench -p 512 -n 0`: requests of 512 tokens with 1 scored (pp512's
//     work: one output row) and with 256 scored (256 rows of the LM head and their log-softmax,
//     work pp512 does not do: about 13% more FLOPs on llama3-1b);
//   - batched generation tokens/s, without and with a grammar, vs `llama-batched-bench` S_TG on the
//     same shape (default -npp 128 -ntg 128 -npl 64; --gen-* shrink it for a CPU);
//   - the whole MSR-Rec inference of synthetic users (both sides generated, PPLs from generation,
//     Eq. 3 fusion) through src/infer/bidirectional.ts, split into its generation part and its
//     scoring-and-fusion part (whole / generation is what fusion costs on top of generating).
// Each weight type runs in its own process (bench/support/roofline-child.ts). On a shared machine
// speed drifts by 10-25% over minutes, so ours and the tools run in turn for `--rounds` rounds
// (the first measures everything, the others the scorer and generation rates in one numerics mode,
// fast when measured), each round held against the tool runs just before and after it, and each
// ratio is the median over rounds. When the tools cannot be built or run, our numbers are still
// reported and a result says why the tools' are missing.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { native } from "../../src/engine/bindings.js";
import { newResult, oneOfEach, type BenchResult, type FlagValues, type SuiteFlags } from "../lib.js";
import type { Numerics as NativeNumerics } from "../../src/engine/index.js";
import type { ChildArgs, ChildResult, GenShape } from "./roofline-child.js";
import {
  batchedBenchTgSpeed,
  buildLlamaTools,
  parseLlamaBenchJson,
  runTool,
  toolsIn,
  type LlamaTools,
} from "./llama-tools.js";
import { presetNamed, quantizedModelPath } from "./models.js";
import {
  firstLine,
  modeResults,
  ourRates,
  reportTool,
  roundRatios,
  roundResults,
  type OurRates,
} from "./roofline-report.js";
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
    numerics: {
      kind: "list",
      default: ["fast", "invariant"],
      help: "numerics modes measured (fast: llama.cpp's own path, as its tools run; invariant: the batch-invariant default on the CPU)",
    },
    "score-requests": {
      kind: "number",
      help: "512-token requests per scorer call (default: 16 on the GPU, 4 on the CPU)",
    },
    "gen-parallel": { kind: "number", default: 64, help: "sequences generated in parallel (llama-batched-bench -npl)" },
    "gen-prompt": { kind: "number", default: 128, help: "prompt tokens of each generated sequence (-npp)" },
    "gen-tokens": { kind: "number", default: 128, help: "new tokens of each generated sequence (-ntg)" },
    rounds: {
      kind: "number",
      default: 3,
      help: "rounds of ours and the llama.cpp tools in turn; the first measures everything, the others the scorer and generation rates in one numerics mode (fast when measured); ratios are medians over rounds",
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

  const numericsModes = oneOfEach("numerics", args.numerics, NUMERICS);
  const scoreRequests = args["score-requests"] ?? (gpuLayers > 0 ? 16 : 4);
  const gen = { parallel: args["gen-parallel"], prompt: args["gen-prompt"], tokens: args["gen-tokens"] };
  const genShape = `${gen.parallel} prompts x ${gen.prompt} tokens, ${gen.tokens} new, ${gen.parallel} parallel`;
  // The mode repeated in rounds 2.. (the one the goals are held in when measured).
  const roundMode = numericsModes.includes("fast") ? "fast" : numericsModes[0]!;
  const rounds = Math.max(1, Math.floor(args.rounds));
  for (const type of types) {
    const path = await quantizedModelPath(preset, type, args.threads);
    const tag = `${preset} ${type}`;
    const child = (numerics: NativeNumerics[], inference: boolean) =>
      runChild({ path, gpuLayers, users, tokens, parallel, numerics, scoreRequests, gen, inference });
    // Ours and the tools in turn, each of our rounds held against the mean of the tool runs just
    // before and after it: a shared machine's speed drifts over the minutes a round takes.
    const toolRuns: ToolRates[] = [];
    if (tools) toolRuns.push(baselines(tools, path, gpuLayers, gen));
    const m = child(numericsModes, true);
    res.results.push(
      { name: `${tag}: model file`, value: statSync(path).size / 2 ** 30, unit: "GiB" },
      { name: `${tag}: load`, value: m.loadMs / 1000, unit: "s" },
      { name: `${tag}: inference, users`, value: m.users, unit: "users" },
      { name: `${tag}: inference, mean prompt length`, value: m.promptTokensMean, unit: "tokens" },
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
    const firstRound = m.modes.map((mode) => ({
      numerics: mode.numerics,
      rates: modeResults(res, `${tag} ${mode.numerics}`, mode, m.users, goals, args, genShape),
    }));
    if (!tools) {
      res.results.push({
        name: `${tag}: llama.cpp tools unavailable, no baseline: ${toolsError}`,
        value: 0,
        unit: "n/a",
      });
      continue;
    }
    toolRuns.push(baselines(tools, path, gpuLayers, gen));
    const repeated: OurRates[] = [firstRound.find((o) => o.numerics === roundMode)!.rates];
    for (let r = 2; r <= rounds; r++) {
      const mode = child([roundMode], false).modes[0]!;
      repeated.push(ourRates(mode));
      roundResults(res, `${tag} ${roundMode}`, repeated.at(-1)!, r, genShape);
      toolRuns.push(baselines(tools, path, gpuLayers, gen));
    }
    const pp = reportTool(
      res,
      `${tag}: llama-bench pp512`,
      toolRuns.map((t) => t.pp512),
    );
    const tg = reportTool(
      res,
      `${tag}: llama-batched-bench S_TG, npp ${gen.prompt}, ntg ${gen.tokens}, npl ${gen.parallel}`,
      toolRuns.map((t) => t.sTg),
    );
    for (const o of firstRound) {
      const ours = o.numerics === roundMode ? repeated : [o.rates];
      roundRatios(res, `${tag} ${o.numerics}`, ours, { pp, tg }, goals, gen);
    }
  }
  return res;
}

interface ToolRates {
  pp512: number | Error;
  sTg: number | Error;
}

const NUMERICS = ["fast", "invariant"] as const;

/** llama-bench pp512 and llama-batched-bench S_TG on the generation shape, or why each failed. */
function baselines(tools: LlamaTools, path: string, gpuLayers: number, gen: GenShape): ToolRates {
  const attempt = (f: () => number) => {
    try {
      return f();
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  };
  const ngl = String(gpuLayers);
  const pp512 = attempt(
    () =>
      parseLlamaBenchJson(
        runTool(tools.bench, ["-m", path, "-p", "512", "-n", "0", "-ngl", ngl, "-o", "json"]).stdout,
        512,
      ).avg_ts,
  );
  const sTg = attempt(() => {
    const out = runTool(tools.batchedBench, [
      ...["-m", path, "-c", String(gen.parallel * (gen.prompt + gen.tokens)), "-b", "2048", "-ub", "512"],
      ...["-npp", String(gen.prompt), "-ntg", String(gen.tokens), "-npl", String(gen.parallel), "-ngl", ngl],
      ...["--output-format", "jsonl"],
    ]);
    return batchedBenchTgSpeed(out.stdout + out.stderr, gen.parallel, gen.prompt, gen.tokens);
  });
  return { pp512, sTg };
}
