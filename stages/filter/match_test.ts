import assert from "node:assert/strict";
import {
  collect,
  configProblems,
  createStage,
  fromArray,
  item,
  testContext,
} from "../../tests/harness.ts";
import { stage } from "./match.ts";

/** Runs `data` through a filter.match built from `config`; returns kept keys and drop counts. */
async function run(config: Record<string, unknown>, data: Record<string, unknown>[]) {
  const { ctx, drops } = testContext();
  const runtime = await createStage(stage, config, ctx);
  const items = data.map((record, index) => item(`k${index}`, record, `line ${index + 1}`));
  const kept = await collect(runtime.process(fromArray(items)));
  const counts: Record<string, number> = {};
  for (const drop of drops) counts[drop.reason] = (counts[drop.reason] ?? 0) + 1;
  return { kept: kept.map((value) => value.key), counts, drops };
}

const VIVENU = {
  rules: [
    { name: "wrong status", keep: { field: "status", in: ["VALID", "DETAILSREQUIRED"] } },
    {
      name: "not charity",
      keep: { field: "ticketName", contains: "CHARITY", caseInsensitive: true },
    },
  ],
};

Deno.test("filter.match keeps Vivenu charity tickets with a valid status, counting drops per rule", async () => {
  const { kept, counts, drops } = await run(VIVENU, [
    { status: "VALID", ticketName: "HYROX MEN | CHARITY HIA" },
    { status: "DETAILSREQUIRED", ticketName: "CHARITY | HYROX DOUBLES WOMEN" },
    { status: "RESERVED", ticketName: "HYROX MEN | CHARITY HIA" },
    { status: "INVALID", ticketName: "HYROX WOMEN" },
    { status: "VALID", ticketName: "HYROX WOMEN" },
    { status: "VALID", ticketName: "HYROX PRO MEN" },
    { ticketName: "Charity relay" },
    { status: "VALID", ticketName: "Charity relay" },
  ]);
  assert.deepEqual(kept, ["k0", "k1", "k7"]);
  // The first rule that drops a record names the reason (k3 fails both rules).
  assert.deepEqual(counts, { "wrong status": 3, "not charity": 2 });
  assert.deepEqual(drops.map((drop) => drop.item.key), ["k2", "k3", "k4", "k5", "k6"]);
  assert.deepEqual(drops[0].item.origin, { source: "test.json", position: "line 3" });
});

Deno.test("filter.match drops INC alarm rows and the export sentinel", async () => {
  const { kept, counts } = await run({
    rules: [
      { name: "sentinel row", drop: { field: "ticket_id", startsWith: "EXPORT STOPPED" } },
      { name: "alarm", drop: { field: "is_alarm", eq: true } },
    ],
  }, [
    { ticket_id: "EXPORT STOPPED DUE TO EXCESSIVE SIZE (31434 rows)", is_alarm: "" },
    { ticket_id: "INC0001", is_alarm: "true" },
    { ticket_id: "INC0002", is_alarm: "false" },
    { ticket_id: "INC0003", is_alarm: "TRUE" },
    { ticket_id: "INC0004", is_alarm: "true" },
  ]);
  // eq is case-sensitive unless caseInsensitive is set.
  assert.deepEqual(kept, ["k2", "k3"]);
  assert.deepEqual(counts, { "sentinel row": 1, alarm: 2 });
});

Deno.test("filter.match applies nested paths, regex, numbers and all/any/not", async () => {
  const { kept, counts } = await run({
    rules: [
      { name: "bad id", keep: { field: "ticket.number", regex: "^\\d{10}$" } },
      { name: "low priority", drop: { field: "ticket.priority", lt: 2 } },
      {
        name: "out of area",
        keep: {
          any: [
            { field: "location.county", in: ["travis", "hays"], caseInsensitive: true },
            {
              all: [{ field: "location.state", eq: "TX" }, {
                not: { field: "location.county", empty: true },
              }],
            },
          ],
        },
      },
    ],
  }, [
    { ticket: { number: "2509030001", priority: 3 }, location: { county: "Travis" } },
    { ticket: { number: "25090300", priority: 3 }, location: { county: "Travis" } },
    { ticket: { number: "2509030002", priority: "1" }, location: { county: "Travis" } },
    { ticket: { number: "2509030003", priority: 5 }, location: { county: "Bexar", state: "TX" } },
    { ticket: { number: "2509030004", priority: 5 }, location: { county: "", state: "TX" } },
    { ticket: { number: "2509030005" }, location: { county: "Hays" } },
  ]);
  assert.deepEqual(kept, ["k0", "k3", "k5"]);
  assert.deepEqual(counts, { "bad id": 1, "low priority": 1, "out of area": 1 });
});

Deno.test("filter.match config: a rule without exactly one of keep or drop, or a reused name, is reported at validation with its path", () => {
  const keep = { field: "a", eq: 1 };
  assert.deepEqual(
    configProblems(stage, {
      rules: [
        { name: "one", keep },
        { name: "two", drop: keep },
        { name: "three", keep, drop: keep },
        { name: "four" },
        { name: "one", drop: keep },
      ],
    }),
    [
      'stages[1].rules[2]: expected exactly one of "keep" or "drop", got both',
      'stages[1].rules[3]: expected exactly one of "keep" or "drop", got neither',
      'stages[1].rules[4].name: expected a name of its own: "one" is already the name of rules[0]',
    ],
  );
});

Deno.test("filter.match schema rejects an invalid predicate with its path", () => {
  const parsed = stage.config.safeParse({ rules: [{ name: "x", keep: { field: "a" } }] });
  assert.equal(parsed.success, false);
  assert.deepEqual(parsed.error!.issues[0].path, ["rules", 0, "keep"]);
  assert.equal(stage.config.safeParse({ rules: [] }).success, false);
});
