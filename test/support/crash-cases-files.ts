// Crash corpus, files: model files, adapters and checkpoints damaged in the ways llama.cpp asserts
// or crashes on (crash-fixtures.ts makes them), checkpoints of another kind than the trainer, and
// hostile paths (a NUL byte, a folder, an output that is its own input, a model file replaced
// while loaded). The addon checks each before llama.cpp reads anything (native/src/gguf_check.h,
// path_check.h), so each must end in an Error naming the key, tensor or path, or resolve correctly.
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { native } from "../../src/engine/bindings.js";
import { loadModel, type Model, type Trainer } from "../../src/engine/index.js";
import { quantizeModel, trainability } from "../../src/engine/model-files.js";
import { readGguf, readTensorBytes, writeGguf } from "../../src/gguf/index.js";
import { assertFinite, TINY, withModel, type CrashCase, type Fixtures } from "./crash-case-kit.js";
import type { DamagedFiles } from "./crash-fixtures.js";

const sample = {
  tokens: Int32Array.from([1, 500, 600, 700, 800, 900]),
  segments: Uint8Array.from([0, 0, 1, 1, 2, 2]),
};

/**
 * One damaged model file must fail to load with `error`; were it loaded, the case goes on to use
 * it as a caller would (tokenize with BOS, score, generate), where llama.cpp would trip over it.
 */
function badModel(file: keyof DamagedFiles, error: RegExp): CrashCase {
  return {
    run: async (f) => {
      const m = await loadModel(f.damaged[file] as string, TINY);
      try {
        const prompt = m.tokenize("The user bought", { addBos: true });
        await m.createScorer({ contextSize: 64 }).score([{ prompt, continuation: [600, 700] }]);
        return await m.generate([prompt], { maxTokens: 2, temperature: 0 });
      } finally {
        m.dispose();
      }
    },
    error,
  };
}

/** The outcome of a call as its value or its error's message (thrown at once or rejected). */
const settle = (call: () => Promise<unknown>): Promise<unknown> =>
  (async () => call())().then(
    (v) => v,
    (e: Error) => `error: ${e.message}`,
  );

/** A trainer's checkpoint written to `name` in the run folder. */
async function checkpointOf(
  f: Fixtures,
  name: string,
  lora: { rank?: number; alpha?: number; targets?: string[] },
): Promise<string> {
  return withModel(f, async (m) => {
    const t = m.createTrainer({ lora: { rank: 2, ...lora } as never });
    await t.step([sample]);
    const path = join(f.dir, `${name}-${process.pid}.gguf`);
    await t.saveCheckpoint(path);
    t.dispose();
    return path;
  });
}

/** A case's run: the checkpoint `ckpt` makes, loaded into a trainer made with `lora`. */
function loadInto(ckpt: (f: Fixtures) => Promise<string>, lora: { rank?: number; alpha?: number; targets?: string[] }) {
  return async (f: Fixtures) => {
    const path = await ckpt(f);
    return withModel(f, async (m) => {
      const t = m.createTrainer({ lora: { rank: 2, ...lora } as never });
      try {
        return await t.loadCheckpoint(path);
      } finally {
        t.dispose();
      }
    });
  };
}

const bytesOf = (path: string) => readFileSync(path).toString("base64");

/** Loads the adapter at `path` and scores one request with it. */
async function scoreWith(m: Model, path: string): Promise<unknown> {
  const a = await m.loadLora(path);
  return m
    .createScorer({ contextSize: 64 })
    .score([{ prompt: [1, 500], continuation: [600, 700] }], { lora: [{ adapter: a }] });
}

