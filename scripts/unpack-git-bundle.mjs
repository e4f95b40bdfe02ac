// Checks out the commit of a git bundle into a folder, in plain Node (no git needed): node-llama-cpp
// ships llama.cpp's source as a one-commit bundle, and installing msr-rec as a dependency should
// need nothing beyond Node, CMake and a C++ compiler.
//
// A v2/v3 bundle is a few header lines ("<sha> <ref>") and a blank line, then a pack: "PACK",
// version, object count, and the objects, each a type+size header and a zlib stream. Deltas
// (OFS_DELTA / REF_DELTA) rebuild an object from a base with copy/insert instructions. Objects are
// keyed by their SHA-1 ("<type> <size>\0<data>"), so a corrupt pack fails the hash lookups
// instead of writing wrong files.
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inflateSync } from "node:zlib";

const TYPES = { 1: "commit", 2: "tree", 3: "blob", 4: "tag" };
const OFS_DELTA = 6;
const REF_DELTA = 7;

function parseHeader(buf) {
  let pos = buf.indexOf("\n") + 1;
  const first = buf.subarray(0, pos).toString();
  if (!/^# v[23] git bundle\n$/.test(first)) throw new Error("not a git bundle (v2 or v3)");
  const refs = [];
  for (;;) {
    const end = buf.indexOf("\n", pos);
    if (end < 0) throw new Error("truncated git bundle header");
    const line = buf.subarray(pos, end).toString();
    pos = end + 1;
    if (line === "") break;
    if (line.startsWith("@")) continue; // v3 capabilities
    if (line.startsWith("-")) throw new Error("the bundle needs prerequisite commits; it is not self-contained");
    const [sha, ref] = line.split(" ");
    refs.push({ sha, ref });
  }
  return { refs, packStart: pos };
}

function applyDelta(base, delta) {
  let pos = 0;
  const varint = () => {
    let v = 0,
      shift = 0,
      c;
    do {
      c = delta[pos++];
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return v;
  };
  if (varint() !== base.length) throw new Error("git bundle: delta base size mismatch");
  const out = Buffer.alloc(varint());
  let o = 0;
  while (pos < delta.length) {
    const op = delta[pos++];
    if (op & 0x80) {
      let off = 0,
        size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) off |= delta[pos++] << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size |= delta[pos++] << (8 * i);
      off >>>= 0;
      if (size === 0) size = 0x10000;
      base.copy(out, o, off, off + size);
      o += size;
    } else if (op) {
      delta.copy(out, o, pos, pos + op);
      o += op;
      pos += op;
    } else {
      throw new Error("git bundle: invalid delta instruction 0");
    }
  }
  if (o !== out.length) throw new Error("git bundle: delta result size mismatch");
  return out;
}

/** Every object of the pack as sha -> {type, data}. */
function readPack(buf, start) {
  if (buf.toString("latin1", start, start + 4) !== "PACK") throw new Error("git bundle: pack signature missing");
  const count = buf.readUInt32BE(start + 8);
  const byOffset = new Map(); // offset -> {type, data}, for OFS_DELTA bases
  const bySha = new Map();
  const pending = []; // REF_DELTAs whose base came later
  const store = (offset, type, data) => {
    const sha = createHash("sha1").update(`${type} ${data.length}\0`).update(data).digest("hex");
    const obj = { type, data };
    byOffset.set(offset, obj);
    bySha.set(sha, obj);
  };
  let pos = start + 12;
  for (let i = 0; i < count; i++) {
    const offset = pos;
    let c = buf[pos++];
    const type = (c >> 4) & 7;
    while (c & 0x80) c = buf[pos++]; // the inflated size is checked by inflate itself
    let baseOffset = -1,
      baseSha = null;
    if (type === OFS_DELTA) {
      c = buf[pos++];
      let back = c & 0x7f;
      while (c & 0x80) {
        c = buf[pos++];
        back = (back + 1) * 128 + (c & 0x7f);
      }
      baseOffset = offset - back;
    } else if (type === REF_DELTA) {
      baseSha = buf.toString("hex", pos, pos + 20);
      pos += 20;
    }
    const { buffer: data, engine } = inflateSync(buf.subarray(pos), { info: true });
    pos += engine.bytesWritten;
    if (TYPES[type]) store(offset, TYPES[type], data);
    else if (type === OFS_DELTA) {
      const base = byOffset.get(baseOffset);
      if (!base) throw new Error("git bundle: delta base not found");
      store(offset, base.type, applyDelta(base.data, data));
    } else if (type === REF_DELTA) {
      const base = bySha.get(baseSha);
      if (base) store(offset, base.type, applyDelta(base.data, data));
      else pending.push({ offset, baseSha, data });
    } else {
      throw new Error(`git bundle: unknown object type ${type}`);
    }
  }
  for (let progress = true; pending.length && progress;) {
    progress = false;
    for (let i = pending.length - 1; i >= 0; i--) {
      const base = bySha.get(pending[i].baseSha);
      if (!base) continue;
      store(pending[i].offset, base.type, applyDelta(base.data, pending[i].data));
      pending.splice(i, 1);
      progress = true;
    }
  }
  if (pending.length) throw new Error("git bundle: delta base missing from the pack");
  return bySha;
}

function get(objects, sha, type) {
  const o = objects.get(sha);
  if (!o || o.type !== type) throw new Error(`git bundle: ${type} ${sha} missing`);
  return o.data;
}

function writeTree(objects, sha, dir) {
  mkdirSync(dir, { recursive: true });
  const tree = get(objects, sha, "tree");
  let pos = 0;
  while (pos < tree.length) {
    const sp = tree.indexOf(0x20, pos);
    const nul = tree.indexOf(0, sp);
    const mode = tree.toString("latin1", pos, sp);
    const name = tree.toString("utf8", sp + 1, nul);
    const child = tree.toString("hex", nul + 1, nul + 21);
    pos = nul + 21;
    if (name.includes("/") || name === ".." || name === ".") throw new Error(`git bundle: unsafe path ${name}`);
    const path = join(dir, name);
    if (mode === "40000") writeTree(objects, child, path);
    else if (mode === "120000") symlinkSync(get(objects, child, "blob").toString(), path);
    else if (mode === "160000")
      mkdirSync(path, { recursive: true }); // submodule: left empty, as git clone does
    else writeFileSync(path, get(objects, child, "blob"), { mode: mode === "100755" ? 0o755 : 0o644 });
  }
}

/** The commit sha of the bundle's HEAD (or its only ref), read from its header alone. */
export function bundleHead(bundlePath) {
  const fd = openSync(bundlePath, "r");
  const buf = Buffer.alloc(1 << 16);
  const n = readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  const { refs } = parseHeader(buf.subarray(0, n));
  const head = refs.find((r) => r.ref === "HEAD") ?? refs[0];
  if (!head) throw new Error("git bundle: no refs");
  return head.sha;
}

/** Writes the working tree of the bundle's HEAD (or its only ref) into `dest` (created). Returns the commit sha. */
export function unpackGitBundle(bundlePath, dest) {
  const buf = readFileSync(bundlePath);
  const { refs, packStart } = parseHeader(buf);
  const head = refs.find((r) => r.ref === "HEAD") ?? refs[0];
  if (!head) throw new Error("git bundle: no refs");
  const objects = readPack(buf, packStart);
  const commit = get(objects, head.sha, "commit").toString();
  const m = /^tree ([0-9a-f]{40})$/m.exec(commit);
  if (!m) throw new Error("git bundle: commit without a tree");
  writeTree(objects, m[1], dest);
  return head.sha;
}
