import assert from "node:assert/strict";
import { RemoteError } from "../../lib/errors.ts";
import type { SyncResult } from "../../lib/stage.ts";
import { collect, createStage, fromArray, item, result, testContext } from "../../tests/harness.ts";
import { mountBackend } from "../../tests/backend_api.ts";
import { jsonResponse, StubServer } from "../../tests/stub_server.ts";
import { fieldChanges, NamedQueue, renderBody } from "../../lib/http_sink.ts";
import { stage } from "./http.ts";

const FAST_RETRY = { attempts: 4, initialMs: 1, maxMs: 5 };

function config(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    baseUrl: url,
    retry: FAST_RETRY,
    lookup: { path: "/api/tickets/by-number/{ticket_number}" },
    create: { path: "/api/tickets" },
    update: { path: "/api/tickets/{$remoteId}" },
    ...extra,
  };
}

function ticket(number: string, extra: Record<string, unknown> = {}) {
  return item(number, { ticket_number: number, status: "open", ...extra }, `index ${number}`);
}

async function sync(
  url: string,
  results: SyncResult[],
  extra: Record<string, unknown> = {},
  mode: "run" | "plan" = "run",
  full = false,
): Promise<SyncResult[]> {
  const { ctx } = testContext({ options: { mode, full } });
  const sink = await createStage(stage, config(url, extra), ctx);
  return await collect(sink.sync(fromArray(results)));
}

function byKey(results: SyncResult[]): Record<string, SyncResult> {
  return Object.fromEntries(results.map((r) => [r.item.key, r]));
}

Deno.test("syncTicketsHttp() looks up, creates the missing and updates the existing, keeping remote ids", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const existing = backend.insertTicket({ ticket_number: "T2", status: "old" });

  const out = byKey(await sync(stub.url, [result(ticket("T1")), result(ticket("T2"))]));

  assert.equal(out.T1.outcome, "created");
  assert.equal(out.T2.outcome, "updated");
  assert.equal(out.T2.remoteId, String(existing.id));
  const t1 = backend.ticketsByNumber("T1");
  assert.equal(t1.length, 1);
  assert.equal(out.T1.remoteId, String(t1[0].id));
  assert.equal(backend.ticketsByNumber("T2")[0].status, "open");
  const posts = stub.requests("POST");
  assert.equal(posts.length, 1);
  assert.match(posts[0].headers.get("idempotency-key") ?? "", /^[0-9a-f]{32}$/);
  assert.deepEqual(posts[0].json, { ticket_number: "T1", status: "open" });
  assert.equal(stub.requests("PUT", `/api/tickets/${existing.id}`).length, 1);
});

Deno.test("syncTicketsHttp() sends nothing for an unchanged record and keeps its remote id", async () => {
  await using stub = await StubServer.start();
  mountBackend(stub);
  const fresh = result(ticket("T1"));
  const previous = {
    hash: fresh.hash,
    remoteId: "41",
    lastOutcome: "created" as const,
  };

  const [out] = await sync(stub.url, [result(ticket("T1"), previous)]);

  assert.equal(out.outcome, "unchanged");
  assert.equal(out.remoteId, "41");
  assert.equal(stub.log.length, 0);
});

Deno.test("syncTicketsHttp() --full rewrites an unchanged record", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const row = backend.insertTicket({ ticket_number: "T1", status: "old" });
  const fresh = result(ticket("T1"));
  const previous = { hash: fresh.hash, remoteId: String(row.id), lastOutcome: "created" as const };

  const [out] = await sync(stub.url, [result(ticket("T1"), previous)], {}, "run", true);

  assert.equal(out.outcome, "updated");
  assert.equal(backend.ticketsByNumber("T1")[0].status, "open");
  assert.deepEqual(stub.log.map((r) => `${r.method} ${r.path}`), [`PUT /api/tickets/${row.id}`]);
});

Deno.test("syncTicketsHttp() updates a known remote id without a lookup, and recreates it after a remote delete", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const kept = backend.insertTicket({ ticket_number: "T1", status: "old" });
  const gone = backend.insertTicket({ ticket_number: "T2", status: "old" });
  backend.deleteTicket(gone.id);

  const out = byKey(
    await sync(stub.url, [
      result(ticket("T1"), { hash: "old", remoteId: String(kept.id), lastOutcome: "created" }),
      result(ticket("T2"), { hash: "old", remoteId: String(gone.id), lastOutcome: "created" }),
    ]),
  );

  assert.equal(out.T1.outcome, "updated");
  assert.equal(out.T1.remoteId, String(kept.id));
  assert.equal(stub.requests("GET", "/api/tickets/by-number/T1").length, 0);
  assert.equal(out.T2.outcome, "created");
  const recreated = backend.ticketsByNumber("T2");
  assert.equal(recreated.length, 1);
  assert.equal(out.T2.remoteId, String(recreated[0].id));
  assert.notEqual(out.T2.remoteId, String(gone.id));
});

