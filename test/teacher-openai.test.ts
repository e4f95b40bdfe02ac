// The OpenAI-compatible client against a real HTTP server on 127.0.0.1 that speaks the
// chat-completions protocol and injects faults: 429 with a retry delay, 500/503, timeouts,
// truncated bodies, unparsable bodies, and a crash mid-run. The server counts successful answers
// per prompt; across the crash and the restart every prompt must be answered exactly once.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ChatRequestError,
  OpenAIChatClient,
  OpenAITeacher,
  backoffMs,
  parseRetryAfter,
} from "../src/teacher/openai.js";
import { AnswerStore, type StoredAnswer } from "../src/teacher/store.js";
import { synthesize, type SynthesisJob } from "../src/teacher/synthesize.js";

type Fault = "none" | "429" | "5xx" | "timeout" | "truncated" | "garbage";
type Handler = (prompt: string, nth: number) => Fault;

interface FakeApi {
  port: number;
  url: string;
  /** Successful answers per prompt (the "paid" ones). */
  answered: Map<string, number>;
  /** Arrival times of every request per prompt. */
  arrivals: Map<string, number[]>;
  maxInFlight: number;
  authHeaders: string[];
  crash(): Promise<void>;
  close(): Promise<void>;
}

// The client gives up after TIMEOUT_MS; a "timeout" fault holds its answer for HANG_MS. The gap
// is wide because a loaded CI machine can stall the event loop for tens of milliseconds, and an
// answer written just as the client gives up would be paid for twice (as with a real API).
const TIMEOUT_MS = 1000;
const HANG_MS = 1600;
const servers: FakeApi[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Answers every prompt with `answerFor(prompt)` after `fault(prompt, nth)` allows it. */
async function startFakeApi(opts: {
  fault?: Handler;
  answerFor: (prompt: string) => string;
  delayMs?: number;
  port?: number;
  answered?: Map<string, number>;
  arrivals?: Map<string, number[]>;
}): Promise<FakeApi> {
  const answered = opts.answered ?? new Map<string, number>();
  const arrivals = opts.arrivals ?? new Map<string, number[]>();
  const sockets = new Set<Socket>();
  const pending = new Set<ServerResponse>();
  let inFlight = 0;
  const api = { answered, arrivals, maxInFlight: 0, authHeaders: [] as string[] } as FakeApi;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    for await (const chunk of req) raw += String(chunk);
    const body = JSON.parse(raw) as { model: string; messages: { content: string }[] };
    const prompt = body.messages[0]!.content;
    api.authHeaders.push(String(req.headers.authorization));
    const seen = arrivals.get(prompt) ?? [];
    arrivals.set(prompt, [...seen, performance.now()]);
    const fault = opts.fault?.(prompt, seen.length) ?? "none";
    let gone = false;
    res.on("close", () => {
      if (!res.writableFinished) gone = true;
    });
    pending.add(res);
    inFlight++;
    api.maxInFlight = Math.max(api.maxInFlight, inFlight);
    const done = () => {
      inFlight--;
      pending.delete(res);
    };
    await new Promise((r) => setTimeout(r, fault === "timeout" ? HANG_MS : (opts.delayMs ?? 2)));
    if (gone) return done();
    if (fault === "429") {
      // OpenAI's millisecond header, or the standard one in (fractional) seconds.
      const wait =
        Number(/^user (\d+)/.exec(prompt)?.[1]) % 12 < 6 ? { "retry-after-ms": "40" } : { "retry-after": "0.04" };
      res
        .writeHead(429, { "content-type": "application/json", ...wait })
        .end('{"error":{"message":"rate limited"}}', done);
    } else if (fault === "5xx") {
      res
        .writeHead(seen.length % 2 ? 503 : 500, { "content-type": "application/json" })
        .end('{"error":{"message":"overloaded"}}', done);
    } else if (fault === "garbage") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"id":"x","choices":[{"message":', done);
    } else if (fault === "truncated") {
      const full = JSON.stringify({ choices: [{ message: { content: answerOf(prompt) } }] });
      res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(full)) });
      res.write(full.slice(0, 20), () => {
        res.destroy();
        done();
      });
    } else {
      const full = JSON.stringify({
        id: "c1",
        model: body.model,
        choices: [
          {
            index: 0,
            finish_reason: "stop",
            message: {
              role: "assistant",
              content: answerOf(prompt),
              reasoning_content: `thinking about ${prompt.length} chars`,
            },
          },
        ],
      });
      res.writeHead(200, { "content-type": "application/json" }).end(full, () => {
        answered.set(prompt, (answered.get(prompt) ?? 0) + 1);
        done();
      });
    }
  };
  const answerOf = opts.answerFor;

  const server: Server = createServer((req, res) => void handle(req, res));
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, "127.0.0.1", r));
  api.port = (server.address() as { port: number }).port;
  api.url = `http://127.0.0.1:${api.port}/v1`;
  // A crash: stop listening, cut connections with unanswered requests, let idle ones end cleanly.
  api.crash = async () => {
    const busy = new Set([...pending].map((r) => r.socket));
    for (const s of sockets) {
      if (busy.has(s)) s.destroy();
      else s.end();
    }
    await new Promise<void>((r) => server.close(() => r()));
  };
  api.close = async () => {
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((r) => server.close(() => r()));
  };
  servers.push(api);
  return api;
}

