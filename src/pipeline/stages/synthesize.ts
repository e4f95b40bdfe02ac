// Synthesize stage: teacher prompts for every user's train split, the validation users and the
// test users; the teacher's reasoning pruned by τ (METHOD §2). A paid teacher's answers.jsonl
// lives outside the stage's outputs, so a re-run reuses it instead of paying again.
import { join } from "node:path";
import { loadTemplates } from "../../prompts/templates.js";
import { fillTemplate } from "../../prompts/build.js";
import { contextFor, sampleFor, type PreparedDataset, type PromptSample } from "../../prompts/dataset.js";
import { RulesTeacher } from "../../teacher/rules.js";
import { AnswerStore } from "../../teacher/store.js";
import { createTeacher } from "../../teacher/factory.js";
import { inShard, synthesize, writeSynthesisOutput, type Shard, type SynthesisJob } from "../../teacher/synthesize.js";
import type { Teacher } from "../../teacher/types.js";
import { runLayout } from "../../run/layout.js";
import type { RunConfig } from "../config.js";
import { loadRunDataset, trainSamples, validationUsers } from "../run-data.js";
import { copyShardAnswers, synthesisInputFiles, synthesisShardsRoot } from "../synthesis-shards.js";
import type { StageContext, StageSpec } from "../stages.js";
import { testUsers } from "../variants.js";

async function makeTeacher(c: RunConfig, ds: PreparedDataset): Promise<Teacher> {
  if (c.teacher.kind === "rule") return new RulesTeacher(ds.items, ds.users);
  if (c.teacher.kind === "openai" && !c.teacher.endpoint) {
    throw new Error(
      'teacher.kind "openai" needs teacher.endpoint (e.g. "https://api.deepseek.com") and teacher.model (e.g. "deepseek-reasoner")',
    );
  }
  return createTeacher({
    kind: c.teacher.kind,
    dataset: ds,
    baseUrls: c.teacher.endpoint ? [c.teacher.endpoint] : [],
    model: c.teacher.model,
    apiKeyEnv: c.teacher.apiKeyEnv,
  });
}

/** Every sample the teacher is asked about: the train split (train.positions), validation and test users. */
export function synthesisSamples(c: RunConfig, ds: PreparedDataset): PromptSample[] {
  return [
    ...trainSamples(c, ds),
    ...validationUsers(c, ds).map((u) => sampleFor(u, "valid", c.dataset.historyLength)),
    // Test-split paths are never trained on: they are the references for METEOR / BERTScore.
    ...testUsers(c, ds).map((u) => sampleFor(u, "test", c.dataset.historyLength)),
  ];
}

/** What the synthesize stage will ask for, said before it asks (train.positions "all" multiplies it). */
export function synthesisCost(c: RunConfig, ds: PreparedDataset): string {
  const samples = synthesisSamples(c, ds);
  const train = samples.filter((s) => s.split === "train").length;
  const per = c.train.positions === "all" ? "every training position" : "one per user";
  return `${samples.length} teacher prompts (${train} train samples, ${per}; ${samples.length - train} validation and test), at most ${samples.length * (c.teacher.tau + c.teacher.maxRetries)} teacher calls (τ ${c.teacher.tau} + ${c.teacher.maxRetries} retries each)`;
}

/**
 * Synthesis stage: teacher prompts for every user's train split, the validation users and the test
 * users. With a shard, only that shard's users, into the shard's folder (see synthesis-shards.ts).
 */
export async function synthesizeStage(c: RunConfig, part?: { shard: Shard; dir: string }): Promise<void> {
  const L = runLayout(c.runDir);
  const ds = loadRunDataset(c);
  const templates = loadTemplates();
  const samples = synthesisSamples(c, ds);
  const jobs: SynthesisJob[] = samples
    .filter((sample) => !part || inShard(sample.user, part.shard))
    .map((sample) => {
      const ctx = contextFor(ds, sample);
      return { sample, prompt: fillTemplate(templates.teacher, ctx), candidateTitles: [...ctx.candidates] };
    });
  // The answer store lives outside the stage's declared outputs: paid answers survive a re-run.
  const outDir = part ? part.dir : L.teacher;
  const store = AnswerStore.open(join(outDir, "answers.jsonl"));
  const teacher = await makeTeacher(c, ds);
  try {
    const { records, stats } = await synthesize(jobs, {
      teacher,
      store,
      tau: c.teacher.tau,
      maxRetries: c.teacher.maxRetries,
    });
    writeSynthesisOutput(outDir, records, stats);
  } finally {
    store.close();
    await teacher.close?.();
  }
}

export function synthesizeSpec({ c, log }: StageContext): StageSpec {
  return {
    stage: "synthesize",
    inputs: {
      teacher: c.teacher,
      history: c.dataset.historyLength,
      validUsers: c.train.validUsers,
      inferUsers: c.infer.users,
      ...(c.train.positions !== "last" ? { positions: c.train.positions } : {}),
    },
    // A paid teacher's answers.jsonl is never removed: re-runs reuse it instead of paying again.
    outputs: [
      "teacher/reasoning.jsonl",
      "teacher/synthesis-stats.json",
      ...(c.teacher.kind === "rule" ? ["teacher/answers.jsonl"] : []),
    ],
    run: async () => {
      log(`[synthesize] ${synthesisCost(c, loadRunDataset(c))}`);
      await synthesizeStage(c);
    },
    sharded: {
      root: synthesisShardsRoot(c.runDir),
      files: () => synthesisInputFiles(c),
      runShard: (shard, dir) => synthesizeStage(c, { shard, dir }),
      merge: async (dirs) => {
        log(`[synthesize] merged ${copyShardAnswers(c.runDir, dirs)} shard answers into the run's store`);
        await synthesizeStage(c);
      },
    },
  };
}
