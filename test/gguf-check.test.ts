// The addon's checks of a model file (native/src/gguf_check.*) stand before llama.cpp's assertions,
// so they must not refuse what llama.cpp loads. The vocabularies llama.cpp ships with its source
// (.cache/llama.cpp/models/ggml-vocab-*.gguf: SentencePiece, BPE, WordPiece and Unigram
// tokenizers of real models) each load with vocabOnly and round-trip a text; the damaged files the
// checks refuse are in the crash corpus (test/support/crash-cases-files.ts).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { packageRoot } from "../src/util/paths.js";
import { addonMissing } from "./support/addon.js";

const vocabDir = join(packageRoot, ".cache", "llama.cpp", "models");
const vocabs = existsSync(vocabDir) ? readdirSync(vocabDir).filter((f) => /^ggml-vocab-.*\.gguf$/.test(f)) : [];

describe("model file checks", () => {
  it("accept every vocabulary llama.cpp ships (no check refuses what llama.cpp loads)", async (ctx) => {
    if (addonMissing("the model file checks")) return ctx.skip();
    if (vocabs.length === 0) return ctx.skip(`no llama.cpp vocabularies at ${vocabDir}`);
    const refused: string[] = [];
    for (const file of vocabs) {
      try {
        const m = await loadModel(join(vocabDir, file), { vocabOnly: true, threads: 1 });
        const text = m.detokenize(m.tokenize("Hello world", { addBos: false }));
        m.dispose();
        if (text.trim().toLowerCase() !== "hello world")
          refused.push(`${file}: round trip gave ${JSON.stringify(text)}`);
      } catch (e) {
        refused.push(`${file}: ${(e as Error).message}`);
      }
    }
    expect(refused).toEqual([]);
    expect(vocabs.length).toBeGreaterThanOrEqual(10);
  }, 120_000);
});
