// msr-rec's patches to llama.cpp's source (scripts/llama-patches.mjs): unified diffs applied in
// plain Node to the unpacked tree, exactly or not at all, and named by a hash that the unpacked
// tree's tag, the addon's stamp and the library cache's key carry.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";

const patches = (await import(join(packageRoot, "scripts", "llama-patches.mjs"))) as {
  readPatches(dir: string): { name: string; text: string }[];
  patchesId(p: { name: string; text: string }[]): string;
  applyPatch(dir: string, text: string, name?: string): void;
};

const work = mkdtempSync(join(tmpdir(), "msr-rec-patches-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const original = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";
// Two hunks: a replacement near the top, an insertion further down.
const diff = `A description line before the diff.

--- a/src/f.txt
+++ b/src/f.txt
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -20,2 +20,4 @@
 line 20
+inserted a
+inserted b
 line 21
`;

describe("llama.cpp patches", () => {
  it("applies every hunk, also where the file's lines moved", () => {
    const dir = join(work, "a");
    rmSync(dir, { recursive: true, force: true });
    const src = join(dir, "src");
    freshDir(src);
    writeFileSync(join(src, "f.txt"), "an added first line\n" + original);
    patches.applyPatch(dir, diff);
    const want = ("an added first line\n" + original)
      .replace("line 3\n", "line three\n")
      .replace("line 20\nline 21\n", "line 20\ninserted a\ninserted b\nline 21\n");
    expect(readFileSync(join(src, "f.txt"), "utf8")).toBe(want);
  });

  it("refuses a hunk whose lines are not there, naming the file, and writes nothing", () => {
    const dir = join(work, "b");
    const src = join(dir, "src");
    freshDir(src);
    const changed = original.replace("line 21\n", "line twenty-one\n");
    writeFileSync(join(src, "f.txt"), changed);
    expect(() => patches.applyPatch(dir, diff, "f.patch")).toThrow(
      /f\.patch: the hunk at line 20 of src\/f\.txt does not match/,
    );
    expect(readFileSync(join(src, "f.txt"), "utf8")).toBe(changed);
  });

  it("names the patch set by its contents", () => {
    const a = [{ name: "x.patch", text: diff }];
    expect(patches.patchesId([])).toBe("");
    expect(patches.patchesId(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(patches.patchesId([{ name: "x.patch", text: diff + " " }])).not.toBe(patches.patchesId(a));
    expect(patches.patchesId([{ name: "y.patch", text: diff }])).not.toBe(patches.patchesId(a));
  });

  it("are applied to the unpacked llama.cpp source, whose tag names them", () => {
    const list = patches.readPatches(join(packageRoot, "native", "patches"));
    expect(list.map((p) => p.name)).toContain("llama-graph-f32-kv-cache.patch");
    const tree = join(packageRoot, ".cache", "llama.cpp");
    if (!existsSync(join(tree, ".msr-rec-tag"))) return; // not unpacked yet: nothing more to check
    expect(readFileSync(join(tree, ".msr-rec-tag"), "utf8")).toMatch(new RegExp(`patches ${patches.patchesId(list)}$`));
    expect(readFileSync(join(tree, "src", "llama-graph.cpp"), "utf8")).toContain(
      "k->type == GGML_TYPE_F32 && !is_cache(k)",
    );
  });
});

function freshDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
}
