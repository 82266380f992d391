import assert from "node:assert/strict";
import { RemoteError } from "../../lib/errors.ts";
import type { SyncResult } from "../../lib/stage.ts";
import {
  collect,
  createStage,
  fromArray,
  item,
  MemoryState,
  result,
  testContext,
} from "../../tests/harness.ts";
import { jsonResponse, StubServer } from "../../tests/stub_server.ts";
import { DELIVERY_LOG, stage } from "./webhook.ts";

const FAST_RETRY = { attempts: 3, initialMs: 1, maxMs: 5 };

function event(id: string, extra: Record<string, unknown> = {}) {
  return item(id, { id: `evt-${id}`, type: "ticket.created", ticket: id, ...extra }, `index ${id}`);
}

async function send(
  config: Record<string, unknown>,
  results: SyncResult[],
  options: { state?: MemoryState; mode?: "run" | "plan"; full?: boolean } = {},
): Promise<SyncResult[]> {
  const { ctx } = testContext({
    state: options.state,
    options: { mode: options.mode ?? "run", full: options.full ?? false },
  });
  const sink = await createStage(stage, { retry: FAST_RETRY, ...config }, ctx);
  return await collect(sink.sync(fromArray(results)));
}

Deno.test("syncTicketsWebhook() posts each record once, then sends nothing for unchanged content", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/hook", () => ({ ok: true }));
  const state = new MemoryState();
  const url = `${stub.url}/hook`;
  const first = await send({ url }, [result(event("A")), result(event("B"))], { state });
  assert.deepEqual(first.map((r) => [r.item.key, r.outcome]), [["A", "created"], ["B", "created"]]);
  const posts = stub.requests("POST", "/hook");
  assert.deepEqual(posts.map((p) => p.json), [event("A").data, event("B").data]);
  const keys = posts.map((p) => p.headers.get("idempotency-key"));
  assert.match(keys[0] ?? "", /^[0-9a-f]{32}$/);
  assert.notEqual(keys[0], keys[1]);

  stub.reset();
  const changed = event("B", { status: "changed" });
  const second = await send({ url }, [result(event("A")), result(changed)], { state });
  assert.deepEqual(second.map((r) => r.outcome), ["unchanged", "updated"]);
  assert.deepEqual(stub.requests("POST").map((p) => p.json), [changed.data]);

  stub.reset();
  const full = await send({ url }, [result(event("A"))], { state, full: true });
  assert.deepEqual(full.map((r) => r.outcome), ["updated"]);
  assert.equal(stub.requests("POST").length, 1, "--full resends");
  assert.equal(stub.requests("POST")[0].headers.get("idempotency-key"), keys[0]);
});

Deno.test("syncTicketsWebhook() logs a delivery before the next request starts, per URL", async () => {
  await using stub = await StubServer.start();
  const state = new MemoryState();
  const seenBeforeSecond: number[] = [];
  // Delivery log entries (the time of the last delivery to a URL is kept beside them).
  const logged = () =>
    [...state.cache.keys()].filter((key) => key.startsWith(`${DELIVERY_LOG}\u0000`));
  stub.route("POST", "/prod", () => {
    seenBeforeSecond.push(logged().length);
    return {};
  });
  stub.route("POST", "/test-created", () => ({}));
  const records = [result(event("A")), result(event("B")), result(event("C"))];
  await send({ url: `${stub.url}/test-created` }, records.slice(0, 1), { state });
  assert.equal(logged().length, 1);
  const prod = await send({ url: `${stub.url}/prod` }, records, { state });
  assert.deepEqual(prod.map((r) => r.outcome), ["created", "created", "created"]);
  assert.deepEqual(seenBeforeSecond, [1, 2, 3], "each delivery was logged before the next POST");
  assert.equal(logged().length, 4);
});

Deno.test("syncTicketsWebhook() spaces requests by rateLimit.minIntervalMs, one at a time", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/hook", () => ({}));
  const results = ["A", "B", "C", "D"].map((id) => result(event(id)));
  await send({ url: `${stub.url}/hook`, rateLimit: { minIntervalMs: 60 } }, results);
  const times = stub.requests("POST").map((r) => r.at);
  assert.equal(times.length, 4);
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - times[i - 1] >= 55, `gap ${times[i] - times[i - 1]} ms`);
  }
  assert.equal(stub.maxInFlight, 1);
});

Deno.test("syncTicketsWebhook() retries a 500, fails a 4xx record, and stops the run on 401", async () => {
  await using stub = await StubServer.start();
  stub.route(
    "POST",
    "/hook",
    (req) =>
      (req.json as { ticket: string }).ticket === "B"
        ? jsonResponse({ error: "unknown ticket type" }, 422)
        : {},
  );
  stub.script("POST", "/hook", [500]);
  const url = `${stub.url}/hook`;
  const out = await send({ url }, [result(event("A")), result(event("B")), result(event("C"))]);
  assert.deepEqual(out.map((r) => [r.item.key, r.outcome]), [
    ["A", "created"],
    ["B", "failed"],
    ["C", "created"],
  ]);
  assert.match(
    out[1].reason ?? "",
    /^POST .*\/hook answered 422: \{"error":"unknown ticket type"\}/,
  );
  assert.equal(stub.requests("POST").length, 4, "A twice (500, then 200), B once, C once");

  stub.reset();
  stub.script("POST", "/hook", [401]);
  await assert.rejects(
    () => send({ url }, [result(event("A")), result(event("B"))]),
    (error: unknown) =>
      error instanceof RemoteError && /^Authentication failed: POST/.test(error.message),
  );
  assert.equal(stub.requests("POST").length, 1, "nothing sent after the 401");
});

Deno.test("syncTicketsWebhook() renders a body template and URL placeholders; plan sends nothing", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/hook/:ticket", () => ({}));
  const config = { url: `${stub.url}/hook/{ticket}`, body: { event: "{$data}", kind: "{type}" } };
  const state = new MemoryState();
  const planned = await send(config, [result(event("A"))], { state, mode: "plan" });
  assert.deepEqual(planned.map((r) => r.outcome), ["created"]);
  assert.equal(stub.log.length, 0);
  assert.equal(state.cache.size, 0);

  await send(config, [result(event("A b"))], { state });
  const [post] = stub.requests("POST");
  assert.equal(post.path, "/hook/A%20b");
  assert.deepEqual(post.json, { event: event("A b").data, kind: "ticket.created" });
});

Deno.test("syncTicketsWebhook() keeps the spacing across runs: a new run's first request waits it out", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/hook", () => ({ ok: true }));
  const state = new MemoryState();
  const config = { url: `${stub.url}/hook`, rateLimit: { minIntervalMs: 300 } };
  await send(config, [result(event("A"))], { state });
  // A second run starts at once (a stopped run restarted): its first webhook still waits.
  await send(config, [result(event("B")), result(event("C"))], { state });
  const times = stub.requests("POST", "/hook").map((r) => r.at);
  assert.equal(times.length, 3);
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - times[i - 1] >= 280, `gap ${Math.round(times[i] - times[i - 1])} ms`);
  }
});

Deno.test("syncTicketsWebhook() keeps the last delivery's time apart from the log: any record key is safe", async () => {
  await using stub = await StubServer.start();
  stub.route("POST", "/hook", () => ({ ok: true }));
  const state = new MemoryState();
  const config = { url: `${stub.url}/hook` };
  const record = () => result(item("#last-delivery", { id: "#last-delivery", v: 1 }, "index 0"));
  assert.equal((await send(config, [record()], { state }))[0].outcome, "created");
  assert.equal((await send(config, [record()], { state }))[0].outcome, "unchanged");
});
