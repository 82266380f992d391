import assert from "node:assert/strict";
import { RemoteError } from "../../lib/errors.ts";
import type { Item } from "../../lib/stage.ts";
import { configProblems, createStage, FixedClock, testContext } from "../../tests/harness.ts";
import { jsonResponse, type StubRequest, StubServer } from "../../tests/stub_server.ts";
import { fillTemplate, stage, windowRange } from "./http.ts";

const FAST_RETRY = { attempts: 3, initialMs: 1, maxMs: 5 };
const NOW = Temporal.Instant.from("2026-03-31T12:00:00Z");

/** `n` records `{ id: "R<i>" }`. */
function records(n: number, from = 1): { id: string }[] {
  return Array.from({ length: n }, (_, i) => ({ id: `R${from + i}` }));
}

interface ReadOutcome {
  items: Item[];
  error: unknown;
  deadLetters: { item: Item; reason: string }[];
  expected: number | undefined;
}

async function readAll(config: Record<string, unknown>): Promise<ReadOutcome> {
  const test = testContext({ clock: new FixedClock(NOW) });
  const reader = await createStage(stage, { retry: FAST_RETRY, ...config }, test.ctx);
  const items: Item[] = [];
  let error: unknown;
  try {
    for await (const item of reader.read()) items.push(item);
  } catch (caught) {
    error = caught;
  }
  return { items, error, deadLetters: test.deadLetters, expected: reader.expected?.() };
}

/** An SDP-like endpoint: `input_data` JSON with list_info start_index/row_count, has_more_rows. */
function mountSdpLike(stub: StubServer, all: unknown[]): void {
  stub.route("GET", "/api/v3/requests", (req: StubRequest) => {
    const input = JSON.parse(req.query.get("input_data") ?? "{}");
    const { start_index: start, row_count: rows } = input.list_info;
    const page = all.slice(start - 1, start - 1 + rows);
    return {
      list_info: {
        has_more_rows: start - 1 + rows < all.length,
        start_index: start,
        row_count: page.length,
        total_count: all.length,
      },
      requests: page,
    };
  });
}

Deno.test("readHttp() pages by offset through a JSON query parameter until has_more_rows is false", async () => {
  await using stub = await StubServer.start();
  mountSdpLike(stub, records(250));
  const { items, error, expected } = await readAll({
    baseUrl: `${stub.url}/api/v3`,
    path: "/requests",
    jsonQuery: {
      input_data: {
        list_info: { start_index: "{$start}", row_count: "{$size}", note: "page {$page}" },
      },
    },
    pagination: { style: "offset", start: 1, size: 100 },
    items: "requests",
    hasMore: "list_info.has_more_rows",
    total: "list_info.total_count",
  });
  assert.equal(error, undefined);
  assert.equal(items.length, 250);
  assert.equal(expected, 250);
  assert.deepEqual(items.map((i) => i.data.id), records(250).map((r) => r.id));
  assert.deepEqual(items[107].origin, {
    source: `${stub.url}/api/v3/requests`,
    position: "page 2, index 7",
  });
  assert.equal(items[107].key, `${stub.url}/api/v3/requests#page 2, index 7`);
  const sent = stub.requests("GET").map((r) => JSON.parse(r.query.get("input_data")!));
  assert.deepEqual(sent.map((s) => s.list_info), [
    { start_index: 1, row_count: 100, note: "page 1" },
    { start_index: 101, row_count: 100, note: "page 2" },
    { start_index: 201, row_count: 100, note: "page 3" },
  ]);
});

Deno.test("readHttp() without a has-more flag stops at a short page, or at the total without an extra request; a capped page reads on to the total", async () => {
  await using stub = await StubServer.start();
  let all = records(230);
  stub.route("GET", "/api/tickets", (req) => {
    const skip = Number(req.query.get("skip"));
    const top = Number(req.query.get("top"));
    return { rows: all.slice(skip, skip + top), total: all.length };
  });
  const config = {
    baseUrl: stub.url,
    path: "/api/tickets",
    query: { event: "E1" },
    pagination: { style: "offset", startParam: "skip", sizeParam: "top", size: 100 },
    items: "rows",
  };
  const short = await readAll(config);
  assert.equal(short.items.length, 230);
  assert.deepEqual(
    stub.requests("GET").map((
      r,
    ) => [r.query.get("event"), r.query.get("skip"), r.query.get("top")]),
    [["E1", "0", "100"], ["E1", "100", "100"], ["E1", "200", "100"]],
  );

  stub.reset();
  all = records(200);
  const exact = await readAll({ ...config, total: "total" });
  assert.equal(exact.items.length, 200);
  assert.equal(stub.requests("GET").length, 2, "the total says there is no third page");

  stub.reset();
  const noTotal = await readAll(config);
  assert.equal(noTotal.items.length, 200);
  assert.equal(stub.requests("GET").length, 3, "without a total, an empty page ends it");

  // A server that caps its pages below `size`: with a total, reading goes on from what came back.
  stub.reset();
  all = records(35);
  stub.route("GET", "/api/tickets", (req) => {
    const skip = Number(req.query.get("skip"));
    return { rows: all.slice(skip, skip + 5), total: all.length };
  });
  const capped = await readAll({ ...config, total: "total" });
  assert.equal(capped.items.length, 35);
  assert.deepEqual(new Set(capped.items.map((item) => item.data.id)).size, 35);
  assert.deepEqual(
    stub.requests("GET").map((r) => r.query.get("skip")),
    ["0", "5", "10", "15", "20", "25", "30"],
  );
});

