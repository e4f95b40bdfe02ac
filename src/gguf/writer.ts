// GGUF v3 writer. The header is serialised in memory, tensor data is streamed after it, all into
// a temp file beside the target that is fsynced and renamed, so readers never see half a file.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { f32ArrayToBf16, f32ArrayToF16 } from "./f16.js";
import {
  GGML_TYPE_BF16,
  GGML_TYPE_F16,
  GGML_TYPE_F32,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueTypeId,
  ggmlTensorBytes,
  type GgufMetadata,
  type GgufScalarType,
  type GgufValue,
} from "./types.js";

/**
 * A tensor to write: float data stored as F32, F16 or BF16, or raw bytes of any ggml type. `data`
 * may be a function: it is then called only when the tensor's bytes are written, so a file larger
 * than memory (a generated 8B model) is streamed one tensor at a time.
 */
export type GgufTensorInput =
  | { name: string; shape: readonly number[]; type: FloatStorage; data: Float32Array | (() => Float32Array) }
  | { name: string; shape: readonly number[]; ggmlType: number; raw: Uint8Array };

export type FloatStorage = "F32" | "F16" | "BF16";
const FLOAT_TYPE_ID: Record<FloatStorage, number> = { F32: GGML_TYPE_F32, F16: GGML_TYPE_F16, BF16: GGML_TYPE_BF16 };

/** Growable little-endian byte builder for the header. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.buf.writeInt8(v, this.length);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.buf.writeInt16LE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }
  u64(v: bigint | number): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  i64(v: bigint): void {
    this.reserve(8);
    this.buf.writeBigInt64LE(v, this.length);
    this.length += 8;
  }

  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.bytes(bytes);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  padTo(alignment: number): void {
    const target = Math.ceil(this.length / alignment) * alignment;
    this.reserve(target - this.length);
    this.buf.fill(0, this.length, target);
    this.length = target;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function checkInt(key: string, type: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`metadata "${key}": ${v} is not a valid ${type}`);
}

function writeScalar(w: ByteWriter, key: string, type: GgufScalarType, v: number | bigint | boolean | string): void {
  switch (type) {
    case "uint8":
      checkInt(key, type, v as number, 0, 0xff);
      return w.u8(v as number);
    case "int8":
      checkInt(key, type, v as number, -0x80, 0x7f);
      return w.i8(v as number);
    case "uint16":
      checkInt(key, type, v as number, 0, 0xffff);
      return w.u16(v as number);
    case "int16":
      checkInt(key, type, v as number, -0x8000, 0x7fff);
      return w.i16(v as number);
    case "uint32":
      checkInt(key, type, v as number, 0, 0xffffffff);
      return w.u32(v as number);
    case "int32":
      checkInt(key, type, v as number, -0x80000000, 0x7fffffff);
      return w.i32(v as number);
    case "float32":
      return w.f32(v as number);
    case "float64":
      return w.f64(v as number);
    case "uint64":
      return w.u64(v as bigint);
    case "int64":
      return w.i64(v as bigint);
    case "bool":
      return w.u8(v ? 1 : 0);
    case "string":
      return w.string(v as string);
  }
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(GgufValueTypeId[v.type]);
  if (v.type !== "array") return writeScalar(w, key, v.type, v.value);
  w.u32(GgufValueTypeId[v.itemType]);
  w.u64(v.value.length);
  if (v.itemType === "string" || v.itemType === "bool") {
    for (const item of v.value) writeScalar(w, key, v.itemType, item);
  } else {
    // typed arrays are already little-endian on every platform Node supports for this package
    const t = v.value;
    w.bytes(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  }
}

function tensorType(t: GgufTensorInput): number {
  return "raw" in t ? t.ggmlType : FLOAT_TYPE_ID[t.type];
}

function tensorPayload(t: GgufTensorInput): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if ("raw" in t) {
    const expected = ggmlTensorBytes(t.ggmlType, t.shape);
    if (expected !== undefined && expected !== t.raw.length) {
      throw new Error(`tensor "${t.name}": ${t.raw.length} bytes given, its type and shape need ${expected}`);
    }
    return t.raw;
  }
  const data = typeof t.data === "function" ? t.data() : t.data;
  if (data.length !== n)
    throw new Error(`tensor "${t.name}": ${data.length} values given for shape [${t.shape.join(", ")}] (${n})`);
  if (t.type === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const h = t.type === "F16" ? f32ArrayToF16(data) : f32ArrayToBf16(data);
  return new Uint8Array(h.buffer);
}

/** Bytes of a tensor's data, known from its type and shape before the data exists. */
function tensorBytes(t: GgufTensorInput): number {
  if ("raw" in t) return t.raw.length;
  return ggmlTensorBytes(FLOAT_TYPE_ID[t.type], t.shape)!;
}

/**
 * Writes a GGUF v3 file atomically. Metadata keeps insertion order; `general.alignment` (if set,
 * as a uint32) decides the data alignment, otherwise 32.
 */
export function writeGguf(path: string, metadata: GgufMetadata, tensors: readonly GgufTensorInput[]): void {
  const alignValue = metadata.get("general.alignment");
  const alignment = alignValue && typeof alignValue.value === "number" ? alignValue.value : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`general.alignment must be a power of two, got ${alignment}`);
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, key, value);
  }
  let offset = 0;
  tensors.forEach((t) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(d);
    w.u32(tensorType(t));
    w.u64(offset);
    offset += Math.ceil(tensorBytes(t) / alignment) * alignment;
  });
  w.padTo(alignment);

  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, "w");
  try {
    try {
      writeAll(fd, w.result());
      const zeros = new Uint8Array(alignment);
      for (const t of tensors) {
        const bytes = tensorPayload(t);
        if (bytes.length !== tensorBytes(t))
          throw new Error(`tensor "${t.name}": ${bytes.length} bytes, its header says ${tensorBytes(t)}`);
        writeAll(fd, bytes);
        const pad = (alignment - (bytes.length % alignment)) % alignment;
        if (pad) writeAll(fd, zeros.subarray(0, pad));
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Shorthand constructors for metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: "uint32", value }),
  i32: (value: number): GgufValue => ({ type: "int32", value }),
  f32: (value: number): GgufValue => ({ type: "float32", value }),
  u64: (value: bigint): GgufValue => ({ type: "uint64", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strings: (value: string[]): GgufValue => ({ type: "array", itemType: "string", value }),
};
