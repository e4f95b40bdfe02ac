// init-model's converter layouts: the keys and tensors llama.cpp's converter writes for Llama 3.x
// (rope_freqs computed as convert_hf_to_gguf.py does, tied output), Qwen2 (Q/K/V biases) and Qwen3
// (Q/K norms, key/value length != width / heads), and what the CLI accepts. Loading, scoring and
// training these files against llama_decode is trainer-arch.test.ts's part.
import { describe, expect, it } from "vitest";
import { bf16ArrayToF32, f32ArrayToBf16 } from "../src/gguf/f16.js";
import { MODEL_PRESETS, llama3RopeFactors, type LlamaHparams } from "../src/gguf/init-model.js";
import { metaNumber, metaString, readGguf, readTensorF32 } from "../src/gguf/reader.js";
import { runInitModel } from "../src/cli/commands/init-model.js";
import { archModelPath } from "./support/arch-models.js";

const shape = (file: ReturnType<typeof readGguf>, name: string) => file.tensors.find((t) => t.name === name)?.shape;

describe("converter layouts", () => {
  it("tiny-llama3: Llama 3.2 keys, the 128k BPE vocabulary, rope_freqs and a tied output", async () => {
    const file = readGguf(await archModelPath("tiny-llama3"));
    const m = file.metadata;
    expect(metaString(m, "general.architecture")).toBe("llama");
    expect(metaString(m, "tokenizer.ggml.pre")).toBe("llama-bpe");
    expect(metaNumber(m, "llama.vocab_size")).toBe(128256);
    expect(metaNumber(m, "llama.rope.dimension_count")).toBe(64);
    expect(metaNumber(m, "llama.rope.freq_base")).toBe(500000);
    expect(shape(file, "output.weight")).toBeUndefined();
    expect(shape(file, "rope_freqs.weight")).toEqual([32]);
    // convert_hf_to_gguf.py's llama3 factors for factor 32, low 1, high 4, original context 8192:
    // 1 for wavelengths under 2048, 32 above 8192, smooth in between.
    const f = readTensorF32(file, "rope_freqs.weight");
    expect(f[0]).toBe(1);
    expect(f[31]).toBe(32);
    for (let i = 1; i < f.length; i++) expect(f[i]!).toBeGreaterThanOrEqual(f[i - 1]!);
    const h = MODEL_PRESETS["tiny-llama3"] as LlamaHparams;
    const dim = 64,
      wavelen = (i: number) => 2 * Math.PI * h.ropeFreqBase ** ((2 * i) / dim);
    for (let i = 0; i < 32; i++) {
      const w = wavelen(i);
      if (w < 2048) expect(f[i]).toBe(1);
      else if (w > 8192) expect(f[i]).toBe(32);
      else {
        const smooth = (8192 / w - 1) / (4 - 1);
        expect(f[i]!).toBeCloseTo(1 / ((1 - smooth) / 32 + smooth), 4);
      }
    }
    expect(Array.from(llama3RopeFactors(h))).toEqual(Array.from(f));
  });

  it("tiny-qwen2: Q/K/V biases, Qwen2's vocabulary, no llama-only keys", async () => {
    const file = readGguf(await archModelPath("tiny-qwen2"));
    const m = file.metadata;
    expect(metaString(m, "general.architecture")).toBe("qwen2");
    expect(metaString(m, "tokenizer.ggml.pre")).toBe("qwen2");
    expect(metaNumber(m, "qwen2.attention.head_count_kv")).toBe(2);
    expect(metaNumber(m, "qwen2.rope.dimension_count")).toBeUndefined();
    expect(shape(file, "blk.0.attn_q.bias")).toEqual([256]);
    expect(shape(file, "blk.1.attn_k.bias")).toEqual([128]);
    expect(shape(file, "blk.1.attn_v.bias")).toEqual([128]);
    expect(shape(file, "blk.0.attn_output.bias")).toBeUndefined();
  });

  it("tiny-qwen3: Q/K norms and heads x head size (512) != width (256) stated as key/value length", async () => {
    const file = readGguf(await archModelPath("tiny-qwen3"));
    const m = file.metadata;
    expect(metaString(m, "general.architecture")).toBe("qwen3");
    expect(metaNumber(m, "qwen3.attention.key_length")).toBe(128);
    expect(metaNumber(m, "qwen3.attention.value_length")).toBe(128);
    expect(shape(file, "blk.0.attn_q.weight")).toEqual([256, 512]);
    expect(shape(file, "blk.0.attn_k.weight")).toEqual([256, 256]);
    expect(shape(file, "blk.0.attn_output.weight")).toEqual([512, 256]);
    expect(shape(file, "blk.0.attn_q_norm.weight")).toEqual([128]);
    expect(shape(file, "blk.1.attn_k_norm.weight")).toEqual([128]);
    expect(shape(file, "output.weight")).toBeUndefined();
  });

  it("quantized types are llama.cpp's quantizer output (Q4_K: the Q4_K_M mix)", async () => {
    const file = readGguf(await archModelPath("tiny-llama3", "Q4_K"));
    expect(metaNumber(file.metadata, "general.file_type")).toBe(15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
    const types = new Set(file.tensors.filter((t) => t.shape.length === 2).map((t) => t.type));
    expect(types.has(12)).toBe(true); // Q4_K
    expect(shape(file, "blk.0.attn_norm.weight")).toEqual([256]);
  });
});

describe("BF16 storage", () => {
  it("rounds float32 to the nearest bfloat16, ties to even, like ggml", () => {
    const bits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0]!;
    const x = new Float32Array([
      1,
      -2.5,
      bits(0x3f808000),
      bits(0x3f818000),
      bits(0x3f80c000),
      1e-40,
      3.3e38,
      Infinity,
      NaN,
    ]);
    const b = f32ArrayToBf16(x);
    // 0x3f808000 is halfway between 0x3f80 and 0x3f81: even (0x3f80); 0x3f818000 rounds to 0x3f82.
    expect(Array.from(b.slice(0, 5))).toEqual([0x3f80, 0xc020, 0x3f80, 0x3f82, 0x3f81]);
    const back = bf16ArrayToF32(b);
    expect(Math.abs(back[6]! - 3.3e38) / 3.3e38).toBeLessThan(2 ** -8);
    expect(back[7]).toBe(Infinity);
    expect(Number.isNaN(back[8])).toBe(true);
  });
});

describe("init-model command", () => {
  it("validates --arch and --weight-type and names the choices", async () => {
    const base = { preset: "tiny", seed: "0", out: "/nonexistent/x.gguf" };
    await expect(runInitModel({ ...base, arch: "gemma" }, () => {})).rejects.toThrow(
      /--arch must be one of llama, qwen2, qwen3/,
    );
    await expect(runInitModel({ ...base, weightType: "Q3_K" }, () => {})).rejects.toThrow(
      /--weight-type must be one of F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K/,
    );
    await expect(runInitModel({ ...base, preset: "llama3-70b" }, () => {})).rejects.toThrow(
      /--preset must be one of .*llama3-8b/,
    );
  });
});