const titles = (u: number) => Array.from({ length: 6 }, (_, k) => `Item ${u}-${k}`);
const chainFor = (title: string) =>
  [
    "Step 1 - Preference Recognition: p.",
    "Step 2 - Attribute Analysis: a.",
    "Step 3 - Logic Matching: m.",
    "Step 4 - Summary: s.",
    `Step 5 - Recommendation: ${title}`,
  ].join("\n");

function jobs(n: number): { jobs: SynthesisJob[]; truth: Map<string, string> } {
  const truth = new Map<string, string>();
  const list = Array.from({ length: n }, (_, u): SynthesisJob => {
    const cands = titles(u);
    const targetIndex = u % 6;
    const prompt = `user ${u}: pick one of ${cands.join(", ")}`;
    truth.set(prompt, cands[targetIndex]!);
    return {
      sample: {
        user: `u${u}`,
        split: "train",
        history: [],
        candidates: cands,
        target: cands[targetIndex]!,
        targetIndex,
      },
      prompt,
      candidateTitles: cands,
    };
  });
  return { jobs: list, truth };
}

const FAULTS: Fault[] = ["none", "429", "5xx", "timeout", "truncated", "garbage"];
/** User i's prompt meets fault i % 6 on its first try (5xx twice: 500 then 503), then succeeds. */
const faultPlan = (truth: Map<string, string>): Handler => {
  const index = new Map([...truth.keys()].map((p, i) => [p, i]));
  return (prompt, nth) => {
    const f = FAULTS[index.get(prompt)! % FAULTS.length]!;
    return nth === 0 || (f === "5xx" && nth === 1) ? f : "none";
  };
};

const clientFor = (
  urls: string[],
  env: string,
  extra: Partial<ConstructorParameters<typeof OpenAIChatClient>[0]> = {},
) =>
  new OpenAIChatClient({
    endpoints: urls.map((baseUrl) => ({ baseUrl, model: "teacher-r1", apiKeyEnv: env, concurrency: 3 })),
    timeoutMs: TIMEOUT_MS,
    maxRetries: 5,
    baseDelayMs: 1,
    maxDelayMs: 8,
    ...extra,
  });

