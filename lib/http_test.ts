import assert from "node:assert/strict";
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { StubServer } from "../tests/stub_server.ts";
import { RecordError, RemoteError, TryLaterError } from "./errors.ts";
import { buildUrl, displayUrl, httpOptionsSchema, HttpPool, rateLimitReset } from "./http.ts";
import { collectSecrets } from "./secret.ts";

/** Fast, deterministic retries for tests. */
const FAST = { attempts: 3, initialMs: 10, maxMs: 100, jitter: false };
/** A 1 s server wait, less 1 ms for timer rounding. */
const WAITED_1S = 999;

/**
 * A pool whose fetch notes when each attempt starts, and where to. Timing
 * assertions use these client-side times: the stub's arrival times also carry
 * connection set-up and scheduling jitter, which can make two starts look
 * closer than they were.
 */
function timedPool(opts: ConstructorParameters<typeof HttpPool>[0] = {}) {
  const starts: { at: number; wall: number; url: string }[] = [];
  const pool = new HttpPool({
    ...opts,
    fetch: function timedFetch(input, init) {
      starts.push({ at: performance.now(), wall: Date.now(), url: String(input) });
      return fetch(input, init);
    },
  });
  /** Milliseconds between consecutive starts (to URLs beginning with `prefix`). */
  function gaps(prefix = ""): number[] {
    const times = starts.filter((s) => s.url.startsWith(prefix)).map((s) => s.at);
    return times.slice(1).map((at, i) => at - times[i]);
  }
  return { pool, starts, gaps };
}

Deno.test("HttpPool client retries 5xx answers with backoff, then succeeds", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/tickets", () => ({ tickets: [1, 2] }));
  stub.script("GET", "/tickets", [503, 500]);
  const { pool, gaps } = timedPool();
  const client = pool.client({ baseUrl: stub.url, retry: { ...FAST, initialMs: 20 } });
  const response = await client.request({ path: "/tickets" });
  assert.equal(response.status, 200);
  assert.deepEqual(response.json(), { tickets: [1, 2] });
  assert.equal(stub.log.length, 3);
  assert.deepEqual(pool.stats(), { requests: 3, retries: 2 });
  const [first, second] = gaps();
  assert.ok(first >= 20, `first backoff ${first} ms`);
  assert.ok(second >= 40, `second backoff ${second} ms`);
});

Deno.test("HttpPool client sends JSON bodies, query parameters and merged headers", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/api/tickets", (req) => ({ echo: req.json }));
  const client = new HttpPool().client({
    baseUrl: `${stub.url}/api/`,
    headers: { "x-api-key": "k-123", "x-tenant": "a" },
  });
  const response = await client.request({
    method: "post",
    path: "tickets",
    query: { page: 2, all: true, skip: undefined },
    json: { title: "Hi" },
    headers: { "x-tenant": "b" },
  });
  assert.deepEqual(response.json(), { echo: { title: "Hi" } });
  const [req] = stub.log;
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/api/tickets");
  assert.equal(req.query.toString(), "page=2&all=true");
  assert.equal(req.headers.get("content-type"), "application/json");
  assert.equal(req.headers.get("x-api-key"), "k-123");
  assert.equal(req.headers.get("x-tenant"), "b");
});

Deno.test("HttpPool client obeys Retry-After in seconds", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/slow", () => ({ ok: true }));
  stub.script("GET", "/slow", [{ status: 429, headers: { "retry-after": "1" } }]);
  const { pool, gaps } = timedPool();
  const client = pool.client({ baseUrl: stub.url, retry: FAST });
  assert.equal((await client.request({ path: "/slow" })).status, 200);
  assert.equal(stub.log.length, 2);
  assert.ok(gaps()[0] >= WAITED_1S, `waited ${gaps()[0]} ms`);
});

