import assert from "node:assert/strict";
import { RemoteError } from "../../lib/errors.ts";
import type { Outcome, SyncResult } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  fromArray,
  item,
  result,
  testContext,
} from "../../tests/harness.ts";
import { type Backend, mountBackend } from "../../tests/backend_api.ts";
import { StubServer } from "../../tests/stub_server.ts";
import type { ChildSyncRuntime } from "../../lib/stage.ts";
import { stage } from "./http.ts";

const CONFIG = {
  retry: { attempts: 3, initialMs: 1, maxMs: 5 },
  list: { path: "/api/tickets/{$remoteId}/responses", list: "items" },
  create: { path: "/api/tickets/{$remoteId}/responses" },
  update: { path: "/api/tickets/{$remoteId}/responses/{$childId}" },
};

function response(code: string, at: string, status = "Clear") {
  return { member_code: code, responded_at: at, status };
}

/** A ticket result as sync-tickets.http leaves it. */
function parent(
  number: string,
  responses: unknown[],
  outcome: Outcome | null,
  remoteId?: number,
): SyncResult {
  const out = result(item(number, { ticket_number: number, responses }));
  out.outcome = outcome;
  if (remoteId !== undefined) out.remoteId = String(remoteId);
  return out;
}

async function sync(
  url: string,
  results: SyncResult[],
  options: { mode?: "run" | "plan"; full?: boolean; extra?: Record<string, unknown> } = {},
): Promise<{ out: Record<string, SyncResult>; sink: ChildSyncRuntime }> {
  const { ctx } = testContext({ options: { mode: options.mode ?? "run", full: options.full } });
  const sink = await createStage(stage, { baseUrl: url, ...CONFIG, ...options.extra }, ctx);
  const list = await collect(sink.sync(fromArray(results)));
  return {
    out: Object.fromEntries(list.map((r) => [r.item.key, r])),
    sink: sink as ChildSyncRuntime,
  };
}

function seed(backend: Backend, number: string): number {
  return backend.insertTicket({ ticket_number: number }).id;
}

Deno.test("syncResponsesHttp() creates the missing, updates the changed and never deletes", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");
  // Existing remote history: one equal, one changed, one the scrape no longer lists.
  const base = `${stub.url}/api/tickets/${id}/responses`;
  for (const body of [response("A", "t1"), response("B", "t1", "Pending"), response("OLD", "t0")]) {
    await fetch(base, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.body?.cancel());
  }
  stub.reset();

  const scraped = [response("A", "t1"), response("B", "t1", "Clear"), response("C", "t2")];
  const known = parent("T1", scraped, "unchanged", undefined);
  known.previous = {
    key: "T1",
    hash: known.hash,
    remoteId: String(id),
    lastOutcome: "created",
    attempts: 0,
    lastError: null,
    syncedAt: null,
  };
  const { out, sink } = await sync(stub.url, [known]);
  // A ticket the ledger knows unchanged is not looked at (its hash covers its responses).
  assert.equal(out.T1.outcome, "unchanged");
  assert.equal(stub.log.length, 0);

  const { out: second, sink: sink2 } = await sync(stub.url, [parent("T1", scraped, "updated", id)]);
  assert.equal(second.T1.outcome, "updated");
  const stored = backend.state()[0].responses;
  assert.deepEqual(
    stored.map((r) => `${r.member_code}@${r.responded_at}:${r.status}`).sort(),
    ["A@t1:Clear", "B@t1:Clear", "C@t2:Clear", "OLD@t0:Clear"],
  );
  assert.deepEqual(stub.log.map((r) => r.method).sort(), ["GET", "POST", "PUT"]);
  assert.deepEqual(sink2.stats(), {
    parents: 1,
    children: 3,
    created: 1,
    updated: 1,
    unchanged: 1,
    failedParents: 0,
  });
  assert.equal(sink.stats().parents, 0);
});

Deno.test("syncResponsesHttp() without a ticket outcome: updated when a response was written, else unchanged", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");
  function fromLedger(): SyncResult {
    const out = parent("T1", [response("A", "t1")], null);
    out.previous = {
      key: "T1",
      hash: "older",
      remoteId: String(id),
      lastOutcome: "created",
      attempts: 0,
      lastError: null,
      syncedAt: null,
    };
    return out;
  }

  const { out } = await sync(stub.url, [fromLedger()]);
  assert.equal(out.T1.outcome, "updated");
  assert.equal(backend.state()[0].responses.length, 1);

  const { out: again } = await sync(stub.url, [fromLedger()]);
  assert.equal(again.T1.outcome, "unchanged");
  assert.equal(backend.state()[0].responses.length, 1);
});

