#!/usr/bin/env node
// The `msr-rec` command. Each subcommand lives in its own file under ./commands and exports
// `register(program)`; they are discovered at start-up so adding a command touches one file.
import { Command } from "commander";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import { packageRoot } from "../util/paths.js";

export interface CommandModule {
  register(program: Command): void;
}

async function main(argv: string[]): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };
  const program = new Command("msr-rec")
    .description("MSR-Rec: multi-step reasoning-enhanced LLM sequential recommendation")
    .version(pkg.version)
    .showHelpAfterError();
  const dir = join(dirname(fileURLToPath(import.meta.url)), "commands");
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(ext) && !f.endsWith(".d.ts"))
    .sort()) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as CommandModule;
    mod.register(program);
  }
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  // User-facing errors carry their own advice; print the message, not a stack.
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`msr-rec: ${msg}\n`);
  if (process.env.MSR_REC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