Deno.test("HttpPool client obeys Retry-After as an HTTP date", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/slow", () => ({ ok: true }));
  // HTTP dates have whole seconds: two seconds ahead is at least one second away.
  const date = new Date(Date.now() + 2000).toUTCString();
  stub.script("GET", "/slow", [{ status: 503, headers: { "retry-after": date } }]);
  const { pool, starts } = timedPool();
  const client = pool.client({ baseUrl: stub.url, retry: FAST });
  assert.equal((await client.request({ path: "/slow" })).status, 200);
  assert.equal(stub.log.length, 2);
  // Not retried before the date (the first try was at least 1 s before it).
  assert.ok(starts[1].wall >= Date.parse(date), `retried at ${starts[1].wall}, date ${date}`);
});

Deno.test("HttpPool client pauses the host on RateLimit-Remaining: 0", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/limited", () => ({ ok: true }));
  stub.script("GET", "/limited", [
    { status: 429, headers: { "ratelimit-remaining": "0", "ratelimit-reset": "1" } },
  ]);
  const { pool, starts } = timedPool();
  const client = pool.client({ baseUrl: stub.url, retry: FAST });
  const other = pool.client({ baseUrl: stub.url });
  const first = client.request({ path: "/limited" });
  while (stub.log.length === 0) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 50));
  // A second client of the same host is held by the pause too.
  const second = other.request({ path: "/limited" });
  await Promise.all([first, second]);
  assert.equal(stub.log.length, 3);
  assert.equal(starts.length, 3);
  for (const { at } of starts.slice(1)) {
    assert.ok(at - starts[0].at >= WAITED_1S, `started after ${at - starts[0].at} ms`);
  }
});

Deno.test("HttpPool client throws TryLaterError when the server asks for more than maxWaitMs", async () => {
  await using stub = await StubServer.start();
  stub.script("GET", "/later", [{ status: 429, headers: { "retry-after": "120" } }]);
  const client = new HttpPool().client({ baseUrl: stub.url, retry: FAST, maxWaitMs: 60_000 });
  const error = await client.request({ path: "/later" }).catch((e: unknown) => e);
  assert.ok(error instanceof TryLaterError);
  assert.equal(error.waitMs, 120_000);
  assert.equal(error.exitCode, 75);
  assert.match(error.message, /the server asked to wait 120 s, more than maxWaitMs \(60000 ms\)/);
  assert.equal(stub.log.length, 1);

  // The host stays paused: the next request gives up at once, without a request.
  await assert.rejects(client.request({ path: "/later" }), TryLaterError);
  assert.equal(stub.log.length, 1);
});

Deno.test("HttpPool client throws RemoteError on 401 and 403 without retrying", async () => {
  await using stub = await StubServer.start();
  stub.script("GET", "/secret", [401]);
  stub.script("POST", "/secret", [403]);
  const client = new HttpPool().client({ baseUrl: stub.url, retry: FAST });
  await assert.rejects(client.request({ path: "/secret" }), (error: unknown) => {
    assert.ok(error instanceof RemoteError);
    assert.equal(error.status, 401);
    assert.equal(error.exitCode, 3);
    assert.equal(error.message, `Authentication failed: GET ${stub.url}/secret answered 401`);
    return true;
  });
  assert.equal(stub.log.length, 1);
  await assert.rejects(
    client.request({ method: "POST", path: "/secret", json: {} }),
    { name: "RemoteError", status: 403 },
  );
  assert.equal(stub.log.length, 2);
});

Deno.test("HttpPool client throws RecordError with a body excerpt on 422, without retrying", async () => {
  await using stub = await StubServer.start();
  stub.script("POST", "/tickets", [
    { status: 422, body: { error: "subject is required" } },
    { status: 400, body: `bad\n request ${"x".repeat(1000)}` },
  ]);
  const client = new HttpPool().client({ baseUrl: stub.url, retry: FAST });
  await assert.rejects(client.request({ method: "POST", path: "/tickets", json: {} }), (error) => {
    assert.ok(error instanceof RecordError);
    assert.equal(error.status, 422);
    assert.equal(
      error.message,
      `POST ${stub.url}/tickets answered 422: {"error":"subject is required"}`,
    );
    return true;
  });
  assert.equal(stub.log.length, 1);
  const long = await client.request({ method: "POST", path: "/tickets" }).catch((e) => e);
  assert.ok(long instanceof RecordError);
  const excerpt = long.message.split("answered 400: ")[1];
  assert.ok(excerpt.startsWith("bad request xxx"));
  assert.equal(excerpt.length, 300);
  assert.ok(excerpt.endsWith("..."));
});

