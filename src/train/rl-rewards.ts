// The reward of one sampled MSR-Rec output, from the rules evaluation judges outputs by: the answer
// after `[reasoning_end]` names the ground truth (LLaRA's title rule, src/infer/parse.ts), names
// exactly one candidate (ValidRatio's rule), and the output has its reasoning in place (the end
// marker, and every reasoning step the adapter was trained to write, found by the teacher's own
// step parser). Rule rewards on the chosen item, as Rec-R1 and MiniOneRec use.
import { parseOutput } from "../infer/parse.js";
import { REASONING_END } from "../prompts/build.js";
import { parseChain } from "../teacher/prune.js";

export interface RewardWeights {
  /** Added when the answer names exactly one candidate. */
  valid: number;
  /** Added when the end marker and every kept step are in place. */
  format: number;
}

export interface RewardParts {
  reward: number;
  hit: boolean;
  valid: boolean;
  format: boolean;
}

/**
 * `text` is the generated continuation of a prompt that ends in `[reasoning_start]`; `steps` the
 * teacher steps (1–4) the reasoning targets keep (train.reasoningSteps).
 */
export function outputReward(
  text: string,
  candidateTitles: readonly string[],
  targetIndex: number,
  steps: readonly number[],
  w: RewardWeights,
): RewardParts {
  const parsed = parseOutput(text, candidateTitles);
  const valid = parsed.choiceIndex >= 0;
  const hit = valid && parsed.choiceIndex === targetIndex;
  const chain = text.includes(REASONING_END) ? parseChain(parsed.reasoning).steps : null;
  const format = chain !== null && steps.every((s) => chain[s - 1] !== null);
  return { reward: (hit ? 1 : 0) + (valid ? w.valid : 0) + (format ? w.format : 0), hit, valid, format };
}
