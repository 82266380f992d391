import assert from "node:assert/strict";
import { buildReport, formatSummary, RunCounters } from "./report.ts";

Deno.test("RunCounters.checkBalance() holds when every record lands in one bucket", () => {
  const counters = new RunCounters();
  counters.read = 10;
  counters.drop("wrong status");
  counters.drop("wrong status");
  counters.deadLetter("created_at: bad date");
  counters.outcomes.created = 5;
  counters.outcomes.failed = 1;
  assert.match(counters.checkBalance()!, /read 10 != filtered 2 \+ dead-lettered 1 \+ outcomes 6/);
  counters.outcomes.unchanged = 1;
  assert.equal(counters.checkBalance(), null);
});

Deno.test("formatSummary() gives counts, drop reasons and where dead letters are", () => {
  const counters = new RunCounters();
  counters.read = 4;
  counters.drop("not charity");
  counters.outcomes.created = 2;
  counters.outcomes.failed = 1;
  const report = buildReport(counters, {
    pipeline: "p",
    runId: "r1",
    mode: "run",
    startedAt: "",
    finishedAt: "",
    durationMs: 65_000,
    exitCode: 4,
    deadLetterStore: "data/p.state.db",
  });
  const lines = formatSummary(report, "tickets", 1);
  assert.equal(
    lines[0],
    'Run r1 of "p" finished in 1m05s with exit code 4: 4 tickets read, 2 created, 0 updated, 0 unchanged, 0 skipped, 1 failed',
  );
  assert.equal(lines[1], 'Filtered out: 1 "not charity"');
  assert.match(lines[2], /1 open dead letters in "data\/p.state.db"/);
});
