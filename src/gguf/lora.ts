// GGUF LoRA adapters in the layout llama.cpp's llama_adapter_lora_init accepts
// (src/llama-adapter.cpp): general.type = "adapter", adapter.type = "lora", adapter.lora.alpha,
// and for each adapted weight W (ggml shape [in, out]) a pair
//   <W>.lora_a  ggml shape [in, rank]
//   <W>.lora_b  ggml shape [rank, out]
// so that W' = W + (alpha / rank) · B·A  (row-major A: rank×in, B: out×rank).
// Also a random-adapter generator for tests and a reader.
import { Rng, hashString } from "../util/random.js";
import { readGguf, metaNumber, metaString, type GgufFile } from "./reader.js";
import type { GgufMetadata, GgufTensorInfo } from "./types.js";
import { gguf, writeGguf, type GgufTensorInput } from "./writer.js";

/** Short target names used across msr-rec → llama.cpp weight name stems. */
export const LORA_TARGETS = {
  q: "attn_q",
  k: "attn_k",
  v: "attn_v",
  o: "attn_output",
  gate: "ffn_gate",
  up: "ffn_up",
  down: "ffn_down",
} as const;
export type LoraTarget = keyof typeof LORA_TARGETS;
export const ALL_LORA_TARGETS = Object.keys(LORA_TARGETS) as LoraTarget[];

export interface LoraTensor {
  /** Full name, e.g. `blk.0.attn_q.weight.lora_a`. */
  name: string;
  /** ggml shape: lora_a [in, rank], lora_b [rank, out]. */
  shape: readonly [number, number];
  /** Values in ggml order (shape[0] varies fastest). */
  data: Float32Array;
}

export interface LoraAdapterSpec {
  alpha: number;
  rank: number;
  tensors: readonly LoraTensor[];
  architecture?: string;
  /** Extra metadata (e.g. training provenance), written after the required keys. */
  metadata?: GgufMetadata;
  dtype?: "F32" | "F16";
}

export function parseLoraTargets(spec: string | readonly string[]): LoraTarget[] {
  const items =
    typeof spec === "string"
      ? spec
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : [...spec];
  if (items.length === 0) throw new Error(`no LoRA targets given; choose from ${ALL_LORA_TARGETS.join(",")}`);
  for (const t of items) {
    if (!(t in LORA_TARGETS)) throw new Error(`unknown LoRA target "${t}"; choose from ${ALL_LORA_TARGETS.join(",")}`);
  }
  return [...new Set(items)] as LoraTarget[];
}

/** Checks the pairing and shapes llama.cpp checks, so a bad adapter fails here and not at load. */
function validateLoraTensors(spec: LoraAdapterSpec): void {
  if (!Number.isInteger(spec.rank) || spec.rank <= 0)
    throw new Error(`LoRA rank must be a positive integer, got ${spec.rank}`);
  if (!Number.isFinite(spec.alpha)) throw new Error(`LoRA alpha must be a finite number, got ${spec.alpha}`);
  if (spec.tensors.length === 0) throw new Error("a LoRA adapter needs at least one tensor pair");
  const pairs = new Map<string, { a?: LoraTensor; b?: LoraTensor }>();
  for (const t of spec.tensors) {
    const m = /^(.+)\.lora_([ab])$/.exec(t.name);
    if (!m) throw new Error(`LoRA tensor "${t.name}" must end in .lora_a or .lora_b`);
    const p = pairs.get(m[1]!) ?? {};
    p[m[2] as "a" | "b"] = t;
    pairs.set(m[1]!, p);
  }
  for (const [base, { a, b }] of pairs) {
    if (!a || !b) throw new Error(`LoRA tensor pair for "${base}" is missing its lora_${a ? "b" : "a"}`);
    if (a.shape[1] !== spec.rank || b.shape[0] !== spec.rank) {
      throw new Error(
        `LoRA "${base}": lora_a [${a.shape.join(", ")}] / lora_b [${b.shape.join(", ")}] do not have rank ${spec.rank} (expected [in, ${spec.rank}] and [${spec.rank}, out])`,
      );
    }
  }
}

export function writeLoraAdapter(path: string, spec: LoraAdapterSpec): void {
  validateLoraTensors(spec);
  const metadata: GgufMetadata = new Map([
    ["general.architecture", gguf.str(spec.architecture ?? "llama")],
    ["general.type", gguf.str("adapter")],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(spec.alpha)],
    ["msr_rec.lora.rank", gguf.u32(spec.rank)],
    ...(spec.metadata ?? new Map()),
  ]);
  const tensors: GgufTensorInput[] = spec.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    type: spec.dtype ?? "F32",
    data: t.data,
  }));
  writeGguf(path, metadata, tensors);
}

