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
// Each weight type runs in its own process (bench/support/roofline-child.ts). When the tools cannot
// be built or run, our numbers are still reported and a result says why the tools' are missing.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { native } from "../../src/engine/bindings.js";
import { newResult, oneOfEach, type BenchResult, type FlagValues, type SuiteFlags } from "../lib.js";
import type { ChildArgs, ChildResult, GenRate, GenShape, ModeResult, Rate } from "./roofline-child.js";
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

  const numericsModes = oneOfEach("numerics", args.numerics, NUMERICS);
  const scoreRequests = args["score-requests"] ?? (gpuLayers > 0 ? 16 : 4);
  const gen = { parallel: args["gen-parallel"], prompt: args["gen-prompt"], tokens: args["gen-tokens"] };
  const genShape = `${gen.parallel} prompts x ${gen.prompt} tokens, ${gen.tokens} new, ${gen.parallel} parallel`;
  for (const type of types) {
    const path = await quantizedModelPath(preset, type, args.threads);
    const tag = `${preset} ${type}`;
    // The tools run before and after our child and are held at the mean of the two: a shared
    // machine's speed drifts over the minutes our measurements take.
    const baseline = tools ? baselines(tools, path, gpuLayers, gen) : null;
    const m = runChild({ path, gpuLayers, users, tokens, parallel, numerics: numericsModes, scoreRequests, gen });
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
    const ours = m.modes.map((mode) => ({
      mode,
      ...modeResults(res, `${tag} ${mode.numerics}`, mode, m.users, goals, args, genShape),
    }));
    if (!tools) {
      res.results.push({
        name: `${tag}: llama.cpp tools unavailable, no baseline: ${toolsError}`,
        value: 0,
        unit: "n/a",
      });
      continue;
    }
    const after = baselines(tools, path, gpuLayers, gen);
    const bench = [baseline!.pp512, after.pp512];
    const batched = [baseline!.sTg, after.sTg];
    const report = (name: string, runs: (number | Error)[]) => {
      const ok = runs.filter((v): v is number => typeof v === "number");
      runs.forEach((v, i) => {
        const when = `${i === 0 ? "before" : "after"} ours`;
        res.results.push(
          typeof v === "number"
            ? { name: `${tag}: ${name}, ${when}`, value: v, unit: "tokens/s" }
            : { name: `${tag}: ${name}, ${when}, failed: ${firstLine(v)}`, value: 0, unit: "n/a" },
        );
      });
      return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
    };
    const pp = report("llama-bench pp512", bench);
    if (pp !== null)
      for (const o of ours) {
        const t = `${tag} ${o.mode.numerics}`;
        res.ratios[`${t}: scorer, 512 + 1 scored / llama-bench pp512 (goal >= ${goals.scorer})`] = o.prefill / pp;
        res.ratios[`${t}: scorer, 256 + 256 scored / llama-bench pp512 (its LM head on 256 rows is work pp512 skips)`] =
          o.half / pp;
      }
    const tg = report(`llama-batched-bench S_TG, npp ${gen.prompt}, ntg ${gen.tokens}, npl ${gen.parallel}`, batched);
    if (tg !== null)
      for (const o of ours) {
        const t = `${tag} ${o.mode.numerics}`;
        res.ratios[
          `${t}: generation ${gen.parallel} parallel / llama-batched-bench S_TG (goal >= ${goals.generation})`
        ] = o.tg / tg;
        res.ratios[
          `${t}: generation ${gen.parallel} parallel under a grammar / llama-batched-bench S_TG (goal >= ${goals.generation})`
        ] = o.tgGrammar / tg;
      }
  }
  return res;
}

const NUMERICS = ["fast", "invariant"] as const;

/** llama-bench pp512 and llama-batched-bench S_TG on the generation shape, or why each failed. */
function baselines(
  tools: LlamaTools,
  path: string,
  gpuLayers: number,
  gen: GenShape,
): { pp512: number | Error; sTg: number | Error } {
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

/** Generation tokens/s with prompt processing removed (the full run less the 1-token run). */
const tgRate = (g: GenRate) => (g.full.tokens - g.one.tokens) / ((g.full.ms - g.one.ms) / 1000);
const rate = (r: Rate) => r.tokens / (r.ms / 1000);

/** One numerics mode's results and ratios; returns the rates the llama.cpp tools are held against. */
function modeResults(
  res: BenchResult,
  tag: string,
  m: ModeResult,
  users: number,
  goals: RooflineGoals,
  args: RooflineArgs,
  genShape: string,
): { prefill: number; half: number; tg: number; tgGrammar: number } {
  const prefill = rate(m.scorerPrefill);
  const half = rate(m.scorerHalf);
  const tg = tgRate(m.gen);
  const tgGrammar = tgRate(m.grammar);
  const scoreFuseS = (m.inferMs - m.inferGenerateMs) / 1000;
  res.results.push(
    { name: `${tag}: ours, scorer, 512 prompt + 1 scored token, micro-batch 512`, value: prefill, unit: "tokens/s" },
    { name: `${tag}: ours, scorer, 256 prompt + 256 scored tokens, micro-batch 512`, value: half, unit: "tokens/s" },
    { name: `${tag}: ours, generation, ${genShape} (prompt processing removed)`, value: tg, unit: "tokens/s" },
    {
      name: `${tag}: ours, generation under a grammar (any text without a line break), ${genShape} (prompt processing removed)`,
      value: tgGrammar,
      unit: "tokens/s",
    },
    {
      name: `${tag}: ours, generation, ${genShape}, including prompt processing`,
      value: rate(m.gen.full),
      unit: "tokens/s",
    },
    {
      name: `${tag}: inference, whole (${args.tokens} new tokens per side, ${args.parallel ?? "default"} parallel)`,
      value: m.inferMs / 1000,
      unit: "s",
    },
    { name: `${tag}: inference, generation part`, value: m.inferGenerateMs / 1000, unit: "s" },
    { name: `${tag}: inference, scoring and fusion part (parse, scorer calls, Eq. 3)`, value: scoreFuseS, unit: "s" },
    {
      name: `${tag}: inference, scorer calls alone (${m.inferScoredRequests} requests)`,
      value: m.inferScoreMs / 1000,
      unit: "s",
    },
    { name: `${tag}: inference, tokens generated`, value: m.inferGenerated, unit: "tokens" },
    {
      name: `${tag}: inference, generation rate`,
      value: m.inferGenerated / (m.inferGenerateMs / 1000),
      unit: "tokens/s",
    },
  );
  res.ratios[`${tag}: whole inference / its generation part (1.0 = fusion costs nothing on top)`] =
    m.inferMs / m.inferGenerateMs;
  if (goals.scaleTo) {
    // Scaled to the goal's user count when fewer were run (a linear estimate: flagged in the name).
    const { users: goalUsers, wholeS, scoreFuseS: fuseS } = goals.scaleTo;
    const scale = goalUsers / users;
    const est = scale === 1 ? "" : ` (x${scale.toFixed(1)} estimate from ${users} users)`;
    res.ratios[`${tag}: whole inference of ${goalUsers} users / ${wholeS} s goal${est}`] =
      (scale * m.inferMs) / 1000 / wholeS;
    res.ratios[`${tag}: scoring and fusion of ${goalUsers} users / ${fuseS} s goal${est}`] =
      (scale * scoreFuseS) / fuseS;
  }
  return { prefill, half, tg, tgGrammar };
}
