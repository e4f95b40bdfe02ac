// Damaged copies of the tiny model and its adapters for the crash corpus: each is the generated
// file with one thing changed, the thing llama.cpp would assert or crash on. Written once per run
// by the parent (crash-runner.ts) into the run's folder.
import { copyFileSync, linkSync } from "node:fs";
import { join } from "node:path";
import {
  gguf,
  readGguf,
  readTensorBytes,
  writeGguf,
  type GgufMetadata,
  type GgufTensorInput,
} from "../../src/gguf/index.js";
import { loraTargetWeights, randomLoraTensors, writeLoraAdapter } from "../../src/gguf/lora.js";

const GGML_TYPE_F16 = 1;
const GGML_TYPE_I32 = 26;

/** The damaged files, by what is wrong with them. */
export interface DamagedFiles {
  /** tokenizer.ggml.tokens holds one token twice. */
  duplicateToken: string;
  /** llama.block_count 1000 (llama.cpp supports 512 layers). */
  blockCount1000: string;
  /** 4 heads over 3 KV heads (not a multiple), K and V weights shaped to match. */
  headsNotMultipleOfKv: string;
  /** attention.key_length 16 but value_length 8, V weights shaped to match. */
  keyValueLengthsDiffer: string;
  /** rope.scaling.type "bogus". */
  ropeScalingUnknown: string;
  /** expert_used_count 2 in a model without experts. */
  expertsUsedWithoutExperts: string;
  /** blk.0.attn_q.weight stored as I32 (same bytes as its F32 values). */
  integerWeight: string;
  /** output_norm.weight stored as F16. */
  f16Norm: string;
  /** A T5 (UGM) tokenizer, which has no BOS by default, with tokenizer.ggml.add_bos_token true and no bos_token_id. */
  addBosWithoutBos: string;
  /** tokenizer.ggml.model "none": no tokenizer at all. */
  noTokenizer: string;
  /** general.architecture "nonesuch": passes the header checks, llama.cpp cannot load or quantize it. */
  unknownArchitecture: string;
  /** One token's text is 300 bytes long (its piece does not fit a 256-byte buffer). */
  longPiece: string;
  /** Its token id and text. */
  longPieceId: number;
  longPieceText: string;
  /** The tiny model's file under another name (a hard link): the same file. */
  modelLink: string;
  /** A copy of the tiny model, free to be damaged by a case. */
  modelCopy: string;
  /** An adapter for q and v whose lora_a / lora_b are I32 with the right shapes. */
  loraIntegerTensors: string;
  /** An adapter whose lora tensors have a third dimension. */
  loraThreeDims: string;
}

/** A copy of `src` with its metadata and tensors edited. */
export function rewrite(
  src: string,
  dst: string,
  edit: { metadata?: (m: GgufMetadata) => void; tensors?: (t: GgufTensorInput[]) => GgufTensorInput[] },
): string {
  const file = readGguf(src);
  const metadata = new Map(file.metadata);
  edit.metadata?.(metadata);
  let tensors: GgufTensorInput[] = file.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    ggmlType: t.type,
    raw: readTensorBytes(file, t),
  }));
  if (edit.tensors) tensors = edit.tensors(tensors);
  writeGguf(dst, metadata, tensors);
  return dst;
}

/** An F32 tensor of small values (a weight whose shape a fixture changes). */
function f32Tensor(name: string, shape: number[]): GgufTensorInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, type: "F32", data: Float32Array.from({ length: n }, (_, i) => 0.02 * Math.sin(i)) };
}

/** F32 values as F16 bits (enough for norm weights of 1). */
function f32BytesToF16(raw: Uint8Array): Uint8Array {
  const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = f[i] === 1 ? 0x3c00 : 0;
  return new Uint8Array(out.buffer);
}