Deno.test("readHttp() pages by page number, and by cursor", async () => {
  await using stub = await StubServer.start();
  const all = records(5);
  stub.route("GET", "/paged", (req) => {
    const page = Number(req.query.get("page"));
    return all.slice((page - 1) * 2, page * 2);
  });
  const paged = await readAll({
    baseUrl: stub.url,
    path: "/paged",
    pagination: { style: "page", pageParam: "page", sizeParam: "per_page", size: 2 },
  });
  assert.deepEqual(paged.items.map((i) => i.data.id), ["R1", "R2", "R3", "R4", "R5"]);
  assert.deepEqual(stub.requests("GET").map((r) => r.query.get("page")), ["1", "2", "3"]);
  assert.equal(paged.items[4].origin.position, "page 3, index 0");

  stub.route("GET", "/cursor", (req) => {
    const at = Number(req.query.get("after") ?? "0");
    const next = at + 2 < all.length ? String(at + 2) : null;
    return { data: all.slice(at, at + 2), paging: { next } };
  });
  stub.reset();
  const cursored = await readAll({
    baseUrl: stub.url,
    path: "/cursor",
    items: "data",
    pagination: { style: "cursor", cursorParam: "after", next: "paging.next", size: 2 },
  });
  assert.deepEqual(cursored.items.map((i) => i.data.id), ["R1", "R2", "R3", "R4", "R5"]);
  assert.deepEqual(stub.requests("GET").map((r) => r.query.get("after")), [null, "2", "4"]);
});

Deno.test("readHttp() stops with exit 3 when a cursor repeats instead of looping", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/loop", () => ({ data: records(1), next: "same" }));
  const { items, error } = await readAll({
    baseUrl: stub.url,
    path: "/loop",
    items: "data",
    pagination: { style: "cursor", cursorParam: "c", next: "next" },
  });
  assert.equal(items.length, 2);
  assert.ok(error instanceof RemoteError);
  assert.match(error.message, /returned cursor "same" again/);
});

Deno.test("readHttp() dead-letters a record that is not an object with its page and index", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/list", () => ({ items: [{ id: "A" }, "oops", null, { id: "B" }] }));
  const { items, deadLetters } = await readAll({
    baseUrl: stub.url,
    path: "/list",
    items: "items",
  });
  assert.deepEqual(items.map((i) => i.data.id), ["A", "B"]);
  assert.deepEqual(deadLetters.map((d) => [d.item.origin.position, d.reason, d.item.data]), [
    ["page 1, index 1", 'expected an object, got "oops"', { value: "oops" }],
    ["page 1, index 2", "expected an object, got null", { value: null }],
  ]);
});

Deno.test("readHttp() retries a 429 with Retry-After, then reads on", async () => {
  await using stub = await StubServer.start();
  mountSdpLike(stub, records(150));
  stub.script("GET", "/api/v3/requests", [
    { status: 429, headers: { "retry-after": "0" }, body: { error: "slow down" } },
  ]);
  const { items, error } = await readAll({
    baseUrl: stub.url,
    path: "/api/v3/requests",
    jsonQuery: { input_data: { list_info: { start_index: "{$start}", row_count: "{$size}" } } },
    pagination: { style: "offset", start: 1, size: 100 },
    items: "requests",
    hasMore: "list_info.has_more_rows",
  });
  assert.equal(error, undefined);
  assert.equal(items.length, 150);
  assert.equal(stub.requests("GET").length, 3, "one 429, then two pages");
});

Deno.test("readHttp() stops the run on 401, and on a page failing after its retries, after the records before it", async () => {
  await using stub = await StubServer.start();
  mountSdpLike(stub, records(150));
  const config = {
    baseUrl: stub.url,
    path: "/api/v3/requests",
    jsonQuery: { input_data: { list_info: { start_index: "{$start}", row_count: "{$size}" } } },
    pagination: { style: "offset", start: 1, size: 100 },
    items: "requests",
    hasMore: "list_info.has_more_rows",
  };
  stub.script("GET", "/api/v3/requests", [401]);
  const denied = await readAll(config);
  assert.equal(denied.items.length, 0);
  assert.ok(denied.error instanceof RemoteError);
  assert.equal(denied.error.exitCode, 3);
  assert.match(denied.error.message, /^Authentication failed: GET .* answered 401/);
  assert.equal(stub.requests("GET").length, 1, "no retry of a 401");

  stub.reset();
  let calls = 0;
  stub.route("GET", "/api/v3/requests", (req) => {
    if (++calls === 1) {
      return { list_info: { has_more_rows: true }, requests: records(100) };
    }
    return jsonResponse({ error: `down (${req.path})` }, 503);
  });
  const failing = await readAll(config);
  assert.equal(failing.items.length, 100, "page 1 was read before page 2 failed");
  assert.ok(failing.error instanceof RemoteError);
  assert.match(
    failing.error.message,
    /^Cannot read page 2 of .*\/api\/v3\/requests: GET .* failed after 3 attempts: answered 503/,
  );
  assert.equal(calls, 4, "page 1, then page 2 three times");
});