Deno.test("syncTicketsHttp() looks up by query: empty list is absent, two matches fail naming the ids", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const a = backend.insertTicket({ ticket_number: "DUP", status: "x" });
  const b = backend.insertTicket({ ticket_number: "DUP", status: "y" });
  const lookup = {
    path: "/api/tickets",
    query: { ticket_number: "{ticket_number}" },
    list: "items",
  };

  const out = byKey(
    await sync(stub.url, [result(ticket("NEW")), result(ticket("DUP"))], { lookup }),
  );

  assert.equal(out.NEW.outcome, "created");
  assert.equal(stub.requests("GET", "/api/tickets")[0].query.get("ticket_number") !== null, true);
  assert.equal(out.DUP.outcome, "failed");
  assert.match(out.DUP.reason!, /found 2 remote records for key "DUP": ids "1", "2"/);
  assert.ok(out.DUP.reason!.includes(`"${a.id}"`) && out.DUP.reason!.includes(`"${b.id}"`));
  assert.equal(backend.ticketsByNumber("DUP").length, 2);
  assert.equal(stub.requests("PUT").length, 0);
});

Deno.test("syncTicketsHttp() fails only the record a 422 rejects, with the status and body excerpt", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  backend.reject("BAD");

  const out = byKey(
    await sync(stub.url, [result(ticket("A")), result(ticket("BAD")), result(ticket("C"))]),
  );

  assert.equal(out.A.outcome, "created");
  assert.equal(out.C.outcome, "created");
  assert.equal(out.BAD.outcome, "failed");
  assert.match(out.BAD.reason!, /^POST http:\/\/127\.0\.0\.1:\d+\/api\/tickets answered 422: /);
  assert.match(out.BAD.reason!, /excavator_phone is not a valid phone/);
  assert.equal(backend.ticketsByNumber("BAD").length, 0);
});

Deno.test("syncTicketsHttp() stops on 401 and starts no write after it", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub, { token: "good-token", readOnlyTokens: ["read-token"] });
  const results = Array.from({ length: 30 }, (_, i) => result(ticket(`T${i}`)));

  await assert.rejects(
    sync(stub.url, results, { headers: { authorization: "Bearer read-token" }, concurrency: 4 }),
    (error) => error instanceof RemoteError && /Authentication failed/.test(error.message),
  );

  assert.equal(backend.state().length, 0);
  // Writes already in flight when the first 401 came back may arrive (at most one per
  // concurrency slot); none starts after it.
  const writes = stub.log.filter((r) => r.method !== "GET");
  assert.ok(writes.length >= 1 && writes.length <= 4, `${writes.length} writes`);
});

Deno.test("syncTicketsHttp() plan mode sends only lookups and reports creates and field diffs", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const row = backend.insertTicket({ ticket_number: "T2", status: "closed", extra: 1 });
  const fresh = result(ticket("T3"));

  const out = byKey(
    await sync(
      stub.url,
      [
        result(ticket("T1")),
        result(ticket("T2"), { hash: "old", remoteId: String(row.id), lastOutcome: "updated" }),
        result(ticket("T3"), { hash: fresh.hash, remoteId: "9", lastOutcome: "created" }),
      ],
      {},
      "plan",
    ),
  );

  assert.equal(out.T1.outcome, "created");
  assert.equal(out.T2.outcome, "updated");
  assert.deepEqual(out.T2.changes, [{ path: "status", before: "closed", after: "open" }]);
  assert.equal(out.T3.outcome, "unchanged");
  assert.ok(stub.log.length === 2 && stub.log.every((r) => r.method === "GET"));
  assert.equal(backend.ticketsByNumber("T1").length, 0);
});

Deno.test("syncTicketsHttp() renders a body template, PATCHes and leaves excluded fields out", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const row = backend.insertTicket({ ticket_number: "T2", keep: "me" });
  const body = { ticket_number: "{ticket_number}", label: "Ticket {ticket_number}", count: "{n}" };

  await sync(
    stub.url,
    [result(ticket("T1", { n: 3 })), result(ticket("T2", { n: 4 }))],
    {
      create: { path: "/api/tickets", body },
      update: { method: "PATCH", path: "/api/tickets/{$remoteId}" },
    },
  );
  assert.deepEqual(stub.requests("POST")[0].json, {
    ticket_number: "T1",
    label: "Ticket T1",
    count: 3,
  });
  assert.deepEqual(backend.ticketsByNumber("T2")[0], {
    ticket_number: "T2",
    keep: "me",
    label: "Ticket T2",
    count: 4,
    id: row.id,
    responses: [],
  });

  stub.reset();
  await sync(stub.url, [result(ticket("T3", { responses: [{ a: 1 }] }))], {
    exclude: ["responses"],
  });
  assert.deepEqual(stub.requests("POST")[0].json, { ticket_number: "T3", status: "open" });
});

