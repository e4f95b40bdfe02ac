// `msr-rec score` and `msr-rec generate` produce what the library gives for the same input.
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runGenerate } from "../src/cli/commands/generate.js";
import { runScore } from "../src/cli/commands/score.js";
import { loadModel } from "../src/index.js";
import { expectClose } from "./support/reference.js";
import { tinyModelPath } from "./support/models.js";

const dir = mkdtempSync(join(tmpdir(), "msr-rec-cli-"));
const lines = (p: string) =>
  readFileSync(p, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("CLI", () => {
  it("score writes one result per line, equal to the library's", async () => {
    const reqs = [
      { prompt: "The user bought a phone", continuation: " and a case" },
      { prompt: "Recommend:", continuation: " Zen Yoga Mat" },
    ];
    const input = join(dir, "in.jsonl");
    const out = join(dir, "out.jsonl");
    writeFileSync(input, reqs.map((r) => JSON.stringify(r)).join("\n") + "\n");
    await runScore({
      model: tinyModelPath(),
      input,
      out,
      loraScale: "1",
      threads: "1",
      contextSize: "512",
      chunk: "1",
    });
    const got = lines(out);
    const model = await loadModel(tinyModelPath(), { threads: 1 });
    const want = await model.createScorer({ contextSize: 512 }).score(reqs);
    expect(got).toHaveLength(2);
    got.forEach((g, i) => {
      expectClose(g.tokenLogprobs as number[], want[i]!.tokenLogprobs, 1e-5);
      expect(g.tokens).toEqual(Array.from(model.tokenize(reqs[i]!.continuation, { addBos: false })));
      expect(g.ppl).toBeCloseTo(want[i]!.ppl, 4);
    });
    model.dispose();
  });

  it("score rejects a malformed line, naming file and line, and writes nothing", async () => {
    const input = join(dir, "bad.jsonl");
    const out = join(dir, "bad-out.jsonl");
    writeFileSync(input, '{"prompt":"a","continuation":"b"}\n{"prompt": 3}\n');
    await expect(
      runScore({ model: tinyModelPath(), input, out, loraScale: "1", contextSize: "512", chunk: "8" }),
    ).rejects.toThrow(/bad\.jsonl:2/);
    expect(existsSync(out)).toBe(false);
  });

  it("generate writes {text, finishReason} per prompt, as the library does", async () => {
    const prompts = ["Hello", "The user likes", "Candidates:"];
    const input = join(dir, "prompts.jsonl");
    const out = join(dir, "gen.jsonl");
    writeFileSync(input, prompts.map((prompt) => JSON.stringify({ prompt })).join("\n"));
    await runGenerate({
      model: tinyModelPath(),
      input,
      out,
      maxTokens: "6",
      temperature: "0.8",
      topP: "0.95",
      topK: "40",
      seed: "5",
      parallel: "2",
      loraScale: "1",
      threads: "1",
    });
    const model = await loadModel(tinyModelPath(), { threads: 1 });
    const want = await model.generate(prompts, {
      maxTokens: 6,
      temperature: 0.8,
      topP: 0.95,
      topK: 40,
      seed: 5,
      parallel: 2,
    });
    expect(lines(out)).toEqual(want.map((w) => ({ text: w.text, finishReason: w.finishReason })));
    model.dispose();
  });
});
