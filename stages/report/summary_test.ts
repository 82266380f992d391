import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type { Outcome, ReportRuntime, RunReport, SyncResult } from "../../lib/stage.ts";
import { configProblems, createStage, item, result, testContext } from "../../tests/harness.ts";
import { stage } from "./summary.ts";

const RUN: RunReport = {
  pipeline: "events",
  runId: "r-42",
  mode: "run",
  startedAt: "2025-09-18T23:59:00Z",
  finishedAt: "2025-09-19T00:01:05Z",
  durationMs: 125_000,
  exitCode: 4,
  read: 9,
  filtered: { "status: cancelled": 2 },
  deadLettered: { "starts_at: expected a date": 1 },
  outcomes: { created: 3, updated: 1, unchanged: 1, skipped: 0, failed: 1 },
  stages: [],
  deadLetterStore: "data/events.state.db",
};

function done(key: string, data: Record<string, unknown>, outcome: Outcome): SyncResult {
  return { ...result(item(key, data)), outcome };
}

function observeAll(runtime: ReportRuntime): void {
  const events: [string, string | null, string[] | null, Outcome][] = [
    ["Concert", "Baltimore", ["music", "live"], "created"],
    ["Concert", "Baltimore", ["music"], "created"],
    ["Sports", "Washington", null, "created"],
    ["Concert", "Washington", [], "updated"],
    ["Theatre", null, null, "unchanged"],
    ["Sports", "Baltimore", null, "failed"], // not synced: not counted
  ];
  events.forEach(([event_type, city_name, tags, outcome], index) =>
    runtime.observe?.(done(String(index), { event_type, city_name, tags }, outcome))
  );
}

Deno.test("reportSummary() logs the top values a line each (the engine logs the run summary)", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["ticketsync"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
    reset: true,
  });
  try {
    const { ctx } = testContext();
    const runtime = await createStage(stage, {
      countBy: ["event_type", "city_name", "tags"],
      top: 2,
    }, ctx);
    observeAll(runtime);
    await runtime.report(RUN);
    assert.deepEqual(records.map((record) => record.message.join("")), [
      'Top event_type: "Concert" 3, "Sports" 1',
      'Top city_name: "Baltimore" 2, "Washington" 2',
      'Top tags: "music" 2, "live" 1',
    ]);
  } finally {
    await reset();
  }
});

Deno.test("reportSummary() writes a markdown file with placeholders filled", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ctx } = testContext({ cwd: dir });
    ctx.redact = (text) => text.replaceAll("events.state.db", "***");
    const runtime = await createStage(stage, {
      countBy: ["event_type"],
      output: "reports/{pipeline}-{date}-{runId}.md",
    }, ctx);
    observeAll(runtime);
    await runtime.report(RUN);
    const text = await Deno.readTextFile(join(dir, "reports/events-2025-09-18-r-42.md"));
    const lines = text.split("\n");
    assert.equal(lines[0], "# Run summary: events");
    assert.ok(lines.includes('- Top event_type: "Concert" 3, "Sports" 1, "Theatre" 1'), text);
    assert.ok(text.includes('kept in "data/***"'), "redacted");
    assert.ok(!text.includes("events.state.db"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportSummary() caps distinct values with an (other) bucket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ctx } = testContext({ cwd: dir });
    const runtime = await createStage(stage, {
      countBy: ["city"],
      top: 3,
      maxDistinct: 2,
      output: "summary.txt",
    }, ctx);
    for (const [index, city] of ["A", "B", "C", "D", "A", "E"].entries()) {
      runtime.observe?.(done(String(index), { city }, "created"));
    }
    await runtime.report(RUN);
    const text = await Deno.readTextFile(join(dir, "summary.txt"));
    assert.ok(text.includes('Top city: "(other)" 3, "A" 2, "B" 1\n'), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportSummary() does not write its file in plan mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ctx } = testContext({ cwd: dir, options: { mode: "plan" } });
    const runtime = await createStage(stage, { output: "summary.txt" }, ctx);
    await runtime.report({ ...RUN, mode: "plan" });
    await assert.rejects(Deno.stat(join(dir, "summary.txt")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportSummary() config: unknown placeholders are reported at validation", () => {
  assert.deepEqual(configProblems(stage, { output: "out/{day}.txt" }), [
    'stages[2].output: unknown placeholder "{day}": expected {runId}, {date} or {pipeline}',
  ]);
  assert.deepEqual(configProblems(stage, { output: "out/{pipeline}-{date}.md" }), []);
  assert.deepEqual(configProblems(stage, { output: "log" }), []);
});

Deno.test("reportSummary() removes the temporary copies killed writes of its file left, and no other", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const leftovers = [".summary.md.0badf00d.tmp", ".summary.md.1234abcd.tmp"];
    const other = ".notes.md.0badf00d.tmp";
    for (const name of [...leftovers, other]) await Deno.writeTextFile(join(dir, name), "#");
    const { ctx } = testContext({ cwd: dir });
    const runtime = await createStage(
      stage,
      { countBy: ["event_type"], output: "summary.md" },
      ctx,
    );
    observeAll(runtime);
    await runtime.report(RUN);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), [other, "summary.md"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
