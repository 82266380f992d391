import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunReport, SyncResult } from "../../lib/stage.ts";
import { configProblems, createStage, item, result, testContext } from "../../tests/harness.ts";
import { stage } from "./json.ts";

const RUN: RunReport = {
  pipeline: "vivenu",
  runId: "r-7",
  mode: "run",
  startedAt: "2026-03-02T10:00:00Z",
  finishedAt: "2026-03-02T10:00:09Z",
  durationMs: 9_000,
  exitCode: 4,
  read: 3,
  filtered: {},
  deadLettered: {},
  outcomes: { created: 1, updated: 0, unchanged: 1, skipped: 0, failed: 1 },
  stages: [{ id: "stages[0] read.http", in: 0, out: 3 }],
  deadLetterStore: "data/vivenu.state.db",
  error: "POST https://hooks.example/x?key=sk_live_123456 failed",
};

function done(key: string, outcome: SyncResult["outcome"], reason?: string): SyncResult {
  return { ...result(item(key, { id: key })), outcome, reason };
}

Deno.test("reportJson() writes the report with observed counts and failures", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ctx } = testContext({ cwd: dir });
    ctx.redact = (text) => text.replaceAll("sk_live_123456", "***");
    const runtime = await createStage(
      stage,
      { path: "reports/{pipeline}/{date}/{runId}.json" },
      ctx,
    );
    runtime.observe?.(done("a", "created"));
    runtime.observe?.(done("b", "unchanged"));
    runtime.observe?.(done("c", "failed", "HTTP 401 with key sk_live_123456"));
    await runtime.report(RUN);
    const file = join(dir, "reports/vivenu/2026-03-02/r-7.json");
    const text = await Deno.readTextFile(file);
    assert.ok(!text.includes("sk_live_123456"), "secrets are redacted");
    assert.ok(text.startsWith('{\n  "pipeline": "vivenu",'), "pretty by default");
    assert.deepEqual(JSON.parse(text), {
      ...RUN,
      error: "POST https://hooks.example/x?key=*** failed",
      observed: { created: 1, updated: 0, unchanged: 1, skipped: 0, failed: 1 },
      synced: 2,
      failures: [{
        key: "c",
        source: "test.json",
        position: "line 1",
        reason: "HTTP 401 with key ***",
      }],
      failuresTruncated: false,
    });
    // Atomic: nothing but the report is left in the directory.
    const names = [];
    for await (const entry of Deno.readDir(join(dir, "reports/vivenu/2026-03-02"))) {
      names.push(entry.name);
    }
    assert.deepEqual(names, ["r-7.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportJson() replaces an existing report whole and can write compact JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "last.json"), "x".repeat(10_000));
    const { ctx } = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "last.json", pretty: false }, ctx);
    await runtime.report(RUN);
    const text = await Deno.readTextFile(join(dir, "last.json"));
    assert.equal(text.split("\n").length, 2);
    assert.equal(JSON.parse(text).runId, "r-7");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportJson() writes nothing in plan mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ctx } = testContext({ cwd: dir, options: { mode: "plan" } });
    const runtime = await createStage(stage, { path: "report.json" }, ctx);
    await runtime.report({ ...RUN, mode: "plan" });
    await assert.rejects(Deno.stat(join(dir, "report.json")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportJson() config: unknown placeholders in path are reported at validation", () => {
  assert.deepEqual(configProblems(stage, { path: "reports/{tenant}/{runid}.json" }), [
    'stages[2].path: unknown placeholder "{tenant}": expected {runId}, {date} or {pipeline}',
    'stages[2].path: unknown placeholder "{runid}": expected {runId}, {date} or {pipeline}',
  ]);
  assert.deepEqual(configProblems(stage, {}), []);
});

Deno.test("reportJson() removes the temporary copies killed writes of its file left, and no other", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // What runs SIGKILLed while writing latest.json leave, beside another report's write.
    const leftovers = [".latest.json.0badf00d.tmp", ".latest.json.1234abcd.tmp"];
    const other = ".other.json.0badf00d.tmp";
    for (const name of [...leftovers, other]) await Deno.writeTextFile(join(dir, name), "{");
    const { ctx } = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "latest.json" }, ctx);
    await runtime.report(RUN);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), [other, "latest.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
