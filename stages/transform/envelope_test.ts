import assert from "node:assert/strict";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  testContext,
} from "../../tests/harness.ts";
import { stage, uuidV5 } from "./envelope.ts";

const WEBHOOK = {
  id: "{$uuid}",
  sellerId: "{sellerId}",
  type: "ticket.created",
  mode: "prod",
  data: { ticket: "{$record}" },
};

const TICKET = {
  _id: "t-1",
  sellerId: "seller-9",
  ticketName: "HYROX MEN | CHARITY HIA",
  status: "VALID",
};

async function wrap(config: Record<string, unknown>, records: Record<string, unknown>[]) {
  const test = testContext({
    clock: new FixedClock(Temporal.Instant.from("2026-02-03T04:05:06Z")),
  });
  const runtime = await createStage(stage, config, test.ctx);
  const out = await collect(
    runtime.process(fromArray(records.map((data, i) => item(`k${i}`, data, `index ${i}`)))),
  );
  return { out, deadLetters: test.deadLetters };
}

Deno.test("uuidV5() matches the RFC 9562 example and sets version and variant", () => {
  const dns = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
  assert.equal(uuidV5("www.example.com", dns), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
  assert.match(
    uuidV5("x"),
    /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.throws(() => uuidV5("x", "not-a-uuid"), /namespace "not-a-uuid" is not a UUID/);
});

Deno.test("transformEnvelope() wraps each record in the webhook shape with a stable id per key", async () => {
  const other = { ...TICKET, _id: "t-2", sellerId: "seller-7" };
  const first = await wrap({ template: WEBHOOK, keyFrom: "_id" }, [TICKET, other]);
  assert.deepEqual(first.out[0].data, {
    id: uuidV5("test:t-1"),
    sellerId: "seller-9",
    type: "ticket.created",
    mode: "prod",
    data: { ticket: TICKET },
  });
  assert.equal(first.out[0].key, "k0", "the key is the engine's to set");
  assert.deepEqual(first.out[0].origin, { source: "test.json", position: "index 0" });
  assert.notEqual(first.out[1].data.id, first.out[0].data.id);

  // Another run, the ticket changed: the same event id (a resend is recognisably the same event).
  const again = await wrap({ template: WEBHOOK, keyFrom: "_id" }, [{ ...TICKET, status: "X" }]);
  assert.equal(again.out[0].data.id, first.out[0].data.id);
});

Deno.test("transformEnvelope() leaves out a missing field, fills text, {$key} and {$now}", async () => {
  const { out } = await wrap({
    template: {
      id: "{$key}",
      at: "{$now}",
      seller: "{sellerId}",
      label: "{ticketName} ({status})",
    },
    keyFrom: "{sellerId}/{_id}",
  }, [{ _id: "a", ticketName: "N", status: "VALID" }, { ...TICKET }]);
  assert.deepEqual(out[0].data, { id: "/a", at: "2026-02-03T04:05:06Z", label: "N (VALID)" });
  assert.equal(out[1].data.id, "seller-9/t-1");
});

Deno.test("transformEnvelope() with merge stamps fields onto the record", async () => {
  const { out } = await wrap(
    { template: { ingested_at: "{$now}", source: "bulk_import" }, merge: true },
    [{ id: "1", description: "d" }],
  );
  assert.deepEqual(out[0].data, {
    id: "1",
    description: "d",
    ingested_at: "2026-02-03T04:05:06Z",
    source: "bulk_import",
  });
});

Deno.test("transformEnvelope() dead-letters a record without a key", async () => {
  const { out, deadLetters } = await wrap({ template: WEBHOOK, keyFrom: "_id" }, [
    { sellerId: "s" },
    TICKET,
  ]);
  assert.equal(out.length, 1);
  assert.deepEqual(deadLetters.map((d) => [d.item.origin.position, d.reason]), [
    ["index 0", 'missing key "_id" for the envelope'],
  ]);
});

Deno.test("transformEnvelope() config: an unknown $ placeholder and a template that is not an object are reported at validation", () => {
  const known = "{field} or one of {$record}, {$key}, {$uuid}, {$now}";
  assert.deepEqual(
    configProblems(stage, { template: { id: "{$uid}", data: ["{$record}", { at: "{$nowIso}" }] } }),
    [
      `stages[1].template.id: unknown placeholder "{$uid}"; expected ${known}`,
      `stages[1].template.data[1].at: unknown placeholder "{$nowIso}"; expected ${known}`,
    ],
  );
  assert.deepEqual(configProblems(stage, { template: "{$record}" }), [
    'stages[1].template: expected an object, got "{$record}"',
  ]);
  assert.deepEqual(configProblems(stage, {}), ["stages[1].template: expected a JSON value"]);
  assert.deepEqual(
    configProblems(stage, { template: { id: "{$uuid}", seller: "{sellerId}" }, merge: true }),
    [],
  );
});

Deno.test("envelope() dead-letters a record whose identity is an object, not one shared key", async () => {
  const t = testContext();
  const sink = await createStage(stage, { keyFrom: "_id", template: { id: "{$uuid}" } }, t.ctx);
  const out = await collect(
    sink.process(fromArray([item("a", { _id: { oid: "1" } }), item("b", { _id: { oid: "2" } })])),
  );
  assert.equal(out.length, 0);
  assert.deepEqual(t.deadLetters.map((d) => d.reason), [
    'invalid key: "_id" is an object, expected text or a number for the envelope',
    'invalid key: "_id" is an object, expected text or a number for the envelope',
  ]);
});
