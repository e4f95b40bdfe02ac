// Smoke test of the local GGUF teacher on the tiny generated model: it loads through
// node-llama-cpp's chat API, answers, and its answers flow through the store and the pruner
// (a random tiny model names no candidate, so every path is rejected and counted).
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalTeacher } from "../src/teacher/local.js";
import { AnswerStore } from "../src/teacher/store.js";
import { synthesize } from "../src/teacher/synthesize.js";
import { packageRoot } from "../src/util/paths.js";

const haveVocab = existsSync(join(packageRoot, ".cache", "llama.cpp", "models", "ggml-vocab-llama-spm.gguf"));
if (!haveVocab)
  console.log(
    "skipping local teacher smoke test: .cache/llama.cpp is missing (run `npm run build:native` to unpack it)",
  );

describe.skipIf(!haveVocab)("LocalTeacher on the tiny model", () => {
  let teacher: LocalTeacher | undefined;
  afterAll(async () => teacher?.close());

  it("answers through the chat API and its answers are stored and pruned", async () => {
    const { tinyModelPath } = await import("./support/models.js");
    teacher = await LocalTeacher.load({
      modelPath: tinyModelPath(),
      maxTokens: 8,
      temperature: 0.7,
      contextSize: 512,
      gpu: false,
      threads: 1,
    });
    const titles = ["Alien", "Heat", "Fargo", "Casino", "Se7en", "Ran"];
    const sample = {
      user: "u1",
      split: "valid" as const,
      history: [],
      candidates: titles,
      target: "Heat",
      targetIndex: 1,
    };
    const store = AnswerStore.open(join(mkdtempSync(join(tmpdir(), "msr-local-")), "answers.jsonl"));
    const { stats } = await synthesize(
      [{ sample, prompt: "Recommend one of: Alien, Heat, Fargo.", candidateTitles: titles }],
      { teacher, store, tau: 1, maxAttempts: 2 },
    );
    expect(stats.requested).toBe(2);
    expect(store.get("valid/u1/0")?.model).toBe(tinyModelPath());
    expect(typeof store.get("valid/u1/1")?.content).toBe("string");
    expect(stats.accepted + Object.values(stats.rejected).reduce((a, b) => a + b, 0)).toBe(2);
    store.close();
  });

  it("refuses a missing model file with advice", async () => {
    await expect(LocalTeacher.load({ modelPath: "/nonexistent/model.gguf" })).rejects.toThrow(
      /not found; pass a GGUF file path/,
    );
  });
});
