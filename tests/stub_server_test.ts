import assert from "node:assert/strict";
import { DROP, jsonResponse, matchPath, seededRandom, StubServer } from "./stub_server.ts";

/** fetch + read the body (so nothing leaks); returns status, headers and text. */
async function get(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

Deno.test("matchPath() matches literal, :param and trailing * segments", () => {
  assert.deepEqual(matchPath("/api/tickets/:id", "/api/tickets/42"), { id: "42" });
  assert.deepEqual(matchPath("/api/tickets/:id/", "/api/tickets/a%20b"), { id: "a b" });
  assert.equal(matchPath("/api/tickets/:id", "/api/tickets"), null);
  assert.equal(matchPath("/api/tickets/:id", "/api/tickets/1/comments"), null);
  assert.deepEqual(matchPath("/files/*", "/files/a/b/c"), {});
  assert.equal(matchPath("/files/*", "/other/a"), null);
  assert.deepEqual(matchPath("/", "/"), {});
});

Deno.test("seededRandom() repeats its sequence for the same seed", () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const first = [a(), a(), a()];
  assert.deepEqual(first, [b(), b(), b()]);
  assert.ok(first.every((n) => n >= 0 && n < 1));
  assert.notEqual(seededRandom(8)(), first[0]);
});

Deno.test("StubServer routes requests, passes params and logs them in order", async () => {
  await using stub = await StubServer.start();
  assert.match(stub.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  stub
    .route("GET", "/api/tickets/:id", (req) => ({ id: req.params.id, page: req.query.get("page") }))
    .route("POST", "/api/tickets", (req) => jsonResponse({ got: req.json }, 201))
    .route("DELETE", "/api/tickets/:id", () => undefined);

  const read = await get(`${stub.url}/api/tickets/7?page=2`);
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("content-type"), "application/json");
  assert.deepEqual(JSON.parse(read.text), { id: "7", page: "2" });

  const created = await get(`${stub.url}/api/tickets`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": "abc" },
    body: JSON.stringify({ title: "Printer on fire" }),
  });
  assert.equal(created.status, 201);
  assert.deepEqual(JSON.parse(created.text), { got: { title: "Printer on fire" } });

  assert.equal((await get(`${stub.url}/api/tickets/7`, { method: "DELETE" })).status, 204);

  const missing = await get(`${stub.url}/nowhere`);
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.text), { error: "No stub route for GET /nowhere" });

  assert.deepEqual(stub.log.map((r) => `${r.method} ${r.path}`), [
    "GET /api/tickets/7",
    "POST /api/tickets",
    "DELETE /api/tickets/7",
    "GET /nowhere",
  ]);
  const post = stub.requests("POST")[0];
  assert.equal(post.body, '{"title":"Printer on fire"}');
  assert.equal(post.headers.get("x-token"), "abc");
  assert.deepEqual(post.json, { title: "Printer on fire" });
  assert.equal(stub.requests(undefined, "/api").length, 3);
  assert.equal(stub.requests("GET", "/api").length, 1);
  assert.ok(stub.log[0].at <= stub.log[1].at);
});

Deno.test("StubServer lets the route added last win", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/things/:id", () => ({ from: "general" }));
  stub.route("GET", "/things/special", () => ({ from: "override" }));
  stub.route("*", "/any", (req) => ({ method: req.method }));
  assert.deepEqual(JSON.parse((await get(`${stub.url}/things/special`)).text), {
    from: "override",
  });
  assert.deepEqual(JSON.parse((await get(`${stub.url}/things/1`)).text), { from: "general" });
  assert.deepEqual(JSON.parse((await get(`${stub.url}/any`, { method: "PUT" })).text), {
    method: "PUT",
  });
});

