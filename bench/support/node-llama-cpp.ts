// The baseline the scoring and fusion suites compare against: node-llama-cpp scoring a
// continuation through its public API, the way a user of that library would. It has no log-prob
// API, so each continuation position asks controlledEvaluate for next-token probabilities (it
// sorts the whole vocabulary in JS per position) and the target's probability is looked up.
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";

export class NodeLlamaCppScorer {
  private readonly seq: LlamaContextSequence;

  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly ctx: LlamaContext,
  ) {
    this.seq = ctx.getSequence();
  }

  static async open(modelPath: string, contextSize: number): Promise<NodeLlamaCppScorer> {
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath });
    return new NodeLlamaCppScorer(llama, model, await model.createContext({ contextSize }));
  }

  /** log P(continuation | prompt), both given as token ids (prompt with BOS). */
  async logprob(prompt: readonly number[], continuation: readonly number[]): Promise<number> {
    const all = [...prompt, ...continuation];
    const last = all.length - 1;
    const input = all.map((t, i): ControlledEvaluateInputItem =>
      i >= prompt.length - 1 && i < last ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token),
    );
    await this.seq.clearHistory();
    const res = await this.seq.controlledEvaluate(input);
    let lp = 0;
    for (let j = 0; j < continuation.length; j++) {
      const probs = res[prompt.length - 1 + j]?.next?.probabilities;
      if (!probs) throw new Error("node-llama-cpp returned no probabilities");
      lp += Math.log(probs.get(continuation[j]! as Token) ?? 0);
    }
    return lp;
  }

  async dispose(): Promise<void> {
    await this.ctx.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
