// GGUF reader/writer: round trips of every metadata type and of F32/F16 tensors, cross-checked
// against node-llama-cpp's independent GGUF parser; F16 conversion against hand-checked bit
// patterns and an exhaustive round trip; clear errors for corrupt files; LoRA adapter layout.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../src/gguf/f16.js";
import { MODEL_PRESETS, llamaTensorShapes } from "../src/gguf/init-model.js";
import { loraTargetWeights, readLoraAdapter, writeLoraAdapter, parseLoraTargets } from "../src/gguf/lora.js";
import { readGguf, readTensorF32 } from "../src/gguf/reader.js";
import type { GgufMetadata, GgufValue } from "../src/gguf/types.js";
import { writeGguf, type GgufTensorInput } from "../src/gguf/writer.js";
import { llamaCppSourceDir } from "../src/util/paths.js";
import { tinyLoraPath, tinyModelPath } from "./support/models.js";

const tmp = mkdtempSync(join(tmpdir(), "msr-rec-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** One key of every scalar type and an array of every item type. */
function everyTypeMetadata(): GgufMetadata {
  const manyStrings = Array.from({ length: 70_000 }, (_, i) => `tok${i}·${"x".repeat(i % 13)}`); // > 1 MiB header: the read buffer must grow
  const entries: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["test.u8", { type: "uint8", value: 250 }],
    ["test.i8", { type: "int8", value: -100 }],
    ["test.u16", { type: "uint16", value: 65000 }],
    ["test.i16", { type: "int16", value: -32000 }],
    ["test.u32", { type: "uint32", value: 4_000_000_000 }],
    ["test.i32", { type: "int32", value: -2_000_000_000 }],
    ["test.f32", { type: "float32", value: Math.fround(3.14159) }],
    ["test.f64", { type: "float64", value: Math.PI }],
    ["test.bool", { type: "bool", value: true }],
    ["test.string", { type: "string", value: "héllo 🦙 \n world" }],
    ["test.u64", { type: "uint64", value: 2n ** 63n + 5n }],
    ["test.i64", { type: "int64", value: -(2n ** 62n) }],
    ["test.arr.u8", { type: "array", itemType: "uint8", value: Uint8Array.from([0, 1, 255]) }],
    ["test.arr.i8", { type: "array", itemType: "int8", value: Int8Array.from([-128, 0, 127]) }],
    ["test.arr.u16", { type: "array", itemType: "uint16", value: Uint16Array.from([0, 65535]) }],
    ["test.arr.i16", { type: "array", itemType: "int16", value: Int16Array.from([-32768, 32767]) }],
    ["test.arr.u32", { type: "array", itemType: "uint32", value: Uint32Array.from([1, 4294967295]) }],
    ["test.arr.i32", { type: "array", itemType: "int32", value: Int32Array.from([-5, 7, 1 << 30]) }],
    ["test.arr.f32", { type: "array", itemType: "float32", value: Float32Array.from([0.5, -1e-8, 3e38]) }],
    ["test.arr.f64", { type: "array", itemType: "float64", value: Float64Array.from([Math.E, -0.1]) }],
    ["test.arr.u64", { type: "array", itemType: "uint64", value: BigUint64Array.from([0n, 2n ** 64n - 1n]) }],
    ["test.arr.i64", { type: "array", itemType: "int64", value: BigInt64Array.from([-(2n ** 63n), 9n]) }],
    ["test.arr.bool", { type: "array", itemType: "bool", value: [true, false, true] }],
    ["test.arr.string", { type: "array", itemType: "string", value: manyStrings }],
    ["test.arr.empty", { type: "array", itemType: "string", value: [] }],
  ];
  return new Map(entries);
}

function sampleTensors(): GgufTensorInput[] {
  const a = Float32Array.from({ length: 3 * 5 }, (_, i) => Math.sin(i) * 10);
  const b = Float32Array.from({ length: 4 * 2 * 3 }, (_, i) => (i - 12) / 7);
  return [
    { name: "a.f32", shape: [3, 5], type: "F32", data: a },
    { name: "b.f16", shape: [4, 2, 3], type: "F16", data: b },
    { name: "c.scalarish", shape: [1], type: "F32", data: Float32Array.from([42]) },
  ];
}

/** node-llama-cpp nests dotted keys into objects. */
function nested(meta: unknown, key: string): unknown {
  return key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], meta);
}

