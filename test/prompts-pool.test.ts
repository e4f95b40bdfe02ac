// The piscina prompt pool gives byte-for-byte the output of the single-threaded builder, in
// order, with real worker threads, from samples in memory and from a dataset folder the workers
// read themselves. Running from TypeScript sources there is no compiled worker, so the test
// transpiles the worker and its imports (the same sources tsc compiles) into a scratch folder
// inside the package, where `piscina` resolves.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import ts from "typescript";
import { packageRoot } from "../src/util/paths.js";
import { buildPromptsParallel, PromptPool, usesWorkers } from "../src/prompts/pool.js";
import { promptJsonl, withTokenCounts, type PromptRecord, type PromptSetup } from "../src/prompts/records.js";
import { loadTemplates } from "../src/prompts/templates.js";
import { fillTemplate } from "../src/prompts/build.js";
import { readPreparedDataset, samplesFor, type PromptSample } from "../src/prompts/dataset.js";

const scratch = join(packageRoot, ".cache", `prompt-worker-test-${process.pid}`);
const workerFile = join(scratch, "prompts", "worker.js");

/** Transpiles `rel` (a path under src/) and every relative module it imports, laid out as in src/. */
function transpileClosure(rel: string, done = new Set<string>()): void {
  if (done.has(rel)) return;
  done.add(rel);
  const src = readFileSync(join(packageRoot, "src", rel), "utf8");
  const js = ts.transpileModule(src, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  mkdirSync(dirname(join(scratch, rel)), { recursive: true });
  writeFileSync(join(scratch, rel.replace(/\.ts$/, ".js")), js);
  // Type-only imports vanish from the output; what is left is what the worker loads.
  for (const m of js.matchAll(/from\s+"(\.{1,2}\/[^"]+)\.js"/g))
    transpileClosure(join(dirname(rel), `${m[1]}.ts`), done);
}

beforeAll(() => {
  transpileClosure("prompts/worker.ts");
  writeFileSync(join(scratch, "package.json"), '{"type":"module"}');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function synthetic(users: number): { setup: PromptSetup; samples: PromptSample[] } {
  const titles = new Map<string, string>();
  for (let i = 0; i < 500; i++) titles.set(`i${i}`, `Item "${i}", vol. ${i % 7} — ünïcode`);
  let seed = 7;
  const pick = () => `i${(seed = (seed * 48271) % 2147483647) % 500}`;
  const samples = Array.from({ length: users }, (_, u): PromptSample => {
    const candidates = Array.from({ length: 6 }, pick);
    return {
      user: `u${u}`,
      split: "test",
      history: Array.from({ length: 1 + (u % 10) }, pick),
      candidates,
      target: candidates[u % 6]!,
      targetIndex: u % 6,
    };
  });
  return { setup: { dataset: "Synthetic", kind: "item", template: loadTemplates().item, titles }, samples };
}

describe("prompt pool", () => {
  it("workers give the same JSONL as one thread, in input order", async () => {
    const { setup, samples } = synthetic(2500);
    expect(usesWorkers({ threads: 2, workerFile })).toBe(true);
    const parallel = await buildPromptsParallel(setup, samples, { threads: 2, chunkSize: 300, workerFile });
    expect(parallel).toHaveLength(9);
    expect(parallel.join("")).toBe(promptJsonl(setup, samples));
  });

  it("workers reading a dataset folder give the same JSONL, and a warm pool builds again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msr-pool-"));
    const { setup, samples } = synthetic(1200);
    writeFileSync(
      join(dir, "items.jsonl"),
      [...setup.titles].map(([id, title]) => JSON.stringify({ id, title })).join("\n") + "\n",
    );
    // The users a prepared folder can hold (the reader checks them): no repeated item, the target once among the candidates.
    const users = samples
      .filter(
        (s) =>
          new Set([...s.history, s.target]).size === s.history.length + 1 &&
          s.candidates.filter((c) => c === s.target).length === 1,
      )
      .map((s) => ({
        user: s.user,
        train: s.history.slice(0, -1),
        valid: s.history.at(-1)!,
        test: s.target,
        candidates: { valid: [s.history.at(-1)!], test: s.candidates },
      }));
    writeFileSync(join(dir, "users.jsonl"), users.map((u) => JSON.stringify(u)).join("\n") + "\n");
    writeFileSync(
      join(dir, "stats.json"),
      JSON.stringify({ users: users.length, items: setup.titles.size, interactions: 0, density: 0, source: "test" }),
    );
    const pool = PromptPool.fromFolder(
      { dataDir: dir, split: "test", historyLength: 10, kind: "user", template: loadTemplates().user },
      { threads: 2, chunkSize: 250, workerFile },
    );
    try {
      expect(pool.parallel).toBe(true);
      const ds = readPreparedDataset(dir);
      const expected = promptJsonl(
        { ...setup, dataset: ds.name, kind: "user", template: loadTemplates().user },
        samplesFor(ds, "test"),
      );
      expect((await pool.build()).join("")).toBe(expected);
      expect((await pool.build()).join("")).toBe(expected);
    } finally {
      await pool.destroy();
    }
  });

  it("each record holds the filled template and the ground truth", () => {
    const { setup, samples } = synthetic(3);
    const lines = promptJsonl(setup, samples)
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as PromptRecord);
    const s = samples[2]!;
    const cands = s.candidates.map((id) => setup.titles.get(id)!);
    expect(lines[2]).toEqual({
      user: "u2",
      split: "test",
      kind: "item",
      prompt: fillTemplate(setup.template, {
        dataset: "Synthetic",
        history: s.history.map((id) => setup.titles.get(id)!),
        candidates: cands,
      }),
      candidates: cands,
      targetIndex: 2,
      target: cands[2],
    });
  });

  it("falls back to this thread with one thread, and counts tokens on this thread", async () => {
    const { setup, samples } = synthetic(10);
    const one = await buildPromptsParallel(setup, samples, { threads: 1, chunkSize: 4 });
    expect(one.join("")).toBe(promptJsonl(setup, samples));
    const counted = withTokenCounts(one[0]!, (t) => t.split(/\s+/).length);
    const first = JSON.parse(counted.split("\n")[0]!) as PromptRecord;
    expect(first.tokens).toBe(first.prompt.split(/\s+/).length);
    await expect(
      buildPromptsParallel(setup, samples, { threads: 2, chunkSize: 4, workerFile: join(scratch, "missing.js") }),
    ).rejects.toThrow(/not found; build with/);
  });
});
