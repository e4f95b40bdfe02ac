// Shard folders and the fingerprints that keep a merge from joining shards made from different
// inputs: file digests against known hashes, what a changed input is reported as, and a merge
// that refuses a stale, unfinished or missing shard (naming the command that redoes it), sets
// shards of another count aside and takes the count whose shards match the current inputs.
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeChange, fileDigest, fingerprint, WHOLE_FILE_BYTES } from "../src/util/fingerprint.js";
import { ShardFolders } from "../src/util/shard-folders.js";

const work = mkdtempSync(join(tmpdir(), "msr-rec-shard-folders-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("fingerprints", () => {
  it("hashes a small file whole (SHA-256 of 'abc' is the FIPS 180-2 test vector)", () => {
    const f = join(work, "abc.txt");
    writeFileSync(f, "abc");
    expect(fileDigest(f)).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("samples a big file: a change in a sampled block or in the size shows, one between blocks does not", () => {
    const f = join(work, "big.gguf");
    const size = WHOLE_FILE_BYTES + 5 * 2 ** 20;
    const fd = openSync(f, "w");
    writeSync(fd, Buffer.from("GGUF"), 0, 4, 0);
    writeSync(fd, Buffer.from([7]), 0, 1, size - 1);
    closeSync(fd);
    const before = fileDigest(f);
    expect(before).toMatch(/^sampled:72351744:[0-9a-f]{64}$/);
    const poke = (at: number) => {
      const h = openSync(f, "r+");
      writeSync(h, Buffer.from([0xff]), 0, 1, at);
      closeSync(h);
    };
    // Block k of 16 starts at k * (size - 1 MiB) / 15; just past the end of block 0 is unsampled.
    poke(2 ** 20 + 10);
    expect(fileDigest(f)).toBe(before);
    poke(Math.floor((7 * (size - 2 ** 20)) / 15) + 100);
    expect(fileDigest(f)).not.toBe(before);
    rmSync(f);
  });

  it("ids equal exactly when settings, files and version do; the change is named", () => {
    const a = join(work, "a.jsonl");
    writeFileSync(a, "one\n");
    const fp1 = fingerprint({ infer: { temperature: 0.7, topK: 40 } }, { "dataset/users.jsonl": a });
    expect(fingerprint({ infer: { topK: 40, temperature: 0.7 } }, { "dataset/users.jsonl": a }).id).toBe(fp1.id);
    expect(fp1.inputs.files["dataset/users.jsonl"]).toBe(
      `sha256:${createHash("sha256").update("one\n").digest("hex")}`,
    );
    writeFileSync(a, "two\n");
    const fp2 = fingerprint({ infer: { temperature: 0.9, topK: 40 } }, { "dataset/users.jsonl": a });
    expect(fp2.id).not.toBe(fp1.id);
    expect(describeChange(fp1.inputs, fp2.inputs)).toBe(
      "infer.temperature: 0.7 then, 0.9 now; dataset/users.jsonl changed",
    );
    expect(describeChange({ ...fp1.inputs, version: "0.0.1" }, fp1.inputs)).toMatch(/^msr-rec 0\.0\.1 then, \S+ now$/);
    expect(() => fingerprint({}, { adapter: join(work, "missing.gguf") })).toThrow(
      /missing\.gguf is missing; it is an input of this step/,
    );
  });
});

describe("shard folders", () => {
  const fresh = (name: string) =>
    new ShardFolders(
      join(work, name),
      "infer",
      (s) => `msr-rec pipeline --config run.json --only infer --shard ${s.index}/${s.count}`,
    );
  const fpWith = (temperature: number) => fingerprint({ infer: { temperature } }, {});

  it("a merge takes all N finished shards in order, and refuses missing, unfinished and stale ones by name", () => {
    const f = fresh("refuse");
    const now = fpWith(0.7);
    for (const index of [0, 1, 2]) {
      f.begin({ index, count: 4 }, now);
      f.finish({ index, count: 4 }, now);
    }
    // Shard 1 was redone with another temperature; shard 2 was killed (started again, never finished).
    f.finish({ index: 1, count: 4 }, fpWith(0.9));
    f.begin({ index: 2, count: 4 }, now);
    let message = "";
    try {
      f.readyForMerge(now);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split("\n")).toEqual([
      `cannot merge the infer shards in ${f.root}:`,
      "  infer shard 1/4 was made from other inputs (infer.temperature: 0.9 then, 0.7 now); redo it: msr-rec pipeline --config run.json --only infer --shard 1/4",
      `  infer shard 2/4 did not finish (${f.dir({ index: 2, count: 4 })} has no shard.json); run it: msr-rec pipeline --config run.json --only infer --shard 2/4`,
      "  infer shard 3/4 is missing; run it: msr-rec pipeline --config run.json --only infer --shard 3/4",
      "then merge again",
    ]);
    for (const index of [1, 2, 3]) {
      f.begin({ index, count: 4 }, now);
      f.finish({ index, count: 4 }, now);
    }
    expect(f.readyForMerge(now)).toEqual([0, 1, 2, 3].map((index) => f.dir({ index, count: 4 })));
  });

  it("sets shards of another count aside into stale/, saying so, and takes the count made from the current inputs", () => {
    const f = fresh("counts");
    const old = fpWith(0.7);
    const now = fpWith(0.9);
    for (const index of [0, 1, 2, 3]) f.finish({ index, count: 4 }, old);
    for (const index of [0, 1, 2]) f.finish({ index, count: 3 }, now);
    const said: string[] = [];
    expect(f.readyForMerge(now, (m) => said.push(m))).toHaveLength(3);
    expect(said).toEqual(
      [0, 1, 2, 3].map(
        (i) =>
          `[infer] set aside shard-${i}-of-4: this merge takes the 3 shards of 3; moved to ${join(f.root, "stale", `shard-${i}-of-4`)}`,
      ),
    );
    expect(readdirSync(f.root).sort()).toEqual(["shard-0-of-3", "shard-1-of-3", "shard-2-of-3", "stale"]);
    // Set aside again later: the earlier copy keeps its name.
    f.finish({ index: 0, count: 4 }, old);
    f.readyForMerge(now, () => {});
    expect(existsSync(join(f.root, "stale", "shard-0-of-4.2", "shard.json"))).toBe(true);
  });

  it("with two counts and nothing to tell them apart, asks to keep one", () => {
    const f = fresh("ambiguous");
    const now = fpWith(0.7);
    f.finish({ index: 0, count: 2 }, now);
    f.finish({ index: 0, count: 3 }, now);
    expect(() => f.readyForMerge(now)).toThrow(
      /holds infer shards of 2 and 3 shards; keep one count: move the other .* into .*stale/,
    );
    expect(() => fresh("empty").readyForMerge(now)).toThrow(/no infer shards in .*empty; run the shards first/);
  });

  it("an array's first task records its layout once; a shard's start removes its finished marker", () => {
    const f = fresh("layout");
    const now = fpWith(0.7);
    const layout = { scheduler: "slurm" as const, arrayJobId: "42", min: 0, step: 1, count: 3 };
    f.begin({ index: 0, count: 3 }, now, layout);
    const first = readFileSync(f.layoutFile, "utf8");
    expect(JSON.parse(first)).toMatchObject({ ...layout, fingerprint: now.id });
    f.begin({ index: 1, count: 3 }, now, layout);
    expect(readFileSync(f.layoutFile, "utf8")).toBe(first); // not rewritten by the other tasks
    f.finish({ index: 1, count: 3 }, now, "task 1 of array 42");
    expect(f.readMarker({ index: 1, count: 3 })).toMatchObject({
      stage: "infer",
      index: 1,
      count: 3,
      fingerprint: now.id,
      scheduled: "task 1 of array 42",
    });
    f.begin({ index: 1, count: 3 }, now);
    expect(f.readMarker({ index: 1, count: 3 })).toBeNull();
    // A resubmitted task of that array finds its shard from the record.
    expect(
      f.resolve(
        { auto: true },
        {
          SLURM_ARRAY_JOB_ID: "43",
          SLURM_ARRAY_TASK_ID: "2",
          SLURM_ARRAY_TASK_MIN: "2",
          SLURM_ARRAY_TASK_MAX: "2",
          SLURM_ARRAY_TASK_COUNT: "1",
        },
      ).shard,
    ).toEqual({ index: 2, count: 3 });
  });
});
