// Crash corpus, limits and meanings: grammars deep or large enough to overflow llama.cpp's
// recursive grammar code (native/src/grammar_guard.h), sampler settings by meaning (a temperature
// whose logits would overflow), sizes that would overflow llama.cpp's int32 counts, pieces longer
// than a fixed buffer, and everything that could leave or hand back non-finite numbers (setParam,
// an AdamW update that overflows, logits past a huge LoRA scale, LoRA alpha 0).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { devAddon, native } from "../../src/engine/bindings.js";
import { loadModel } from "../../src/engine/index.js";
import { gguf, readGguf, readTensorF32 } from "../../src/gguf/index.js";
import { rewrite } from "./crash-fixtures.js";
import { assertFinite, TINY, withModel, type CrashCase } from "./crash-case-kit.js";

const sample = {
  tokens: Int32Array.from([1, 500, 600, 700, 800, 900]),
  segments: Uint8Array.from([0, 0, 1, 1, 2, 2]),
};

/** `root ::= r0`, `r0 ::= r1`, ..., `r<n> ::= "a"`: a chain of n + 2 rules, each reached before any character. */
function ruleChain(n: number): string {
  const lines = ["root ::= r0"];
  for (let i = 0; i < n; i++) lines.push(`r${i} ::= r${i + 1}`);
  lines.push(`r${n} ::= "a"`);
  return lines.join("\n");
}

const nested = (depth: number) => `root ::= ${"(".repeat(depth)}"a"${")".repeat(depth)}`;

/** One sample: BOS + a prompt token, then 3 completion tokens (segments other than the prompt). */
const POLICY_SAMPLE = () => ({
  tokens: Int32Array.from([1, 500, 600, 700]),
  lengths: Int32Array.from([4]),
  segments: Uint8Array.from([0, 1, 2, 2]),
});

