// Spawns crash-child.ts in fresh node processes, a few at a time, and reports how each ended.
// The child is bundled once with rolldown (as test/trainer-io.test.ts does for its child), so a
// plain `node` runs it against the same addon: children inherit MSR_REC_ADDON from the test env.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gguf, readGguf } from "../../src/gguf/index.js";
import { loraTargetWeights, randomLoraTensors, writeLoraAdapter } from "../../src/gguf/lora.js";
import { packageRoot } from "../../src/util/paths.js";
import type { Fixtures } from "./crash-cases.js";
import type { ChildOutcome } from "./crash-child.js";
import { archModelPath, refusedModelPath } from "./arch-models.js";
import { makeDamagedFiles } from "./crash-fixtures.js";
import { tinyLoraPath, tinyModelPath } from "./models.js";

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  outcome?: ChildOutcome;
  stderr: string;
}

let bundled: Promise<string> | undefined;

export function buildChild(): Promise<string> {
  bundled ??= (async () => {
    const out = join(packageRoot, ".cache", "test-bundles");
    mkdirSync(out, { recursive: true });
    const { build } = await import("rolldown");
    const file = join(out, "crash-child.mjs");
    await build({
      input: join(packageRoot, "test", "support", "crash-child.ts"),
      platform: "node",
      external: [/node_modules/, /^node:/],
      output: { file, format: "esm" },
      logLevel: "silent",
    });
    return file;
  })();
  return bundled;
}

/** Generated models plus models and adapters damaged in the ways the corpus needs. */
export async function makeFixtures(dir: string): Promise<Fixtures> {
  const model = tinyModelPath();
  const weights = loraTargetWeights(readGguf(model).tensors, ["q", "v"]);
  const tensors = randomLoraTensors(weights, { rank: 4, seed: 3, scale: 0.05 });
  const loraAlphaU32 = join(dir, "alpha-u32.gguf");
  writeLoraAdapter(loraAlphaU32, {
    alpha: 8,
    rank: 4,
    tensors,
    metadata: new Map([["adapter.lora.alpha", gguf.u32(8)]]),
  });
  const loraTypeU32 = join(dir, "type-u32.gguf");
  writeLoraAdapter(loraTypeU32, { alpha: 8, rank: 4, tensors, metadata: new Map([["general.type", gguf.u32(1)]]) });
  // The last pair's rank patched to 2^30 in the header, consistently (lora_a [in, r], lora_b
  // [r, out], lora_b's offset moved after the grown lora_a), so every shape check passes and only
  // the data size gives it away. Tensor info: name, n_dims u32, ne[2] u64, type u32, offset u64.
  const good = join(dir, "good.gguf");
  writeLoraAdapter(good, { alpha: 8, rank: 4, tensors });
  const bytes = readFileSync(good);
  const info = (name: string) => bytes.indexOf(Buffer.from(name, "utf8")) + Buffer.byteLength(name);
  const a = tensors[tensors.length - 2]!,
    b = tensors[tensors.length - 1]!;
  const rank = 1n << 30n;
  const aAt = info(a.name),
    bAt = info(b.name);
  bytes.writeBigUInt64LE(rank, aAt + 4 + 8);
  bytes.writeBigUInt64LE(rank, bAt + 4);
  const aOffset = bytes.readBigUInt64LE(aAt + 4 + 16 + 4);
  bytes.writeBigUInt64LE(aOffset + BigInt(a.shape[0]!) * rank * 4n, bAt + 4 + 16 + 4);
  const loraHugeTensor = join(dir, "huge-tensor.gguf");
  writeFileSync(loraHugeTensor, bytes);
  return {
    model,
    lora: tinyLoraPath(1),
    loraAlphaU32,
    loraTypeU32,
    loraHugeTensor,
    quantized: await archModelPath("tiny-llama3", "Q4_0"),
    fusedQkv: refusedModelPath("fused"),
    damaged: makeDamagedFiles(dir, model),
    dir,
  };
}

export function runChild(file: string, args: string[], fixtures: Fixtures, timeoutMs = 90_000): Promise<ChildResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--expose-gc", file, ...args, JSON.stringify(fixtures)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: process.env,
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").pop();
      let outcome: ChildOutcome | undefined;
      try {
        outcome = line ? (JSON.parse(line) as ChildOutcome) : undefined;
      } catch {
        outcome = undefined;
      }
      resolve({ code, signal, outcome, stderr: stderr.slice(-2000) });
    });
  });
}

/** Runs jobs with at most `width` in flight. */
export async function pool<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

/** One line describing how a child ended, for assertion messages. */
export function describeChild(r: ChildResult): string {
  return `exit code ${r.code}, signal ${r.signal}, outcome ${JSON.stringify(r.outcome)}, stderr: ${r.stderr}`;
}