Deno.test("HttpPool client returns statuses listed in accept", async () => {
  await using stub = await StubServer.start();
  const client = new HttpPool().client({ baseUrl: stub.url, retry: FAST });
  const response = await client.request({ path: "/users/9", accept: [404] });
  assert.equal(response.status, 404);
  assert.match(response.text, /No stub route/);
  await assert.rejects(client.request({ path: "/users/9" }), { name: "RecordError", status: 404 });
  assert.equal(stub.log.length, 2);
});

Deno.test("HttpPool client retries a dropped connection", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/flaky", () => ({ ok: true }));
  stub.script("GET", "/flaky", ["drop", "drop"]);
  const pool = new HttpPool();
  const client = pool.client({ baseUrl: stub.url, retry: FAST });
  assert.deepEqual((await client.request({ path: "/flaky" })).json(), { ok: true });
  assert.equal(stub.log.length, 3);
  assert.equal(pool.stats().retries, 2);
});

Deno.test("HttpPool client retries a refused connection, then fails the record", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const client = new HttpPool().client({ baseUrl: `http://127.0.0.1:${port}`, retry: FAST });
  await assert.rejects(client.request({ path: "/x" }), (error) => {
    assert.ok(error instanceof RecordError);
    assert.match(
      error.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/x failed after 3 attempts: network error: /,
    );
    return true;
  });
});

Deno.test("HttpPool client retries an attempt that timed out", async () => {
  await using stub = await StubServer.start();
  let calls = 0;
  stub.route("GET", "/sometimes-slow", async (_req, s) => {
    if (++calls === 1) await s.delay(2000);
    return { calls };
  });
  const pool = new HttpPool();
  const client = pool.client({ baseUrl: stub.url, timeoutMs: 100, retry: FAST });
  assert.deepEqual((await client.request({ path: "/sometimes-slow" })).json(), { calls: 2 });
  assert.equal(stub.log.length, 2);
  assert.deepEqual(pool.stats(), { requests: 2, retries: 1 });

  stub.latency(2000);
  const error = await client.request({ path: "/sometimes-slow" }).catch((e) => e);
  assert.ok(error instanceof RecordError);
  assert.match(error.message, /failed after 3 attempts: timed out after 100 ms$/);
});

Deno.test("HttpPool never exceeds the per-host concurrency limit", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/work/:n", async (req, s) => {
    await s.delay(30);
    return { n: req.params.n };
  });
  const client = new HttpPool().client({ baseUrl: stub.url, concurrency: 3, retry: FAST });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, n) => client.request({ path: `/work/${n}` })),
  );
  assert.equal(results.length, 10);
  assert.equal(stub.log.length, 10);
  assert.equal(stub.maxInFlight, 3);

  // A second client of the same host with a smaller limit tightens it for both.
  stub.reset();
  const pool = new HttpPool();
  const wide = pool.client({ baseUrl: stub.url, concurrency: 8 });
  const narrow = pool.client({ baseUrl: stub.url, concurrency: 2 });
  await Promise.all(
    Array.from({ length: 8 }, (_, n) => (n % 2 ? wide : narrow).request({ path: `/work/${n}` })),
  );
  assert.equal(stub.log.length, 8);
  assert.equal(stub.maxInFlight, 2);
});

Deno.test("HttpPool clients of one host share the rate limiter (the strictest wins)", async () => {
  await using stub = await StubServer.start();
  await using otherHost = await StubServer.start();
  stub.route("GET", "/a", () => ({}));
  otherHost.route("GET", "/a", () => ({}));
  const { pool, gaps } = timedPool();
  const loose = pool.client({ baseUrl: stub.url, rateLimit: { perSecond: 50 } });
  const strict = pool.client({ baseUrl: `${stub.url}/a`, rateLimit: { minIntervalMs: 80 } });
  const elsewhere = pool.client({ baseUrl: otherHost.url });
  await Promise.all([
    ...[1, 2, 3].map(() => loose.request({ path: "/a" })),
    ...[1, 2, 3].map(() => strict.request({ path: "" })),
    ...[1, 2, 3].map(() => elsewhere.request({ path: "/a" })),
  ]);
  assert.equal(stub.log.length, 6);
  assert.equal(otherHost.log.length, 3);
  const shared = gaps(stub.url);
  assert.equal(shared.length, 5);
  for (const gap of shared) assert.ok(gap >= 80, `gaps ${shared.join(", ")}`);
});