Deno.test("syncResponsesHttp() skips the list for a ticket this run created and sends idempotency keys", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");

  const { out } = await sync(stub.url, [
    parent("T1", [response("A", "t1"), response("B", "t2")], "created", id),
  ]);

  assert.equal(out.T1.outcome, "created");
  assert.deepEqual(stub.log.map((r) => r.method), ["POST", "POST"]);
  const keys = stub.log.map((r) => r.headers.get("idempotency-key"));
  assert.ok(keys.every((k) => /^[0-9a-f]{32}$/.test(k ?? "")) && keys[0] !== keys[1]);
  assert.equal(backend.state()[0].responses.length, 2);
});

Deno.test("syncResponsesHttp() fails the parent naming the child that failed, and syncs the others", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");
  stub.script("POST", "/api/tickets/:id/responses", [
    { status: 422, body: { error: "responded_at is not a date" } },
  ]);

  const { out, sink } = await sync(stub.url, [
    parent("T1", [response("A", "bad"), response("B", "t2")], "updated", id),
  ]);

  assert.equal(out.T1.outcome, "failed");
  assert.match(
    out.T1.reason!,
    /^response "A@bad": POST .* answered 422: .*responded_at is not a date/,
  );
  assert.equal(out.T1.remoteId, String(id), "the ticket's remote id is kept for the ledger");
  assert.deepEqual(backend.state()[0].responses.map((r) => r.member_code), ["B"]);
  assert.equal(sink.stats().failedParents, 1);
});

Deno.test("syncResponsesHttp() fails a parent without a remote id or with a malformed child", async () => {
  await using stub = await StubServer.start();
  mountBackend(stub);

  const { out } = await sync(stub.url, [
    parent("NOID", [response("A", "t1")], "updated"),
    parent("BADKEY", [{ member_code: "A" }], "updated", 1),
    { ...parent("SKIP", [response("A", "t1")], "skipped"), reason: "filtered" },
  ]);

  assert.equal(out.NOID.outcome, "failed");
  assert.match(out.NOID.reason!, /the ticket has no remote id/);
  assert.equal(out.BADKEY.outcome, "failed");
  assert.equal(out.BADKEY.reason, 'responses[0]: missing key field "responded_at"');
  assert.equal(out.SKIP.outcome, "skipped");
  assert.equal(stub.log.length, 0);
});

Deno.test("syncResponsesHttp() plan mode only lists and reports the changes", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");
  await fetch(`${stub.url}/api/tickets/${id}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(response("B", "t1", "Pending")),
  }).then((r) => r.body?.cancel());
  stub.reset();

  const { out } = await sync(stub.url, [
    parent("T1", [response("A", "t1"), response("B", "t1", "Clear")], "updated", id),
    parent("NEW", [response("A", "t1")], "created"),
  ], { mode: "plan" });

  assert.equal(out.T1.outcome, "updated");
  assert.deepEqual(out.T1.changes, [
    { path: 'responses["A@t1"]', before: null, after: response("A", "t1") },
    { path: 'responses["B@t1"].status', before: "Pending", after: "Clear" },
  ]);
  assert.equal(out.NEW.outcome, "created");
  assert.deepEqual(stub.log.map((r) => r.method), ["GET"]);
  assert.equal(backend.state()[0].responses.length, 1);
});

Deno.test("syncResponsesHttp() --full rewrites equal responses", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub);
  const id = seed(backend, "T1");
  await fetch(`${stub.url}/api/tickets/${id}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(response("A", "t1")),
  }).then((r) => r.body?.cancel());
  stub.reset();

  await sync(stub.url, [parent("T1", [response("A", "t1")], "updated", id)], { full: true });

  assert.deepEqual(stub.log.map((r) => r.method), ["GET", "PUT"]);
});

Deno.test("syncResponsesHttp() stops the run on 401", async () => {
  await using stub = await StubServer.start();
  const backend = mountBackend(stub, { token: "good-token" });
  const id = seed(backend, "T1");

  await assert.rejects(
    sync(stub.url, [parent("T1", [response("A", "t1")], "updated", id)], {
      extra: { headers: { authorization: "Bearer wrong" } },
    }),
    RemoteError,
  );
  assert.equal(backend.state()[0].responses.length, 0);
});

Deno.test("syncResponsesHttp() config: remoteKey needs one field per key field, reported at validation", () => {
  const base = { baseUrl: "http://127.0.0.1:9", ...CONFIG };
  assert.deepEqual(configProblems(stage, { ...base, remoteKey: ["memberCode"] }), [
    'stages[2].remoteKey: expected 2 fields (one per "key" field), got 1',
  ]);
  assert.deepEqual(
    configProblems(stage, { ...base, key: ["member_code"], remoteKey: ["a", "b", "c"] }),
    ['stages[2].remoteKey: expected 1 field (one per "key" field), got 3'],
  );
  assert.deepEqual(
    configProblems(stage, { ...base, remoteKey: ["memberCode", "respondedAt"] }),
    [],
  );
});
