// Command-line values. Only their syntax is read here (text to a number); whether a value is
// allowed is the rule of the option's owner (src/util/options.ts), reported under the flag.
import type { OptionNames } from "../util/options.js";

/** A flag's number: NaN for text that is not one (so the owner's rule names it), undefined passes. */
export function numberArg(text: string): number;
export function numberArg(text: string | undefined): number | undefined;
export function numberArg(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  return text.trim() === "" ? Number.NaN : Number(text);
}

/** Option keys as flags: `batchSize` is `--batch-size` unless `flags` names it otherwise. */
export function flagNames(flags: Readonly<Record<string, string>> = {}): OptionNames {
  return (key) => flags[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/**
 * The command that runs shard `i/N` of what this process merges: this very command line with
 * `--merge` (and any --shard) replaced by `--shard i/N`, for the messages that name a shard to redo.
 */
export function shardCommandLine(
  argv: readonly string[] = process.argv,
): (shard: { index: number; count: number }) => string {
  const args: string[] = [];
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--merge") continue;
    if (a === "--shard") {
      i++;
      continue;
    }
    if (a.startsWith("--shard=")) continue;
    args.push(a);
  }
  return (s) => ["msr-rec", ...args, "--shard", `${s.index}/${s.count}`].map(shellWord).join(" ");
}