Deno.test("StubServer.script() answers the next requests, then normal handling resumes", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/items", () => ["ok"]);
  stub.script("GET", "/items", [
    503,
    { status: 429, headers: { "retry-after": "3" }, body: { error: "slow down" } },
    { status: 200, body: "plain" },
  ]);
  const first = await get(`${stub.url}/items`);
  assert.equal(first.status, 503);
  assert.deepEqual(JSON.parse(first.text), { error: "Scripted 503" });
  const second = await get(`${stub.url}/items`);
  assert.equal(second.status, 429);
  assert.equal(second.headers.get("retry-after"), "3");
  assert.deepEqual(JSON.parse(second.text), { error: "slow down" });
  assert.equal((await get(`${stub.url}/items`)).text, "plain");
  assert.deepEqual(JSON.parse((await get(`${stub.url}/items`)).text), ["ok"]);
  // Other methods are not affected by a GET script.
  stub.script("GET", "/items", [500]);
  assert.equal((await get(`${stub.url}/items`, { method: "POST" })).status, 404);
  assert.equal((await get(`${stub.url}/items`)).status, 500);
});

Deno.test('StubServer.script() "drop" makes fetch reject with a network error', async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/flaky", () => ({ ok: true }));
  stub.script("GET", "/flaky", ["drop"]);
  await assert.rejects(fetch(`${stub.url}/flaky`), TypeError);
  assert.equal((await get(`${stub.url}/flaky`)).status, 200);
  assert.equal(stub.requests("GET", "/flaky").length, 2);
});

Deno.test("StubServer route handlers can drop the connection with DROP", async () => {
  await using stub = await StubServer.start();
  let calls = 0;
  stub.route("POST", "/once", () => ++calls === 1 ? DROP : { calls });
  await assert.rejects(fetch(`${stub.url}/once`, { method: "POST", body: "{}" }), TypeError);
  assert.deepEqual(JSON.parse((await get(`${stub.url}/once`, { method: "POST" })).text), {
    calls: 2,
  });
});

Deno.test("StubServer.faults() fails a seeded, repeatable share of matching requests", async () => {
  async function run(seed: number): Promise<number[]> {
    await using stub = await StubServer.start();
    stub.route("*", "/x", () => ({ ok: true }));
    stub.faults({ rate: 0.5, statuses: [500, 503], retryAfterSeconds: 2, seed, methods: ["GET"] });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const answer = await get(`${stub.url}/x`);
      statuses.push(answer.status);
      if (answer.status !== 200) assert.equal(answer.headers.get("retry-after"), "2");
    }
    // POST is not in `methods`: never faulted.
    for (let i = 0; i < 5; i++) {
      assert.equal((await get(`${stub.url}/x`, { method: "POST" })).status, 200);
    }
    return statuses;
  }
  const first = await run(42);
  assert.deepEqual(await run(42), first);
  const failed = first.filter((s) => s !== 200);
  assert.ok(failed.length > 0 && failed.length < 20, `got ${first.join(",")}`);
  assert.ok(failed.every((s) => s === 500 || s === 503));
});

Deno.test("StubServer.latency() delays answers and in-flight requests are counted", async () => {
  await using stub = await StubServer.start({ latencyMs: 50 });
  stub.route("GET", "/slow", () => ({ ok: true }));
  const before = performance.now();
  await Promise.all([1, 2, 3].map(() => get(`${stub.url}/slow`)));
  assert.ok(performance.now() - before >= 45);
  assert.equal(stub.maxInFlight, 3);
  assert.equal(stub.inFlight, 0);
  stub.latency(0);
});

Deno.test("StubServer.reset() clears log, scripts and faults but keeps routes", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/r", () => ({ ok: true }));
  stub.script("GET", "/r", [500, 500]);
  stub.faults({ rate: 1, statuses: [502] });
  assert.equal((await get(`${stub.url}/r`)).status, 500);
  stub.reset();
  assert.equal(stub.log.length, 0);
  assert.equal((await get(`${stub.url}/r`)).status, 200);
  assert.equal(stub.log.length, 1);
});

Deno.test("StubServer reports a throwing handler as a 500 naming the error", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/boom", () => {
    throw new Error("kaput");
  });
  const answer = await get(`${stub.url}/boom`);
  assert.equal(answer.status, 500);
  assert.match(answer.text, /kaput/);
});

Deno.test("StubServer.close() ends requests still waiting on latency", async () => {
  const stub = await StubServer.start({ latencyMs: 60_000 });
  const pending = fetch(`${stub.url}/slow`).then((r) => r.text(), (e: unknown) => e);
  while (stub.log.length === 0) await new Promise((r) => setTimeout(r, 5));
  await stub.close();
  await pending;
  await stub.close(); // closing twice is harmless
});