describe("OpenAIChatClient against a faulty 127.0.0.1 server", () => {
  beforeAll(async () => {
    // Node loads its fetch implementation on first use; do that outside the timed requests.
    const api = await startFakeApi({ answerFor: () => "warm" });
    await clientFor([api.url], "MSR_TEST_UNSET_KEY").chat({ messages: [{ role: "user", content: "warm-up" }] });
  });

  it("survives every fault, answers each prompt once, honours the retry delay, keeps reasoning_content", async () => {
    const { jobs: list, truth } = jobs(12);
    const api = await startFakeApi({ fault: faultPlan(truth), answerFor: (p) => chainFor(truth.get(p)!) });
    process.env.MSR_TEST_KEY_A = "sk-test-secret";
    const teacher = new OpenAITeacher(clientFor([api.url], "MSR_TEST_KEY_A"), {
      temperature: 0.6,
      maxTokens: 256,
      model: "teacher-r1",
    });
    const store = AnswerStore.open(join(mkdtempSync(join(tmpdir(), "msr-openai-")), "answers.jsonl"));
    const { records, stats } = await synthesize(list, { teacher, store, tau: 1, concurrency: 6 });
    expect(stats).toMatchObject({ samples: 12, requested: 12, accepted: 12, behaviorOnly: 0 });
    expect(records.map((r) => r.recommendation)).toEqual(list.map((j) => truth.get(j.prompt)));
    for (const p of truth.keys()) expect(api.answered.get(p)).toBe(1);
    // Faulty prompts needed exactly one more request (5xx: two more); healthy ones one request.
    const tries = list.map((j) => api.arrivals.get(j.prompt)!.length);
    expect(tries).toEqual(list.map((_, i) => [1, 2, 3, 2, 2, 2][i % 6]));
    // 429 asked for 40 ms (one prompt per header style); the backoff alone would wait at most 1 ms.
    for (const [i, j] of list.entries()) {
      if (i % 6 !== 1) continue;
      const [a, b] = api.arrivals.get(j.prompt)!;
      expect(b! - a!).toBeGreaterThanOrEqual(38);
    }
    expect(store.get("train/u0/0")).toMatchObject({
      reasoningContent: expect.stringMatching(/^thinking about/),
      model: "teacher-r1",
    });
    expect(new Set(api.authHeaders)).toEqual(new Set(["Bearer sk-test-secret"]));
    store.close();
  });

  it("after a crash mid-run and a restart, nothing is lost and nothing is paid twice", async () => {
    const { jobs: list, truth } = jobs(30);
    const answered = new Map<string, number>();
    const arrivals = new Map<string, number[]>();
    let total = 0;
    const crashAfter = 11;
    const fault = faultPlan(truth);
    const api: FakeApi = await startFakeApi({
      answered,
      arrivals,
      answerFor: (p) => chainFor(truth.get(p)!),
      delayMs: 3,
      fault: (p, nth) => {
        if (++total === crashAfter + 1) void api.crash(); // the server dies under load
        return fault(p, nth);
      },
    });
    const dir = mkdtempSync(join(tmpdir(), "msr-crash-"));
    const file = join(dir, "answers.jsonl");
    delete process.env.MSR_TEST_KEY_B; // loopback endpoints may run without a key
    const store1 = AnswerStore.open(file);
    const first = synthesize(list, {
      teacher: new OpenAITeacher(clientFor([api.url], "MSR_TEST_KEY_B")),
      store: store1,
      tau: 1,
      concurrency: 4,
    });
    await expect(first).rejects.toThrow(ChatRequestError);
    store1.close();
    const storedBefore = readFileSync(file, "utf8").trim().split("\n").length;
    expect(storedBefore).toBeGreaterThan(0);
    expect(storedBefore).toBeLessThan(30);
    appendFileSync(file, '{"key":"train/u99/0","content":"torn'); // and the writer died mid-line

    const api2 = await startFakeApi({
      answered,
      arrivals,
      answerFor: (p) => chainFor(truth.get(p)!),
      port: api.port,
      fault,
    });
    const store2 = AnswerStore.open(file);
    const { records, stats } = await synthesize(list, {
      teacher: new OpenAITeacher(clientFor([api2.url], "MSR_TEST_KEY_B")),
      store: store2,
      tau: 1,
      concurrency: 4,
    });
    store2.close();
    expect(stats.reused).toBe(storedBefore);
    expect(stats.requested).toBe(30 - storedBefore);
    expect(records.filter((r) => r.valid)).toHaveLength(30);
    for (const p of truth.keys()) expect(answered.get(p), p).toBe(1);
    const keys = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as StoredAnswer).key);
    expect(new Set(keys).size).toBe(30);
    expect(keys).toHaveLength(30);
  });

  it("spreads requests round-robin over endpoints within each one's concurrency", async () => {
    const answer = () => chainFor("x");
    const a = await startFakeApi({ answerFor: answer, delayMs: 15 });
    const b = await startFakeApi({ answerFor: answer, delayMs: 15 });
    const client = clientFor([a.url, b.url], "MSR_TEST_KEY_C", {
      endpoints: [a.url, b.url].map((baseUrl) => ({
        baseUrl,
        model: "m",
        apiKeyEnv: "MSR_TEST_KEY_C",
        concurrency: 2,
      })),
    });
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => client.chat({ messages: [{ role: "user", content: `q${i}` }] })),
    );
    expect(a.maxInFlight).toBe(2);
    expect(b.maxInFlight).toBe(2);
    // The first four take free slots in turn; later ones take whichever slot frees first.
    expect(results.slice(0, 4).map((r) => r.endpoint)).toEqual([a.url, b.url, a.url, b.url]);
    const byEndpoint = results.reduce(
      (m, r) => m.set(r.endpoint, (m.get(r.endpoint) ?? 0) + 1),
      new Map<string, number>(),
    );
    expect(byEndpoint.get(a.url)! + byEndpoint.get(b.url)!).toBe(16);
    expect(Math.min(byEndpoint.get(a.url)!, byEndpoint.get(b.url)!)).toBeGreaterThanOrEqual(4);
  });

  it("does not retry client errors and keeps the key out of the message", async () => {
    const api = await startFakeApi({ answerFor: () => "" });
    const server = createServer((_req, res) =>
      res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid key"}'),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    process.env.MSR_TEST_KEY_D = "sk-do-not-print";
    const client = clientFor([url], "MSR_TEST_KEY_D");
    const err = (await client
      .chat({ messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)) as ChatRequestError;
    expect(err).toBeInstanceOf(ChatRequestError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/HTTP 401 \(check the key in MSR_TEST_KEY_D\)/);
    expect(err.message).not.toContain("sk-do-not-print");
    server.close();
    // An empty content string is still an answer; a remote endpoint without a key is refused early.
    expect(
      (await clientFor([api.url], "MSR_TEST_KEY_D").chat({ messages: [{ role: "user", content: "x" }] })).content,
    ).toBe("");
    expect(
      () =>
        new OpenAIChatClient({
          endpoints: [{ baseUrl: "https://api.example.com", model: "m", apiKeyEnv: "MSR_TEST_UNSET_KEY" }],
        }),
    ).toThrow(/set the environment variable MSR_TEST_UNSET_KEY/);
  });
});

describe("retry timing", () => {
  it("reads retry-after-ms, Retry-After seconds and HTTP dates", () => {
    expect(parseRetryAfter(new Headers({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
    expect(parseRetryAfter(new Headers({ "retry-after": "2" }))).toBe(2000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter(new Headers({ "retry-after": "Thu, 01 Jan 2026 00:00:03 GMT" }), now)).toBe(3000);
    expect(parseRetryAfter(new Headers({}))).toBeUndefined();
  });
  it("doubles the backoff per retry, jittered into [d/2, d), capped", () => {
    expect(backoffMs(0, 100, 1000, () => 0)).toBe(50);
    expect(backoffMs(3, 100, 1000, () => 0.999999)).toBeCloseTo(800, 3);
    expect(backoffMs(10, 100, 1000, () => 0)).toBe(500);
  });
});
