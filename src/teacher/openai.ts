// An OpenAI-compatible chat client (`POST {baseUrl}/chat/completions`) built for long batch jobs
// against paid endpoints:
// - the API key comes from an environment variable only and never appears in errors or logs;
// - bounded concurrency per endpoint; several endpoints are served round-robin (scale-out);
// - retries with exponential backoff and jitter on 429, 5xx, timeouts, connection errors and
//   truncated or unparsable bodies, never sooner than `retry-after-ms` / `Retry-After` asks;
// - DeepSeek's hidden chain (`reasoning_content`) is kept beside the answer (`content`).
import type { Teacher, TeacherAnswer, TeacherRequest } from "./types.js";

export interface EndpointConfig {
  /** e.g. https://api.deepseek.com or http://127.0.0.1:8000/v1 (".../chat/completions" is appended). */
  baseUrl: string;
  model: string;
  /** Environment variable holding the key (default OPENAI_API_KEY). */
  apiKeyEnv?: string;
  /** Requests in flight on this endpoint at once (default 4). */
  concurrency?: number;
  /** Fail early without a key (default: required unless the host is loopback). */
  requireApiKey?: boolean;
}

export interface ClientOptions {
  endpoints: EndpointConfig[];
  /** Per request, body included (default 10 min: reasoning models think for a long time). */
  timeoutMs?: number;
  /** Retries after the first try (default 8). */
  maxRetries?: number;
  /** First backoff step (default 500 ms), doubling per retry up to maxDelayMs (default 60 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Upper bound on a server-requested wait (default 5 min). */
  maxRetryAfterMs?: number;
  /** Jitter source in [0, 1) (tests pass a fixed one). */
  random?: () => number;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
}

export interface ChatResult {
  content: string;
  reasoningContent?: string;
  model: string;
  finishReason?: string;
  /** Base URL of the endpoint that answered. */
  endpoint: string;
  /** Tries it took (1 = first try succeeded). */
  tries: number;
}

/** A failed chat request; `retryable` says whether trying again could help. */
export class ChatRequestError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ChatRequestError";
  }
}

const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529]);

/** `retry-after-ms` (OpenAI) or `Retry-After` as seconds or an HTTP date; undefined if absent. */
export function parseRetryAfter(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const ra = headers.get("retry-after");
  if (ra === null) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Number(ra) * 1000;
  const at = Date.parse(ra);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Exponential backoff with jitter: a delay in [d/2, d), d = min(max, base·2^retry). */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const d = Math.min(maxMs, baseMs * 2 ** retry);
  return d * (0.5 + 0.5 * random());
}

function isLoopback(url: URL): boolean {
  return ["127.0.0.1", "localhost", "[::1]", "::1"].includes(url.hostname);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ChatRequestError("request aborted", false));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ChatRequestError("request aborted", false));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

class Endpoint {
  active = 0;
  readonly url: string;
  readonly limit: number;
  readonly apiKey: string | undefined;

  constructor(readonly config: EndpointConfig) {
    let parsed: URL;
    try {
      parsed = new URL(config.baseUrl);
    } catch {
      throw new Error(`base URL "${config.baseUrl}" is not a URL; give e.g. https://api.deepseek.com`);
    }
    this.url = config.baseUrl.replace(/\/+$/, "") + "/chat/completions";
    this.limit = config.concurrency ?? 4;
    if (!Number.isInteger(this.limit) || this.limit < 1)
      throw new Error(`endpoint concurrency must be a positive integer, got ${config.concurrency}`);
    const env = config.apiKeyEnv ?? "OPENAI_API_KEY";
    this.apiKey = process.env[env] || undefined;
    if (!this.apiKey && (config.requireApiKey ?? !isLoopback(parsed))) {
      throw new Error(
        `no API key for ${config.baseUrl}: set the environment variable ${env} (or name another with --api-key-env)`,
      );
    }
  }
}

