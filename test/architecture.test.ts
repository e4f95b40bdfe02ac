// The source folders form layers, lowest first; a module may import from its own folder, from a
// folder of its own layer, or from a lower layer, never from a higher one, and no two folders
// import each other (directly or around a longer loop). The imports are read from the files
// themselves (static, re-export, type-only and dynamic ones alike), so a new arrow that climbs
// fails here with the file that draws it.
import { readdirSync, readFileSync } from "node:fs";
import { join, posix, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/util/paths.js";

const LAYERS: readonly (readonly string[])[] = [
  ["util"],
  ["gguf", "data", "engine"],
  ["prompts", "eval"],
  ["teacher", "train", "infer"],
  ["run"],
  ["pipeline", "report"],
  ["cli"],
  // src/index.ts: the public API re-exports every layer.
  ["(root)"],
];

const srcDir = join(packageRoot, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/** src-relative path with forward slashes, e.g. "engine/trainer.ts". */
const rel = (file: string) => relative(srcDir, file).split(sep).join("/");

/** The folder directly under src/ a module belongs to ("(root)" for src/index.ts). */
function folderOf(srcPath: string): string {
  const i = srcPath.indexOf("/");
  return i === -1 ? "(root)" : srcPath.slice(0, i);
}

/** Relative module specifiers of every import, export-from and dynamic import in `code`. */
export function importSpecifiers(code: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  const withoutComments = code.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const re of patterns) for (const m of withoutComments.matchAll(re)) if (m[1]!.startsWith(".")) out.push(m[1]!);
  return out;
}

interface Arrow {
  from: string;
  to: string;
  file: string;
  target: string;
}

function folderArrows(): Arrow[] {
  const arrows: Arrow[] = [];
  for (const file of sourceFiles(srcDir)) {
    const from = rel(file);
    for (const spec of importSpecifiers(readFileSync(file, "utf8"))) {
      const target = posix.normalize(posix.join(posix.dirname(from), spec));
      if (target.startsWith("..")) continue; // outside src/ (package.json and the like)
      const [a, b] = [folderOf(from), folderOf(target)];
      if (a !== b) arrows.push({ from: a, to: b, file: from, target });
    }
  }
  return arrows;
}

const layerOf = (folder: string) => LAYERS.findIndex((l) => l.includes(folder));

/** One folder-level cycle (a list of folders, first repeated last), or null. */
function findCycle(edges: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, "open");
    stack.push(n);
    for (const m of [...(edges.get(n) ?? [])].sort()) {
      if (state.get(m) === "open") return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, "done");
    return null;
  };
  for (const n of [...edges.keys()].sort()) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe("architecture", () => {
  const arrows = folderArrows();

  it("reads the imports it checks", () => {
    expect(
      importSpecifiers(
        `import { a } from "./a.js";\nexport type { B } from "../b/b.js";\nimport "./side.js";\nconst m = await import("../c/c.js");\n// import { no } from "../x.js";`,
      ),
    ).toEqual(["./a.js", "../b/b.js", "./side.js", "../c/c.js"]);
    // The checks below see real arrows (the CLI reaches the pipeline, the pipeline the engine).
    expect(arrows.some((a) => a.from === "cli" && a.to === "pipeline")).toBe(true);
    expect(arrows.some((a) => a.from === "pipeline" && a.to === "engine")).toBe(true);
  });

  it("places every source folder in a layer", () => {
    const folders = new Set(sourceFiles(srcDir).map((f) => folderOf(rel(f))));
    expect([...folders].filter((f) => layerOf(f) === -1)).toEqual([]);
  });

  it("has no import that climbs the layer order", () => {
    const climbing = arrows
      .filter((a) => layerOf(a.to) > layerOf(a.from))
      .map((a) => `${a.file} -> ${a.target} (${a.from} may not import ${a.to})`);
    expect(climbing).toEqual([]);
  });

  it("has no cycle between folders", () => {
    const edges = new Map<string, Set<string>>();
    for (const a of arrows) (edges.get(a.from) ?? edges.set(a.from, new Set()).get(a.from)!).add(a.to);
    expect(findCycle(edges)).toBeNull();
  });
});