export const FILE_CASES: Record<string, CrashCase> = {
  // ---- model files llama.cpp asserts on ----
  "model file: a vocabulary with a duplicated token": badModel(
    "duplicateToken",
    /tokenizer\.ggml\.tokens holds the token .* twice/,
  ),
  "model file: block_count 1000": badModel(
    "blockCount1000",
    /llama\.block_count is 1000 but must be between 1 and 512/,
  ),
  "model file: 4 query heads over 3 KV heads": badModel(
    "headsNotMultipleOfKv",
    /head_count \(4\) must be a positive multiple of .*head_count_kv \(3\)/,
  ),
  "model file: key and value head sizes that differ": badModel(
    "keyValueLengthsDiffer",
    /key_length: 16\), values \(.*value_length: 8\)/,
  ),
  "model file: an unknown RoPE scaling type": badModel("ropeScalingUnknown", /rope\.scaling\.type is 'bogus'/),
  "model file: experts used in a model without experts": badModel(
    "expertsUsedWithoutExperts",
    /expert_used_count and expert_group_count must be 0/,
  ),
  "model file: an I32 weight matrix": badModel(
    "integerWeight",
    /blk\.0\.attn_q\.weight is i32, a type no matrix product takes/,
  ),
  "model file: an F16 norm": badModel("f16Norm", /output_norm\.weight is f16; one-dimensional tensors .* must be F32/),
  "model file: a tokenizer that adds a BOS token it does not have": badModel(
    "addBosWithoutBos",
    /adds a BOS token, but the vocabulary has none/,
  ),
  "model file: no tokenizer": badModel("noTokenizer", /tokenizer\.ggml\.model is 'none'/),
  "model file: vocabOnly checks the vocabulary but not the layers": {
    run: async (f) => {
      const m = await loadModel(f.damaged.blockCount1000, { vocabOnly: true });
      const tokens = Array.from(m.tokenize("hello"));
      m.dispose();
      return { tokens, duplicate: await settle(() => loadModel(f.damaged.duplicateToken, { vocabOnly: true })) };
    },
    check: (v) => {
      const r = v as { tokens: number[]; duplicate: string };
      if (r.tokens.length < 2 || !/twice/.test(r.duplicate)) throw new Error(JSON.stringify(r));
    },
  },
  "model file: trainability and quantizeModel check a model as loadModel does": {
    run: async (f) => [
      await settle(() => trainability(f.damaged.blockCount1000)),
      await settle(() => quantizeModel(f.damaged.duplicateToken, join(f.dir, `q-${process.pid}.gguf`), "Q8_0")),
    ],
    check: (v) => {
      const [a, b] = v as string[];
      if (!/block_count is 1000/.test(a!) || !/twice/.test(b!)) throw new Error(JSON.stringify(v));
    },
  },

  // ---- adapters (each used as a caller would once loaded: scoring with it is where it would crash) ----
  "adapter: I32 LoRA tensors with the right shapes": {
    run: (f) => withModel(f, (m) => scoreWith(m, f.damaged.loraIntegerTensors)),
    error: /lora_a is i32; LoRA tensors must be F32, F16, BF16 or a quantized float type/,
  },
  "adapter: LoRA tensors with a third dimension": {
    run: (f) => withModel(f, (m) => scoreWith(m, f.damaged.loraThreeDims)),
    error: /has the shape \[64, 2, 2\]; LoRA tensors are matrices/,
  },

  // ---- checkpoints of another kind than the trainer ----
  "checkpoint: alpha 32 into an alpha-4 trainer": {
    run: loadInto((f) => checkpointOf(f, "alpha32", { alpha: 32 }), { alpha: 4 }),
    error: /checkpoint has LoRA alpha 32.* and this trainer 4/,
  },
  "checkpoint: seven targets into a q-only trainer": {
    run: loadInto((f) => checkpointOf(f, "seven", {}), { targets: ["q"] }),
    error: /parameters \(28, for down,gate,k,o,q,up,v\) are not this trainer's \(4, for q\)/,
  },
  "checkpoint: a q-only checkpoint into a seven-target trainer": {
    run: loadInto((f) => checkpointOf(f, "qonly", { targets: ["q"] }), {}),
    error: /parameters \(4, for q\) are not this trainer's \(28/,
  },
  "checkpoint: a NaN parameter": {
    run: loadInto(async (f) => {
      const path = await checkpointOf(f, "nan", {});
      const file = readGguf(path);
      const tensors = file.tensors.map((t) => {
        const raw = readTensorBytes(file, t);
        if (t.name === "blk.1.attn_v.weight.lora_b") new Float32Array(raw.buffer, raw.byteOffset, 1)[0] = NaN;
        return { name: t.name, shape: t.shape, ggmlType: t.type, raw };
      });
      writeGguf(path, file.metadata, tensors);
      return path;
    }, {}),
    error: /blk\.1\.attn_v\.weight\.lora_b holds -?nan at index 0; the checkpoint is damaged/,
  },
  "checkpoint: loading inside an accumulation group starts the group over": {
    run: (f) =>
      withModel(f, async (m) => {
        const ckpt = await checkpointOf(f, "accum", { targets: ["q", "v"] });
        const other = {
          tokens: Int32Array.from([1, 800, 900, 1000, 1100]),
          segments: Uint8Array.from([0, 1, 1, 2, 2]),
        };
        const make = () =>
          m.createTrainer({ lora: { rank: 2, targets: ["q", "v"] }, gradAccum: 2, optimizer: { lr: 1e-2 } });
        // A: one step of a group, then the checkpoint, then a whole group. B: the checkpoint and the group alone.
        const a = make();
        await a.step([other]);
        await a.loadCheckpoint(ckpt);
        const stepsAfterLoad = a.steps;
        await a.step([sample]);
        const stepsMidGroup = a.steps;
        await a.step([sample]);
        const b = make();
        await b.loadCheckpoint(ckpt);
        await b.step([sample]);
        await b.step([sample]);
        const names = a.paramNames();
        const diff = Math.max(...names.map((n) => maxDiff(a.getParam(n), b.getParam(n))));
        const r = { stepsAfterLoad, stepsMidGroup, stepsA: a.steps, stepsB: b.steps, diff };
        a.dispose();
        b.dispose();
        return r;
      }),
    check: (v) => {
      const r = v as { stepsAfterLoad: number; stepsMidGroup: number; stepsA: number; stepsB: number; diff: number };
      if (
        r.stepsMidGroup !== r.stepsAfterLoad ||
        r.stepsA !== r.stepsAfterLoad + 1 ||
        r.stepsA !== r.stepsB ||
        !(r.diff < 1e-7)
      )
        throw new Error(`the group did not start over: ${JSON.stringify(r)}`);
    },
  },

  // ---- paths ----
  "paths: a NUL byte in an output path cuts nothing short (raw addon and TS API)": {
    run: (f) =>
      withModel(f, async (m) => {
        const victim = join(f.dir, `victim-${process.pid}.gguf`);
        writeFileSync(victim, "precious");
        const t = m.createTrainer({ lora: { rank: 2 } });
        const raw = await settle(() => t.handle().saveAdapter(`${victim}\0.new`));
        const api = await settle(() => t.saveAdapter(`${victim}\0.new`));
        t.dispose();
        return { raw, api, victim: readFileSync(victim, "utf8") };
      }),
    check: (v) => {
      const r = v as { raw: string; api: string; victim: string };
      if (!/NUL byte/.test(r.raw) || !/NUL byte/.test(r.api) || r.victim !== "precious")
        throw new Error(JSON.stringify(r));
    },
  },
  "paths: quantizeModel onto its own input, by its name and through a hard link": {
    run: async (f) => {
      const before = bytesOf(f.damaged.modelCopy);
      const outcomes = [
        await settle(() => native().quantizeModel(f.damaged.modelCopy, f.damaged.modelCopy, "Q8_0")),
        await settle(() => native().quantizeModel(f.damaged.modelCopy, f.damaged.modelLink, "Q8_0")),
        await settle(() => quantizeModel(f.damaged.modelCopy, f.damaged.modelLink, "Q8_0")),
      ];
      return { outcomes, unchanged: bytesOf(f.damaged.modelCopy) === before };
    },
    check: (v) => {
      const r = v as { outcomes: string[]; unchanged: boolean };
      if (!r.unchanged || !r.outcomes.every((o) => /is the input file .* itself/.test(o)))
        throw new Error(JSON.stringify(r));
    },
  },
  "paths: a failed quantize leaves the output that was there, and no temporary file": {
    run: async (f) => {
      const dir = join(f.dir, `quantize-fail-${process.pid}`);
      mkdirSync(dir);
      const dst = join(dir, "out.gguf");
      writeFileSync(dst, "an older output");
      const outcome = await settle(() => native().quantizeModel(f.damaged.unknownArchitecture, dst, "Q8_0"));
      return { outcome, dst: readFileSync(dst, "utf8"), files: readdirSync(dir) };
    },
    check: (v) => {
      const r = v as { outcome: string; dst: string; files: string[] };
      if (!/could not quantize/.test(r.outcome) || r.dst !== "an older output" || r.files.join() !== "out.gguf")
        throw new Error(JSON.stringify(r));
    },
  },
  "paths: loadModel of a folder (raw addon)": {
    run: (f) => native().loadModel(f.dir, TINY),
    error: /is a folder; pass the path of a file in it/,
  },
  "paths: saveCheckpoint into a folder that does not exist (raw addon)": {
    run: (f) =>
      withModel(f, async (m) => {
        const t = m.createTrainer({ lora: { rank: 2 } });
        try {
          return await t.handle().saveCheckpoint(join(f.dir, "no-such-folder", "c.gguf"));
        } finally {
          t.dispose();
        }
      }),
    error: /the folder .*no-such-folder does not exist; create it first/,
  },
  "paths: saveModel onto the base model's own file, through a hard link": {
    run: async (f) => {
      const base = join(f.dir, `base-${process.pid}.gguf`);
      copyFileSync(f.model, base);
      const link = `${base}.link`;
      linkSync(base, link);
      const m = await loadModel(base, TINY);
      let t: Trainer | undefined;
      try {
        t = m.createTrainer({ mode: "full" });
        return await t.handle().saveModel(link);
      } finally {
        t?.dispose();
        m.dispose();
      }
    },
    error: /is the input file .* itself; write to another path/,
  },

  // ---- a model file replaced while loaded ----
  "mmap: false: the model's file truncated on disk while it is loaded": {
    run: async (f) => {
      const path = join(f.dir, `read-in-${process.pid}.gguf`);
      copyFileSync(f.model, path);
      const m = await loadModel(path, { ...TINY, mmap: false });
      writeFileSync(path, ""); // what a failed `cp new.gguf model.gguf` leaves
      const r = await m.createScorer({ contextSize: 64 }).score([{ prompt: [1, 500], continuation: [600, 700] }]);
      const g = await m.generate([[1, 500]], { maxTokens: 3, temperature: 0 });
      m.dispose();
      return { logprob: r[0]!.logprob, tokens: g[0]!.tokens.length, exists: existsSync(path) };
    },
    check: (v) => {
      const r = v as { logprob: number; tokens: number };
      assertFinite([r.logprob], "log-prob");
      if (r.tokens < 1) throw new Error(JSON.stringify(r));
    },
  },
};

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
