/**
 * The one HTTP client every stage uses: per-attempt timeouts, retries with
 * backoff and jitter, `Retry-After` and RateLimit headers obeyed, and a rate
 * limiter plus a concurrency limit shared by every client of one host.
 *
 * How answers map to errors:
 * - 2xx/3xx, or a status listed in `accept`: returned.
 * - 401/403: {@linkcode RemoteError} at once (the run stops, exit 3).
 * - 429, 500, 502, 503, 504, network errors and timeouts: retried. The wait is
 *   the server's `Retry-After` (or RateLimit reset) when given, else the
 *   backoff. A server wait above `maxWaitMs` gives {@linkcode TryLaterError}
 *   (exit 75). When retries run out: {@linkcode RecordError} (the record fails);
 *   after 5 such requests in a row to one host: {@linkcode RemoteError}.
 * - Other 4xx: {@linkcode RecordError} at once, with a body excerpt.
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import { z } from "zod";
import { Semaphore } from "./concurrency.ts";
import { ConfigError, RecordError, RemoteError, TryLaterError } from "./errors.ts";
import { RateLimiter, type RateLimitOptions, rateLimitSchema } from "./rate_limit.ts";
import { backoffDelay, parseRetryAfter, type RetryOptions, retrySchema, sleep } from "./retry.ts";
import { secret } from "./secret.ts";

/** Config schema for an HTTP client; stages embed it (or pick from it) in their configs. */
export const httpOptionsSchema = z.object({
  baseUrl: z.url({ protocol: /^https?$/ }).optional()
    .describe("URL that relative request paths are appended to, e.g. https://api.example.com/v2."),
  headers: z.record(z.string(), secret()).optional()
    .describe("Headers sent with every request (values are secrets: redacted from all output)."),
  timeoutMs: z.number().int().positive().default(30_000)
    .describe("Time limit of one attempt (connect, send and read the answer), in milliseconds."),
  retry: retrySchema.prefault({})
    .describe("Retries of network errors, timeouts, 429 and 5xx answers."),
  rateLimit: rateLimitSchema.optional()
    .describe("Rate limit shared by every stage talking to the same host (the strictest wins)."),
  concurrency: z.number().int().positive().default(4)
    .describe(
      "Requests in flight at once to the same host, shared by every stage (the smallest wins).",
    ),
  maxWaitMs: z.number().int().nonnegative().default(300_000)
    .describe(
      "Longest server-requested wait (Retry-After, RateLimit reset) to sit out; beyond it the run stops with exit 75 to try later.",
    ),
}).strict();

/** Options of {@linkcode HttpPool.client}; omitted fields take the schema's defaults. */
export interface HttpClientOptions {
  baseUrl?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  rateLimit?: RateLimitOptions;
  concurrency?: number;
  maxWaitMs?: number;
}

/**
 * Options for {@linkcode HttpPool.client}, picked from a stage's parsed
 * {@linkcode httpOptionsSchema} fields (its other config is left out).
 */
export function clientOptions(config: {
  baseUrl?: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  retry: HttpClientOptions["retry"];
  rateLimit?: HttpClientOptions["rateLimit"];
  concurrency: number;
  maxWaitMs: number;
}): HttpClientOptions {
  return {
    baseUrl: config.baseUrl,
    headers: config.headers,
    timeoutMs: config.timeoutMs,
    retry: config.retry,
    rateLimit: config.rateLimit,
    concurrency: config.concurrency,
    maxWaitMs: config.maxWaitMs,
  };
}

/** One request. */
export interface HttpRequest {
  /** Default `GET`. */
  method?: string;
  /** Relative to the client's `baseUrl` (`/tickets`), or an absolute URL. */
  path: string;
  /** Query parameters added to the URL; `undefined` values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON, with `content-type: application/json` unless a header says otherwise. */
  json?: unknown;
  /** A raw body (use a string or bytes: a stream cannot be sent again on retry). */
  body?: BodyInit;
  /** Headers of this request; they override the client's. */
  headers?: Record<string, string>;
  /** Statuses that are not errors, e.g. `[404]` for a lookup. */
  accept?: number[];
  signal?: AbortSignal;
}

/** An answer, with its body already read. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  url: string;
  text: string;
  /** The body parsed as JSON; throws {@linkcode RecordError} when it is not JSON. */
  json<T = unknown>(): T;
}

/** Sends requests; made by {@linkcode HttpPool.client}. */
export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>;
}

