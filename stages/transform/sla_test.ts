import assert from "node:assert/strict";
import { stage } from "./sla.ts";
import type { Item } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  testContext,
} from "../../tests/harness.ts";

const NOW = Temporal.Instant.from("2026-06-20T12:00:00Z");

async function run(items: Item[], config: Record<string, unknown> = {}): Promise<Item[]> {
  const { ctx } = testContext({ clock: new FixedClock(NOW) });
  const runtime = await createStage(stage, config, ctx);
  return await collect(runtime.process(fromArray(items)));
}

function ago(duration: Temporal.DurationLike): string {
  return NOW.subtract(duration).toString();
}

Deno.test("transform.sla grades open tickets by age at the exact thresholds", async () => {
  const cases: [Temporal.DurationLike, string][] = [
    [{ hours: 1 }, "within"],
    [{ hours: 35, minutes: 59, seconds: 59 }, "within"],
    [{ hours: 36 }, "at_risk"],
    [{ hours: 47, minutes: 59, seconds: 59 }, "at_risk"],
    [{ hours: 48 }, "breached"],
    [{ hours: 500 }, "breached"],
  ];
  const out = await run(
    cases.map(([age], n) => item(`T${n}`, { status: "open", created_at_service: ago(age) })),
  );
  assert.deepEqual(out.map((i) => i.data.sla_state), cases.map(([, state]) => state));
  for (const i of out) {
    assert.equal(i.data.sla_basis, "created_at_service");
    assert.equal("sla_reason" in i.data, false);
  }
});

Deno.test("transform.sla judges every ticket of a run at the same instant", async () => {
  // A clock that moves on an hour each time it is read: read per ticket, the
  // second of two identical tickets would cross the 36 h threshold.
  let reads = 0;
  const clock = { now: () => NOW.add({ hours: reads++ }) };
  const { ctx } = testContext({ clock });
  const runtime = await createStage(stage, {}, ctx);
  const ticket = (key: string) =>
    item(key, { status: "open", created_at_service: ago({ hours: 35, minutes: 30 }) });
  const out = await collect(runtime.process(fromArray([ticket("A"), ticket("B")])));
  assert.deepEqual(out.map((i) => i.data.sla_state), ["within", "within"]);
  assert.equal(reads, 1);
});

Deno.test("transform.sla falls back to the next start field when the first is empty", async () => {
  const out = await run([
    item("A", { status: "open", created_at_service: null, first_seen_at: ago({ hours: 40 }) }),
    item("B", { status: "open", created_at_service: "", first_seen_at: ago({ hours: 2 }) }),
    item("C", {
      status: "open",
      created_at_service: ago({ hours: 1 }),
      first_seen_at: ago({ hours: 90 }),
    }),
  ]);
  assert.deepEqual(out.map((i) => [i.data.sla_state, i.data.sla_basis]), [
    ["at_risk", "first_seen_at"],
    ["within", "first_seen_at"],
    ["within", "created_at_service"],
  ]);
});

Deno.test("transform.sla keeps the source's SLA value for closed tickets", async () => {
  const out = await run([
    item("A", { status: "Closed ", sla_status: "Met", created_at_service: ago({ hours: 100 }) }),
    item("B", { status: "closed" }),
    item("C", { status: "RESOLVED", sla_status: "Breached" }),
  ], { closedWhen: { field: "status", in: ["closed", "resolved"] } });
  assert.deepEqual(out.map((i) => [i.data.sla_state, i.data.sla_basis]), [
    ["Met", "sla_status"],
    [null, "sla_status"],
    ["Breached", "sla_status"],
  ]);
});

Deno.test("transform.sla gives null with a reason when an open ticket has no start time", async () => {
  const out = await run([
    item("A", { status: "open" }),
    item("B", { status: "open", created_at_service: "2026-06-20 09:00:00" }),
    item("C", { status: "open", first_seen_at: "not a date" }),
  ]);
  assert.deepEqual(out.map((i) => [i.data.sla_state, i.data.sla_basis]), [
    [null, null],
    [null, null],
    [null, null],
  ]);
  assert.equal(out[0].data.sla_reason, "no start time");
  assert.match(
    out[1].data.sla_reason as string,
    /^no start time \(created_at_service: .*"2026-06-20 09:00:00" without an offset/,
  );
  assert.match(out[2].data.sla_reason as string, /^no start time \(first_seen_at: .*"not a date"/);
});

Deno.test("transform.sla reads offset-less start times in the configured zone", async () => {
  // 2026-06-18 21:00 in Nairobi (UTC+3) is 2026-06-18T18:00Z: 42 hours before NOW.
  const out = await run(
    [item("A", { status: "open", created_at_service: "2026-06-18 21:00:00" })],
    { zone: "Africa/Nairobi" },
  );
  assert.equal(out[0].data.sla_state, "at_risk");
});

Deno.test("transform.sla uses configured fields, thresholds and labels", async () => {
  const out = await run([
    item("A", { state: "done", source_sla: "ok" }),
    item("B", { state: "new", opened: { at: ago({ hours: 5 }) } }),
    item("C", { state: "new", opened: { at: ago({ hours: 3 }) } }),
  ], {
    closedWhen: { field: "state", in: ["done"] },
    sourceField: "source_sla",
    startFields: ["opened.at"],
    breachedAfterHours: 4,
    atRiskAfterHours: 2.5,
    output: "sla",
    basisField: "basis",
    labels: { breached: "late", atRisk: "soon", within: "fine" },
  });
  assert.deepEqual(out.map((i) => [i.data.sla, i.data.basis]), [
    ["ok", "source_sla"],
    ["late", "opened.at"],
    ["soon", "opened.at"],
  ]);
});

Deno.test("transform.sla returns new records and clears a stale reason", async () => {
  const input = item("A", {
    status: "open",
    created_at_service: ago({ hours: 1 }),
    sla_reason: "no start time",
  });
  const [out] = await run([input]);
  assert.equal(out.data.sla_state, "within");
  assert.equal("sla_reason" in out.data, false);
  assert.equal(input.data.sla_reason, "no start time");
  assert.equal("sla_state" in input.data, false);
  assert.deepEqual(out.origin, input.origin);
});

Deno.test("transform.sla config: an at-risk threshold above the breach threshold is reported at validation", () => {
  assert.deepEqual(configProblems(stage, { breachedAfterHours: 24, atRiskAfterHours: 30 }), [
    "stages[1].atRiskAfterHours: expected a number <= breachedAfterHours (24), got 30",
  ]);
  // Against the default breach threshold (48) too.
  assert.deepEqual(configProblems(stage, { atRiskAfterHours: 50 }), [
    "stages[1].atRiskAfterHours: expected a number <= breachedAfterHours (48), got 50",
  ]);
  assert.deepEqual(configProblems(stage, { breachedAfterHours: 24, atRiskAfterHours: 24 }), []);
  assert.deepEqual(configProblems(stage, { breachedAfterHours: 0, atRiskAfterHours: 30 }), [
    "stages[1].breachedAfterHours: expected a positive number, got 0",
  ]);
});
