// The crash corpus: abusive call sequences through the public engine API, each run in its own
// child process by test/engine-crash-corpus.test.ts (the runner is crash-child.ts). A case either
// resolves with a value its `check` accepts or throws an ordinary Error whose message matches
// `error`; a child that dies by a signal, aborts or exits abnormally fails the test.
import { devAddon, native } from "../../src/engine/bindings.js";
import { loadModel, type Model } from "../../src/engine/index.js";
import { gguf, readGguf, readTensorBytes, writeGguf, type GgufValue } from "../../src/gguf/index.js";
import { assertFinite, TINY, withModel, type CrashCase, type Fixtures } from "./crash-case-kit.js";
import { FILE_CASES } from "./crash-cases-files.js";
import { LIMIT_CASES } from "./crash-cases-limits.js";
import { REENTRANCY_CASES } from "./crash-cases-reentrancy.js";

export type { CrashCase, Fixtures } from "./crash-case-kit.js";

/** A greedy reference run, then the same prompt with its first generated piece as a stop string. */
async function stopAtStart(m: Model): Promise<{ text: string; tokens: number; finishReason: string }> {
  const [full] = await m.generate(["The user bought"], { maxTokens: 4, temperature: 0 });
  const first = m.tokenPieces(full!.tokens)[0]!;
  const [r] = await m.generate(["The user bought"], { maxTokens: 4, temperature: 0, stop: [first] });
  return { text: r!.text, tokens: r!.tokens.length, finishReason: r!.finishReason };
}

/** Saves a LoRA checkpoint, rewrites one metadata value with another type, and loads it back. */
async function mistypedCheckpoint(f: Fixtures, key: string, value: GgufValue): Promise<unknown> {
  return withModel(f, async (m) => {
    const t = m.createTrainer({ lora: { rank: 2 } });
    const path = `${f.dir}/ckpt-${key}.gguf`;
    await t.saveCheckpoint(path);
    const file = readGguf(path);
    file.metadata.set(key, value);
    writeGguf(
      path,
      file.metadata,
      file.tensors.map((x) => ({ name: x.name, shape: x.shape, ggmlType: x.type, raw: readTensorBytes(file, x) })),
    );
    try {
      return await t.loadCheckpoint(path);
    } finally {
      t.dispose();
    }
  });
}

/** One step on the quantized model: a finite loss or an ordinary Error (e.g. a refused mode). */
async function trainQuantized(f: Fixtures, mode: "lora" | "full"): Promise<unknown> {
  const m = await loadModel(f.quantized, TINY);
  try {
    const t = m.createTrainer({ mode, lora: { rank: 2 } });
    const r = await t.step([
      { tokens: Int32Array.from([1, 500, 600, 700, 800]), segments: Uint8Array.from([0, 0, 1, 2, 2]) },
    ]);
    t.dispose();
    return r.loss;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  } finally {
    m.dispose();
  }
}

function checkTrainResult(v: unknown): void {
  if (typeof v === "string" ? !v.startsWith("error: ") : !Number.isFinite(v))
    throw new Error(`unexpected: ${String(v)}`);
}

