// The pipeline's synthesize stage with an OpenAI-compatible teacher: a real HTTP server on
// 127.0.0.1 speaking chat completions. Every prompt is paid for once, and a re-run of the stage
// pays for nothing (answers come from the run folder's store).
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { presetConfig } from "../src/pipeline/config.js";
import { prepareStage } from "../src/pipeline/stages/prepare.js";
import { synthesizeStage } from "../src/pipeline/stages/synthesize.js";

let server: Server;
let baseUrl = "";
const seen = new Map<string, number>();
let authorized = 0;

// Answers with a complete five-step chain recommending the first candidate title it finds.
function answer(prompt: string): string {
  const line = prompt.split("\n").find((l) => l.startsWith("Candidate items:")) ?? "";
  const first = line
    .replace("Candidate items:", "")
    .split(/[;,|]/)[0]!
    .trim()
    .replace(/^\d+\.\s*/, "");
  return [
    "Step 1 - Preference Recognition: the user buys devices and their accessories.",
    "Step 2 - Attribute Analysis: the candidates differ in category and brand.",
    "Step 3 - Logic Matching: the first candidate fits the recent purchases best.",
    "Step 4 - Summary: it continues the user's latest interest.",
    `Step 5 - Recommendation: ${first}`,
  ].join("\n");
}

beforeAll(async () => {
  process.env.MSR_REC_TEST_TEACHER_KEY = "sk-test-secret";
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.headers.authorization === "Bearer sk-test-secret") authorized++;
      const msg = (JSON.parse(body) as { messages: { content: string }[] }).messages.at(-1)!.content;
      seen.set(msg, (seen.get(msg) ?? 0) + 1);
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          model: "fake-r1",
          choices: [{ message: { content: answer(msg), reasoning_content: "hidden chain" }, finish_reason: "stop" }],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  baseUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
afterAll(() => {
  server?.close();
  delete process.env.MSR_REC_TEST_TEACHER_KEY;
});

interface RawUser {
  user: string;
  train: string[];
  valid: string;
  test: string;
}

describe("pipeline synthesize stage with an OpenAI-compatible teacher", () => {
  it("asks for every sample, retries invalid answers once (maxRetries 1), keeps the answers, and a re-run pays for nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-rec-teacher-"));
    try {
      const c = presetConfig("tiny", {
        runDir: dir,
        teacher: {
          kind: "openai",
          endpoint: baseUrl,
          model: "fake-r1",
          apiKeyEnv: "MSR_REC_TEST_TEACHER_KEY",
          tau: 1,
          maxRetries: 1,
        },
      });
      await prepareStage(c);
      await synthesizeStage(c);
      // The samples the stage must ask for, from users.jsonl: every user's train split, the
      // first train.validUsers users' validation split and the first infer.users users' test split.
      const lines = (f: string) =>
        readFileSync(join(dir, f), "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const users = lines("dataset/users.jsonl") as unknown as RawUser[];
      const title = new Map(lines("dataset/items.jsonl").map((i) => [String(i.id), String(i.title)]));
      const target = new Map<string, string>();
      for (const u of users) target.set(`train/${u.user}`, title.get(u.train.at(-1)!)!);
      for (const u of users.slice(0, c.train.validUsers)) target.set(`valid/${u.user}`, title.get(u.valid)!);
      for (const u of users.slice(0, c.infer.users)) target.set(`test/${u.user}`, title.get(u.test)!);
      const records = lines("teacher/reasoning.jsonl") as Array<{
        user: string;
        split: string;
        prompt: string;
        recommendation: string;
        valid: boolean;
      }>;
      // τ = 1: one record per sample, a kept path or the behavior-only fallback.
      expect(records.map((r) => `${r.split}/${r.user}`).sort()).toEqual([...target.keys()].sort());
      let expectedCalls = 0;
      for (const r of records) {
        const want = target.get(`${r.split}/${r.user}`)!;
        expect(r.recommendation).toBe(want);
        // The fake teacher names the first listed candidate: valid exactly when that is the target,
        // and an invalid answer is asked for once more (τ + maxRetries = 2 calls), same prompt.
        const first = /Candidate items: "([^"]*)"/.exec(r.prompt)![1];
        expect(r.valid, `${r.split}/${r.user}`).toBe(first === want);
        expect(seen.get(r.prompt), `${r.split}/${r.user}`).toBe(r.valid ? 1 : 2);
        expectedCalls += r.valid ? 1 : 2;
      }
      expect(records.some((r) => r.valid) && records.some((r) => !r.valid)).toBe(true);
      const calls = [...seen.values()].reduce((a, b) => a + b, 0);
      expect(calls).toBe(expectedCalls);
      expect(authorized).toBe(calls);
      expect(readFileSync(join(dir, "teacher", "answers.jsonl"), "utf8")).not.toContain("sk-test-secret");
      await synthesizeStage(c);
      expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(calls);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
