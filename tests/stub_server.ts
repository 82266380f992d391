/**
 * A programmable HTTP stub for tests, examples and benchmarks: routes with
 * `:param` patterns, a request log for assertions, scripted and random faults
 * (statuses, `Retry-After`, dropped connections) and latency.
 *
 * How a request is answered, in order:
 * 1. it is appended to {@linkcode StubServer.log};
 * 2. the configured latency passes;
 * 3. a matching {@linkcode StubServer.script} entry answers, if one has replies left;
 * 4. a random {@linkcode StubServer.faults} fault answers, if the dice say so;
 * 5. the matching route answers; when several match, the one added LAST wins
 *    (so a test can override one route of an emulated API);
 * 6. otherwise 404 with a JSON body naming the request.
 *
 * Dropped connections: `Deno.serve` always answers (a failing handler gives a
 * 500, a failing body stream still sends the status line first), so the stub
 * listens on a plain TCP socket and pipes each connection to an inner
 * `Deno.serve` server. To drop a request, the stub closes both halves of that
 * connection before anything is written back: the client's `fetch` rejects with
 * a network error, exactly as with a server that crashed or reset mid-request.
 *
 * Run directly to get an empty stub: `deno run --allow-net tests/stub_server.ts --port 8080`;
 * add `--backend texas811 [--token T]` to emulate the Texas811 backend API (tests/backend_api.ts).
 * @module
 */
import { parseArgs } from "node:util";

/** One request the stub received. */
export interface StubRequest {
  method: string;
  /** Path without the query string, e.g. `/api/tickets/42`. */
  path: string;
  query: URLSearchParams;
  headers: Headers;
  /** The body as text (empty when none). */
  body: string;
  /** The body parsed as JSON, when it was JSON. */
  json?: unknown;
  /** When the request arrived: `performance.now()` of this process, in milliseconds. */
  at: number;
  /** Values of the route's `:name` segments (empty for script, fault and 404 answers). */
  params: Record<string, string>;
}

/** A handler's answer: return {@linkcode DROP} to drop the connection instead. */
export const DROP: unique symbol = Symbol("drop");

/**
 * Answers a request: a `Response` is sent as is, `undefined` gives an empty
 * 204, {@linkcode DROP} drops the connection, anything else is sent as JSON
 * with status 200.
 */
export type StubHandler = (req: StubRequest, stub: StubServer) => unknown;

/**
 * A scripted answer: a status (with a small JSON error body), a full answer
 * (a string `body` is sent as text, anything else as JSON), or `"drop"` to drop
 * the connection without answering.
 */
export type StubReply = number | {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
} | "drop";

/** Options of {@linkcode StubServer.faults}. */
export interface FaultOptions {
  /** Fraction of matching requests that fail, 0 to 1. */
  rate: number;
  /** Statuses to pick from (uniformly); 0 means a dropped connection. */
  statuses: number[];
  /** Adds `Retry-After: <seconds>` to fault answers. */
  retryAfterSeconds?: number;
  /** PRNG seed, so a run's faults repeat exactly (default 1). */
  seed?: number;
  /** Only these methods fail (default: all). */
  methods?: string[];
  /** Only paths starting with this fail (default: all). */
  pathPrefix?: string;
}

interface Route {
  method: string;
  pattern: string;
  handler: StubHandler;
}

interface Script {
  method: string;
  pattern: string;
  replies: StubReply[];
}

interface Faults extends FaultOptions {
  random: () => number;
}

/** One client connection and its pipe to the inner server. */
interface Link {
  front: Deno.Conn;
  back: Deno.Conn;
}

/**
 * The `:name` values when `path` matches `pattern`, else `null`. Patterns are
 * literal segments, `:name` segments (one segment each) and an optional
 * trailing `*` that matches the rest. Trailing slashes are ignored.
 */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = segments(pattern);
  const have = segments(path);
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const part = want[i];
    if (part === "*" && i === want.length - 1) return params;
    if (i >= have.length) return null;
    if (part.startsWith(":")) params[part.slice(1)] = decodeURIComponent(have[i]);
    else if (part !== have[i]) return null;
  }
  return want.length === have.length ? params : null;
}

function segments(path: string): string[] {
  return path.split("/").filter((part) => part !== "");
}