export class OpenAIChatClient {
  private readonly endpoints: Endpoint[];
  private next = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly o: Required<Omit<ClientOptions, "endpoints">>;

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new Error("at least one endpoint (base URL) is required");
    this.endpoints = options.endpoints.map((e) => new Endpoint(e));
    this.o = {
      timeoutMs: options.timeoutMs ?? 600_000,
      maxRetries: options.maxRetries ?? 8,
      baseDelayMs: options.baseDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 60_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 300_000,
      random: options.random ?? Math.random,
    };
  }

  /** Total request slots over all endpoints. */
  get capacity(): number {
    return this.endpoints.reduce((a, e) => a + e.limit, 0);
  }

  /** The next endpoint with a free slot, round-robin; waits when all are busy. */
  private async acquire(signal?: AbortSignal): Promise<Endpoint> {
    for (;;) {
      for (let k = 0; k < this.endpoints.length; k++) {
        const e = this.endpoints[(this.next + k) % this.endpoints.length]!;
        if (e.active < e.limit) {
          this.next = (this.next + k + 1) % this.endpoints.length;
          e.active++;
          return e;
        }
      }
      if (signal?.aborted) throw new ChatRequestError("request aborted", false);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private release(e: Endpoint): void {
    e.active--;
    this.waiters.shift()?.();
  }

  /** One chat completion, retried as the header explains; throws ChatRequestError when it gives up. */
  async chat(req: ChatRequest, signal?: AbortSignal): Promise<ChatResult> {
    let last: ChatRequestError | undefined;
    for (let retry = 0; retry <= this.o.maxRetries; retry++) {
      const e = await this.acquire(signal);
      let wait: number;
      try {
        return { ...(await this.once(e, req, signal)), tries: retry + 1 };
      } catch (err) {
        last = err instanceof ChatRequestError ? err : new ChatRequestError(String(err), false);
        if (!last.retryable || signal?.aborted) throw last;
        // Never sooner than the server asked, and never sooner than the backoff (a "Retry-After: 0"
        // from a busy server must not turn into a tight loop).
        const backoff = backoffMs(retry, this.o.baseDelayMs, this.o.maxDelayMs, this.o.random);
        wait =
          last.retryAfterMs !== undefined
            ? Math.max(backoff, Math.min(last.retryAfterMs, this.o.maxRetryAfterMs))
            : backoff;
      } finally {
        this.release(e);
      }
      if (retry < this.o.maxRetries) await sleep(wait, signal);
    }
    throw new ChatRequestError(`gave up after ${this.o.maxRetries + 1} tries: ${last?.message}`, false, last?.status);
  }

  private async once(e: Endpoint, req: ChatRequest, signal?: AbortSignal): Promise<Omit<ChatResult, "tries">> {
    const body: Record<string, unknown> = { model: e.config.model, messages: req.messages, stream: false };
    if (req.temperature !== undefined) body.temperature = req.temperature;
    if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens;
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (e.apiKey) headers.authorization = `Bearer ${e.apiKey}`;
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const where = `${e.config.baseUrl} (${e.config.model})`;
    let status = 0;
    let text: string;
    let res: Response;
    try {
      res = await fetch(e.url, { method: "POST", headers, body: JSON.stringify(body), signal: combined });
      status = res.status;
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw new ChatRequestError("request aborted", false);
      if (timeout.aborted)
        throw new ChatRequestError(`${where}: no complete answer within ${this.o.timeoutMs} ms`, true);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const what = status ? `the answer body broke off (HTTP ${status})` : "connection failed";
      throw new ChatRequestError(`${where}: ${what}: ${cause?.code ?? cause?.message ?? String(err)}`, true);
    }
    if (!res.ok) {
      const excerpt = text.slice(0, 300).replace(/\s+/g, " ");
      const hint =
        status === 401 || status === 403
          ? ` (check the key in ${e.config.apiKeyEnv ?? "OPENAI_API_KEY"})`
          : status === 404
            ? " (check --base-url and --model)"
            : "";
      throw new ChatRequestError(
        `${where}: HTTP ${status}${hint}: ${excerpt}`,
        RETRYABLE_STATUS.has(status),
        status,
        parseRetryAfter(res.headers),
      );
    }
    let json: {
      model?: string;
      choices?: { message?: { content?: string | null; reasoning_content?: string | null }; finish_reason?: string }[];
    };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new ChatRequestError(`${where}: the answer is not JSON (${text.length} bytes, truncated?)`, true, status);
    }
    const choice = json.choices?.[0];
    const content = choice?.message?.content;
    if (typeof content !== "string")
      throw new ChatRequestError(`${where}: the answer has no choices[0].message.content`, true, status);
    const reasoning = choice?.message?.reasoning_content;
    return {
      content,
      ...(typeof reasoning === "string" && reasoning.length > 0 ? { reasoningContent: reasoning } : {}),
      model: json.model ?? e.config.model,
      ...(choice?.finish_reason ? { finishReason: choice.finish_reason } : {}),
      endpoint: e.config.baseUrl,
    };
  }
}

/** The teacher over a chat client: the Figure 3 prompt as the one user message. */
export class OpenAITeacher implements Teacher {
  readonly name = "openai";
  readonly model: string;

  constructor(
    private readonly client: OpenAIChatClient,
    private readonly params: { temperature?: number; maxTokens?: number; model?: string } = {},
  ) {
    this.model = params.model ?? "openai-compatible";
  }

  async ask(req: TeacherRequest, signal?: AbortSignal): Promise<TeacherAnswer> {
    const r = await this.client.chat(
      {
        messages: [{ role: "user", content: req.prompt }],
        temperature: this.params.temperature,
        maxTokens: this.params.maxTokens,
      },
      signal,
    );
    return {
      content: r.content,
      model: r.model,
      ...(r.reasoningContent ? { reasoningContent: r.reasoningContent } : {}),
    };
  }
}
