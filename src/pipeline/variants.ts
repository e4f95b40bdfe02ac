// Which inference runs a config asks for, and on which test users. Each variant names the adapter
// it uses (a train variant, or none for the base model) and its prompt mode, and says which rows
// of the results it feeds.
import type { PreparedDataset } from "../prompts/dataset.js";
import type { RowKind } from "../run/results.js";
import { trainVariants, type RunConfig } from "./config.js";
import { RL_VARIANT } from "../run/layout.js";

export interface InferVariant {
  /** File stem under infer/. */
  name: string;
  /** Row label in the results. */
  label: string;
  kind: RowKind;
  /** Train variant whose best adapter is used (or RL_VARIANT: the rl stage's); null = the base model alone. */
  adapter: string | null;
  /** "bidirectional": user + item prompts with Eq. 3 fusion; "single": one prompt (`template`). */
  mode: "bidirectional" | "single";
  /** The single prompt's template: the Figure-3 chain (`full`) or TALLRec's. */
  template?: "full" | "tallrec";
  /**
   * The input prefix the adapter was trained to continue (see trainedPrefix): "reasoning" after
   * `[reasoning_start]`, "behavior" after `[reasoning_start]\n` (w/o reason), "none" for the
   * base model, which was never fine-tuned and sees the bare template text, and for TALLRec,
   * trained on the title right after its prompt.
   */
  prefix: "reasoning" | "behavior" | "none";
  alpha?: number;
  beta?: number;
  /** False where the variant writes no reasoning by construction: no reasoning metrics, `note` says why. */
  reasoning: boolean;
  /** Said beside the variant's row. */
  note?: string;
}

/** What the TALLRec row is. */
export const TALLREC_NOTE =
  "instruction tuning without reasoning on TALLRec's Alpaca prompt, with the choose-one-candidate instruction (TALLRec itself asks yes/no about one item); trained like w/o reason; no reasoning to score";

/** What the GRPO row is, with the run's KL weight (rl.beta). */
export function grpoNote(beta: number): string {
  const kl = beta > 0 ? `KL ${beta} to the SFT adapter` : "no KL penalty";
  return `the MSR-Rec adapter refined by GRPO after SFT (the rl stage: rule rewards on the ground-truth title, ${kl}), the best step by validation HitRatio@1`;
}

/** Why `w/o reason` has no reasoning metrics. */
export const WITHOUT_REASONING_NOTE =
  "trained without reasoning and generated past it (from `[reasoning_start]\n`): no reasoning to score, so METEOR, BERTScore and GPTScore do not apply (the paper's row scores whatever its model wrote)";

export function inferVariants(c: RunConfig): InferVariant[] {
  const out: InferVariant[] = [];
  for (const t of trainVariants(c)) {
    if (t.name === "msr") {
      out.push({
        name: "msr",
        label: "MSR-Rec",
        kind: "msr",
        adapter: "msr",
        mode: "bidirectional",
        prefix: "reasoning",
        alpha: t.alpha,
        beta: t.beta,
        reasoning: true,
      });
      if (c.rl.enabled)
        out.push({
          name: RL_VARIANT,
          label: "MSR-Rec + GRPO",
          kind: "msr",
          adapter: RL_VARIANT,
          mode: "bidirectional",
          prefix: "reasoning",
          reasoning: true,
          note: grpoNote(c.rl.beta),
        });
      if (c.ablations.full)
        out.push({
          name: "msr-full",
          label: "MSR-Rec (full)",
          kind: "ablation",
          adapter: "msr",
          mode: "single",
          template: "full",
          prefix: "reasoning",
          reasoning: true,
        });
    } else if (t.format === "tallrec") {
      out.push({
        name: t.name,
        label: "TALLRec",
        kind: "baseline",
        adapter: t.name,
        mode: "single",
        template: "tallrec",
        prefix: "none",
        reasoning: false,
        note: TALLREC_NOTE,
      });
    } else if (t.name === "wo-reason") {
      out.push({
        name: "wo-reason",
        label: "MSR-Rec w/o reason",
        kind: "ablation",
        adapter: "wo-reason",
        mode: "bidirectional",
        prefix: "behavior",
        reasoning: false,
        note: WITHOUT_REASONING_NOTE,
      });
    } else {
      out.push({
        name: t.name,
        label: `MSR-Rec α/β ${t.alpha}/${t.beta}`,
        kind: "sweep",
        adapter: t.name,
        mode: "bidirectional",
        prefix: "reasoning",
        alpha: t.alpha,
        beta: t.beta,
        reasoning: true,
      });
    }
  }
  if (c.ablations.baseZeroShot)
    out.push({
      name: "base-zero-shot",
      label: "Base model (zero-shot)",
      kind: "baseline",
      adapter: null,
      mode: "single",
      template: "full",
      prefix: "none",
      reasoning: true,
    });
  return out;
}

/** The test users of a run: the first `infer.users` users in dataset order (all when 0). */
export function testUsers(c: RunConfig, ds: PreparedDataset): PreparedDataset["users"] {
  return c.infer.users > 0 ? ds.users.slice(0, c.infer.users) : ds.users;
}