/** A JSON response. */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A small seeded PRNG (mulberry32): same seed, same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function methodMatches(wanted: string, method: string): boolean {
  return wanted === "*" || wanted.toUpperCase() === method;
}

/** A programmable HTTP stub on 127.0.0.1; see the module doc for how it answers. */
export class StubServer implements AsyncDisposable {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly log: StubRequest[] = [];

  #routes: Route[] = [];
  #scripts: Script[] = [];
  #faults: Faults | undefined;
  #latencyMs: number;
  #inFlight = 0;
  #maxInFlight = 0;
  #closed = false;
  readonly #closing = new AbortController();
  readonly #listener: Deno.TcpListener;
  readonly #inner: Deno.HttpServer<Deno.NetAddr>;
  readonly #innerStop: AbortController;
  readonly #links = new Map<number, Link>();
  readonly #pipes = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, latencyMs: number) {
    this.#listener = listener;
    this.#latencyMs = latencyMs;
    this.#innerStop = new AbortController();
    this.#inner = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: this.#innerStop.signal, onListen() {} },
      (request, info) => this.#handle(request, info.remoteAddr.port),
    );
    this.url = `http://127.0.0.1:${listener.addr.port}`;
    this.#accepting = this.#accept();
  }

  /** Starts a stub on 127.0.0.1 (`port` 0 or omitted: any free port). */
  static start(opts: { port?: number; latencyMs?: number } = {}): Promise<StubServer> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: opts.port ?? 0 });
    return Promise.resolve(new StubServer(listener, opts.latencyMs ?? 0));
  }

  /** Requests currently being answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The most requests ever answered at the same time (since start or {@linkcode reset}). */
  get maxInFlight(): number {
    return this.#maxInFlight;
  }

  /**
   * Adds a route. `method` is an HTTP method or `*`; `pattern` as in
   * {@linkcode matchPath}. When several routes match, the one added last wins.
   */
  route(method: string, pattern: string, handler: StubHandler): this {
    this.#routes.push({ method, pattern, handler });
    return this;
  }

  /**
   * The next `replies.length` requests matching `method` and `pattern` get
   * these replies, one each, in order; then normal handling resumes. Scripts
   * for the same method and pattern queue up; no route is needed.
   */
  script(method: string, pattern: string, replies: StubReply[]): this {
    this.#scripts.push({ method, pattern, replies: [...replies] });
    return this;
  }

  /** Random faults for matching requests (replaces earlier fault settings). */
  faults(opts: FaultOptions): this {
    this.#faults = { ...opts, random: seededRandom(opts.seed ?? 1) };
    return this;
  }

  /** Delay before every answer, in milliseconds. */
  latency(ms: number): this {
    this.#latencyMs = ms;
    return this;
  }

  /** Logged requests, optionally only of one method and under one path prefix. */
  requests(method?: string, pathPrefix?: string): StubRequest[] {
    return this.log.filter((req) =>
      (method === undefined || methodMatches(method, req.method)) &&
      (pathPrefix === undefined || req.path.startsWith(pathPrefix))
    );
  }

  /** Clears the log, scripts, faults and in-flight maximum; routes and latency stay. */
  reset(): void {
    this.log.length = 0;
    this.#scripts = [];
    this.#faults = undefined;
    this.#maxInFlight = this.#inFlight;
  }

  /** Waits `ms`, or less when the stub closes (for handlers that simulate slow work). */
  delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.#closing.signal;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Stops listening, drops open connections and waits for everything to end.
   * Latency and {@linkcode delay} end early; a handler that never returns would
   * keep `close()` waiting.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    this.#listener.close();
    await this.#accepting;
    for (const link of this.#links.values()) closeLink(link);
    await Promise.all(this.#pipes);
    this.#innerStop.abort();
    await this.#inner.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const front of this.#listener) {
        const pipe = this.#pipe(front);
        this.#pipes.add(pipe);
        pipe.finally(() => this.#pipes.delete(pipe));
      }
    } catch (error) {
      if (!this.#closed) throw error;
    }
  }

  /** Pipes one client connection to the inner server until either side ends. */
  async #pipe(front: Deno.Conn): Promise<void> {
    let back: Deno.TcpConn;
    try {
      back = await Deno.connect({ hostname: "127.0.0.1", port: this.#inner.addr.port });
    } catch {
      front.close();
      return;
    }
    const link = { front, back };
    // The inner server sees the stub's side of `back` as the client address.
    const port = back.localAddr.port;
    this.#links.set(port, link);
    if (this.#closed) closeLink(link);
    await Promise.all([
      front.readable.pipeTo(back.writable).catch(() => {}),
      back.readable.pipeTo(front.writable).catch(() => {}),
    ]);
    this.#links.delete(port);
    closeLink(link);
  }

  async #handle(request: Request, port: number): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const req: StubRequest = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body,
      json: parseJson(body, request.headers.get("content-type")),
      at: performance.now(),
      params: {},
    };
    this.log.push(req);
    this.#inFlight++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
    try {
      if (this.#latencyMs > 0) await this.delay(this.#latencyMs);
      const answer = await this.#answer(req);
      if (answer === DROP) {
        const link = this.#links.get(port);
        if (link) closeLink(link);
        return new Response(null, { status: 500 });
      }
      return answer;
    } catch (error) {
      return jsonResponse({ error: `Stub handler failed: ${String(error)}` }, 500);
    } finally {
      this.#inFlight--;
    }
  }

  async #answer(req: StubRequest): Promise<Response | typeof DROP> {
    const script = this.#scripts.find((s) =>
      s.replies.length > 0 && methodMatches(s.method, req.method) &&
      matchPath(s.pattern, req.path) !== null
    );
    if (script) return replyResponse(script.replies.shift()!);

    const faults = this.#faults;
    if (
      faults && faults.statuses.length > 0 &&
      (!faults.methods || faults.methods.some((m) => methodMatches(m, req.method))) &&
      (!faults.pathPrefix || req.path.startsWith(faults.pathPrefix)) &&
      faults.random() < faults.rate
    ) {
      const status = faults.statuses[Math.floor(faults.random() * faults.statuses.length)];
      if (status === 0) return DROP;
      const headers: Record<string, string> = {};
      if (faults.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(faults.retryAfterSeconds);
      }
      return jsonResponse({ error: `Injected fault: ${status}` }, status, headers);
    }

    for (let i = this.#routes.length - 1; i >= 0; i--) {
      const route = this.#routes[i];
      if (!methodMatches(route.method, req.method)) continue;
      const params = matchPath(route.pattern, req.path);
      if (params === null) continue;
      req.params = params;
      const result = await route.handler(req, this);
      if (result instanceof Response || result === DROP) return result;
      if (result === undefined) return new Response(null, { status: 204 });
      return jsonResponse(result);
    }
    return jsonResponse({ error: `No stub route for ${req.method} ${req.path}` }, 404);
  }
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function replyResponse(reply: StubReply): Response | typeof DROP {
  if (reply === "drop") return DROP;
  if (typeof reply === "number") {
    if (NULL_BODY_STATUSES.has(reply)) return new Response(null, { status: reply });
    return jsonResponse({ error: `Scripted ${reply}` }, reply);
  }
  const { status, headers = {}, body } = reply;
  if (body === undefined) return new Response(null, { status, headers });
  if (typeof body === "string") return new Response(body, { status, headers });
  return jsonResponse(body, status, headers);
}

function parseJson(body: string, contentType: string | null): unknown {
  if (body === "" || !contentType?.includes("json")) return undefined;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function closeLink(link: Link): void {
  for (const conn of [link.front, link.back]) {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8080" },
      backend: { type: "string" },
      token: { type: "string" },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`Cannot start the stub: --port must be 0-65535, got "${values.port}"`);
    Deno.exit(1);
  }
  const stub = await StubServer.start({ port });
  Deno.addSignalListener("SIGINT", function stop() {
    stub.close().then(() => Deno.exit(0));
  });
  if (values.backend === undefined) {
    console.log(`Stub server listening on ${stub.url}`);
  } else if (values.backend === "texas811") {
    // Not awaited: backend_api.ts imports this module, which must finish evaluating first.
    import("./backend_api.ts").then(function mount({ mountBackend }) {
      mountBackend(stub, { token: values.token });
      console.log(`Stub server emulating the Texas811 backend API on ${stub.url}/api`);
    });
  } else {
    console.error(`Cannot start the stub: --backend must be "texas811", got "${values.backend}"`);
    await stub.close();
    Deno.exit(1);
  }
}
