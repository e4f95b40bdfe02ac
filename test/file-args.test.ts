// The TS API's check of file arguments (src/util/file-args.ts): what reaches the native addon is a
// path without NUL bytes, an input that is a file, an output that is not a folder, sits in an
// existing folder and is none of the call's inputs (compared as files: a hard link and a symlink
// to the input are the input).
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inputFile, outputFile } from "../src/util/file-args.js";

const dir = mkdtempSync(join(tmpdir(), "msr-rec-file-args-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, "model.gguf");
writeFileSync(file, "x");
linkSync(file, join(dir, "hard.gguf"));
symlinkSync(file, join(dir, "soft.gguf"));
mkdirSync(join(dir, "sub"));

describe("file arguments", () => {
  it("refuse what is not a path, and NUL bytes, for inputs and outputs alike", () => {
    for (const check of [(p: unknown) => inputFile(p, "load"), (p: unknown) => outputFile(p, "save")]) {
      expect(() => check(42)).toThrow(TypeError);
      expect(() => check("")).toThrow(/non-empty string/);
      expect(() => check(`${file}\0.new`)).toThrow(/NUL byte/);
    }
  });

  it("an input is an existing file, not a folder", () => {
    expect(inputFile(file, "load")).toBe(file);
    expect(() => inputFile(join(dir, "nope.gguf"), "loadModel", "model file")).toThrow(
      /loadModel: no model file at .*nope\.gguf/,
    );
    expect(() => inputFile(join(dir, "sub"), "load")).toThrow(/is a folder/);
  });

  it("an output is not a folder, its folder exists, and it is not an input under any name", () => {
    expect(outputFile(join(dir, "new.gguf"), "save", [file])).toBe(join(dir, "new.gguf"));
    expect(() => outputFile(join(dir, "sub"), "save")).toThrow(/is a folder/);
    expect(() => outputFile(join(dir, "missing", "a.gguf"), "save")).toThrow(/the folder .*missing does not exist/);
    for (const name of ["model.gguf", "hard.gguf", "soft.gguf", "sub/../model.gguf"])
      expect(() => outputFile(join(dir, name), "quantizeModel", [file])).toThrow(/is the input file .* itself/);
    expect(() => outputFile(join(dir, "hard.gguf"), "quantizeModel", [join(dir, "soft.gguf")])).toThrow(/itself/);
  });
});
