// The published declarations carry the product only. The development hooks (native/dev, typed in
// src/engine/bindings.ts as @internal) and the former public test hooks must not appear in what
// `tsc` emits for the package, and the declarations left after stripping @internal members must
// still type-check on their own (no reference to something stripped).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import { packageRoot } from "../src/util/paths.js";

// Names of the development surface, and the test hooks the public wrappers used to carry.
const DEV_NAMES = [
  "devAddon",
  "NativeDevAddon",
  "nativeAddon",
  "outProdCheck",
  "denseCrossEntropyGgml",
  "fusedCrossEntropy",
  "decodeOnly",
  "scorerDecodeOnly",
  "scorerLogits",
  "referenceLogits",
  "trainerReferenceLogits",
  "trainerLogits",
  "getGrad",
  "trainerGrad",
];

// Inside the repository (ignored .cache/), so the declarations resolve their imports (zod,
// node-llama-cpp) from its node_modules as they would from a consumer's.
mkdirSync(join(packageRoot, ".cache"), { recursive: true });
const out = mkdtempSync(join(packageRoot, ".cache", "dts-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Emits the declarations of the package's entry point with the repository's own compiler options. */
function emitDeclarations(): { files: string[]; diagnostics: readonly ts.Diagnostic[] } {
  const configPath = join(packageRoot, "tsconfig.json");
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  );
  if (!config) throw new Error(`cannot read ${configPath}`);
  const options = {
    ...config.options,
    outDir: out,
    declarationDir: out,
    emitDeclarationOnly: true,
    declaration: true,
    sourceMap: false,
    declarationMap: false,
  };
  const program = ts.createProgram([join(packageRoot, "src", "index.ts")], options);
  const result = program.emit();
  return { files: filesUnder(out).filter((f) => f.endsWith(".d.ts")), diagnostics: result.diagnostics };
}

describe("published declarations", () => {
  it("tsconfig.json strips @internal declarations", () => {
    const config = ts.readConfigFile(join(packageRoot, "tsconfig.json"), ts.sys.readFile).config as {
      compilerOptions: { stripInternal?: boolean };
    };
    expect(config.compilerOptions.stripInternal).toBe(true);
  });

  it("name no development hook, and type-check on their own", () => {
    const { files, diagnostics } = emitDeclarations();
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).toEqual([]);
    expect(files.map((f) => f.slice(out.length + 1))).toContain(join("src", "engine", "bindings.d.ts"));
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const name of DEV_NAMES)
        if (new RegExp(`\\b${name}\\b`).test(text)) found.push(`${name} in ${f.slice(out.length + 1)}`);
      // A member named `logits` (the scorer's and trainer's former test hooks), as a method or property.
      if (/^\s*logits\s*[(:?]/m.test(text)) found.push(`a logits member in ${f.slice(out.length + 1)}`);
    }
    expect(found).toEqual([]);

    // What a consumer compiling against the package sees: every declaration file, no skipLibCheck.
    const check = ts.createProgram(files, {
      noEmit: true,
      skipLibCheck: false,
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ["node"],
    });
    const errors = ts
      .getPreEmitDiagnostics(check)
      .map((d) => `${d.file?.fileName ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    expect(errors).toEqual([]);
  }, 120_000);

  it("the package's entry point exports no development hook at run time", () => {
    for (const name of DEV_NAMES) expect(Object.keys(api), name).not.toContain(name);
  });
});
