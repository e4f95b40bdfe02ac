// msr-rec's changes to llama.cpp's source (native/patches/*.patch, unified diffs), applied in plain
// Node to the tree unpacked from node-llama-cpp's bundle: no git or patch program needed.
//
// The patches' names and bytes are part of the unpacked tree's tag, the addon's stamp and the
// llama.cpp library cache's key, so a changed patch re-unpacks and rebuilds, and a patched build
// never serves or takes an unpatched cache entry.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The patches in `dir` in name order: `[{ name, text }]` (none when the folder is missing). */
export function readPatches(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".patch"))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), "utf8") }));
}

/** One string naming the patches' contents ("" for none): a hash over names and bytes. */
export function patchesId(patches) {
  if (patches.length === 0) return "";
  const h = createHash("sha256");
  for (const p of patches) h.update(p.name).update("\0").update(p.text).update("\0");
  return h.digest("hex").slice(0, 16);
}

/** The files and hunks of a unified diff: `[{ path, hunks: [{ start, old: [], new: [] }] }]`. */
export function parseUnifiedDiff(text) {
  const lines = text.split("\n");
  const files = [];
  let file = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ")) {
      const target = lines[i + 1].slice(4).split("\t")[0].trim();
      file = { path: target.replace(/^b\//, ""), hunks: [] };
      files.push(file);
      i++;
      continue;
    }
    const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (!m) continue;
    if (!file) throw new Error(`a hunk before any file header (line ${i + 1})`);
    let oldLeft = m[2] === undefined ? 1 : Number(m[2]);
    let newLeft = m[4] === undefined ? 1 : Number(m[4]);
    const hunk = { start: Number(m[1]), old: [], new: [] };
    while (oldLeft > 0 || newLeft > 0) {
      const l = lines[++i];
      if (l === undefined) throw new Error(`hunk at line ${hunk.start} of ${file.path} is cut short`);
      if (l.startsWith("\\")) continue; // "\ No newline at end of file"
      const body = l.slice(1);
      if (l[0] === " " || l === "") {
        hunk.old.push(body);
        hunk.new.push(body);
        oldLeft--;
        newLeft--;
      } else if (l[0] === "-") {
        hunk.old.push(body);
        oldLeft--;
      } else if (l[0] === "+") {
        hunk.new.push(body);
        newLeft--;
      } else throw new Error(`unexpected line in a hunk of ${file.path}: ${JSON.stringify(l)}`);
    }
    file.hunks.push(hunk);
  }
  if (files.length === 0) throw new Error("no file in the diff");
  return files;
}

function matchesAt(lines, at, want) {
  if (at < 0 || at + want.length > lines.length) return false;
  return want.every((l, k) => lines[at + k] === l);
}

/**
 * Applies one unified diff under `dir`. Each hunk's old lines must appear exactly, at the stated
 * line or the nearest place to it; anything else throws, naming the file and line, and no file is
 * written until every hunk of every file has been placed.
 */
export function applyPatch(dir, text, name = "patch") {
  const writes = [];
  for (const file of parseUnifiedDiff(text)) {
    const path = join(dir, file.path);
    if (!existsSync(path)) throw new Error(`${name}: ${file.path} does not exist in the llama.cpp source`);
    const content = readFileSync(path, "utf8");
    const lines = content.split("\n");
    let shift = 0;
    for (const hunk of file.hunks) {
      const want = hunk.start - 1 + shift;
      let at = -1;
      for (let d = 0; d <= lines.length && at < 0; d++) {
        if (matchesAt(lines, want - d, hunk.old)) at = want - d;
        else if (matchesAt(lines, want + d, hunk.old)) at = want + d;
      }
      if (at < 0)
        throw new Error(
          `${name}: the hunk at line ${hunk.start} of ${file.path} does not match this llama.cpp source (was node-llama-cpp updated? the patch must be refreshed)`,
        );
      lines.splice(at, hunk.old.length, ...hunk.new);
      shift += at - (hunk.start - 1 + shift) + hunk.new.length - hunk.old.length;
    }
    writes.push([path, lines.join("\n")]);
  }
  for (const [path, content] of writes) writeFileSync(path, content);
}