Deno.test("syncTicketsHttp() retries a create whose answer was lost with the same Idempotency-Key: one ticket", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  backend.dropAfterWrite(1);

  const [out] = await sync(stub.url, [result(ticket("T1"))]);

  assert.equal(out.outcome, "created");
  const posts = stub.requests("POST");
  assert.equal(posts.length, 2);
  assert.equal(posts[0].headers.get("idempotency-key"), posts[1].headers.get("idempotency-key"));
  assert.equal(backend.ticketsByNumber("T1").length, 1);
  assert.equal(out.remoteId, String(backend.ticketsByNumber("T1")[0].id));
});

Deno.test("syncTicketsHttp() fails a record missing a URL field and passes failed results on untouched", async () => {
  await using stub = await StubServer.start();
  mountBackend(stub);
  const failed = { ...result(ticket("F")), outcome: "failed" as const, reason: "earlier" };
  const missing = result(item("M", { status: "open" }));

  const out = byKey(await sync(stub.url, [failed, missing]));

  assert.equal(out.F.outcome, "failed");
  assert.equal(out.F.reason, "earlier");
  assert.equal(out.M.outcome, "failed");
  assert.equal(
    out.M.reason,
    'Cannot fill "/api/tickets/by-number/{ticket_number}": field "ticket_number" is missing',
  );
  assert.equal(stub.log.length, 0);
});

Deno.test("syncTicketsHttp() fails a record when the create answer has no id", async () => {
  await using stub = await StubServer.start();
  stub.route("GET", "/api/tickets/by-number/:n", () => jsonResponse({}, 404));
  stub.route("POST", "/api/tickets", () => jsonResponse({ ok: true }, 201));

  const [out] = await sync(stub.url, [result(ticket("T1"))]);

  assert.equal(out.outcome, "failed");
  assert.match(out.reason!, /POST \/api\/tickets answered 201 without an id at "id"/);
});

Deno.test("syncTicketsHttp() handles records concurrently up to its limit", async () => {
  await using stub = await StubServer.start({ latencyMs: 20 });
  mountBackend(stub);
  const results = Array.from({ length: 24 }, (_, i) => result(ticket(`T${i}`)));

  const out = await sync(stub.url, results, { concurrency: 6 });

  assert.equal(out.filter((r) => r.outcome === "created").length, 24);
  assert.equal(stub.maxInFlight, 6);
});

Deno.test("renderBody() keeps types of whole placeholders and fills text", () => {
  const scope = { a: 1, b: { c: [1, 2] }, s: "x" };
  assert.deepEqual(
    renderBody({ one: "{a}", two: "{b.c}", t: "v{s}-{a}", gone: "{zzz}", k: 5 }, scope),
    {
      one: 1,
      two: [1, 2],
      t: "vx-1",
      k: 5,
    },
  );
  assert.deepEqual(renderBody(["{a}", "{zzz}"], scope), [1, null]);
});

Deno.test("fieldChanges() compares the chosen fields or the body's fields", () => {
  const remote = { a: 1, b: { c: 2 }, extra: true };
  assert.deepEqual(fieldChanges(remote, { a: 1, b: { c: 3 } }, undefined), [
    { path: "b", before: { c: 2 }, after: { c: 3 } },
  ]);
  assert.deepEqual(fieldChanges(remote, { a: 2, b: { c: 3 } }, ["b.c"]), [
    { path: "b.c", before: 2, after: 3 },
  ]);
  assert.deepEqual(fieldChanges(remote, { a: 1, n: null }, undefined), []);
});

Deno.test("NamedQueue runs tasks of one name in order and others at once", async () => {
  const queue = new NamedQueue();
  const events: string[] = [];
  const task = (name: string, ms: number) =>
    queue.run(name, async () => {
      events.push(`start ${name}${ms}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`end ${name}${ms}`);
    });
  await Promise.all([task("a", 20), task("a", 1), task("b", 1)]);
  assert.deepEqual(events.slice(0, 2), ["start a20", "start b1"]);
  assert.ok(events.indexOf("end a20") < events.indexOf("start a1"));
});