/** Options of {@linkcode HttpPool}. */
export interface HttpPoolOptions {
  /** Where retries are logged (default category `ticketsync.http`). */
  log?: Logger;
  /**
   * The run's stop signal: no request of the pool starts, and no wait goes on,
   * once it is aborted; a request already sent finishes (see `#attempt`).
   */
  signal?: AbortSignal;
  /** The fetch to use (default: global fetch). */
  fetch?: typeof fetch;
  /** Random source for jitter. */
  random?: () => number;
}

/** Statuses worth retrying: the server is overloaded or briefly unwell. */
const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/** Requests in a row to one host that exhaust their retries before the run stops. */
const FAILING_AFTER = 5;
const EXCERPT_CHARS = 300;
/** Query parameter names whose values are secrets and never shown. */
const SECRET_PARAM = /key|token|secret|pass|pwd|sig|auth|credential|session|code/i;

interface ResolvedOptions {
  baseUrl?: string;
  headers: Record<string, string>;
  timeoutMs: number;
  retry: RetryOptions;
  rateLimit: RateLimitOptions;
  concurrency: number;
  maxWaitMs: number;
}

/** What all clients of one origin share. */
interface Host {
  origin: string;
  limiter: RateLimiter;
  semaphore: Semaphore;
  /** Requests in a row that exhausted their retries. */
  failures: number;
}

/** One attempt's result: an answer, or why there was none. */
type Attempt = { response: HttpResponse } | { failure: string };

/**
 * Makes HTTP clients. Clients of one pool that talk to the same origin
 * (scheme, host and port) share one {@linkcode RateLimiter} and one
 * concurrency limit. The first client's settings create them; a later client
 * with stricter settings tightens them (the longest interval and the smallest
 * concurrency win; requests already in flight finish under the old limit).
 */
export class HttpPool {
  readonly #log: Logger;
  readonly #signal?: AbortSignal;
  readonly #fetch: typeof fetch;
  readonly #random: () => number;
  readonly #hosts = new Map<string, Host>();
  #requests = 0;
  #retries = 0;

  constructor(opts: HttpPoolOptions = {}) {
    this.#log = opts.log ?? getLogger(["ticketsync", "http"]);
    this.#signal = opts.signal;
    this.#fetch = opts.fetch ?? fetch;
    this.#random = opts.random ?? Math.random;
  }

  /** A client with these options; throws {@linkcode ConfigError} for a bad `baseUrl`. */
  client(options: HttpClientOptions = {}): HttpClient {
    const resolved = resolveOptions(options);
    if (resolved.baseUrl !== undefined) {
      let origin: string;
      try {
        origin = new URL(resolved.baseUrl).origin;
      } catch {
        throw new ConfigError(
          `Cannot create an HTTP client: baseUrl "${resolved.baseUrl}" is not a URL`,
        );
      }
      this.#host(origin, resolved);
    }
    const send = (req: HttpRequest) => this.#request(resolved, req);
    return {
      request: function request(req: HttpRequest): Promise<HttpResponse> {
        return send(req);
      },
    };
  }

  /** Attempts sent (retries included) and retries, for reports and tests. */
  stats(): { requests: number; retries: number } {
    return { requests: this.#requests, retries: this.#retries };
  }

  /** The shared state of `origin`, created or tightened by `options`. */
  #host(origin: string, options: ResolvedOptions): Host {
    let host = this.#hosts.get(origin);
    if (!host) {
      host = {
        origin,
        limiter: new RateLimiter(options.rateLimit),
        semaphore: new Semaphore(options.concurrency),
        failures: 0,
      };
      this.#hosts.set(origin, host);
    } else {
      host.limiter.tighten(options.rateLimit);
      if (options.concurrency < host.semaphore.limit) {
        host.semaphore = new Semaphore(options.concurrency);
      }
    }
    return host;
  }

