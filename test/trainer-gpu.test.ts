// Where the trainer runs. Everywhere: device 'cpu' and 'auto' (on a model without offloaded
// layers) train on the CPU, a bad device name is refused, and on an addon without a GPU backend
// device 'gpu' fails with an error that says how to get one. Where the CUDA addon and a GPU are
// present: scripts/cuda-train-check.mjs trains on both devices from the same start and must find
// the logits, the loss, every gradient and five steps' losses equal to float rounding, and in LoRA
// mode a policy-gradient batch's log-probs, entropy and gradients.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { native, type NativeModel } from "../src/engine/bindings.js";
import { createTrainer } from "../src/engine/trainer.js";
import { packageRoot } from "../src/util/paths.js";
import { tinyModelPath } from "./support/models.js";

const model: NativeModel = await native().loadModel(tinyModelPath(), { threads: 2 });
afterAll(() => model.dispose());

/** Whether this addon can train on a GPU (the CUDA build on a machine with one). */
function gpuTrainerError(): string | null {
  try {
    createTrainer(model, { lora: { rank: 2 }, device: "gpu" }).dispose();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
const gpuError = gpuTrainerError();
if (gpuError) console.log(`trainer-gpu: GPU comparison skipped (${gpuError.split(";")[0]})`);

describe("training device", () => {
  it("device 'cpu' and 'auto' on a model in host memory train on the CPU", () => {
    for (const device of ["cpu", "auto", undefined] as const) {
      const t = createTrainer(model, { lora: { rank: 2 }, ...(device ? { device } : {}) });
      expect(t.info.device).toBe("cpu");
      expect(t.info.deviceName.length).toBeGreaterThan(0);
      t.dispose();
    }
  });

  it("refuses an unknown device name", () => {
    expect(() => createTrainer(model, { device: "tpu" as "gpu" })).toThrow(/device must be "auto", "cpu" or "gpu"/);
  });

  it("device 'gpu' without a GPU backend says how to get one; with one it trains there", () => {
    const err = gpuError;
    if (err === null) {
      const t = createTrainer(model, { lora: { rank: 2 }, device: "gpu" });
      expect(t.info.device).toBe("gpu");
      t.dispose();
    } else {
      expect(err).toMatch(/no GPU backend.*npm run build:cuda/);
    }
  });
});

describe.skipIf(gpuError !== null)("GPU training against CPU training", () => {
  it("logits, loss, gradients, five steps and a policy-gradient batch agree (scripts/cuda-train-check.mjs)", () => {
    const run = spawnSync(process.execPath, [join(packageRoot, "scripts", "cuda-train-check.mjs")], {
      encoding: "utf8",
      env: process.env,
    });
    console.log(run.stdout);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("all ok");
  }, 600_000);
});
