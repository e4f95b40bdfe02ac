// The append-only answer store: durable appends, resume, torn last line, no double answers.
import { describe, expect, it } from "vitest";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnswerStore, parseStoreText, type StoredAnswer } from "../src/teacher/store.js";

const ans = (key: string, content = `answer ${key}`): StoredAnswer => ({
  key,
  promptHash: "h",
  teacher: "t",
  model: "m",
  content,
  at: "2026-01-01T00:00:00.000Z",
});

describe("AnswerStore", () => {
  it("re-reads every appended answer after reopening", () => {
    const file = join(mkdtempSync(join(tmpdir(), "msr-store-")), "answers.jsonl");
    const s = AnswerStore.open(file);
    s.append(ans("a"));
    s.append({ ...ans("b"), reasoningContent: "hidden chain" });
    s.close();
    const again = AnswerStore.open(file);
    expect(again.size).toBe(2);
    expect(again.get("b")).toEqual({ ...ans("b"), reasoningContent: "hidden chain" });
    expect(() => again.append(ans("a"))).toThrow(/already holds "a"/);
    again.close();
  });

  it("drops a torn last line and appends cleanly after it", () => {
    const file = join(mkdtempSync(join(tmpdir(), "msr-store-")), "answers.jsonl");
    writeFileSync(file, JSON.stringify(ans("a")) + "\n");
    appendFileSync(file, JSON.stringify(ans("b")).slice(0, 25)); // crash mid-write
    const s = AnswerStore.open(file);
    expect(s.all().map((a) => a.key)).toEqual(["a"]);
    s.append(ans("b"));
    s.close();
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as StoredAnswer).key)).toEqual(["a", "b"]);
  });

  it("lets one run at a time write a store; a lock left by a dead process is taken over", () => {
    const file = join(mkdtempSync(join(tmpdir(), "msr-store-")), "answers.jsonl");
    const s = AnswerStore.open(file);
    expect(() => AnswerStore.open(file)).toThrow(/already open in this process/);
    s.close();
    writeFileSync(`${file}.lock`, String(process.ppid)); // a live process (our parent) holds it
    expect(() => AnswerStore.open(file)).toThrow(new RegExp(`in use by another run \\(pid ${process.ppid}\\)`));
    writeFileSync(`${file}.lock`, "999999999"); // no such process: stale
    AnswerStore.open(file).close();
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it("refuses corruption in the middle of the file, naming the line", () => {
    expect(() =>
      parseStoreText(`${JSON.stringify(ans("a"))}\n{oops\n${JSON.stringify(ans("c"))}\n`, "f.jsonl"),
    ).toThrow(/f\.jsonl:2 is corrupt/);
    expect(parseStoreText("", "f").answers).toEqual([]);
  });
});