export const LIMIT_CASES: Record<string, CrashCase> = {
  // ---- grammars ----
  "grammar: parentheses nested 20,000 deep": {
    run: (f) => withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 2, grammar: nested(20_000) })),
    error: /the grammar nests parentheses 20000 deep; grammars may nest at most 10000 levels/,
  },
  "grammar: parentheses nested 10,000 deep (the limit) parse and run": {
    run: (f) => withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 3, temperature: 0, grammar: nested(10_000) })),
    check: (v) => {
      const [r] = v as { text: string }[];
      if (r!.text !== "a") throw new Error(`not the grammar's one output: ${JSON.stringify(r)}`);
    },
  },
  "grammar: a chain of 70,000 rules parses and runs": {
    run: (f) =>
      withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 3, temperature: 0, grammar: ruleChain(70_000) })),
    check: (v) => {
      const [r] = v as { text: string }[];
      if (r!.text !== "a") throw new Error(`not the grammar's one output: ${JSON.stringify(r)}`);
    },
  },
  "grammar: a chain of 150,000 rules": {
    run: (f) => withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 2, grammar: ruleChain(150_000) })),
    error: /has 150002 rules .* grammars may have at most 100000 rules and 100000 references/,
  },
  "grammar: repetitions that expand past the rule limit": {
    // Each x{0,1999} becomes 1,999 rules; sixty of them pass 100,000.
    run: (f) =>
      withModel(f, (m) =>
        m.generate([[1, 500]], {
          maxTokens: 2,
          grammar: `root ::= ${Array.from({ length: 60 }, () => '"x"{0,1999}').join(" ")}`,
        }),
      ),
    error: /grammars may have at most 100000 rules/,
  },
  "grammar: 5 MiB of text": {
    run: (f) =>
      withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 2, grammar: `root ::= "a"${" ".repeat(5 << 20)}` })),
    error: /is \d+ bytes long; grammars are limited to 4194304 bytes/,
  },
  "grammar: the one deep grammar among per-prompt grammars is named": {
    run: (f) =>
      withModel(f, (m) =>
        m.generate(
          [
            [1, 500],
            [1, 600],
          ],
          { maxTokens: 2, grammars: ['root ::= "b"', nested(30_000)] },
        ),
      ),
    error: /grammars\[1\] nests parentheses 30000 deep/,
  },

  // ---- samplers and sizes ----
  "sampling: a temperature of 1e-45 is greedy": {
    run: (f) =>
      withModel(f, async (m) => {
        const [greedy] = await m.generate([[1, 500]], { maxTokens: 8, temperature: 0 });
        const [tiny] = await m.generate([[1, 500]], { maxTokens: 8, temperature: 1e-45 });
        return { greedy: Array.from(greedy!.tokens), tiny: Array.from(tiny!.tokens) };
      }),
    check: (v) => {
      const r = v as { greedy: number[]; tiny: number[] };
      if (r.greedy.length === 0 || r.greedy.join() !== r.tiny.join())
        throw new Error(`not greedy: ${JSON.stringify(r)}`);
    },
  },
  "sampling: a temperature of 1e39 (no float)": {
    run: (f) => withModel(f, (m) => m.generate([[1, 500]], { maxTokens: 2, temperature: 1e39 })),
    error: /temperature must be a number between 0 and 3\.4e38/,
  },
  "sizes: detokenize of 2^28 tokens": {
    run: (f) => withModel(f, async (m) => m.detokenize(new Int32Array(2 ** 28))),
    error: /has 268435456 token ids, more than any context holds/,
  },
  "sizes: a stop string inside a generated piece longer than 256 bytes": {
    // The tiny model's first greedy token gets a 345-byte text (its logits stay as they were), so
    // generation produces it first; stop strings are matched on the pieces, which must be whole.
    run: async (f) => {
      const [first] = await withModel(f, async (m) => {
        const [r] = await m.generate([[1, 500]], { maxTokens: 1, temperature: 0 });
        return Array.from(r!.tokens);
      });
      if (first === undefined) throw new Error("the tiny model ended at once; pick another prompt");
      const long = "piece".repeat(60) + "STOP" + "tail".repeat(10);
      const path = rewrite(f.model, join(f.dir, `long-first-${process.pid}.gguf`), {
        metadata: (md) => {
          const t = [...(md.get("tokenizer.ggml.tokens")!.value as string[])];
          t[first] = "\u2581" + long;
          md.set("tokenizer.ggml.tokens", gguf.strings(t));
        },
      });
      const m = await loadModel(path, TINY);
      try {
        const [r] = await m.generate([[1, 500]], { maxTokens: 4, temperature: 0, stop: ["STOP"] });
        return { first, text: r!.text, finishReason: r!.finishReason, tokens: r!.tokens.length };
      } finally {
        m.dispose();
      }
    },
    check: (v) => {
      const r = v as { text: string; finishReason: string; tokens: number };
      if (r.finishReason !== "stop" || r.text.trimStart() !== "piece".repeat(60) || r.tokens !== 0)
        throw new Error(`the stop string inside the long piece was missed: ${JSON.stringify(v).slice(0, 300)}`);
    },
  },
  "sizes: detokenize of few enough tokens whose text passes 2 GiB": {
    // 2^25 tokens of 301 bytes each: within the token-array limit, but ~10 GB of text, past
    // llama.cpp's int32 byte count.
    run: async (f) => {
      const m = await loadModel(f.damaged.longPiece, { ...TINY, vocabOnly: true });
      try {
        return m.detokenize(new Int32Array(2 ** 25).fill(f.damaged.longPieceId));
      } finally {
        m.dispose();
      }
    },
    error: /detokenize: 33554432 tokens make more than 2 GiB of text; detokenize them in parts/,
  },
  "sizes: a token whose piece is longer than 256 bytes": {
    run: async (f) => {
      const m = await loadModel(f.damaged.longPiece, TINY);
      const r = { piece: m.tokenPieces([f.damaged.longPieceId])[0], text: m.detokenize([500, f.damaged.longPieceId]) };
      m.dispose();
      return { ...r, expected: f.damaged.longPieceText };
    },
    check: (v) => {
      const r = v as { piece: string; text: string; expected: string };
      if (r.piece !== r.expected || !r.text.endsWith(r.expected))
        throw new Error(`piece cut short: ${JSON.stringify(r).slice(0, 300)}`);
    },
  },

  // ---- nothing non-finite in, out or on disk ----
  "non-finite: setParam with NaN and with Infinity": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2 } });
        const name = t.paramNames()[0]!;
        const errors: string[] = [];
        for (const bad of [NaN, Infinity]) {
          const values = t.getParam(name);
          values[3] = bad;
          try {
            t.setParam(name, values);
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        const intact = t.getParam(name).every(Number.isFinite);
        t.dispose();
        return { errors, intact };
      }),
    check: (v) => {
      const r = v as { errors: string[]; intact: boolean };
      if (
        r.errors.length !== 2 ||
        !r.errors.every((e) => /values\[3\] is .*; parameters must be finite/.test(e)) ||
        !r.intact
      )
        throw new Error(JSON.stringify(r));
    },
  },
  "non-finite: an update that overflows changes nothing, and what is saved is finite": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2 } });
        await t.step([sample]); // a finite update: the moments are not zero any more
        const before = t.paramNames().map((n) => Array.from(t.getParam(n)));
        const step = await t
          .handle()
          .step({ tokens: sample.tokens, lengths: Int32Array.from([6]), segments: sample.segments }, { lr: 3e38 })
          .then(
            () => "updated",
            (e: Error) => e.message,
          );
        const unchanged = t.paramNames().every((n, i) => Array.from(t.getParam(n)).join() === before[i]!.join());
        const path = join(f.dir, `after-overflow-${process.pid}.gguf`);
        await t.saveAdapter(path);
        t.dispose();
        const file = readGguf(path);
        const finite = file.tensors.every((x) => readTensorF32(file, x).every(Number.isFinite));
        return { step, unchanged, finite, steps: 1 };
      }),
    check: (v) => {
      const r = v as { step: string; unchanged: boolean; finite: boolean };
      if (!/would overflow .* nothing was changed/.test(r.step) || !r.unchanged || !r.finite)
        throw new Error(JSON.stringify(r));
    },
  },
  "non-finite: a learning rate of 1e39 (no float)": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2 } });
        try {
          return await t
            .handle()
            .step({ tokens: sample.tokens, lengths: Int32Array.from([6]), segments: sample.segments }, { lr: 1e39 });
        } finally {
          t.dispose();
        }
      }),
    error: /lr must be a number between 0 and 3\.4e38/,
  },
  "non-finite: the scorer's full logits past a huge LoRA scale": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        const s = m.createScorer({ contextSize: 64 });
        return devAddon().scorerLogits(s.handle(), [1, 5, 6], { lora: [{ adapter: a.handle(), scale: 1e30 }] });
      }),
    error: /scorer\.logits: position \d+ got a non-finite logit.*lower the LoRA scale/,
  },
  "non-finite: LoRA alpha 0 and NaN (raw addon)": {
    run: (f) =>
      withModel(f, async (m) => {
        const errors: string[] = [];
        for (const loraAlpha of [0, NaN, -1]) {
          try {
            new (native().Trainer)(m.handle(), { rank: 2, loraAlpha }).dispose();
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        return errors;
      }),
    check: (v) => {
      const e = v as string[];
      if (e.length !== 3 || !e.every((x) => /loraAlpha must be a number > 0/.test(x)))
        throw new Error(JSON.stringify(e));
    },
  },
  "lora alpha: a trained adapter scores in llama.cpp as in the trainer (alpha / rank applied the same)": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2, alpha: 3 }, optimizer: { lr: 5e-2 } });
        for (let i = 0; i < 3; i++) await t.step([sample]);
        const ours = await t.evaluate([sample], { alpha: 0, beta: 1 });
        const path = join(f.dir, `alpha3-${process.pid}.gguf`);
        await t.saveAdapter(path);
        t.dispose();
        const a = await m.loadLora(path);
        const [r] = await m
          .createScorer({ contextSize: 64 })
          .score([{ prompt: [1, 500, 600, 700], continuation: [800, 900] }], {
            lora: [{ adapter: a }],
          });
        return {
          trainer: ours.lossRecommendation,
          llama: -r!.logprob / 2,
          alpha: a.alpha,
          size: readFileSync(path).length,
        };
      }),
    check: (v) => {
      const r = v as { trainer: number; llama: number; alpha: number };
      assertFinite([r.trainer, r.llama], "loss");
      if (r.alpha !== 3 || Math.abs(r.trainer - r.llama) > 1e-3 * Math.max(1, Math.abs(r.llama)))
        throw new Error(JSON.stringify(r));
    },
  },
  // ---- numerics, generation log-probs, policy-gradient inputs ----
  "numerics: a scorer asked for a mode that does not exist": {
    run: (f) => withModel(f, async (m) => new (native().Scorer)(m.handle(), { numerics: "exact" as "fast" })),
    error: /numerics must be "invariant" or "fast"/,
  },
  "numerics: a raw generate call asked for a mode that does not exist": {
    run: (f) => withModel(f, (m) => m.handle().generate([[1, 500]], { maxTokens: 2, numerics: "exact" as "fast" })),
    error: /numerics must be "invariant" or "fast"/,
  },
  "logprobs: sampled generation returns one finite log-prob per token": {
    run: (f) =>
      withModel(f, (m) => m.generate([[1, 500, 600]], { maxTokens: 4, temperature: 0.9, seed: 3, logprobs: true })),
    check: (v) => {
      const [r] = v as Array<{ tokens: Int32Array; tokenLogprobs: Float32Array }>;
      if (r!.tokenLogprobs.length !== r!.tokens.length) throw new Error("one log-prob per generated token");
      assertFinite(r!.tokenLogprobs, "tokenLogprobs");
      if (r!.tokenLogprobs.some((x) => x > 0)) throw new Error("log-probs are at most 0");
    },
  },
  "policyStep: advantages of the wrong length": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 } })
          .handle()
          .policyStep(POLICY_SAMPLE(), { advantages: new Float32Array(7) }),
      ),
    error: /advantages has 7 entries but the batch has 3/,
  },
  "policyStep: a NaN advantage": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 } })
          .handle()
          .policyStep(POLICY_SAMPLE(), { advantages: Float32Array.of(1, Number.NaN, 0) }),
      ),
    error: /advantages\[1\] is not a finite number/,
  },
  "policyStep: a NaN KL coefficient": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 } })
          .handle()
          .policyStep(POLICY_SAMPLE(), { advantages: Float32Array.of(1, -1, 0) }, { klCoef: Number.NaN }),
      ),
    error: /the KL coefficient \(beta\) must be a finite number >= 0/,
  },
  "liveAdapter: a full-mode trainer has no adapter to share": {
    run: (f) => withModel(f, (m) => m.createTrainer({ mode: "full" }).handle().liveAdapter()),
    error: /a live adapter needs mode 'lora'/,
  },
  // ---- per-sequence generation decoding new prompts together (prefill_new_prompts) ----
  "generate: prompts decoded together, repeated ones sharing a stream, under a grammar that admits no token": {
    run: (f) =>
      withModel(f, (m) =>
        m.generate(["a b", "a b", "a b", "c d", "e"], {
          maxTokens: 4,
          temperature: 0.8,
          parallel: 5,
          kvLayout: "per-sequence",
          grammar: "root ::= [\\x00]",
        }),
      ),
    error: /no token can be sampled here/,
  },
  "lora: a huge finite scale while prompts are decoded together, repeated ones sharing a stream": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        return m.generate(["a b", "a b", "c d", "e f g"], {
          maxTokens: 3,
          parallel: 4,
          kvLayout: "per-sequence",
          lora: [{ adapter: a, scale: 1e30 }],
        });
      }),
    error: /non-finite/,
  },
  // ---- the token sampler's development hook (native/dev/sampler_hooks.cpp) ----
  "sampleRows: rows that are not a whole number of vocabulary rows": {
    run: (f) => withModel(f, async (m) => devAddon().sampleRows(m.handle(), new Float32Array(7), { temperature: 0 })),
    error: /logits must hold a whole number of rows of \d+ values/,
  },
  "sampleRows: a NaN logit": {
    run: (f) =>
      withModel(f, async (m) =>
        devAddon().sampleRows(m.handle(), new Float32Array(m.info.vocabSize).fill(Number.NaN), { temperature: 0 }),
      ),
    error: /logits must be finite or -inf/,
  },
  "sampleRows: a NaN temperature": {
    run: (f) =>
      withModel(f, async (m) =>
        devAddon().sampleRows(m.handle(), new Float32Array(m.info.vocabSize), { temperature: Number.NaN }),
      ),
    error: /temperature must be >= 0/,
  },
  "sampleRows: invalid GBNF": {
    run: (f) =>
      withModel(f, async (m) =>
        devAddon().sampleRows(m.handle(), new Float32Array(m.info.vocabSize), {
          temperature: 0,
          grammar: "root ::= (",
        }),
      ),
    error: /grammar/,
  },
  "sampleRows: a row of -inf leaves no token to sample": {
    run: (f) =>
      withModel(f, async (m) =>
        devAddon().sampleRows(m.handle(), new Float32Array(m.info.vocabSize).fill(-Infinity), {
          temperature: 0.7,
          topK: 40,
        }),
      ),
    error: /no token can be sampled here/,
  },
  "sampleRows: mid-character, the one continuation the grammar admits is -inf": {
    run: (f) =>
      withModel(f, async (m) => {
        // "ꙮ" is three byte tokens here; after the first, only the second can follow.
        const bytes = Array.from(m.tokenize("ꙮ", { addBos: false })).filter(
          (t) => m.detokenize(Int32Array.of(t)) === "\uFFFD",
        );
        const vocab = m.info.vocabSize;
        const logits = new Float32Array(2 * vocab);
        logits[vocab + bytes[1]!] = -Infinity;
        return devAddon().sampleRows(m.handle(), logits, { temperature: 0.7, topK: 40, grammar: 'root ::= "ꙮ"' });
      }),
    error: /no token can be sampled here/,
  },
};