describe("writeGguf → readGguf", () => {
  it("round-trips every metadata type and F32/F16 tensors", () => {
    const path = join(tmp, "every.gguf");
    const meta = everyTypeMetadata();
    const tensors = sampleTensors();
    writeGguf(path, meta, tensors);
    const file = readGguf(path);
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset % 32).toBe(0);
    expect([...file.metadata.keys()]).toEqual([...meta.keys()]);
    for (const [k, v] of meta) expect(file.metadata.get(k), k).toEqual(v);
    expect(file.tensors.map((t) => [t.name, t.shape, t.type])).toEqual([
      ["a.f32", [3, 5], 0],
      ["b.f16", [4, 2, 3], 1],
      ["c.scalarish", [1], 0],
    ]);
    for (const t of file.tensors) expect(t.offset % 32, t.name).toBe(0);
    const floatData = (i: number) => (tensors[i] as { data: Float32Array }).data;
    expect(Array.from(readTensorF32(file, "a.f32"))).toEqual(Array.from(floatData(0)));
    // F16 values come back rounded to the nearest half, i.e. within half an ulp (2^-11 relative)
    const b = floatData(1);
    const back = readTensorF32(file, "b.f16");
    for (let i = 0; i < b.length; i++)
      expect(Math.abs(back[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(b[i]!) * 2 ** -11 + 1e-12);
    expect(back.some((x, i) => x !== b[i])).toBe(true); // really stored as F16
    expect(readTensorF32(file, "c.scalarish")[0]).toBe(42);
  });

  it("agrees with node-llama-cpp's own GGUF parser (metadata, tensor offsets)", async () => {
    const path = join(tmp, "crosscheck.gguf");
    const meta = everyTypeMetadata();
    meta.set("general.alignment", { type: "uint32", value: 64 });
    writeGguf(path, meta, sampleTensors());
    const ours = readGguf(path);
    const theirs = await readGgufFileInfo(path, { logWarnings: false });
    expect(ours.alignment).toBe(64);
    for (const [k, v] of meta) {
      const other = nested(theirs.metadata, k);
      if (v.type === "array") {
        const mine = Array.from(v.value as ArrayLike<unknown>);
        const got = other as unknown[];
        expect(got.length, k).toBe(mine.length);
        expect(
          got.map((x) => (typeof x === "bigint" ? x : typeof mine[0] === "bigint" ? BigInt(x as number) : x)),
          k,
        ).toEqual(mine);
      } else if (typeof v.value === "bigint") expect(BigInt(other as number | bigint), k).toBe(v.value);
      else expect(other, k).toEqual(v.value);
    }
    expect(
      theirs.tensorInfo?.map((t) => [
        t.name,
        t.dimensions.map(Number),
        Number(t.ggmlType),
        Number(t.offset),
        Number(t.fileOffset),
      ]),
    ).toEqual(ours.tensors.map((t) => [t.name, t.shape, t.type, t.offset, ours.dataOffset + t.offset]));
  });

  it("reads llama.cpp's bundled vocab file like node-llama-cpp does", async () => {
    const path = join(llamaCppSourceDir(), "models", "ggml-vocab-llama-spm.gguf");
    const ours = readGguf(path);
    const theirs = await readGgufFileInfo(path, { logWarnings: false });
    const tokens = ours.metadata.get("tokenizer.ggml.tokens");
    expect(tokens?.type === "array" && tokens.value).toEqual(nested(theirs.metadata, "tokenizer.ggml.tokens"));
    const scores = ours.metadata.get("tokenizer.ggml.scores");
    expect(scores?.type === "array" && Array.from(scores.value as Float32Array)).toEqual(
      nested(theirs.metadata, "tokenizer.ggml.scores"),
    );
  });

  it("writes atomically: a failed write leaves neither the target nor a temp file", () => {
    const dir = mkdtempSync(join(tmp, "atomic-"));
    const path = join(dir, "bad.gguf");
    expect(() =>
      writeGguf(path, new Map(), [{ name: "x", shape: [2, 2], type: "F32", data: new Float32Array(3) }]),
    ).toThrow(/3 values given for shape \[2, 2\]/);
    expect(() => writeGguf(path, new Map([["k", { type: "uint8", value: 300 }]]), [])).toThrow(
      /300 is not a valid uint8/,
    );
    expect(() => writeGguf(path, new Map(), [...sampleTensors(), sampleTensors()[0]!])).toThrow(
      /duplicate tensor name "a.f32"/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("corrupt files give clear errors", () => {
  const good = join(tmp, "good.gguf");
  writeGguf(good, everyTypeMetadata(), sampleTensors());
  const bytes = readFileSync(good);

  it("bad magic", () => {
    const p = join(tmp, "magic.gguf");
    writeFileSync(p, Buffer.concat([Buffer.from("GGML"), bytes.subarray(4)]));
    expect(() => readGguf(p)).toThrow(/not a GGUF file/);
    writeFileSync(p, "{}\n");
    expect(() => readGguf(p)).toThrow(/not a GGUF file|truncated/);
  });

  it("unsupported version", () => {
    const p = join(tmp, "version.gguf");
    const copy = Buffer.from(bytes);
    copy.writeUInt32LE(99, 4);
    writeFileSync(p, copy);
    expect(() => readGguf(p)).toThrow(/unsupported GGUF version 99/);
    copy.writeUInt32BE(3, 4);
    writeFileSync(p, copy);
    expect(() => readGguf(p)).toThrow(/big-endian/);
  });

  it("truncated inside the header and inside the tensor data", () => {
    const p = join(tmp, "trunc.gguf");
    writeFileSync(p, bytes.subarray(0, 5000));
    expect(() => readGguf(p)).toThrow(/truncated/);
    writeFileSync(p, bytes.subarray(0, 100));
    expect(() => readGguf(p)).toThrow(/truncated: the GGUF header runs past the end/);
    writeFileSync(p, bytes.subarray(0, bytes.length - 30)); // the last tensor is 4 bytes + 28 bytes of padding
    expect(() => readGguf(p)).toThrow(/truncated: tensor "c.scalarish"/);
    writeFileSync(p, bytes.subarray(0, 2));
    expect(() => readGguf(p)).toThrow(/truncated|not a GGUF/);
  });

  it("missing file", () => {
    expect(() => readGguf(join(tmp, "nope.gguf"))).toThrow(/cannot open GGUF file .*nope\.gguf/);
  });

  it("float reads of a missing tensor name", () => {
    expect(() => readTensorF32(readGguf(good), "zzz")).toThrow(/no tensor named "zzz"/);
  });
});

describe("F16 conversion", () => {
  it("matches hand-checked bit patterns (round to nearest even, overflow, subnormals)", () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00],
      [1e10, 0x7c00],
      [-Infinity, 0xfc00],
      [1 / 3, 0x3555],
      [0.1, 0x2e66],
      [2 ** -14, 0x0400],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x).toString(16), String(x)).toBe(bits.toString(16));
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });

  it("every non-NaN half survives f16 → f32 → f16", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
      if (f32ToF16Bits(f16BitsToF32(h)) !== h) throw new Error(`0x${h.toString(16)} does not round-trip`);
    }
  });

  it("rounds to the nearest representable half", () => {
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        const h = f32ToF16Bits(x);
        const y = f16BitsToF32(h);
        // the halves one ulp away in magnitude (same sign) must not be closer
        const sign = h & 0x8000,
          mag = h & 0x7fff;
        const neighbours = [mag + 1, mag - 1].filter((m) => m >= 0 && m <= 0x7c00).map((m) => f16BitsToF32(sign | m));
        return neighbours.every((n) => Math.abs(x - y) <= Math.abs(x - n));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("LoRA adapter files", () => {
  it("have llama.cpp's layout: A [in, rank], B [rank, out] for each targeted base weight", () => {
    const model = readGguf(tinyModelPath());
    const info = readLoraAdapter(tinyLoraPath(1));
    expect(info.file.metadata.get("general.type")).toEqual({ type: "string", value: "adapter" });
    expect(info.file.metadata.get("adapter.type")).toEqual({ type: "string", value: "lora" });
    expect(info.alpha).toBe(8);
    expect(info.rank).toBe(4);
    expect(info.weights.length).toBe(7 * MODEL_PRESETS.tiny.blockCount);
    for (const w of info.weights) {
      const base = model.tensors.find((t) => t.name === w)!;
      const a = info.file.tensors.find((t) => t.name === `${w}.lora_a`)!;
      const b = info.file.tensors.find((t) => t.name === `${w}.lora_b`)!;
      expect([a.shape, b.shape], w).toEqual([
        [base.shape[0], 4],
        [4, base.shape[1]],
      ]);
      expect(
        readTensorF32(info.file, b).some((x) => x !== 0),
        w,
      ).toBe(true); // B is non-zero
    }
    expect(readLoraAdapter(tinyLoraPath(2)).weights).toEqual(info.weights);
    expect(Array.from(readTensorF32(readLoraAdapter(tinyLoraPath(2)).file, "blk.0.attn_q.weight.lora_b"))).not.toEqual(
      Array.from(readTensorF32(info.file, "blk.0.attn_q.weight.lora_b")),
    );
  });

  it("writeLoraAdapter checks pairing and rank before writing anything", () => {
    const out = join(tmp, "lora-bad.gguf");
    const a = { name: "blk.0.attn_q.weight.lora_a", shape: [64, 4] as const, data: new Float32Array(256) };
    const b = { name: "blk.0.attn_q.weight.lora_b", shape: [4, 64] as const, data: new Float32Array(256) };
    expect(() => writeLoraAdapter(out, { alpha: 8, rank: 4, tensors: [a] })).toThrow(/missing its lora_b/);
    expect(() => writeLoraAdapter(out, { alpha: 8, rank: 8, tensors: [a, b] })).toThrow(/rank 8/);
    expect(() =>
      writeLoraAdapter(out, { alpha: 8, rank: 4, tensors: [{ ...a, name: "blk.0.attn_q.weight" }, b] }),
    ).toThrow(/must end in .lora_a or .lora_b/);
    expect(existsSync(out)).toBe(false);
    writeLoraAdapter(out, { alpha: 16, rank: 4, tensors: [a, b], dtype: "F16" });
    const info = readLoraAdapter(out);
    expect([info.alpha, info.rank, info.targets]).toEqual([16, 4, ["q"]]);
    expect(() => readLoraAdapter(tinyModelPath())).toThrow(/is not a LoRA adapter/);
  });

  it("parses target lists and maps them to llama.cpp weight names", () => {
    expect(parseLoraTargets("q, v,q")).toEqual(["q", "v"]);
    expect(() => parseLoraTargets("q,x")).toThrow(/unknown LoRA target "x"/);
    const names = loraTargetWeights(llamaTensorShapes(MODEL_PRESETS.tiny, 100), ["o", "down"]).map((w) => w.name);
    expect(names).toEqual([
      "blk.0.attn_output.weight",
      "blk.0.ffn_down.weight",
      "blk.1.attn_output.weight",
      "blk.1.ffn_down.weight",
    ]);
  });
});
