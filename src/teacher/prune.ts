// Parsing and pruning of a teacher's five-step chain (METHOD.md §2). A path is kept only if all
// five steps are present and non-empty (completeness) and Step 5 names the ground truth under the
// strict title rule of the metrics (consistency: a title contained in a longer one does not count). Kept reasoning is steps 1–4 with normalised
// headers, so every training target reads the same way whatever markdown the teacher used.
import { matchTitleStrict } from "../eval/title-match.js";

export const STEP_NAMES = [
  "Preference Recognition",
  "Attribute Analysis",
  "Logic Matching",
  "Summary",
  "Recommendation",
] as const;

export type RejectReason = "empty" | "missing-steps" | "no-candidate-named" | "several-candidates-named" | "wrong-item";

export interface ParsedChain {
  /** Body of step 1..5 (index 0..4); null when the step is absent or empty. */
  steps: (string | null)[];
}

export type PruneResult =
  | { valid: true; reasoning: string; recommendation: string; index: number }
  | { valid: false; reason: RejectReason; detail: string };

function headerPattern(step: number): RegExp {
  // "Step 3 - Logic Matching:", "**Step 3: Logic Matching**", "### Step 3." or a bare
  // "Logic Matching:" heading, each at a line start (after markdown marks): a step named inside a
  // sentence ("as Step 2 shows") is not a header. The match ends on its own line, so a header
  // with an empty body leaves the next line's header to be found.
  const name = STEP_NAMES[step - 1]!.replace(/ /g, "\\s+");
  return new RegExp(
    `(?<![^\\n])[ \\t#>*_-]*(?:Step\\s*${step}\\b(?:\\s*[-–—:.)]*\\s*(?:\\*\\*)?\\s*${name})?|${name}\\b)[ \\t*_]*[:.\\-–—)]?[ \\t*_]*`,
    "gi",
  );
}

/** Finds steps 1..5 in order (each header searched after the previous one). */
export function parseChain(answer: string): ParsedChain {
  const starts: { head: number; body: number }[] = [];
  let from = 0;
  for (let step = 1; step <= 5; step++) {
    const re = headerPattern(step);
    re.lastIndex = from;
    const m = re.exec(answer);
    if (!m) {
      starts.push({ head: -1, body: -1 });
      continue;
    }
    starts.push({ head: m.index, body: m.index + m[0].length });
    from = m.index + m[0].length;
  }
  const steps = starts.map((s, i) => {
    if (s.head === -1) return null;
    const next = starts.slice(i + 1).find((n) => n.head !== -1);
    const body = answer.slice(s.body, next ? next.head : answer.length);
    const clean = body.replace(/^[\s*_#:>-]+|[\s*_#>-]+$/g, "");
    return clean.length > 0 ? clean : null;
  });
  return { steps };
}

/** Steps 1–4 under uniform headers: the text that goes between the reasoning markers. */
export function formatReasoning(steps: readonly (string | null)[]): string {
  return steps
    .slice(0, 4)
    .map((body, i) => `Step ${i + 1} - ${STEP_NAMES[i]}: ${body ?? ""}`)
    .join("\n");
}

/** Accepts or rejects one answer against the candidate titles and the ground-truth index. */
export function prunePath(answer: string, candidates: readonly string[], targetIndex: number): PruneResult {
  if (answer.trim() === "") return { valid: false, reason: "empty", detail: "the answer is empty" };
  const { steps } = parseChain(answer);
  const missing = steps.flatMap((s, i) => (s === null ? [i + 1] : []));
  if (missing.length > 0)
    return { valid: false, reason: "missing-steps", detail: `step(s) ${missing.join(", ")} missing or empty` };
  // The strict rule: a title inside a longer candidate title ("Alien" in "Aliens") is not named.
  const m = matchTitleStrict(steps[4]!, candidates);
  if (m.matched.length === 0)
    return { valid: false, reason: "no-candidate-named", detail: "step 5 names no candidate title" };
  if (!m.valid)
    return { valid: false, reason: "several-candidates-named", detail: `step 5 names ${m.matched.length} candidates` };
  if (m.index !== targetIndex)
    return {
      valid: false,
      reason: "wrong-item",
      detail: `step 5 names "${candidates[m.index]}", not the ground truth`,
    };
  return { valid: true, reasoning: formatReasoning(steps), recommendation: candidates[m.index]!, index: m.index };
}

/**
 * What a teacher's answer recommends, as the student's answer is judged: the body of its Step 5
 * when it has one (the text after the reasoning, as the student's answer follows
 * `[reasoning_end]`), else the whole answer (as a student output without an end marker).
 */
export function teacherRecommendation(answer: string): string {
  return parseChain(answer).steps[4] ?? answer;
}