  async #request(options: ResolvedOptions, req: HttpRequest): Promise<HttpResponse> {
    const method = (req.method ?? "GET").toUpperCase();
    const url = buildUrl(options.baseUrl, req.path, req.query);
    const shown = displayUrl(url);
    const host = this.#host(url.origin, options);
    const headers = new Headers(options.headers);
    for (const [name, value] of Object.entries(req.headers ?? {})) headers.set(name, value);
    let body = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    const stop = anySignal(this.#signal, req.signal);
    const attempts = Math.max(1, options.retry.attempts);
    let last: { reason: string; status?: number } = { reason: "not attempted" };

    for (let attempt = 1;; attempt++) {
      const paused = host.limiter.pausedUntil - host.limiter.now();
      if (paused > options.maxWaitMs) throw tryLater(method, shown, paused, options.maxWaitMs);

      const result = await this.#attempt(host, {
        url,
        method,
        headers,
        body,
        stop,
        cancel: req.signal,
        options,
        shown,
      });
      let serverWait: number | undefined;
      if ("response" in result) {
        const { response } = result;
        const status = response.status;
        const reset = rateLimitReset(response.headers);
        if (reset !== undefined) host.limiter.pauseFor(reset);
        if (status < 400 || req.accept?.includes(status)) {
          host.failures = 0;
          return response;
        }
        if (status === 401 || status === 403) {
          throw new RemoteError(
            `Authentication failed: ${method} ${shown} answered ${status}`,
            status,
          );
        }
        const details = `answered ${status}: ${excerpt(response.text)}`;
        if (!RETRYABLE.has(status)) {
          host.failures = 0; // the server is up and answering; only this record is wrong
          throw new RecordError(`${method} ${shown} ${details}`, status);
        }
        serverWait = parseRetryAfter(response.headers.get("retry-after"), Date.now()) ?? reset;
        if (serverWait !== undefined) {
          // Everyone waits, not only this request: the server spoke for the whole host.
          host.limiter.pauseFor(serverWait);
          if (serverWait > options.maxWaitMs) {
            throw tryLater(method, shown, serverWait, options.maxWaitMs);
          }
        }
        last = { reason: details, status };
      } else {
        last = { reason: result.failure };
      }

      if (attempt >= attempts) break;
      const wait = serverWait ?? backoffDelay(attempt, options.retry, this.#random);
      this.#log.warn(
        "Retrying {method} {url} in {waitMs} ms (attempt {attempt} of {attempts}): {reason}",
        {
          method,
          url: shown,
          status: last.status,
          reason: last.reason,
          waitMs: wait,
          attempt: attempt + 1,
          attempts,
        },
      );
      this.#retries++;
      await sleep(wait, stop);
    }

    host.failures++;
    const exhausted = `${method} ${shown} failed after ${attempts} attempt${
      attempts === 1 ? "" : "s"
    }: ${last.reason}`;
    if (host.failures >= FAILING_AFTER) {
      throw new RemoteError(
        `${host.origin} is failing: ${host.failures} requests in a row exhausted their retries; last: ${exhausted}`,
        last.status,
      );
    }
    throw new RecordError(exhausted, last.status);
  }

  /** One attempt: a concurrency slot, a rate-limit slot, then fetch and read the body. */
  async #attempt(
    host: Host,
    a: {
      url: URL;
      method: string;
      headers: Headers;
      body: BodyInit | undefined;
      /** Stops waiting for a slot (the run is stopping, or the request was cancelled). */
      stop: AbortSignal | undefined;
      /**
       * Aborts a request on the wire: only the caller's own signal. A run
       * stopped by SIGTERM lets the requests it already sent finish, so what
       * the server did is known and recorded (a webhook is not sent twice).
       */
      cancel: AbortSignal | undefined;
      options: ResolvedOptions;
      shown: string;
    },
  ): Promise<Attempt> {
    // The concurrency slot is taken first, so a request starts right when the
    // limiter lets it (spacing holds) and holds no slot while backing off.
    const release = await host.semaphore.acquire();
    const timeout = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await host.limiter.wait(a.stop);
      if (a.stop?.aborted) throw a.stop.reason;
      this.#requests++;
      timer = setTimeout(function expire() {
        timeout.abort(new DOMException("timed out", "TimeoutError"));
      }, a.options.timeoutMs);
      const signal = a.cancel ? AbortSignal.any([a.cancel, timeout.signal]) : timeout.signal;
      const response = await this.#fetch(a.url, {
        method: a.method,
        headers: a.headers,
        body: a.body,
        signal,
      });
      const text = await response.text();
      return { response: makeResponse(response, text, a.method, a.shown) };
    } catch (error) {
      if (a.cancel?.aborted) throw a.cancel.reason;
      if (a.stop?.aborted) throw a.stop.reason;
      if (timeout.signal.aborted) return { failure: `timed out after ${a.options.timeoutMs} ms` };
      if (error instanceof TypeError) {
        return { failure: `network error: ${networkReason(error, a.url, a.shown)}` };
      }
      throw error;
    } finally {
      clearTimeout(timer);
      release();
    }
  }
}