export function makeDamagedFiles(dir: string, model: string): DamagedFiles {
  const at = (name: string) => join(dir, name);
  const tokens = (m: GgufMetadata) => m.get("tokenizer.ggml.tokens")!.value as string[];
  const longPieceId = 1000;
  const longPieceText = "▁" + "long".repeat(75);
  const modelCopy = at("model-copy.gguf");
  copyFileSync(model, modelCopy);
  const modelLink = at("model-link.gguf");
  linkSync(modelCopy, modelLink);

  const weights = loraTargetWeights(readGguf(model).tensors, ["q", "v"]);
  const lora = randomLoraTensors(weights, { rank: 4, seed: 5, scale: 0.05 });
  const loraGood = at("lora-good.gguf");
  writeLoraAdapter(loraGood, { alpha: 8, rank: 4, tensors: lora });
  return {
    duplicateToken: rewrite(model, at("duplicate-token.gguf"), {
      metadata: (m) => {
        const t = [...tokens(m)];
        t[900] = t[901]!;
        m.set("tokenizer.ggml.tokens", gguf.strings(t));
      },
    }),
    blockCount1000: rewrite(model, at("block-count-1000.gguf"), {
      metadata: (m) => m.set("llama.block_count", gguf.u32(1000)),
    }),
    // The tiny model: width 64, 4 heads of 16, 2 KV heads. Weights reshaped so llama.cpp's own
    // shape checks pass and only the graph (at the first decode) would meet the mismatch.
    headsNotMultipleOfKv: rewrite(model, at("heads-3-kv.gguf"), {
      metadata: (m) => m.set("llama.attention.head_count_kv", gguf.u32(3)),
      tensors: (ts) => ts.map((t) => (/attn_[kv]\.weight$/.test(t.name) ? f32Tensor(t.name, [64, 48]) : t)),
    }),
    keyValueLengthsDiffer: rewrite(model, at("key-value-lengths.gguf"), {
      metadata: (m) => {
        m.set("llama.attention.key_length", gguf.u32(16));
        m.set("llama.attention.value_length", gguf.u32(8));
      },
      // llama.cpp shapes attn_output by the key head size; only V follows value_length.
      tensors: (ts) => ts.map((t) => (/attn_v\.weight$/.test(t.name) ? f32Tensor(t.name, [64, 16]) : t)),
    }),
    ropeScalingUnknown: rewrite(model, at("rope-scaling.gguf"), {
      metadata: (m) => m.set("llama.rope.scaling.type", gguf.str("bogus")),
    }),
    expertsUsedWithoutExperts: rewrite(model, at("experts-used.gguf"), {
      metadata: (m) => m.set("llama.expert_used_count", gguf.u32(2)),
    }),
    integerWeight: rewrite(model, at("integer-weight.gguf"), {
      tensors: (ts) =>
        ts.map((t) => (t.name === "blk.0.attn_q.weight" && "raw" in t ? { ...t, ggmlType: GGML_TYPE_I32 } : t)),
    }),
    f16Norm: rewrite(model, at("f16-norm.gguf"), {
      tensors: (ts) =>
        ts.map((t) =>
          t.name === "output_norm.weight" && "raw" in t
            ? { ...t, ggmlType: GGML_TYPE_F16, raw: f32BytesToF16(t.raw) }
            : t,
        ),
    }),
    addBosWithoutBos: rewrite(model, at("add-bos-without-bos.gguf"), {
      metadata: (m) => {
        m.set("tokenizer.ggml.model", gguf.str("t5"));
        m.set("tokenizer.ggml.add_bos_token", gguf.bool(true));
        m.delete("tokenizer.ggml.bos_token_id");
      },
    }),
    noTokenizer: rewrite(model, at("no-tokenizer.gguf"), {
      metadata: (m) => m.set("tokenizer.ggml.model", gguf.str("none")),
    }),
    unknownArchitecture: rewrite(model, at("unknown-arch.gguf"), {
      metadata: (m) => m.set("general.architecture", gguf.str("nonesuch")),
    }),
    longPiece: rewrite(model, at("long-piece.gguf"), {
      metadata: (m) => {
        const t = [...tokens(m)];
        t[longPieceId] = longPieceText;
        m.set("tokenizer.ggml.tokens", gguf.strings(t));
      },
    }),
    longPieceId,
    longPieceText: longPieceText.replace("▁", " "),
    modelLink,
    modelCopy,
    loraIntegerTensors: rewrite(loraGood, at("lora-i32.gguf"), {
      tensors: (ts) => ts.map((t) => ("raw" in t ? { ...t, ggmlType: GGML_TYPE_I32 } : t)),
    }),
    loraThreeDims: rewrite(loraGood, at("lora-3d.gguf"), {
      // [in, r] -> [in, r / 2, 2]: the same bytes, a matrix no more.
      tensors: (ts) =>
        ts.map((t) => (t.name.endsWith(".lora_a") ? { ...t, shape: [t.shape[0]!, t.shape[1]! / 2, 2] } : t)),
    }),
  };
}
