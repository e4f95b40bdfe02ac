// llama.cpp's own benchmark tools, built from the same llama.cpp source as the addon, so that the
// gpu-8b suite compares our scorer and generator with llama.cpp's best case on the same kernels:
//   llama-bench          -> prompt processing tokens/s (the `avg_ts` of the pp512 test);
//   llama-batched-bench  -> batched generation tokens/s (S_TG of the npl row).
// Built once per backend into .cache/llama-tools-<cpu|cuda>; a later call only re-runs CMake's
// up-to-date check.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { llamaCppSourceDir, packageRoot } from "../../src/util/paths.js";
import { nvidiaGpuVisible } from "./nvidia-smi.js";

export interface LlamaTools {
  bench: string;
  batchedBench: string;
  backend: "cpu" | "cuda";
}

const onPath = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;

/** A CUDA build needs both the compiler and a visible GPU (nvcc alone builds tools that cannot run). */
export function cudaAvailable(): boolean {
  return onPath("nvcc", ["--version"]) && nvidiaGpuVisible();
}

/** The tools in `dir` (the gpu-8b suite's --llama-tools), if both binaries are there. */
export function toolsIn(dir: string, backend: "cpu" | "cuda"): LlamaTools | null {
  for (const sub of ["", "bin"]) {
    const bench = join(dir, sub, "llama-bench");
    const batchedBench = join(dir, sub, "llama-batched-bench");
    if (existsSync(bench) && existsSync(batchedBench)) return { bench, batchedBench, backend };
  }
  return null;
}

/**
 * Configures and builds llama-bench and llama-batched-bench. Throws with the log's tail when CMake
 * fails. `extraArgs` go to the configure step (e.g. -DGGML_CUDA_FA=OFF, as the addon's CUDA build
 * may use, so both sides run the same kernels).
 */
export function buildLlamaTools(
  backend: "cpu" | "cuda" = cudaAvailable() ? "cuda" : "cpu",
  extraArgs: string[] = [],
): LlamaTools {
  const src = llamaCppSourceDir();
  const out = join(packageRoot, ".cache", `llama-tools-${backend}`);
  // An existing build keeps its generator; CMake refuses a different -G on a configured folder.
  const generator = !existsSync(join(out, "CMakeCache.txt")) && onPath("ninja", ["--version"]) ? ["-G", "Ninja"] : [];
  const configure = [
    "-S",
    src,
    "-B",
    out,
    ...generator,
    "-DCMAKE_BUILD_TYPE=Release",
    `-DGGML_CUDA=${backend === "cuda" ? "ON" : "OFF"}`,
    // Nothing here needs the network, a server, tests or examples: fewer targets, no downloads.
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    ...extraArgs,
  ];
  const steps = [
    configure,
    [
      "--build",
      out,
      "--config",
      "Release",
      "--target",
      "llama-bench",
      "llama-batched-bench",
      "-j",
      String(availableParallelism()),
    ],
  ];
  for (const args of steps) {
    const r = spawnSync("cmake", args, { encoding: "utf8", maxBuffer: 1 << 28 });
    if (r.status !== 0) {
      const log = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`;
      throw new Error(`cmake ${args[0]} failed for the llama.cpp tools (${out}):\n${log.slice(-3000)}`);
    }
  }
  const tools = toolsIn(out, backend);
  if (!tools) throw new Error(`llama.cpp tools not found under ${out} after the build`);
  return tools;
}

/** One llama-bench `-o json` row (the fields this suite reads). */
export interface LlamaBenchRow {
  n_prompt: number;
  n_gen: number;
  avg_ts: number;
  stddev_ts: number;
  n_gpu_layers: number;
  type_k?: string;
  backends?: string;
}

/** The pp<n> row of llama-bench's `-o json` output (stdout, a JSON array): its mean tokens/s. */
export function parseLlamaBenchJson(stdout: string, nPrompt = 512): LlamaBenchRow {
  const start = stdout.indexOf("[");
  const end = stdout.lastIndexOf("]");
  if (start < 0 || end < start) throw new Error("llama-bench output holds no JSON array");
  const rows = JSON.parse(stdout.slice(start, end + 1)) as LlamaBenchRow[];
  const row = rows.find((r) => r.n_prompt === nPrompt && r.n_gen === 0);
  if (!row || !Number.isFinite(row.avg_ts)) throw new Error(`llama-bench output has no pp${nPrompt} row`);
  return row;
}

/** One llama-batched-bench result row (markdown table or `--output-format jsonl`). */
export interface BatchedBenchRow {
  pp: number;
  tg: number;
  pl: number;
  nKv: number;
  tPp: number;
  speedPp: number;
  tTg: number;
  speedTg: number;
  t: number;
  speed: number;
}

/**
 * Every result row of llama-batched-bench's output, either format: the markdown table
 * (`|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |`)
 * or one JSON object per line. Log lines around them are skipped.
 */
export function parseBatchedBench(output: string): BatchedBenchRow[] {
  const rows: BatchedBenchRow[] = [];
  for (const line of output.split("\n")) {
    const s = line.trim();
    if (s.startsWith("{") && s.includes('"speed_tg"')) {
      const j = JSON.parse(s) as Record<string, number>;
      rows.push({
        pp: j.pp!,
        tg: j.tg!,
        pl: j.pl!,
        nKv: j.n_kv!,
        tPp: j.t_pp!,
        speedPp: j.speed_pp!,
        tTg: j.t_tg!,
        speedTg: j.speed_tg!,
        t: j.t!,
        speed: j.speed!,
      });
      continue;
    }
    if (!s.startsWith("|")) continue;
    const cells = s
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.length !== 10 || !cells.every((c) => /^-?\d+(\.\d+)?$/.test(c))) continue; // header, rule
    const [pp, tg, pl, nKv, tPp, speedPp, tTg, speedTg, t, speed] = cells.map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    rows.push({ pp, tg, pl, nKv, tPp, speedPp, tTg, speedTg, t, speed });
  }
  return rows;
}

/** S_TG (generated tokens/s over all sequences) of the row with `pl` parallel sequences. */
export function batchedBenchTgSpeed(output: string, pl: number, pp?: number, tg?: number): number {
  const row = parseBatchedBench(output).find(
    (r) => r.pl === pl && (pp === undefined || r.pp === pp) && (tg === undefined || r.tg === tg),
  );
  if (!row) throw new Error(`llama-batched-bench output has no row for ${pl} parallel sequences`);
  return row.speedTg;
}

export interface ToolRun {
  stdout: string;
  stderr: string;
}

/** Runs a tool; throws with its stderr's tail when it fails. */
export function runTool(bin: string, args: string[], timeoutMs = 20 * 60_000): ToolRun {
  const r = spawnSync(bin, args, { encoding: "utf8", maxBuffer: 1 << 26, timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(
      `${bin} ${args.join(" ")} failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? String(r.error)).slice(-2000)}`,
    );
  return { stdout: r.stdout, stderr: r.stderr };
}
