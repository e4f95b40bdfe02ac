// Streaming GGUF v3 reader. Only the header (metadata + tensor infos) is read, through a buffer
// that grows as needed, so a multi-GB model costs a few MB; tensor data is read one tensor at a
// time on request. Layout: magic, version, n_tensors, n_kv, kv pairs, tensor infos, padding to
// `general.alignment`, then the data section that tensor offsets are relative to.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { bf16ArrayToF32, f16ArrayToF32 } from "./f16.js";
import {
  GGML_TYPE_BF16,
  GGML_TYPE_F16,
  GGML_TYPE_F32,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  ggmlTensorBytes,
  ggmlTypeName,
  scalarTypeById,
  type GgufMetadata,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufValue,
} from "./types.js";

export interface GgufFile {
  path: string;
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the data section. */
  dataOffset: number;
  alignment: number;
  fileSize: number;
}

export class GgufFormatError extends Error {
  override name = "GgufFormatError";
}

/** Raised internally when the header runs past the end of the file. */
class TruncatedError extends Error {}

/** A forward-only cursor over a file that reads more bytes into a growing buffer on demand. */
class FileCursor {
  private buf: Buffer;
  private filled = 0; // bytes of buf holding file data (from file offset 0)
  pos = 0;

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
  ) {
    this.buf = Buffer.alloc(Math.min(1 << 20, Math.max(fileSize, 16)));
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.filled) return;
    if (need > this.fileSize) throw new TruncatedError();
    if (need > this.buf.length) {
      const grown = Buffer.alloc(Math.min(Math.max(need, this.buf.length * 2), this.fileSize));
      this.buf.copy(grown, 0, 0, this.filled);
      this.buf = grown;
    }
    while (this.filled < need) {
      const got = readSync(this.fd, this.buf, this.filled, this.buf.length - this.filled, this.filled);
      if (got === 0) throw new TruncatedError();
      this.filled += got;
    }
  }

  u8(): number {
    this.ensure(1);
    return this.buf.readUInt8(this.pos++);
  }
  i8(): number {
    this.ensure(1);
    return this.buf.readInt8(this.pos++);
  }
  u16(): number {
    this.ensure(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  i16(): number {
    this.ensure(2);
    const v = this.buf.readInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.ensure(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.ensure(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f32(): number {
    this.ensure(4);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.ensure(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    this.ensure(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.ensure(8);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A u64 count or size that must fit a JS number (and be plausible for this file). */
  size(what: string): number {
    // two u32 reads instead of a BigInt: this runs once per string, 400k times for a BPE vocab
    const lo = this.u32();
    const hi = this.u32();
    const v = hi * 2 ** 32 + lo;
    if (v > this.fileSize) {
      throw new GgufFormatError(
        `${what} is ${v}, more than the file's ${this.fileSize} bytes: the file is truncated or its header is corrupt; re-create it`,
      );
    }
    return v;
  }

  string(): string {
    const len = this.size("a string length");
    this.ensure(len);
    const s = this.buf.toString("utf8", this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** Copies `n` bytes out (for numeric arrays: aligned, owned memory for the typed array). */
  bytes(n: number): Uint8Array {
    this.ensure(n);
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }
}

function readScalar(c: FileCursor, type: GgufScalarType): GgufValue {
  switch (type) {
    case "uint8":
      return { type, value: c.u8() };
    case "int8":
      return { type, value: c.i8() };
    case "uint16":
      return { type, value: c.u16() };
    case "int16":
      return { type, value: c.i16() };
    case "uint32":
      return { type, value: c.u32() };
    case "int32":
      return { type, value: c.i32() };
    case "float32":
      return { type, value: c.f32() };
    case "float64":
      return { type, value: c.f64() };
    case "uint64":
      return { type, value: c.u64() };
    case "int64":
      return { type, value: c.i64() };
    case "bool":
      return { type, value: c.u8() !== 0 };
    case "string":
      return { type, value: c.string() };
  }
}

function readArray(c: FileCursor, key: string): GgufValue {
  const itemTypeId = c.u32();
  const itemType = scalarTypeById.get(itemTypeId);
  if (itemType === undefined) throw new GgufFormatError(`metadata key "${key}": unknown array item type ${itemTypeId}`);
  if (itemType === "array") throw new GgufFormatError(`metadata key "${key}": nested arrays are not supported`);
  const n = c.size(`the length of array "${key}"`);
  switch (itemType) {
    case "uint8":
      return { type: "array", itemType, value: c.bytes(n) };
    case "int8":
      return { type: "array", itemType, value: new Int8Array(c.bytes(n).buffer) };
    case "uint16":
      return { type: "array", itemType, value: new Uint16Array(c.bytes(n * 2).buffer) };
    case "int16":
      return { type: "array", itemType, value: new Int16Array(c.bytes(n * 2).buffer) };
    case "uint32":
      return { type: "array", itemType, value: new Uint32Array(c.bytes(n * 4).buffer) };
    case "int32":
      return { type: "array", itemType, value: new Int32Array(c.bytes(n * 4).buffer) };
    case "float32":
      return { type: "array", itemType, value: new Float32Array(c.bytes(n * 4).buffer) };
    case "float64":
      return { type: "array", itemType, value: new Float64Array(c.bytes(n * 8).buffer) };
    case "uint64":
      return { type: "array", itemType, value: new BigUint64Array(c.bytes(n * 8).buffer) };
    case "int64":
      return { type: "array", itemType, value: new BigInt64Array(c.bytes(n * 8).buffer) };
    case "bool":
      return { type: "array", itemType, value: Array.from(c.bytes(n), (b) => b !== 0) };
    case "string": {
      const items: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) items[i] = c.string();
      return { type: "array", itemType, value: items };
    }
  }
}

/** Reads a GGUF file's header. Throws a GgufFormatError that says what is wrong and with which file. */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new GgufFormatError(`cannot open GGUF file ${path}: ${(e as Error).message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const c = new FileCursor(fd, fileSize);
    try {
      return parseHeader(c, path, fileSize);
    } catch (e) {
      if (e instanceof TruncatedError) {
        throw new GgufFormatError(
          `${path} is truncated: the GGUF header runs past the end of the file (${fileSize} bytes); the download or write was probably interrupted, so re-create the file`,
        );
      }
      if (e instanceof GgufFormatError) throw new GgufFormatError(`${path}: ${e.message}`);
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

function parseHeader(c: FileCursor, path: string, fileSize: number): GgufFile {
  if (fileSize < 4 || c.u32() !== GGUF_MAGIC) {
    throw new GgufFormatError('not a GGUF file (the first 4 bytes are not "GGUF"); pass a .gguf model or adapter');
  }
  const version = c.u32();
  if (version === 0x03000000 || version === 0x02000000) {
    throw new GgufFormatError(
      "is a big-endian GGUF file; only little-endian GGUF is supported (re-convert it without --bigendian)",
    );
  }
  if (version !== GGUF_VERSION && version !== 2) {
    throw new GgufFormatError(
      `unsupported GGUF version ${version} (supported: 2 and 3); convert the file with a current llama.cpp`,
    );
  }
  const nTensors = c.size("the tensor count");
  const nKv = c.size("the metadata count");
  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < nKv; i++) {
    const key = c.string();
    const typeId = c.u32();
    const type = scalarTypeById.get(typeId);
    if (type === undefined) throw new GgufFormatError(`metadata key "${key}" has unknown value type ${typeId}`);
    metadata.set(key, type === "array" ? readArray(c, key) : readScalar(c, type));
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = c.string();
    const nDims = c.u32();
    if (nDims > 8) throw new GgufFormatError(`tensor "${name}" claims ${nDims} dimensions (corrupt header)`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(c.size(`dimension ${d} of tensor "${name}"`));
    const type = c.u32();
    const offset = c.size(`the offset of tensor "${name}"`);
    tensors.push({ name, shape, type, offset });
  }
  const alignValue = metadata.get("general.alignment");
  const alignment = alignValue && typeof alignValue.value === "number" ? alignValue.value : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufFormatError(`general.alignment is ${alignment}; it must be a power of two`);
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const t of tensors) {
    const bytes = ggmlTensorBytes(t.type, t.shape);
    if (bytes !== undefined && dataOffset + t.offset + bytes > fileSize) {
      throw new GgufFormatError(
        `is truncated: tensor "${t.name}" (${ggmlTypeName(t.type)} [${t.shape.join(", ")}]) ends at byte ${dataOffset + t.offset + bytes} but the file has ${fileSize} bytes; re-create the file`,
      );
    }
  }
  return { path, version, metadata, tensors, dataOffset, alignment, fileSize };
}

/** Reads one tensor's raw bytes. */
export function readTensorBytes(file: GgufFile, tensor: GgufTensorInfo): Uint8Array {
  const bytes = ggmlTensorBytes(tensor.type, tensor.shape);
  if (bytes === undefined)
    throw new GgufFormatError(`tensor "${tensor.name}" has ggml type ${tensor.type}, which this reader does not know`);
  const out = new Uint8Array(bytes);
  const fd = openSync(file.path, "r");
  try {
    let done = 0;
    while (done < bytes) {
      const got = readSync(fd, out, done, bytes - done, file.dataOffset + tensor.offset + done);
      if (got === 0)
        throw new GgufFormatError(`${file.path} is truncated inside tensor "${tensor.name}"; re-create the file`);
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Reads an F32, F16 or BF16 tensor as float32 values (ggml order: shape[0] varies fastest). */
export function readTensorF32(file: GgufFile, tensorOrName: GgufTensorInfo | string): Float32Array {
  const tensor = typeof tensorOrName === "string" ? findTensor(file, tensorOrName) : tensorOrName;
  const raw = readTensorBytes(file, tensor);
  switch (tensor.type) {
    case GGML_TYPE_F32:
      return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    case GGML_TYPE_F16:
      return f16ArrayToF32(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
    case GGML_TYPE_BF16:
      return bf16ArrayToF32(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
    default:
      throw new GgufFormatError(
        `tensor "${tensor.name}" is ${ggmlTypeName(tensor.type)}; only F32, F16 and BF16 tensors can be read as floats (use an unquantized model)`,
      );
  }
}

export function findTensor(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new GgufFormatError(`${file.path} has no tensor named "${name}"`);
  return t;
}

/** Typed metadata getters: undefined when absent, an error when present with the wrong type. */
export function metaNumber(meta: GgufMetadata, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  throw new GgufFormatError(`metadata key "${key}" is a ${v.type}, expected a number`);
}

export function metaString(meta: GgufMetadata, key: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.type === "string") return v.value;
  throw new GgufFormatError(`metadata key "${key}" is a ${v.type}, expected a string`);
}

export function metaArrayLength(meta: GgufMetadata, key: string): number | undefined {
  const v = meta.get(key);
  return v && v.type === "array" ? v.value.length : undefined;
}