Deno.test("HttpPool stops the run after 5 requests in a row exhaust their retries", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/ok", () => ({ ok: true }));
  stub.faults({ rate: 1, statuses: [503], pathPrefix: "/down" });
  const client = new HttpPool().client({ baseUrl: stub.url, retry: { ...FAST, attempts: 2 } });

  async function failing(): Promise<unknown> {
    return await client.request({ path: "/down" }).catch((e: unknown) => e);
  }
  for (let i = 0; i < 4; i++) {
    const error = await failing();
    assert.ok(error instanceof RecordError, String(error));
    assert.match(error.message, /GET .*\/down failed after 2 attempts: answered 503: /);
  }
  // A success resets the count.
  await client.request({ path: "/ok" });
  for (let i = 0; i < 4; i++) assert.ok(await failing() instanceof RecordError);
  const error = await failing();
  assert.ok(error instanceof RemoteError);
  assert.equal(error.status, 503);
  assert.equal(error.exitCode, 3);
  assert.match(
    error.message,
    new RegExp(`^${stub.url} is failing: 5 requests in a row exhausted their retries; last: GET`),
  );
  assert.equal(stub.requests("GET", "/down").length, 18);
});

Deno.test("HttpPool logs retries without header values or secret query values", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (record) => records.push(record) },
    loggers: [
      { category: ["http-test"], sinks: ["capture"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  try {
    await using stub = await StubServer.start();
    stub.route("GET", "/search", () => ({ ok: true }));
    stub.script("GET", "/search", [502]);
    const pool = new HttpPool({ log: getLogger(["http-test"]) });
    const client = pool.client({
      baseUrl: stub.url,
      headers: { authorization: "Bearer sup3r-secret-header" },
      retry: FAST,
    });
    await client.request({ path: "/search", query: { q: "printer", api_key: "qu3ry-secret" } });
    assert.equal(records.length, 1);
    const [record] = records;
    assert.equal(record.level, "warning");
    const message = record.message.map(String).join("");
    assert.equal(
      message,
      `Retrying GET ${stub.url}/search?q=printer&api_key=*** in 10 ms (attempt 2 of 3): answered 502: {"error":"Scripted 502"}`,
    );
    const everything = JSON.stringify(record) + message;
    assert.ok(!everything.includes("sup3r-secret-header"));
    assert.ok(!everything.includes("qu3ry-secret"));
    assert.equal(record.properties.status, 502);
  } finally {
    await reset();
  }
});

Deno.test("HttpPool signal aborts a request waiting for its retry", async () => {
  await using stub = await StubServer.start();
  stub.script("GET", "/x", [500]);
  const controller = new AbortController();
  const client = new HttpPool({ signal: controller.signal }).client({
    baseUrl: stub.url,
    retry: { ...FAST, initialMs: 60_000, maxMs: 60_000 },
  });
  const pending = client.request({ path: "/x" });
  while (stub.log.length === 0) await new Promise((r) => setTimeout(r, 2));
  controller.abort(new Error("run interrupted"));
  await assert.rejects(pending, { message: "run interrupted" });
  assert.equal(stub.log.length, 1);
});

Deno.test("HttpResponse.json() throws RecordError for a body that is not JSON", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/html", () => new Response("<html>oops</html>"));
  const response = await new HttpPool().client({ baseUrl: stub.url }).request({ path: "/html" });
  assert.throws(() => response.json(), (error) => {
    assert.ok(error instanceof RecordError);
    assert.match(
      error.message,
      /^GET .*\/html answered 200 with invalid JSON: .*: <html>oops<\/html>$/,
    );
    return true;
  });
});