export interface RandomLoraOptions {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
  seed: number;
  /** Standard deviation of B (A is N(0, 1/in) so A·x keeps unit scale). */
  scale: number;
  out: string;
}

/** The weight names and ggml shapes [in, out] that the given targets adapt, from a tensor list. */
export function loraTargetWeights(
  tensors: readonly Pick<GgufTensorInfo, "name" | "shape">[],
  targets: readonly LoraTarget[],
): { name: string; shape: [number, number] }[] {
  const stems = new Set(targets.map((t) => LORA_TARGETS[t]));
  const out: { name: string; shape: [number, number] }[] = [];
  for (const t of tensors) {
    const m = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(t.name);
    if (m && stems.has(m[1] as (typeof LORA_TARGETS)[LoraTarget]) && t.shape.length === 2)
      out.push({ name: t.name, shape: [t.shape[0]!, t.shape[1]!] });
  }
  return out;
}

/** Random A and random non-zero B for the given weights: an adapter that visibly changes outputs. */
export function randomLoraTensors(
  weights: readonly { name: string; shape: readonly [number, number] }[],
  opts: Omit<RandomLoraOptions, "out" | "targets" | "alpha">,
): LoraTensor[] {
  const tensors: LoraTensor[] = [];
  for (const {
    name,
    shape: [inDim, outDim],
  } of weights) {
    tensors.push(
      {
        name: `${name}.lora_a`,
        shape: [inDim, opts.rank],
        data: new Rng(opts.seed, hashString(`${name}.lora_a`)).normalArray(inDim * opts.rank, 1 / Math.sqrt(inDim)),
      },
      {
        name: `${name}.lora_b`,
        shape: [opts.rank, outDim],
        data: new Rng(opts.seed, hashString(`${name}.lora_b`)).normalArray(opts.rank * outDim, opts.scale),
      },
    );
  }
  return tensors;
}

/** Writes a random adapter shaped for the base model at `modelPath`. */
export function randomLoraAdapter(modelPath: string, opts: RandomLoraOptions): { path: string; tensorCount: number } {
  const model = readGguf(modelPath);
  const arch = metaString(model.metadata, "general.architecture") ?? "llama";
  const weights = loraTargetWeights(model.tensors, opts.targets);
  if (weights.length === 0) throw new Error(`${modelPath} has no weights for LoRA targets ${opts.targets.join(",")}`);
  const tensors = randomLoraTensors(weights, opts);
  writeLoraAdapter(opts.out, {
    alpha: opts.alpha,
    rank: opts.rank,
    tensors,
    architecture: arch,
    metadata: new Map([
      ["msr_rec.lora.targets", gguf.str(opts.targets.join(","))],
      ["msr_rec.lora.seed", gguf.u64(BigInt(opts.seed))],
    ]),
  });
  return { path: opts.out, tensorCount: tensors.length };
}

export interface LoraAdapterInfo {
  file: GgufFile;
  architecture: string;
  alpha: number;
  rank: number;
  /** Short target names found among the tensors (q, k, v, o, gate, up, down). */
  targets: LoraTarget[];
  /** Adapted base weight names, e.g. `blk.0.attn_q.weight`. */
  weights: string[];
}

export function isLoraAdapter(file: GgufFile): boolean {
  return (
    metaString(file.metadata, "general.type") === "adapter" && metaString(file.metadata, "adapter.type") === "lora"
  );
}

/** Reads an adapter's header; tensor data via readTensorF32(info.file, name). */
export function readLoraAdapter(path: string): LoraAdapterInfo {
  const file = readGguf(path);
  if (!isLoraAdapter(file)) {
    throw new Error(
      `${path} is not a LoRA adapter (general.type="${metaString(file.metadata, "general.type") ?? ""}", adapter.type="${metaString(file.metadata, "adapter.type") ?? ""}")`,
    );
  }
  const weights = [...new Set(file.tensors.map((t) => t.name.replace(/\.lora_[ab]$/, "")))];
  const aTensor = file.tensors.find((t) => t.name.endsWith(".lora_a"));
  const stemToTarget = new Map(Object.entries(LORA_TARGETS).map(([k, v]) => [v, k as LoraTarget]));
  const targets = new Set<LoraTarget>();
  for (const w of weights) {
    const stem = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(w)?.[1];
    const t = stem ? stemToTarget.get(stem as (typeof LORA_TARGETS)[LoraTarget]) : undefined;
    if (t) targets.add(t);
  }
  return {
    file,
    architecture: metaString(file.metadata, "general.architecture") ?? "",
    alpha: metaNumber(file.metadata, "adapter.lora.alpha") ?? 0,
    rank: aTensor?.shape[1] ?? metaNumber(file.metadata, "msr_rec.lora.rank") ?? 0,
    targets: ALL_LORA_TARGETS.filter((t) => targets.has(t)),
    weights,
  };
}
