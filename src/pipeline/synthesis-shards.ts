// The synthesize stage split over processes or machines (`msr-rec pipeline --only synthesize
// --shard i/N|auto`, then `--merge`). A shard asks the teacher for its users only and keeps the
// answers in teacher/shards/shard-i-of-N/answers.jsonl. The merge copies every shard's answers
// into the run's own store and then runs the stage as usual: every prompt is found answered, so
// nothing is paid twice and the result is exactly the single-process run's.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { AnswerStore, parseStoreText } from "../teacher/store.js";
import { shardDirName, type Shard } from "../teacher/synthesize.js";
import { runLayout } from "../run/layout.js";

export function synthesisShardDir(runDir: string, shard: Shard): string {
  return join(runLayout(runDir).teacher, "shards", shardDirName(shard));
}

/** Copies the answers of all N finished shards into teacher/answers.jsonl; returns how many were new. */
export function mergeSynthesisShards(runDir: string): number {
  const root = join(runLayout(runDir).teacher, "shards");
  const dirs = existsSync(root) ? readdirSync(root).filter((d) => /^shard-\d+-of-\d+$/.test(d)) : [];
  if (dirs.length === 0) throw new Error(`no synthesis shards in ${root}; run \`msr-rec pipeline --only synthesize --shard i/N\` (or --shard auto) first`);
  const counts = new Set(dirs.map((d) => Number(/-of-(\d+)$/.exec(d)![1])));
  if (counts.size !== 1) throw new Error(`${root} mixes shard counts (${[...counts].join(", ")}); keep the shards of one N`);
  const n = [...counts][0]!;
  const store = AnswerStore.open(join(runLayout(runDir).teacher, "answers.jsonl"));
  let added = 0;
  try {
    for (let index = 0; index < n; index++) {
      const dir = synthesisShardDir(runDir, { index, count: n });
      if (!existsSync(join(dir, "synthesis-stats.json"))) {
        throw new Error(`synthesis shard ${index}/${n} is not finished (${dir}); run \`msr-rec pipeline --only synthesize --shard ${index}/${n}\` before merging`);
      }
      const file = join(dir, "answers.jsonl");
      if (!existsSync(file)) continue; // a shard without users asks nothing
      for (const a of parseStoreText(readFileSync(file, "utf8"), file).answers) {
        if (store.get(a.key)) continue;
        store.append(a);
        added++;
      }
    }
  } finally {
    store.close();
  }
  return added;
}
