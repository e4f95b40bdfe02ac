import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (the folder holding msr-rec's package.json), from src/ or dist/src/ alike. */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "native"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("msr-rec: cannot locate the package root");
    dir = up;
  }
})();

/** A file inside the package that node-llama-cpp ships (it does not export ./package.json). */
export function nodeLlamaCppDir(): string {
  for (let dir = packageRoot; ; dir = dirname(dir)) {
    const p = join(dir, "node_modules", "node-llama-cpp");
    if (existsSync(join(p, "package.json"))) return p;
    if (dirname(dir) === dir) throw new Error("node-llama-cpp is not installed: run `npm install`");
  }
}

/** The unpacked llama.cpp source (models/ggml-vocab-*.gguf live here); made by the native build. */
export function llamaCppSourceDir(): string {
  const dir = join(packageRoot, ".cache", "llama.cpp");
  if (!existsSync(join(dir, "models"))) {
    throw new Error(
      `llama.cpp source not found at ${dir}: run \`npm run build:native\` (it unpacks node-llama-cpp's bundle)`,
    );
  }
  return dir;
}
