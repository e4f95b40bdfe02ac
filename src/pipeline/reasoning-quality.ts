// The reasoning-quality scorers of the eval stage (METEOR, GPTScore, BERTScore) over the
// evaluator model.
import { meteorText } from "../eval/meteor.js";
import { gptScore } from "../eval/gptscore.js";
import { bertScore, meanBertScore } from "../eval/bertscore.js";
import type { RunConfig } from "./config.js";
import type { ReasoningQuality } from "./stages/eval.js";
import { openModel } from "./engine.js";
import { baseModelPath } from "./stages/base.js";

/**
 * Reasoning-quality scorers for the eval stage. METEOR needs nothing; GPTScore scores each
 * reasoning under the evaluator model (eval.evaluatorModel, else the base model) with the
 * coherence aspect prompt; BERTScore matches the evaluator's contextual token states (the last
 * layer's hidden state of each token, model.embed).
 *
 * `references` (the teacher's test references, in user order) fix BERTScore's rescaling baseline
 * once for the evaluator model, so that every row is rescaled alike; without them each call is
 * rescaled against its own mismatched pairs (for one-off use outside a run).
 */
export async function reasoningQuality(
  c: RunConfig,
  skipped: string[],
  references?: readonly string[],
): Promise<{ quality: ReasoningQuality; dispose(): void }> {
  const q: ReasoningQuality = {};
  if (c.eval.meteor)
    q.meteor = async (pairs) => pairs.reduce((a, p) => a + meteorText(p.reference, p.candidate), 0) / pairs.length;
  if (!c.eval.gptscore && !c.eval.bertscore) return { quality: q, dispose: () => {} };
  const path = c.eval.evaluatorModel ?? baseModelPath(c);
  const model = await openModel(path, c);
  const scorer = model.createScorer({ contextSize: c.model.contextSize });
  if (c.eval.gptscore) {
    q.gptscore = async (pairs) =>
      (
        await gptScore(
          pairs.map((p) => ({ text: p.candidate, context: p.context })),
          (reqs) => scorer.score(reqs.map((r) => ({ prompt: r.prompt, continuation: r.continuation }))),
          "coherence",
        )
      ).mean;
  }
  if (c.eval.bertscore) {
    // Contextual token vectors, as BERTScore uses: the evaluator's last-layer hidden states
    // (model.embed), each text encoded on its own, without the BOS row.
    const dim = model.info.embeddingSize;
    const embed = async (texts: readonly string[]) =>
      (await model.embed(texts)).map((e) =>
        Array.from({ length: e.length / dim - 1 }, (_, p) => e.subarray((p + 1) * dim, (p + 2) * dim)),
      );
    // One model's hidden states share a dominant direction, so even unrelated texts have high raw
    // cosines. As BERTScore's own rescaling does, F1 is rescaled against a baseline b:
    // (F1 − b) / (1 − b). BERTScore publishes one b per encoder model; here b is the mean F1 of
    // mismatched teacher references (each against the next user's) under the evaluator model,
    // computed once, so every row of the table is rescaled by the same b.
    const mismatched = async (cands: readonly string[], refs: readonly string[]) =>
      meanBertScore(
        await bertScore(
          cands,
          refs.map((_, i) => refs[(i + 1) % refs.length]!),
          embed,
        ),
      ).f1;
    let fixed: Promise<number> | null =
      references && references.length >= 2 ? mismatched(references, references) : null;
    const rescale = (f1: number, b: number) => (b < 1 ? (f1 - b) / (1 - b) : 0);
    q.bertscore = async (pairs) => {
      const cands = pairs.map((p) => p.candidate);
      const refs = pairs.map((p) => p.reference);
      const f1 = meanBertScore(await bertScore(cands, refs, embed)).f1;
      if (fixed) return rescale(f1, await fixed);
      return pairs.length < 2 ? f1 : rescale(f1, await mismatched(cands, refs));
    };
    // A missing reasoning matches nothing: F1 = 0, rescaled by the same baseline as the row.
    q.bertscoreMissing = async (pairs) => {
      if (fixed) return rescale(0, await fixed);
      return pairs.length < 2
        ? 0
        : rescale(
            0,
            await mismatched(
              pairs.map((p) => p.candidate),
              pairs.map((p) => p.reference),
            ),
          );
    };
    if (fixed) {
      const b = await fixed;
      fixed = Promise.resolve(b);
      skipped.push(
        `BERTScore: F1 of the evaluator model's contextual last-layer token states (${path}; not the original's RoBERTa-large), rescaled by one baseline for that model, b = ${b.toFixed(4)} (mean F1 of mismatched teacher references), the same for every row; a missing reasoning scores ${rescale(0, b).toFixed(4)} (F1 = 0 rescaled)`,
      );
    } else {
      skipped.push(
        "BERTScore encodes with the evaluator model's contextual last-layer states (not the original's RoBERTa-large) and, without references to fix a baseline, is rescaled per row against that row's mismatched pairs",
      );
    }
  }
  return {
    quality: q,
    dispose: () => {
      scorer.dispose();
      model.dispose();
    },
  };
}
