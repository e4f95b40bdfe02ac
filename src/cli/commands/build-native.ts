// `msr-rec build-native`: (re)builds the native addon of the installed package. npm runs the same
// script at install time; this command is for installs whose script policy skipped it
// (`--ignore-scripts`, a strict `allowScripts`), and for switching an installed copy to CUDA.
import type { Command } from "commander";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../util/paths.js";

export function register(program: Command): void {
  program
    .command("build-native")
    .description("build the native addon from llama.cpp source (the step npm runs at install)")
    .option("--cuda", "build with the CUDA backend (needs nvcc); same as MSR_REC_CUDA=1")
    .option("--cuda-arch <list>", 'CUDA architectures, e.g. "80;90" (default: native)')
    .option("--force", "rebuild even when the addon is up to date")
    .action((opts: { cuda?: boolean; cudaArch?: string; force?: boolean }) => {
      const args = [join(packageRoot, "scripts", "build-native.mjs")];
      if (opts.cuda) args.push("--cuda");
      if (opts.cudaArch) args.push("--cuda-arch", opts.cudaArch);
      if (opts.force) args.push("--force");
      const r = spawnSync(process.execPath, args, { stdio: "inherit", cwd: packageRoot });
      // The script prints its own one-line diagnosis; only the status travels back.
      process.exitCode = r.status ?? 1;
    });
}