/** The first round's cases; the classes of the second round live in crash-cases-*.ts. */
const FIRST_ROUND: Record<string, CrashCase> = {
  // ---- generation ----
  "generate: contextSize smaller than parallel": {
    run: (f) =>
      withModel(f, (m) =>
        m.generate(
          Array.from({ length: 40 }, () => [1, 2]),
          { parallel: 40, contextSize: 8, maxTokens: 2, temperature: 0 },
        ),
      ),
    check: (v) => {
      if ((v as unknown[]).length !== 40) throw new Error("expected 40 results");
    },
  },
  "generate: parallel 256 with a tiny context": {
    run: (f) =>
      withModel(f, (m) =>
        m.generate(
          Array.from({ length: 300 }, () => [1]),
          { parallel: 256, contextSize: 16, maxTokens: 1, temperature: 0 },
        ),
      ),
  },
  "generate: seed + i reaching 0xFFFFFFFF stays reproducible": {
    run: (f) =>
      withModel(f, async (m) => {
        const opts = { maxTokens: 6, temperature: 1.5, topK: 0, seed: 0xfffffffe };
        const a = await m.generate(["a", "a", "a"], opts);
        const b = await m.generate(["a", "a", "a"], opts);
        return a.map((r, i) => r.text === b[i]!.text);
      }),
    check: (v) => {
      if (!(v as boolean[]).every(Boolean)) throw new Error(`not reproducible: ${JSON.stringify(v)}`);
    },
  },
  "generate: seed 0xFFFFFFFF": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 2, seed: 0xffffffff })),
    error: /seed/,
  },
  "generate: negative or fractional seed": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 2, seed: -1.5 })),
    error: /seed/,
  },
  "generate: a stop string at the very start is trimmed from text and tokens": {
    run: (f) => withModel(f, stopAtStart),
    check: (v) => {
      const r = v as { text: string; tokens: number; finishReason: string };
      if (r.finishReason !== "stop" || r.text !== "" || r.tokens !== 0)
        throw new Error(`not trimmed: ${JSON.stringify(r)}`);
    },
  },
  "generate: prompt longer than the model's training context": {
    run: (f) => withModel(f, (m) => m.generate([Array.from({ length: 600 }, (_, i) => 100 + i)], { maxTokens: 2 })),
    error: /training context/,
  },
  "generate: generation stops at the model's training context": {
    run: (f) =>
      withModel(f, async (m) => {
        const [r] = await m.generate([Array.from({ length: 505 }, (_, i) => 100 + i)], {
          maxTokens: 50,
          temperature: 0,
          grammar: "root ::= [a-z]+",
        });
        return { finishReason: r!.finishReason, tokens: r!.tokens.length };
      }),
    check: (v) => {
      const r = v as { finishReason: string; tokens: number };
      if (r.finishReason !== "length" || r.tokens > 512 - 505)
        throw new Error(`ran past the training context: ${JSON.stringify(r)}`);
    },
  },
  "generate: maxTokens 1e12": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 1e12 })),
    error: /maxTokens/,
  },
  "generate: contextSize 1e12": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 2, contextSize: 1e12 })),
    error: /contextSize/,
  },
  "generate: minP above 1, negative topK": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 3, minP: 5, topK: -4 })),
    error: /minP/,
  },
  "generate: per-sequence streams at llama.cpp's most sequences (256), more prompts than slots": {
    run: (f) =>
      withModel(f, (m) =>
        m.generate(
          Array.from({ length: 300 }, (_, i) => [1, 100 + i]),
          { parallel: 256, maxTokens: 2, temperature: 0, kvLayout: "per-sequence" },
        ),
      ),
    check: (v) => {
      if ((v as unknown[]).length !== 300) throw new Error("expected 300 results");
    },
  },
  "generate: per-sequence with a contextSize smaller than one stream": {
    run: (f) =>
      withModel(f, (m) => m.generate([[1, 2, 3]], { maxTokens: 4, contextSize: 100, kvLayout: "per-sequence" })),
    error: /stream of 256 cells.*raise contextSize to at least 256/,
  },
  "generate: per-sequence, generation stops at the model's training context in its stream": {
    run: (f) =>
      withModel(f, async (m) => {
        const rs = await m.generate([Array.from({ length: 505 }, (_, i) => 100 + i), [1, 2]], {
          maxTokens: 5000,
          temperature: 0,
          kvLayout: "per-sequence",
          grammar: "root ::= [a-z]+",
        });
        return rs.map((r) => ({ finishReason: r.finishReason, tokens: r.tokens.length }));
      }),
    check: (v) => {
      const [r] = v as { finishReason: string; tokens: number }[];
      if (r!.finishReason !== "length" || r!.tokens > 512 - 505)
        throw new Error(`ran past the training context: ${JSON.stringify(v)}`);
    },
  },
  "generate: kvLayout not a string": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 2, kvLayout: 3 as unknown as "auto" })),
    error: /kvLayout/,
  },
  "generate: an empty grammar": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 3, grammar: 'root ::= ""' })),
  },
  "generate: a grammar that is not GBNF": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 3, grammar: "root ::= (" })),
    error: /grammar/,
  },

  // ---- LoRA scales and damaged adapters ----
  "lora: scale finite as a double but not as a float": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        return m
          .createScorer({ contextSize: 64 })
          .score([{ prompt: [1, 5], continuation: [6, 7] }], { lora: [{ adapter: a, scale: 1e39 }] });
      }),
    error: /scale/,
  },
  "lora: scale overflowing once multiplied by alpha/rank": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        return m
          .createScorer({ contextSize: 64 })
          .score([{ prompt: [1, 5], continuation: [6, 7] }], { lora: [{ adapter: a, scale: 3e38 }] });
      }),
    error: /scale/,
  },
  "lora: a huge finite scale gives an error, not NaN log-probs": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        const r = await m
          .createScorer({ contextSize: 64 })
          .score([{ prompt: [1, 5], continuation: [6, 7] }], { lora: [{ adapter: a, scale: 1e30 }] });
        assertFinite([...r[0]!.tokenLogprobs, r[0]!.logprob, r[0]!.ppl], "log-prob");
        return r;
      }),
    error: /non-finite/,
  },
  "lora: a huge finite scale with a grammar": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        return m.generate(["a"], { maxTokens: 3, grammar: 'root ::= "x" [a-z]*', lora: [{ adapter: a, scale: 1e30 }] });
      }),
    error: /non-finite/,
  },
  "lora: the same adapter twice in one call, and a disposed one": {
    run: (f) =>
      withModel(f, async (m) => {
        const a = await m.loadLora(f.lora);
        const s = m.createScorer({ contextSize: 64 });
        const twice = await s.score([{ prompt: [1, 5], continuation: [6, 7] }], {
          lora: [
            { adapter: a, scale: 0.5 },
            { adapter: a, scale: 0.5 },
          ],
        });
        assertFinite([twice[0]!.logprob], "log-prob");
        a.dispose();
        return s.score([{ prompt: [1, 5], continuation: [6, 7] }], { lora: [{ adapter: a }] });
      }),
    error: /disposed/,
  },
  "generate: a left-recursive grammar": {
    run: (f) => withModel(f, (m) => m.generate(["a"], { maxTokens: 3, grammar: 'root ::= root "a" | "b"' })),
    error: /grammar/,
  },
  "lora: adapter.lora.alpha stored as u32": {
    run: (f) => withModel(f, (m) => m.loadLora(f.loraAlphaU32)),
    error: /adapter\.lora\.alpha/,
  },
  "lora: general.type stored as u32": {
    run: (f) => withModel(f, (m) => m.loadLora(f.loraTypeU32)),
    error: /general\.type/,
  },
  "lora: a tensor claiming more data than the file holds": {
    run: (f) => withModel(f, (m) => m.loadLora(f.loraHugeTensor)),
    error: /truncated|larger than the file|not a LoRA adapter/,
  },

  // ---- scorer ----
  "score: a request past the model's training context": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createScorer({ contextSize: 1024 })
          .score([{ prompt: [1], continuation: Array.from({ length: 600 }, (_, i) => 100 + i) }]),
      ),
    error: /training context/,
  },
  "score: a sparse token array of length 2^32-1": {
    run: (f) =>
      withModel(f, (m) => {
        const huge: number[] = [];
        huge.length = 2 ** 32 - 1;
        return m.createScorer({ contextSize: 64 }).score([{ prompt: huge, continuation: [5] }]);
      }),
    error: /token/,
  },
  "score: more sequences than batch tokens": {
    run: (f) =>
      withModel(f, (m) =>
        m.createScorer({ contextSize: 16, sequences: 256, batchSize: 1 }).score([
          { prompt: [1], continuation: [5, 6] },
          { prompt: [1, 3], continuation: [5, 6] },
        ]),
      ),
    check: (v) =>
      assertFinite(
        (v as { logprob: number }[]).map((r) => r.logprob),
        "log-prob",
      ),
  },
  "score: the model disposed while a call is queued": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const s = m.createScorer({ contextSize: 64 });
      const p = s.score([{ prompt: [1, 5], continuation: [6, 7] }]);
      m.dispose();
      const r = await p.then(
        (v) => v,
        (e: Error) => e.message,
      );
      s.dispose();
      return typeof r === "string" ? r : "ok";
    },
    check: (v) => {
      if (v !== "ok" && !/disposed/.test(String(v))) throw new Error(`unexpected: ${String(v)}`);
    },
  },

  "score: logits past the model's training context": {
    run: (f) =>
      withModel(f, (m) =>
        devAddon().scorerLogits(
          m.createScorer({ contextSize: 1024 }).handle(),
          Int32Array.from({ length: 600 }, (_, i) => 100 + i),
        ),
      ),
    error: /training context/,
  },
  "score: contextSize NaN": {
    run: (f) => withModel(f, async (m) => m.createScorer({ contextSize: NaN })),
    error: /contextSize/,
  },
  "score: a native Scorer made from something that is not a model": {
    run: async () => new (native().Scorer)({} as never, {}),
    error: /expected a Model/,
  },

  // ---- dispose orders ----
  "dispose: scorer, adapter and model while a generate runs on them": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const a = await m.loadLora(f.lora);
      const s = m.createScorer({ contextSize: 64 });
      await s.score([{ prompt: [1, 5], continuation: [6, 7] }]); // its context exists now
      const g = m.generate(
        Array.from({ length: 8 }, () => [1, 5]),
        { maxTokens: 48, temperature: 0, lora: [{ adapter: a }] },
      );
      await new Promise((r) => setImmediate(r));
      s.dispose();
      a.dispose();
      m.dispose();
      (globalThis as { gc?: () => void }).gc?.();
      // Whether the generate took the model's lock before dispose() is up to the thread pool:
      // it either finishes or reports the disposal.
      return g.then(
        (r) => r.length,
        (e: Error) => e.message,
      );
    },
    check: (v) => {
      if (v !== 8 && !/disposed/.test(String(v)))
        throw new Error(`expected 8 results or a disposal error, got ${String(v)}`);
    },
  },
  "dispose: objects dropped without dispose() and collected": {
    run: async (f) => {
      for (let i = 0; i < 3; i++) {
        const m = await loadModel(f.model, TINY);
        const a = await m.loadLora(f.lora);
        await m
          .createScorer({ contextSize: 64 })
          .score([{ prompt: [1, 5], continuation: [6, 7] }], { lora: [{ adapter: a }] });
      }
      (globalThis as { gc?: () => void }).gc?.();
      return "ok";
    },
  },

  "dispose: a worker thread terminated while its calls run": {
    run: async (f) => {
      const { Worker } = await import("node:worker_threads");
      const code = `
        const { workerData, parentPort } = require("node:worker_threads");
        const addon = require(workerData.addon);
        addon.loadModel(workerData.model, { threads: 1 }).then(async (m) => {
          const s = new addon.Scorer(m, { contextSize: 64 });
          m.generate([[1, 500]], { maxTokens: 64, temperature: 0 });
          s.score([{ prompt: [1, 500], continuation: [600, 700] }]);
          m.embed([[1, 500, 600]]);
          parentPort.postMessage("started");
        });`;
      const { addonPath } = await import("../../src/engine/bindings.js");
      const w = new Worker(code, { eval: true, workerData: { addon: addonPath(), model: f.model } });
      await new Promise<void>((resolve, reject) => {
        w.on("message", () => resolve());
        w.on("error", reject);
      });
      await w.terminate();
      // The main thread's own model still works after the worker's environment is gone.
      return withModel(f, (m) => m.createScorer({ contextSize: 64 }).score([{ prompt: [1, 5], continuation: [6, 7] }]));
    },
    check: (v) =>
      assertFinite(
        (v as { logprob: number }[]).map((r) => r.logprob),
        "log-prob",
      ),
  },

  // ---- loading ----
  "loadModel: gpuLayers 1e12": {
    run: (f) => loadModel(f.model, { gpuLayers: 1e12 }),
    error: /gpuLayers/,
  },
  "model: tokenize a number, detokenize an id past the vocabulary": {
    run: (f) =>
      withModel(f, async (m) => {
        const errors: string[] = [];
        for (const call of [
          () => m.tokenize(5 as unknown as string),
          () => m.detokenize([2 ** 31 - 1]),
          () => m.tokenPieces([-7]),
        ]) {
          try {
            call();
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        return errors;
      }),
    check: (v) => {
      const e = v as string[];
      if (e.length !== 3 || !/string/.test(e[0]!) || !/out of range/.test(e[1]!) || !/out of range/.test(e[2]!))
        throw new Error(JSON.stringify(e));
    },
  },
  "loadModel: threads 100000": {
    run: async (f) => {
      const m = await loadModel(f.model, { threads: 100000 });
      await m.createScorer({ contextSize: 64 }).score([{ prompt: [1, 5], continuation: [6, 7] }]);
      m.dispose();
    },
    error: /threads/,
  },

  // ---- trainer ----
  "trainer: getParam after model.dispose()": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const t = m.createTrainer({ lora: { rank: 2 } });
      const name = t.paramNames()[0]!;
      m.dispose();
      return t.getParam(name);
    },
    error: /disposed/,
  },
  "trainer: step after model.dispose()": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const t = m.createTrainer({ lora: { rank: 2 } });
      m.dispose();
      return t.step([{ tokens: Int32Array.from([1, 5, 6, 7]), segments: Uint8Array.from([0, 1, 2, 2]) }]);
    },
    error: /disposed/,
  },
  "trainer: saveAdapter after model.dispose()": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const t = m.createTrainer({ lora: { rank: 2 } });
      m.dispose();
      return t.saveAdapter(`${f.dir}/after-dispose.gguf`);
    },
    error: /disposed/,
  },
  "trainer: AdamW eps 0": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 }, optimizer: { eps: 0 } })
          .step([{ tokens: Int32Array.from([1, 5, 6, 7]), segments: Uint8Array.from([0, 1, 2, 2]) }]),
      ),
    error: /eps/,
  },
  "trainer: AdamW beta2 1": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 }, optimizer: { beta2: 1 } })
          .step([{ tokens: Int32Array.from([1, 5, 6, 7]), segments: Uint8Array.from([0, 1, 2, 2]) }]),
      ),
    error: /beta2/,
  },
  "trainer: AdamW beta1 -0.5": {
    run: (f) =>
      withModel(f, (m) =>
        m
          .createTrainer({ lora: { rank: 2 }, optimizer: { beta1: -0.5 } })
          .step([{ tokens: Int32Array.from([1, 5, 6, 7]), segments: Uint8Array.from([0, 1, 2, 2]) }]),
      ),
    error: /beta1/,
  },
  "trainer: LoRA on Q4_0 weights in repacked CPU buffers": {
    run: (f) => trainQuantized(f, "lora"),
    check: checkTrainResult,
  },
  "trainer: full mode on Q4_0 weights in repacked CPU buffers": {
    run: (f) => trainQuantized(f, "full"),
    check: checkTrainResult,
  },
  "trainer: a model with fused QKV weights": {
    run: async (f) => {
      const m = await loadModel(f.fusedQkv, TINY);
      try {
        return m.createTrainer({ lora: { rank: 2 } }).info;
      } finally {
        m.dispose();
      }
    },
    error: /qkv|fused|attn_q/i,
  },
  "trainer: a checkpoint whose lora_rank is a string": {
    run: (f) => mistypedCheckpoint(f, "msr.checkpoint.lora_rank", gguf.str("2")),
    error: /lora_rank/,
  },
  "trainer: a checkpoint whose step is a u32": {
    run: (f) => mistypedCheckpoint(f, "msr.checkpoint.step", gguf.u32(0)),
    error: /checkpoint\.step/,
  },
  "trainer: a learning rate of 1e30 diverges into an error, and nothing non-finite is saved": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2 }, optimizer: { lr: 1e30 } });
        const sample = {
          tokens: Int32Array.from([1, 500, 600, 700, 800, 900]),
          segments: Uint8Array.from([0, 0, 1, 1, 2, 2]),
        };
        const outcomes: string[] = [];
        for (let i = 0; i < 4; i++) {
          outcomes.push(
            await t.step([sample]).then(
              (r) => `loss ${r.loss}`,
              (e: Error) => e.message,
            ),
          );
        }
        outcomes.push(
          await t.saveAdapter(`${f.dir}/diverged.gguf`).then(
            () => "saved",
            (e: Error) => e.message,
          ),
        );
        t.dispose();
        return outcomes;
      }),
    check: (v) => {
      const o = v as string[];
      // Each step either reports a finite loss or the divergence; once diverged, saving is refused.
      const bad = o.slice(0, 4).filter((x) => !(/not finite/.test(x) || /^loss -?\d/.test(x)));
      if (bad.length || !o.some((x) => /not finite/.test(x)) || !/diverged/.test(o[4]!))
        throw new Error(JSON.stringify(o));
    },
  },
  "trainer: threads 100000": {
    run: (f) => withModel(f, async (m) => m.createTrainer({ lora: { rank: 2 }, threads: 100000 }).dispose()),
    error: /threads/,
  },

  // ---- embed ----
  "embed: batchTokens 1e12": {
    run: (f) => withModel(f, (m) => m.embed(["a b"], { batchTokens: 1e12 })),
    error: /batchTokens/,
  },
  "embed: the model disposed right after the call": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      const p = m.embed(["a b c"]);
      m.dispose();
      return p.then(
        () => "ok",
        (e: Error) => e.message,
      );
    },
    check: (v) => {
      if (v !== "ok" && !/disposed/.test(String(v))) throw new Error(`unexpected: ${String(v)}`);
    },
  },

  // ---- per-prompt grammars, prebuilt training sessions ----
  "generate: grammars with fewer entries than prompts": {
    run: (f) => withModel(f, (m) => m.generate(["a", "b"], { maxTokens: 2, grammars: ['root ::= "x"'] })),
    error: /grammars has 1 entries for 2 prompts/,
  },
  "generate: grammar and grammars at once": {
    run: (f) =>
      withModel(f, (m) => m.generate(["a"], { maxTokens: 2, grammar: 'root ::= "x"', grammars: ['root ::= "y"'] })),
    error: /either grammar .* or grammars/,
  },
  "generate: grammars with an entry that is not GBNF, and one that is a number": {
    run: (f) =>
      withModel(f, async (m) => {
        await m.generate(["a", "b"], { maxTokens: 2, grammars: [null, "root ::= ("] }).then(
          () => {
            throw new Error("accepted bad GBNF");
          },
          (e: Error) => {
            if (!/grammars\[1\] is not valid GBNF/.test(e.message)) throw e;
          },
        );
        return m.generate(["a"], { maxTokens: 2, grammars: [42 as unknown as string] });
      }),
    error: /grammars\[i\] must be a string/,
  },
  "trainer: a prebuilt session adopted by another model, then twice": {
    run: (f) =>
      withModel(f, async (m) => {
        const other = await loadModel(f.model, TINY);
        try {
          const opts = { mode: "lora" as const, rank: 2 };
          const session = await native().buildTrainSession(m.handle(), opts);
          const Ctor = native().Trainer;
          try {
            new Ctor(other.handle(), opts, session);
            throw new Error("adopted by another model");
          } catch (e) {
            if (!/belongs to another model/.test((e as Error).message)) throw e;
          }
          new Ctor(m.handle(), opts, session).dispose();
          new Ctor(m.handle(), opts, session);
        } finally {
          other.dispose();
        }
      }),
    error: /already used/,
  },
  "trainer: a session argument that is not from buildTrainSession": {
    run: (f) => withModel(f, async (m) => new (native().Trainer)(m.handle(), { rank: 2 }, {} as never)),
    error: /third argument must be a session from buildTrainSession/,
  },
  "trainer: openTrainer on a fused-QKV model, and after model.dispose()": {
    run: async (f) => {
      const m = await loadModel(f.model, TINY);
      m.dispose();
      await m.openTrainer({ lora: { rank: 2 } }).then(
        () => {
          throw new Error("opened on a disposed model");
        },
        (e: Error) => {
          if (!/dispos/.test(e.message)) throw e;
        },
      );
      const q = await loadModel(f.fusedQkv, TINY);
      try {
        return await q.openTrainer({ lora: { rank: 2 } });
      } finally {
        q.dispose();
      }
    },
    error: /qkv|fused|attn_q/i,
  },

  // ---- fusedCrossEntropy ----
  "fusedCrossEntropy: Float64Array logits": {
    run: async () =>
      devAddon().fusedCrossEntropy(new Float64Array(8) as unknown as Float32Array, 2, 4, Int32Array.from([0, 1]), null),
    error: /Float32Array/,
  },
  "fusedCrossEntropy: Int32Array weights": {
    run: async () =>
      devAddon().fusedCrossEntropy(
        new Float32Array(8),
        2,
        4,
        Int32Array.from([0, 1]),
        new Int32Array(2) as unknown as Float32Array,
      ),
    error: /weights/,
  },
  "fusedCrossEntropy: Float32Array targets": {
    run: async () =>
      devAddon().fusedCrossEntropy(new Float32Array(8), 2, 4, new Float32Array([0, 1]) as unknown as Int32Array, null),
    error: /targets/,
  },
  "fusedCrossEntropy: rows as a string": {
    run: async () =>
      devAddon().fusedCrossEntropy(new Float32Array(8), "2" as unknown as number, 4, Int32Array.from([0, 1]), null),
    error: /rows/,
  },
  "fusedCrossEntropy: threads 100000": {
    run: async () => {
      const rows = 64,
        vocab = 1 << 18;
      const r = devAddon().fusedCrossEntropy(new Float32Array(rows * vocab), rows, vocab, new Int32Array(rows), null, {
        threads: 100000,
        grad: false,
      });
      return r.loss;
    },
    check: (v) => {
      if (Math.abs((v as number) - 64 * Math.log(1 << 18)) > 1e-3) throw new Error(`wrong loss ${String(v)}`);
    },
  },
  "outProdCheck: threads 1e9": {
    run: async () => devAddon().outProdCheck({ type: "F32", m: 64, k: 4, n: 4, threads: 1e9 }),
    error: /threads must be 1\.\.512/,
  },
  "outProdCheck: an unknown layout": {
    run: async () => devAddon().outProdCheck({ type: "F32", m: 64, k: 4, n: 4, layout: "bogus" as never }),
    error: /layout must be "dy" or "act"/,
  },
  "outProdCheck: an operand too large to allocate": {
    run: async () => devAddon().outProdCheck({ type: "F32", m: 1e9, k: 1e9, n: 1 }),
    error: /out of memory/,
  },
  "outProdCheck: a weight type given as a number": {
    run: async () => devAddon().outProdCheck({ type: 3 as never, m: 64, k: 4, n: 4 }),
    error: /type must be a string/,
  },
  "outProdCheck: a type ggml quantizes only with an importance matrix (IQ2_XXS)": {
    run: async () => devAddon().outProdCheck({ type: "IQ2_XXS", m: 256, k: 4, n: 4 }),
    error: /IQ2_XXS cannot be made from random values/,
  },
  "outProdCheck: a type that is not a weight type (I32)": {
    run: async () => devAddon().outProdCheck({ type: "I32", m: 64, k: 4, n: 4 }),
    error: /I32 cannot be made from random values/,
  },
  "outProdCheck: m NaN and an unknown isa": {
    run: async () => {
      try {
        devAddon().outProdCheck({ type: "F32", m: NaN, k: 4, n: 4 });
      } catch (e) {
        if (!/m must be an integer/.test((e as Error).message)) throw e;
        return devAddon().outProdCheck({ type: "F32", m: 64, k: 4, n: 4, isa: "neon" as never });
      }
      throw new Error("accepted m: NaN");
    },
    error: /isa must be "avx512", "avx2" or "generic"/,
  },
  "denseCrossEntropyGgml: a target past the vocabulary": {
    run: async () => devAddon().denseCrossEntropyGgml(new Float32Array(8), 2, 4, Int32Array.from([0, 7])),
    error: /target id 7 is outside/,
  },
};

export const CASES: Record<string, CrashCase> = { ...FIRST_ROUND, ...REENTRANCY_CASES, ...FILE_CASES, ...LIMIT_CASES };