Deno.test("readHttp() stops with exit 3 when an answer has no record array", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/odd", () => ({ result: "maintenance" }));
  const { error } = await readAll({ baseUrl: stub.url, path: "/odd", items: "requests" });
  assert.ok(error instanceof RemoteError);
  assert.match(error.message, /expected an array at "requests", got nothing/);
});

Deno.test("readHttp() fills {$from}/{$to} from a window of days or of start and end dates", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/w", () => []);
  await readAll({
    baseUrl: stub.url,
    path: "/w",
    query: { from: "{$from}", to: "{$to}", label: "{$fromIso}..{$toIso}" },
    window: { days: 30 },
  });
  const query = stub.requests("GET")[0].query;
  assert.equal(Number(query.get("to")), NOW.epochMilliseconds);
  assert.equal(Number(query.get("from")), NOW.epochMilliseconds - 30 * 86_400_000);
  assert.equal(query.get("label"), "2026-03-01T12:00:00Z..2026-03-31T12:00:00Z");

  assert.deepEqual(
    windowRange({ start: "2024-01-01", end: "2024-03-31", days: 90, zone: "UTC" }, NOW),
    {
      from: Date.UTC(2024, 0, 1),
      to: Date.UTC(2024, 3, 1) - 1,
    },
  );
  assert.deepEqual(windowRange({ start: "", end: "", days: 2, zone: "UTC" }, NOW), {
    from: NOW.epochMilliseconds - 2 * 86_400_000,
    to: NOW.epochMilliseconds,
  });
  // Days counted in a zone: 2024-07-01 starts at 04:00Z in New York (EDT).
  assert.equal(
    windowRange({ start: "2024-07-01", zone: "America/New_York" }, NOW).from,
    Date.UTC(2024, 6, 1, 4),
  );
});

Deno.test("fillTemplate() keeps the type of a lone placeholder and leaves unset ones out", () => {
  const scope = { start: 101, size: 100, cursor: undefined };
  assert.deepEqual(
    fillTemplate(
      { a: "{$start}", b: "n={$size}", c: "{$cursor}", d: ["{$start}", 1, true] },
      scope,
    ),
    { a: 101, b: "n=100", d: [101, 1, true] },
  );
  assert.equal(fillTemplate("{literal} {$size}", scope), "{literal} 100");
});

Deno.test("readHttp() config: unknown placeholders, a window without start or days, start after end, a relative path without baseUrl", () => {
  const base = { baseUrl: "http://127.0.0.1:9", path: "/x" };
  const known = "{$now}, {$nowIso}, {$from}, {$to}, {$fromIso}, {$toIso}";
  assert.deepEqual(
    configProblems(stage, {
      ...base,
      query: { x: "{$nope}", since: "{$from}" },
      jsonQuery: { input_data: { list_info: { start_index: "{$start}" } } },
    }),
    [
      `stages[0].query.x: unknown placeholder {$nope}; expected one of ${known}`,
      'stages[0].query.since: {$from} needs a date range: expected "window" in this stage\'s config',
      `stages[0].jsonQuery.input_data.list_info.start_index: unknown placeholder {$start} (pagination "none" has no pages); expected one of ${known}`,
    ],
  );
  assert.deepEqual(configProblems(stage, { ...base, window: { end: "2024-01-01" } }), [
    'stages[0].window: expected "start" or "days"',
  ]);
  assert.deepEqual(
    configProblems(stage, { ...base, window: { start: "2024-02-01", end: "2024-01-01" } }),
    ['stages[0].window.end: expected a day on or after start "2024-02-01", got "2024-01-01"'],
  );
  assert.deepEqual(configProblems(stage, { ...base, window: { start: "2024-02-30" } }), [
    'stages[0].window.start: expected a real date like 2026-01-31, got "2024-02-30"',
  ]);
  assert.deepEqual(configProblems(stage, { path: "/api/v3/requests" }), [
    'stages[0].path: expected an absolute URL like "https://api.example.com/v2/items" when "baseUrl" is not set, got "/api/v3/requests"',
  ]);
  assert.deepEqual(
    configProblems(stage, {
      path: "https://api.example.com/items",
      query: { since: "{$fromIso}", skip: "{$start}" },
      pagination: { style: "offset" },
      window: { days: 7 },
    }),
    [],
  );
});
