// What the benches ask nvidia-smi: whether a GPU is visible, its name, and its used memory (once,
// or polled while a measurement runs). Every function answers "none" where nvidia-smi is missing.
import { spawn, spawnSync } from "node:child_process";

const query = (args: string[]): string | null => {
  const r = spawnSync("nvidia-smi", args, { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
};

/** Whether nvidia-smi sees a GPU. */
export function nvidiaGpuVisible(): boolean {
  return query(["-L"]) !== null;
}

/** The first GPU's name and memory ("NVIDIA H200, 143771 MiB"), or null. */
export function gpuName(): string | null {
  return query(["--query-gpu=name,memory.total", "--format=csv,noheader"])?.split("\n")[0] ?? null;
}

/** The first GPU's used memory (MiB, the whole device), or null. */
export function gpuMemoryUsedMiB(): number | null {
  const out = query(["--query-gpu=memory.used", "--format=csv,noheader,nounits"]);
  return out === null ? null : Number(out.split("\n")[0]);
}

/** Polls the first GPU's used memory (MiB) every 50 ms until stopped; resolves to the samples seen. */
export function pollGpuMemory(): { stop(): Promise<number[]> } {
  const samples: number[] = [];
  const p = spawn("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-lms", "50"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  p.on("error", () => {}); // no nvidia-smi: no samples
  let rest = "";
  p.stdout.on("data", (d: Buffer) => {
    const lines = (rest + d.toString()).split("\n");
    rest = lines.pop()!;
    for (const l of lines) if (Number.isFinite(Number.parseFloat(l))) samples.push(Number.parseFloat(l));
  });
  const done = new Promise<void>((resolve) => p.on("close", () => resolve()));
  return {
    async stop() {
      p.kill();
      await done;
      return samples;
    },
  };
}
