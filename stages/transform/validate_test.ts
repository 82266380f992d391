import assert from "node:assert/strict";
import type { Item } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  fromArray,
  item,
  testContext,
} from "../../tests/harness.ts";
import { stage } from "./validate.ts";

async function run(config: Record<string, unknown>, items: Item[]) {
  const context = testContext();
  const runtime = await createStage(stage, config, context.ctx);
  const out = await collect(runtime.process(fromArray(items)));
  return { out, deadLetters: context.deadLetters };
}

const TICKETS = {
  required: ["ticket_number", "created_at"],
  types: {
    priority: "number",
    created_at: "date-iso",
    "location.lat": "number",
    responses: "array",
  },
  patterns: { ticket_number: "^\\d{10}$" },
  nonEmpty: ["description"],
};

const GOOD = {
  ticket_number: "2509030001",
  created_at: "2025-09-03T14:15:00-05:00",
  priority: 2,
  description: "Dig at 100 Congress Ave",
  location: { lat: 30.26, lng: -97.74 },
  responses: [],
};

Deno.test("transform.validate passes valid records on unchanged", async () => {
  const record = item("ok", GOOD);
  const { out, deadLetters } = await run(TICKETS, [
    record,
    item("nulls", { ...GOOD, priority: null }),
  ]);
  assert.deepEqual(deadLetters, []);
  assert.equal(out[0], record);
  assert.equal(out[1].data.priority, null);
});

Deno.test("transform.validate dead-letters with every problem joined, keeping the origin", async () => {
  const bad = item("bad", {
    created_at: "09/03/2025 02:15 PM",
    priority: "high",
    description: "",
    location: { lat: "30.26" },
    responses: {},
  }, "line 12");
  const { out, deadLetters } = await run(TICKETS, [bad, item("ok", GOOD)]);
  assert.deepEqual(out.map((value) => value.key), ["ok"]);
  assert.equal(deadLetters.length, 1);
  assert.equal(deadLetters[0].item, bad);
  assert.deepEqual(deadLetters[0].item.origin, { source: "test.json", position: "line 12" });
  assert.equal(
    deadLetters[0].reason,
    [
      'missing required field "ticket_number"',
      '"description": expected a non-empty value, got ""',
      '"priority": expected a number, got "high"',
      '"created_at": expected an ISO 8601 date like "2025-09-03T14:15:00-05:00", got "09/03/2025 02:15 PM"',
      '"location.lat": expected a number, got "30.26"',
      '"responses": expected an array, got an object',
    ].join("; "),
  );
});

Deno.test("transform.validate checks the spec's example message exactly", async () => {
  const { deadLetters } = await run(
    { required: ["ticket_number"], types: { priority: "number" } },
    [item("x", { priority: "high" })],
  );
  assert.equal(
    deadLetters[0].reason,
    'missing required field "ticket_number"; "priority": expected a number, got "high"',
  );
});

Deno.test("transform.validate types: integer, boolean, object, string and date-iso forms", async () => {
  const config = {
    types: { i: "integer", b: "boolean", o: "object", s: "string", d: "date-iso" },
  };
  const { out, deadLetters } = await run(config, [
    item("ok", { i: 3, b: false, o: { a: 1 }, s: "", d: "2025-09-03" }),
    item("ok2", { d: "2025-09-03T19:15:00Z" }),
    item("bad", { i: 3.5, b: "true", o: [1], s: 5, d: "2025-02-30" }),
    item("bad2", { d: "2025-09-03T14:15:00" }),
  ]);
  assert.deepEqual(out.map((value) => value.key), ["ok", "ok2"]);
  assert.deepEqual(deadLetters.map((value) => value.reason), [
    [
      '"i": expected an integer, got 3.5',
      '"b": expected true or false, got "true"',
      '"o": expected an object, got an array',
      '"s": expected a string, got 5',
      '"d": expected an ISO 8601 date like "2025-09-03T14:15:00-05:00", got "2025-02-30"',
    ].join("; "),
    '"d": expected an ISO 8601 date like "2025-09-03T14:15:00-05:00", got "2025-09-03T14:15:00"',
  ]);
});

Deno.test("transform.validate patterns match text and numbers", async () => {
  const { out, deadLetters } = await run({ patterns: { zip: "^\\d{5}$" } }, [
    item("a", { zip: "78701" }),
    item("b", { zip: 78701 }),
    item("c", { zip: "7870" }),
    item("d", { zip: ["78701"] }),
    item("e", {}),
  ]);
  assert.deepEqual(out.map((value) => value.key), ["a", "b", "e"]);
  assert.deepEqual(deadLetters.map((value) => value.reason), [
    '"zip": expected to match /^\\d{5}$/, got "7870"',
    '"zip": expected to match /^\\d{5}$/, got an array',
  ]);
});

Deno.test("transform.validate rejects an empty config and a bad pattern", () => {
  assert.deepEqual(configProblems(stage, {}), [
    'stages[1]: expected at least one check in "required", "types", "patterns" or "nonEmpty"',
  ]);
  assert.deepEqual(configProblems(stage, { nonEmpty: ["id"] }), []);
  const parsed = stage.config.safeParse({ patterns: { a: "(" } });
  assert.equal(parsed.success, false);
  assert.deepEqual(parsed.error!.issues[0].path, ["patterns", "a"]);
  assert.match(parsed.error!.issues[0].message, /^invalid regular expression/);
  assert.equal(stage.config.safeParse({ types: { a: "text" } }).success, false);
});
