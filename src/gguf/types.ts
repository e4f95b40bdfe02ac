// GGUF v3 vocabulary shared by the reader and the writer: metadata value types, the typed
// in-memory form of a metadata value, and the ggml tensor types with their block sizes.
// Spec: llama.cpp ggml/docs/gguf.md (little-endian, strings are u64 length + UTF-8 bytes).

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type ids as stored in the file. */
export const GgufValueTypeId = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufScalarType = Exclude<keyof typeof GgufValueTypeId, "array">;
export type GgufNumberType = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";
export type GgufBigIntType = "uint64" | "int64";

/** Arrays keep numbers in typed arrays: a 128k-token vocabulary's scores stay one allocation. */
export interface GgufArrayItems {
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
  uint64: BigUint64Array;
  int64: BigInt64Array;
  bool: boolean[];
  string: string[];
}

export type GgufArrayValue = {
  [K in GgufScalarType]: { type: "array"; itemType: K; value: GgufArrayItems[K] };
}[GgufScalarType];

/** One metadata value with its exact on-disk type, so copies (e.g. tokenizer keys) round-trip. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArrayValue;

export type GgufMetadata = Map<string, GgufValue>;

export const scalarTypeById: ReadonlyMap<number, GgufScalarType | "array"> = new Map(
  Object.entries(GgufValueTypeId).map(([name, id]) => [id, name as GgufScalarType | "array"]),
);

/** ggml tensor types: id → name, bytes per block and elements per block. */
export const GGML_TYPES: ReadonlyMap<number, { name: string; blockBytes: number; blockSize: number }> = new Map([
  [0, { name: "F32", blockBytes: 4, blockSize: 1 }],
  [1, { name: "F16", blockBytes: 2, blockSize: 1 }],
  [2, { name: "Q4_0", blockBytes: 18, blockSize: 32 }],
  [3, { name: "Q4_1", blockBytes: 20, blockSize: 32 }],
  [6, { name: "Q5_0", blockBytes: 22, blockSize: 32 }],
  [7, { name: "Q5_1", blockBytes: 24, blockSize: 32 }],
  [8, { name: "Q8_0", blockBytes: 34, blockSize: 32 }],
  [9, { name: "Q8_1", blockBytes: 36, blockSize: 32 }],
  [10, { name: "Q2_K", blockBytes: 84, blockSize: 256 }],
  [11, { name: "Q3_K", blockBytes: 110, blockSize: 256 }],
  [12, { name: "Q4_K", blockBytes: 144, blockSize: 256 }],
  [13, { name: "Q5_K", blockBytes: 176, blockSize: 256 }],
  [14, { name: "Q6_K", blockBytes: 210, blockSize: 256 }],
  [15, { name: "Q8_K", blockBytes: 292, blockSize: 256 }],
  [16, { name: "IQ2_XXS", blockBytes: 66, blockSize: 256 }],
  [17, { name: "IQ2_XS", blockBytes: 74, blockSize: 256 }],
  [18, { name: "IQ3_XXS", blockBytes: 98, blockSize: 256 }],
  [19, { name: "IQ1_S", blockBytes: 50, blockSize: 256 }],
  [20, { name: "IQ4_NL", blockBytes: 18, blockSize: 32 }],
  [21, { name: "IQ3_S", blockBytes: 110, blockSize: 256 }],
  [22, { name: "IQ2_S", blockBytes: 82, blockSize: 256 }],
  [23, { name: "IQ4_XS", blockBytes: 136, blockSize: 256 }],
  [24, { name: "I8", blockBytes: 1, blockSize: 1 }],
  [25, { name: "I16", blockBytes: 2, blockSize: 1 }],
  [26, { name: "I32", blockBytes: 4, blockSize: 1 }],
  [27, { name: "I64", blockBytes: 8, blockSize: 1 }],
  [28, { name: "F64", blockBytes: 8, blockSize: 1 }],
  [29, { name: "IQ1_M", blockBytes: 56, blockSize: 256 }],
  [30, { name: "BF16", blockBytes: 2, blockSize: 1 }],
  [34, { name: "TQ1_0", blockBytes: 54, blockSize: 256 }],
  [35, { name: "TQ2_0", blockBytes: 66, blockSize: 256 }],
  [39, { name: "MXFP4", blockBytes: 17, blockSize: 32 }],
]);

export const GGML_TYPE_F32 = 0;
export const GGML_TYPE_F16 = 1;
export const GGML_TYPE_BF16 = 30;

export function ggmlTypeName(type: number): string {
  return GGML_TYPES.get(type)?.name ?? `type#${type}`;
}

/** Bytes a tensor of this type and shape occupies, or undefined for a type this table lacks. */
export function ggmlTensorBytes(type: number, shape: readonly number[]): number | undefined {
  const t = GGML_TYPES.get(type);
  if (!t) return undefined;
  const n = shape.reduce((a, b) => a * b, 1);
  return (n / t.blockSize) * t.blockBytes;
}

/** A tensor's description from the header; `offset` is relative to the start of the data section. */
export interface GgufTensorInfo {
  name: string;
  /** ggml order: shape[0] = ne0 is the contiguous (innermost) dimension. */
  shape: number[];
  type: number;
  offset: number;
}