Deno.test("buildUrl() appends paths to the base URL and adds the query", () => {
  assert.equal(buildUrl("https://x.test/api/v2", "/tickets").href, "https://x.test/api/v2/tickets");
  assert.equal(buildUrl("https://x.test/api/v2/", "tickets").href, "https://x.test/api/v2/tickets");
  assert.equal(buildUrl("https://x.test/api", "").href, "https://x.test/api");
  assert.equal(
    buildUrl("https://x.test", "https://other.test/a?b=1", { c: 2 }).href,
    "https://other.test/a?b=1&c=2",
  );
  assert.throws(() => buildUrl(undefined, "/tickets"), {
    name: "ConfigError",
    message:
      'Cannot request "/tickets": it is not an absolute URL and the HTTP client has no baseUrl',
  });
});

Deno.test("displayUrl() hides passwords and secret-looking query values", () => {
  assert.equal(
    displayUrl("https://me:pw@x.test/a?page=2&access_token=abc&Signature=zz"),
    "https://me:***@x.test/a?page=2&access_token=***&Signature=***",
  );
  assert.equal(displayUrl("https://x.test/a?page=2"), "https://x.test/a?page=2");
  assert.equal(displayUrl("https://x.test/a?pwd=hunter22"), "https://x.test/a?pwd=***");
});

Deno.test("HttpPool: a network error names the URL without its secret query values, with or without user:password", async () => {
  // A port nothing listens on: the connection is refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const pool = new HttpPool();
  for (const base of [`http://svc:pw-very-secret@127.0.0.1:${port}`, `http://127.0.0.1:${port}`]) {
    const client = pool.client({ retry: { attempts: 1 } });
    const error = await client.request({ path: `${base}/items?signature=sig-abcdef123&page=2` })
      .catch((error) => error);
    assert.ok(error instanceof Error);
    assert.doesNotMatch(error.message, /sig-abcdef123|pw-very-secret/, error.message);
    assert.match(error.message, /signature=\*\*\*&page=2/);
  }
});

Deno.test("rateLimitReset() reads RateLimit and X-RateLimit headers", () => {
  const now = 1_700_000_000_000;
  const h = (init: Record<string, string>) => new Headers(init);
  assert.equal(
    rateLimitReset(h({ "ratelimit-remaining": "0", "ratelimit-reset": "30" }), now),
    30_000,
  );
  assert.equal(
    rateLimitReset(h({ "ratelimit-remaining": "5", "ratelimit-reset": "30" }), now),
    undefined,
  );
  assert.equal(
    rateLimitReset(h({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060" }), now),
    60_000,
  );
  assert.equal(rateLimitReset(h({ "ratelimit": "limit=100, remaining=0, reset=7" }), now), 7000);
  assert.equal(rateLimitReset(h({ "ratelimit": '"default";r=0;t=4' }), now), 4000);
  assert.equal(rateLimitReset(h({}), now), undefined);
});

Deno.test("httpOptionsSchema fills defaults and marks header values secret", () => {
  const parsed = httpOptionsSchema.parse({
    baseUrl: "https://x.test",
    headers: { authorization: "Bearer abcdef" },
  });
  assert.deepEqual(parsed, {
    baseUrl: "https://x.test",
    headers: { authorization: "Bearer abcdef" },
    timeoutMs: 30_000,
    retry: { attempts: 3, initialMs: 500, maxMs: 30_000, jitter: true },
    concurrency: 4,
    maxWaitMs: 300_000,
  });
  assert.deepEqual([...collectSecrets(httpOptionsSchema, parsed)], ["Bearer abcdef"]);
  assert.equal(httpOptionsSchema.safeParse({ baseUrl: "ftp://x.test" }).success, false);
  assert.equal(httpOptionsSchema.safeParse({ rateLimit: { perSecond: -1 } }).success, false);
  assert.equal(httpOptionsSchema.safeParse({ timeout: 5 }).success, false);
  for (const field of Object.values(httpOptionsSchema.shape)) assert.ok(field.description);
});