function resolveOptions(options: HttpClientOptions): ResolvedOptions {
  return {
    baseUrl: options.baseUrl,
    headers: options.headers ?? {},
    timeoutMs: options.timeoutMs ?? 30_000,
    retry: { attempts: 3, initialMs: 500, maxMs: 30_000, jitter: true, ...options.retry },
    rateLimit: options.rateLimit ?? {},
    concurrency: options.concurrency ?? 4,
    maxWaitMs: options.maxWaitMs ?? 300_000,
  };
}

function makeResponse(
  response: Response,
  text: string,
  method: string,
  shown: string,
): HttpResponse {
  return {
    status: response.status,
    headers: response.headers,
    url: response.url,
    text,
    json<T = unknown>(): T {
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new RecordError(
          `${method} ${shown} answered ${response.status} with invalid JSON: ${
            (error as Error).message
          }: ${excerpt(text)}`,
          response.status,
        );
      }
    },
  };
}

function tryLater(method: string, shown: string, waitMs: number, maxWaitMs: number): TryLaterError {
  return new TryLaterError(
    `Cannot wait for ${method} ${shown}: the server asked to wait ${
      Math.ceil(waitMs / 1000)
    } s, more than maxWaitMs (${maxWaitMs} ms); try again later`,
    waitMs,
  );
}

/** The URL a request goes to: `path` appended to `baseUrl` (or absolute), plus `query`. */
export function buildUrl(
  baseUrl: string | undefined,
  path: string,
  query: HttpRequest["query"] = {},
): URL {
  let url: URL;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    url = new URL(path);
  } else if (baseUrl !== undefined) {
    const tail = path.replace(/^\/+/, "");
    url = new URL(tail === "" ? baseUrl : `${baseUrl.replace(/\/+$/, "")}/${tail}`);
  } else {
    throw new ConfigError(
      `Cannot request "${path}": it is not an absolute URL and the HTTP client has no baseUrl`,
    );
  }
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.append(name, String(value));
  }
  return url;
}

/**
 * `url` fit for logs and messages: a URL password and the values of query
 * parameters that look secret (`api_key`, `token`, `signature`, ...) become `***`.
 */
export function displayUrl(url: URL | string): string {
  const copy = new URL(url);
  if (copy.password) copy.password = "***";
  for (const name of new Set(copy.searchParams.keys())) {
    if (SECRET_PARAM.test(name)) copy.searchParams.set(name, "***");
  }
  return copy.href;
}

/** The first 300 characters of a body, on one line, for messages. */
export function excerpt(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  if (line === "") return "(empty body)";
  return line.length <= EXCERPT_CHARS ? line : `${line.slice(0, EXCERPT_CHARS - 3)}...`;
}

/** A fetch TypeError's innermost reason, with the full URL (and its query) replaced. */
function networkReason(error: TypeError, url: URL, shown: string): string {
  let reason: unknown = error;
  while (reason instanceof Error && reason.cause instanceof Error) reason = reason.cause;
  const message = reason instanceof Error ? reason.message : String(reason);
  // The runtime may print the URL without its user:password part.
  const bare = new URL(url);
  bare.username = "";
  bare.password = "";
  return message.replaceAll(url.href, shown).replaceAll(bare.href, shown);
}

/**
 * Milliseconds until the server's rate-limit window resets, when it says no
 * requests remain (`RateLimit-Remaining: 0` with `RateLimit-Reset`, the
 * `X-RateLimit-*` variants, or a combined `RateLimit: remaining=0, reset=30`
 * header). A reset above 10^9 is read as epoch seconds, else as seconds from now.
 */
export function rateLimitReset(headers: Headers, now = Date.now()): number | undefined {
  let remaining = headers.get("ratelimit-remaining") ?? headers.get("x-ratelimit-remaining");
  let reset = headers.get("ratelimit-reset") ?? headers.get("x-ratelimit-reset");
  const combined = headers.get("ratelimit");
  if (combined !== null) {
    remaining ??= combined.match(/(?:^|[;,\s])(?:remaining|r)=(\d+)/)?.[1] ?? null;
    reset ??= combined.match(/(?:^|[;,\s])(?:reset|t)=(\d+)/)?.[1] ?? null;
  }
  if (remaining === null || reset === null || Number(remaining.trim()) !== 0) return undefined;
  const value = Number(reset.trim());
  if (!Number.isFinite(value) || value < 0) return undefined;
  const ms = value > 1e9 ? value * 1000 - now : value * 1000;
  return Math.max(0, Math.ceil(ms));
}

/** One signal aborted by any of the given ones (`undefined` when none is given). */
function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
