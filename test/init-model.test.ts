// The generated tiny LLaMA model against independent references: llama.cpp (through
// node-llama-cpp's prebuilt CPU binaries) must load it, tokenize exactly like llama.cpp's own
// tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out), evaluate to finite probabilities,
// and accept a random LoRA adapter that changes the output.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MODEL_PRESETS, initModel, llamaTensorShapes } from "../src/gguf/init-model.js";
import { readLoraAdapter, writeLoraAdapter } from "../src/gguf/lora.js";
import { metaNumber, metaString, readGguf, readTensorF32 } from "../src/gguf/reader.js";
import { llamaCppSourceDir } from "../src/util/paths.js";
import { register as registerInitModel, runInitModel } from "../src/cli/commands/init-model.js";
import { describeGguf, register as registerInfo } from "../src/cli/commands/info.js";
import { otherModelLoraPath, tinyLoraPath, tinyModelPath } from "./support/models.js";

const tmp = mkdtempSync(join(tmpdir(), "msr-rec-init-model-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** llama.cpp's tokenizer test vectors: inputs separated by a marker line, outputs one per line. */
function vocabTestVectors(vocab: string): { text: string; tokens: number[] }[] {
  const base = join(llamaCppSourceDir(), "models", `ggml-vocab-${vocab}.gguf`);
  const inputs = readFileSync(`${base}.inp`, "utf8").split("\n__ggml_vocab_test__\n");
  inputs.pop(); // the file ends with the marker
  const outputs = readFileSync(`${base}.out`, "utf8").split("\n");
  return inputs.map((text, i) => ({
    text,
    tokens: outputs[i]!.trim() === "" ? [] : outputs[i]!.trim().split(/\s+/).map(Number),
  }));
}

describe("initModel", () => {
  it("writes the llama hyper-parameters, the preset's tensor shapes and the bundled tokenizer", () => {
    const file = readGguf(tinyModelPath());
    const m = file.metadata;
    const h = MODEL_PRESETS.tiny;
    expect(metaString(m, "general.architecture")).toBe("llama");
    expect(metaString(m, "general.type")).toBe("model");
    expect(metaString(m, "msr_rec.preset")).toBe("tiny");
    expect(metaNumber(m, "llama.embedding_length")).toBe(h.embeddingLength);
    expect(metaNumber(m, "llama.block_count")).toBe(h.blockCount);
    expect(metaNumber(m, "llama.attention.head_count_kv")).toBe(h.headCountKv);
    expect(metaNumber(m, "llama.rope.dimension_count")).toBe(h.embeddingLength / h.headCount);
    expect(metaNumber(m, "llama.vocab_size")).toBe(32000);
    // GQA: k/v are narrower than q
    const shape = (n: string) => file.tensors.find((t) => t.name === n)?.shape;
    expect(shape("blk.0.attn_q.weight")).toEqual([64, 64]);
    expect(shape("blk.0.attn_k.weight")).toEqual([64, 32]);
    expect(shape("blk.1.ffn_down.weight")).toEqual([128, 64]);
    expect(shape("token_embd.weight")).toEqual([64, 32000]);
    // every tokenizer key of the vocab file is copied unchanged
    const vocab = readGguf(join(llamaCppSourceDir(), "models", "ggml-vocab-llama-spm.gguf"));
    for (const [k, v] of vocab.metadata) if (k.startsWith("tokenizer.")) expect(m.get(k), k).toEqual(v);
    // weights: norms are ones, matrices have the intended spread
    expect(Array.from(readTensorF32(file, "output_norm.weight")).every((x) => x === 1)).toBe(true);
    const q = readTensorF32(file, "blk.0.attn_q.weight");
    const std = Math.sqrt(q.reduce((a, x) => a + x * x, 0) / q.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    const down = readTensorF32(file, "blk.0.ffn_down.weight");
    const downStd = Math.sqrt(down.reduce((a, x) => a + x * x, 0) / down.length);
    expect(downStd).toBeCloseTo(0.02 / Math.sqrt(2 * h.blockCount), 3);
  });

  it("is deterministic: same seed → identical bytes, different seed → different weights", () => {
    const a = join(tmp, "a.gguf"),
      b = join(tmp, "b.gguf"),
      c = join(tmp, "c.gguf");
    const t0 = performance.now();
    initModel({ preset: "tiny", vocab: "llama-spm", seed: 5, out: a });
    const elapsed = performance.now() - t0;
    initModel({ preset: "tiny", vocab: "llama-spm", seed: 5, out: b });
    initModel({ preset: "tiny", vocab: "llama-spm", seed: 6, out: c });
    expect(sha256(a)).toBe(sha256(b));
    const wa = readTensorF32(readGguf(a), "blk.0.attn_v.weight");
    const wc = readTensorF32(readGguf(c), "blk.0.attn_v.weight");
    expect(wa.length).toBe(wc.length);
    expect(wa.some((x, i) => x !== wc[i])).toBe(true);
    expect(elapsed).toBeLessThan(3000); // generous for a shared CI machine; ~0.3 s locally
  });

  it("rejects bad options with a message naming the problem", () => {
    const out = join(tmp, "bad.gguf");
    expect(() => initModel({ preset: "huge" as "tiny", vocab: "llama-spm", seed: 1, out })).toThrow(
      /unknown preset "huge"/,
    );
    expect(() => initModel({ preset: "tiny", vocab: "klingon" as "llama-spm", seed: 1, out })).toThrow(
      /unknown vocabulary "klingon"/,
    );
    expect(() => initModel({ preset: "tiny", vocab: "llama-spm", seed: -1, out })).toThrow(/seed/);
    expect(() => initModel({ preset: "tiny", vocab: "llama-spm", seed: 1, out, overrides: { headCount: 3 } })).toThrow(
      /divisible/,
    );
  });

  it("llamaTensorShapes matches the tensors written (names and shapes)", () => {
    const file = readGguf(tinyModelPath());
    const expected = llamaTensorShapes(MODEL_PRESETS.tiny, 32000);
    expect(file.tensors.map((t) => [t.name, t.shape])).toEqual(expected.map((t) => [t.name, t.shape]));
  });
});

describe("the CLI layer", () => {
  it("init-model writes a model that info describes", async () => {
    const out = join(tmp, "cli.gguf");
    const lines: string[] = [];
    await runInitModel({ preset: "tiny", vocab: "llama-spm", seed: "3", out }, (s) => lines.push(s));
    expect(lines.join("\n")).toContain(out);
    const info = describeGguf(out);
    expect(info).toMatch(/architecture\s+llama/);
    expect(info).toMatch(/vocabulary size\s+32,000/);
    expect(info).toMatch(/layers\s+2/);
    expect(info).toMatch(/heads\s+4 \(KV 2\)/);
    expect(info).toMatch(/tokenizer\s+llama/);
    const params = llamaTensorShapes(MODEL_PRESETS.tiny, 32000).reduce(
      (a, t) => a + t.shape.reduce((x, y) => x * y, 1),
      0,
    );
    expect(info).toContain(params.toLocaleString("en-US"));
    await expect(runInitModel({ preset: "tiny", vocab: "llama-spm", seed: "x", out }, () => {})).rejects.toThrow(
      /--seed/,
    );
  });

  it("parses the command line through commander (init-model then info)", async () => {
    const program = new Command("msr-rec").exitOverride();
    registerInitModel(program);
    registerInfo(program);
    const out = join(tmp, "argv.gguf");
    const written: string[] = [];
    const spy = vi
      .spyOn(process.stdout, "write")
      .mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      await program.parseAsync(["init-model", "--preset", "tiny", "--seed", "9", "--out", out], { from: "user" });
      await program.parseAsync(["info", "--model", out], { from: "user" });
    } finally {
      spy.mockRestore();
    }
    expect(written.join("")).toMatch(/wrote .*argv\.gguf: tiny LLaMA/);
    expect(written.join("")).toMatch(/embedding size\s+64/);
    expect(readGguf(out).metadata.get("msr_rec.seed")).toEqual({ type: "uint64", value: 9n });
  });

  it("info describes any llama-family GGUF, e.g. llama.cpp's vocab-only file", () => {
    const info = describeGguf(join(llamaCppSourceDir(), "models", "ggml-vocab-llama-bpe.gguf"));
    expect(info).toMatch(/vocabulary size\s+128,256/);
    expect(info).toMatch(/heads\s+32 \(KV 8\)/);
    expect(info).toMatch(/tokenizer\s+gpt2 \/ llama-bpe/);
  });

  it("info recognises a LoRA adapter and reports rank, alpha and targets", () => {
    const info = describeGguf(tinyLoraPath(1));
    expect(info).toMatch(/LoRA adapter/);
    expect(info).toMatch(/rank\s+4/);
    expect(info).toMatch(/alpha\s+8/);
    expect(info).toMatch(/targets\s+q,k,v,o,gate,up,down/);
  });
});

describe("in llama.cpp (node-llama-cpp, CPU)", () => {
  let llama: Llama;
  let model: LlamaModel;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: tinyModelPath() });
  });
  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
  });

  it("tokenizes exactly like llama.cpp's test vectors for the llama-spm vocab", () => {
    const vectors = vocabTestVectors("llama-spm");
    expect(vectors.length).toBeGreaterThan(20);
    for (const { text, tokens } of vectors)
      expect(Array.from(model.tokenize(text)), JSON.stringify(text)).toEqual(tokens);
    expect(model.tokens.bos).toBe(1);
    expect(model.tokens.eos).toBe(2);
  });

  async function nextTokenProbabilities(lora?: string): Promise<Map<number, number>> {
    const ctx = await model.createContext({
      contextSize: 128,
      threads: 1,
      ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
    });
    try {
      const tokens: Token[] = [model.tokens.bos!, ...model.tokenize("The user watched Star Wars and")];
      const input = tokens.map((t, i): ControlledEvaluateInputItem =>
        i === tokens.length - 1 ? [t, { generateNext: { probabilities: true } }] : t,
      );
      const res = await ctx.getSequence().controlledEvaluate(input);
      const probs = res[tokens.length - 1]?.next?.probabilities;
      if (!probs) throw new Error("no probabilities returned");
      return probs;
    } finally {
      await ctx.dispose();
    }
  }

  function totalVariation(p: Map<number, number>, q: Map<number, number>): number {
    let tv = 0;
    for (const [tok, pv] of p) tv += Math.abs(pv - (q.get(tok) ?? 0)) / 2;
    return tv;
  }

  it("evaluates tokens to a finite distribution over the whole vocabulary", async () => {
    const probs = await nextTokenProbabilities();
    const values = [...probs.values()];
    expect(values.every((p) => Number.isFinite(p) && p >= 0)).toBe(true);
    expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
  });

  it("loads a random LoRA adapter, which changes the output", async () => {
    const lora = tinyLoraPath(1);
    expect(readLoraAdapter(lora).targets).toEqual(["q", "k", "v", "o", "gate", "up", "down"]);
    const base = await nextTokenProbabilities();
    const adapted = await nextTokenProbabilities(lora);
    expect(totalVariation(base, adapted)).toBeGreaterThan(0.005);
    // control: the same adapter with B = 0 is a no-op, so the change above comes from B·A
    const info = readLoraAdapter(lora);
    const zeroB = join(tmp, "zero-b.gguf");
    writeLoraAdapter(zeroB, {
      alpha: info.alpha,
      rank: info.rank,
      tensors: info.file.tensors.map((t) => ({
        name: t.name,
        shape: [t.shape[0]!, t.shape[1]!] as const,
        data: t.name.endsWith(".lora_b") ? new Float32Array(t.shape[0]! * t.shape[1]!) : readTensorF32(info.file, t),
      })),
    });
    expect(totalVariation(base, await nextTokenProbabilities(zeroB))).toBeLessThan(1e-4);
  });

  it("rejects an adapter made for another model", async () => {
    await expect(
      model.createContext({ contextSize: 64, threads: 1, lora: { adapters: [{ filePath: otherModelLoraPath() }] } }),
    ).rejects.toThrow(/lora|adapter/i);
  });
});

describe("with the Llama-3 BPE vocabulary (128k tokens)", () => {
  it("loads and tokenizes exactly like llama.cpp's llama-bpe test vectors", async () => {
    // a narrow model (n_embd 16): the 128k-row embedding is what would make a tiny model slow here
    const path = join(tmp, "bpe.gguf");
    const res = initModel({
      preset: "tiny",
      vocab: "llama-bpe",
      seed: 1,
      out: path,
      overrides: { embeddingLength: 16, headCount: 2, headCountKv: 1, feedForwardLength: 32 },
    });
    expect(res.vocabSize).toBe(128256);
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: path });
    try {
      for (const { text, tokens } of vocabTestVectors("llama-bpe"))
        expect(Array.from(model.tokenize(text)), JSON.stringify(text)).toEqual(tokens);
      expect(model.tokens.bos).toBe(128000);
    } finally {
      await model.dispose();
    }
  });
});
