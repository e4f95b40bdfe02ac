// The parsers of llama.cpp's benchmark tools' outputs (bench/support/llama-tools.ts), on outputs
// those tools really printed (llama.cpp 80fb11a on the tiny-llama3 preset, CPU): llama-bench
// `-p 512 -n 0 -r 2 -o json`, and llama-batched-bench `-npp 16 -ntg 16 -npl 1,8` as its markdown
// table and as `--output-format jsonl`. Nothing is built or run here.
import { describe, expect, it } from "vitest";
import { batchedBenchTgSpeed, parseBatchedBench, parseLlamaBenchJson } from "../bench/support/llama-tools.js";

const LLAMA_BENCH_JSON = `[
  {
    "build_commit": "80fb11a",
    "build_number": 1,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "bench-models/tiny-llama3-f16-v1.gguf",
    "model_type": "llama ?B F16",
    "model_size": 68031616,
    "model_n_params": 34014496,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": -1,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "load_mode": "auto",
    "lazy_mode": "auto",
    "embeddings": false,
    "no_op_offload": 0,
    "no_host": false,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_prompt": 512,
    "n_gen": 0,
    "n_depth": 0,
    "test_time": "2026-12-02T03:12:15Z",
    "avg_ns": 345961861,
    "stddev_ns": 36781352,
    "avg_ts": 1488.343390,
    "stddev_ts": 158.235024,
    "samples_ns": [ 319953517, 371970205 ],
    "samples_ts": [ 1600.23, 1376.45 ]
  }
]`;

const BATCHED_BENCH_MD = `llama_batched_bench: n_kv_max = 2048, n_batch = 2048, n_ubatch = 512, flash_attn = -1, is_pp_shared = 0, is_tg_separate = 0, n_gpu_layers = -1, n_threads = 2, n_threads_batch = 2

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|    16 |     16 |    1 |     32 |    0.316 |    50.64 |    1.508 |    10.61 |    1.824 |    17.54 |
|    16 |     16 |    8 |    256 |    0.368 |   347.52 |    5.540 |    23.10 |    5.908 |    43.33 |`;

const BATCHED_BENCH_JSONL = `{"n_kv_max": 2048, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "is_pp_shared": 0, "n_gpu_layers": -1, "n_threads": 2, "n_threads_batch": 2, "pp": 16, "tg": 16, "pl": 1, "n_kv": 32, "t_pp": 0.172082, "speed_pp": 92.978928, "t_tg": 2.203913, "speed_tg": 7.259815, "t": 2.375995, "speed": 13.468042}
{"n_kv_max": 2048, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "is_pp_shared": 0, "n_gpu_layers": -1, "n_threads": 2, "n_threads_batch": 2, "pp": 16, "tg": 16, "pl": 8, "n_kv": 256, "t_pp": 0.356114, "speed_pp": 359.435455, "t_tg": 6.007963, "speed_tg": 21.305058, "t": 6.364077, "speed": 40.225784}`;

describe("parseLlamaBenchJson", () => {
  it("reads the pp512 row's mean tokens/s", () => {
    const row = parseLlamaBenchJson(LLAMA_BENCH_JSON, 512);
    expect(row.avg_ts).toBeCloseTo(1488.34339, 5);
    expect(row.stddev_ts).toBeCloseTo(158.235024, 5);
    expect(row.n_prompt).toBe(512);
    expect(row.n_gen).toBe(0);
    expect(row.backends).toBe("CPU");
  });

  it("skips log lines around the JSON array", () => {
    const noisy = `load_backend: loaded CPU backend\n${LLAMA_BENCH_JSON}\nllama_perf: done\n`;
    expect(parseLlamaBenchJson(noisy).avg_ts).toBeCloseTo(1488.34339, 5);
  });

  it("refuses output without the asked row or without JSON", () => {
    expect(() => parseLlamaBenchJson(LLAMA_BENCH_JSON, 128)).toThrow(/pp128/);
    expect(() => parseLlamaBenchJson("error: failed to load model")).toThrow(/no JSON/);
  });
});

describe("parseBatchedBench", () => {
  it("reads every row of the markdown table, skipping the log line, header and rule", () => {
    const rows = parseBatchedBench(BATCHED_BENCH_MD);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toEqual({
      pp: 16,
      tg: 16,
      pl: 8,
      nKv: 256,
      tPp: 0.368,
      speedPp: 347.52,
      tTg: 5.54,
      speedTg: 23.1,
      t: 5.908,
      speed: 43.33,
    });
  });

  it("reads the JSONL format", () => {
    const rows = parseBatchedBench(BATCHED_BENCH_JSONL);
    expect(rows.map((r) => r.pl)).toEqual([1, 8]);
    expect(rows[0]!.speedTg).toBeCloseTo(7.259815, 6);
    expect(rows[1]!.nKv).toBe(256);
  });

  it("picks S_TG by parallel sequences (and prompt/generation lengths when given)", () => {
    expect(batchedBenchTgSpeed(BATCHED_BENCH_MD, 8)).toBeCloseTo(23.1, 6);
    expect(batchedBenchTgSpeed(BATCHED_BENCH_MD, 1, 16, 16)).toBeCloseTo(10.61, 6);
    expect(batchedBenchTgSpeed(BATCHED_BENCH_JSONL, 8, 16, 16)).toBeCloseTo(21.305058, 6);
    expect(() => batchedBenchTgSpeed(BATCHED_BENCH_MD, 64)).toThrow(/64 parallel/);
    expect(() => batchedBenchTgSpeed(BATCHED_BENCH_MD, 8, 128, 128)).toThrow(/8 parallel/);
  });
});
