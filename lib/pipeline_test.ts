import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { parseConfig } from "./config.ts";
import { RecordError, RemoteError } from "./errors.ts";
import { acquireLock } from "./lock.ts";
import { isActionable, isUnchanged } from "./outcome.ts";
import { runPipeline } from "./pipeline.ts";
import { Registry } from "./registry.ts";
import { defineStage, type Item } from "./stage.ts";
import { StateStore } from "./state.ts";
import { withLogs } from "../tests/harness.ts";

// Small real stages over an in-memory "destination", to test the runner through the contract.
const destination = new Map<string, unknown>();
let rejectKeys = new Set<string>();
let authFailAfter = Infinity;
let failAtClose = false;
const readerCommits: string[] = [];
let probeCreates = 0;
/** Called by transform.stopper with the count of records it has passed on. */
let onPassed: (count: number) => void = () => {};

const registry = new Registry([
  defineStage({
    kind: "read",
    name: "inline",
    summary: "Yields the records given in config.",
    config: z.object({
      records: z.array(z.record(z.string(), z.unknown())).describe("Records."),
      hasInput: z.boolean().optional().describe("What hasInput() answers (none when absent)."),
    }).strict(),
    create: (config, ctx) => ({
      ...(config.hasInput === undefined
        ? {}
        : { hasInput: () => Promise.resolve(config.hasInput!) }),
      async *read() {
        for (const [index, data] of config.records.entries()) {
          const item = {
            key: `inline#index ${index}`,
            data,
            origin: { source: "inline", position: `index ${index}` },
          } as Item;
          // A record the reader cannot parse goes straight to the dead letters.
          if (data.unparsable) ctx.deadLetter(item, "not valid JSON");
          else yield item;
        }
      },
      expected: () => config.records.length,
      commit() {
        readerCommits.push("committed");
        return Promise.resolve();
      },
    }),
  }),
  defineStage({
    kind: "sync-tickets",
    name: "atclose",
    summary: "Writes records in one transaction committed at close.",
    config: z.object({}).strict(),
    create: () => {
      const staged = new Map<string, unknown>();
      return {
        commitsAtClose: true,
        async *sync(results) {
          for await (const result of results) {
            staged.set(result.item.key, result.item.data);
            result.outcome = "created";
            yield result;
          }
        },
        close() {
          if (failAtClose) throw new Error("COMMIT failed: connection lost");
          for (const [key, value] of staged) destination.set(key, value);
        },
        abort() {
          staged.clear();
        },
      };
    },
  }),
  defineStage({
    kind: "sync-tickets",
    name: "probe",
    summary: "Counts how often it is created; marks every record created.",
    config: z.object({}).strict(),
    create: () => {
      probeCreates++;
      return {
        async *sync(results) {
          for await (const result of results) {
            result.outcome = "created";
            yield result;
          }
        },
      };
    },
  }),
  defineStage({
    kind: "filter",
    name: "status",
    summary: "Drops records whose status is not open.",
    config: z.object({}).strict(),
    create: (_config, ctx) => ({
      async *process(items) {
        for await (const item of items) {
          if (item.data.status === "open") yield item;
          else ctx.drop(item, "not open");
        }
      },
    }),
  }),
  defineStage({
    kind: "transform",
    name: "number",
    summary: "Requires a numeric n field.",
    config: z.object({}).strict(),
    create: (_config, ctx) => ({
      async *process(items) {
        for await (const item of items) {
          if (typeof item.data.n === "number") yield item;
          else ctx.deadLetter(item, `n: expected a number, got ${JSON.stringify(item.data.n)}`);
        }
      },
    }),
  }),
  defineStage({
    kind: "transform",
    name: "slow",
    summary: "Waits on the run's signal for each record (as a rate-limited lookup does).",
    config: z.object({}).strict(),
    create: (_config, ctx) => ({
      async *process(items) {
        for await (const item of items) {
          // A wait cut short by the stop rejects with the signal's reason, as sleep() does.
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, 20);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            }, { once: true });
          });
          yield item;
        }
      },
    }),
  }),
  defineStage({
    kind: "transform",
    name: "stopper",
    summary: "Tells onPassed how many records it has passed on (a test stops the run from there).",
    config: z.object({}).strict(),
    create: () => ({
      async *process(items) {
        let count = 0;
        for await (const item of items) {
          yield item;
          onPassed(++count);
        }
      },
    }),
  }),
  defineStage({
    kind: "sync-tickets",
    name: "hold",
    summary: "Holds every record to the end, then fails them all if the run was stopped.",
    config: z.object({}).strict(),
    create: (_config, ctx) => ({
      async *sync(results) {
        const held = [];
        for await (const result of results) held.push(result);
        for (const result of held) {
          if (ctx.signal.aborted) {
            result.outcome = "failed";
            result.reason = "not written: the run was stopped";
          } else result.outcome = "created";
          yield result;
        }
      },
    }),
  }),
  defineStage({
    kind: "sync-tickets",
    name: "memory",
    summary: "Writes records to an in-memory map.",
    config: z.object({}).strict(),
    create: (_config, ctx) => ({
      async *sync(results) {
        let writes = 0;
        for await (const result of results) {
          if (!isActionable(result)) {
            yield result;
            continue;
          }
          if (isUnchanged(result, ctx.options)) {
            result.outcome = "unchanged";
          } else if (rejectKeys.has(result.item.key)) {
            const error = new RecordError(`POST /x answered 422: bad ${result.item.key}`, 422);
            result.outcome = "failed";
            result.reason = error.message;
          } else {
            if (++writes > authFailAfter) {
              throw new RemoteError("Authentication failed: POST /x answered 401", 401);
            }
            const existed = destination.has(result.item.key);
            if (ctx.options.mode === "run") destination.set(result.item.key, result.item.data);
            result.outcome = existed ? "updated" : "created";
            result.remoteId = `r-${result.item.key}`;
          }
          yield result;
        }
      },
    }),
  }),
]);

const records = [
  { id: "A", status: "open", n: 1 },
  { id: "B", status: "closed", n: 2 },
  { id: "C", status: "open", n: "three" },
  { id: "", status: "open", n: 4 },
  { id: "D", status: "open", n: 5 },
  { id: "A", status: "open", n: 6 },
];

/** The test pipeline: read.inline over `data`, then the stages `after`; ledger at `statePath`. */
function pipeline(
  statePath: string,
  data: Record<string, unknown>[],
  after: string[] = ["filter.status", "transform.number", "sync-tickets.memory"],
) {
  const text = JSON.stringify({
    name: "t",
    key: "id",
    state: { path: statePath },
    stages: [{ use: "read.inline", records: data }, ...after.map((use) => ({ use }))],
  });
  return parseConfig(text, "t.json", { registry, env: {} });
}

async function setup(data: Record<string, unknown>[] = records) {
  const dir = await Deno.makeTempDir();
  destination.clear();
  rejectKeys = new Set();
  authFailAfter = Infinity;
  failAtClose = false;
  readerCommits.length = 0;
  return { dir, config: pipeline(join(dir, "t.state.db"), data) };
}

Deno.test("runPipeline() accounts for every record, dead-letters with origin, and exits 4", async () => {
  const { dir, config } = await setup();
  const report = await runPipeline({ config, mode: "run" });
  assert.equal(report.exitCode, 4);
  assert.equal(report.read, 6);
  assert.deepEqual(report.filtered, { "not open": 1 });
  assert.deepEqual(report.outcomes, {
    created: 2,
    updated: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
  });
  assert.equal(Object.values(report.deadLettered).reduce((a, b) => a + b, 0), 3);
  // Each stage takes in what the one before it yielded.
  assert.deepEqual(report.stages, [
    { id: "stages[0] read.inline", in: 0, out: 6 },
    { id: "stages[1] filter.status", in: 6, out: 5 },
    { id: "stages[2] transform.number", in: 5, out: 4 },
  ]);
  assert.deepEqual([...destination.keys()].sort(), ["A", "D"]);

  const store = StateStore.open(config.statePath, { readOnly: true });
  const letters = store.listDeadLetters().map((d) => `${d.position} [${d.stage}] ${d.reason}`);
  assert.deepEqual(letters, [
    'index 2 [stages[2] transform.number] n: expected a number, got "three"',
    'index 3 [key] missing key "id"',
    'index 5 [key] duplicate key "A" in this input: the first occurrence is synced',
  ]);
  assert.equal(store.getRecord("A")?.remoteId, "r-A");
  const runs = store.listRuns();
  assert.equal(runs[0].status, "finished");
  assert.equal(runs[0].exitCode, 4);
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() second run is unchanged; --full rewrites; plan writes nothing", async () => {
  const clean = records.filter((r) => r.id === "A" || r.id === "D").slice(0, 2);
  const { dir, config } = await setup(clean);
  assert.equal((await runPipeline({ config, mode: "run" })).exitCode, 0);
  const second = await runPipeline({ config, mode: "run" });
  assert.deepEqual(second.outcomes, {
    created: 0,
    updated: 0,
    unchanged: 2,
    skipped: 0,
    failed: 0,
  });
  const full = await runPipeline({ config, mode: "run", full: true });
  assert.equal(full.outcomes.updated, 2);

  destination.clear();
  const planned: string[] = [];
  const plan = await runPipeline({
    config,
    mode: "plan",
    full: true,
    onResult: (r) => planned.push(`${r.outcome} ${r.item.key}`),
  });
  assert.deepEqual(planned.sort(), ["created A", "created D"]);
  assert.equal(destination.size, 0, "plan never writes");
  assert.equal(plan.exitCode, 0);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(store.listRuns().length, 3, "plan does not record a run");
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() replay re-processes only dead-lettered records once they are fixed", async () => {
  const { dir, config } = await setup([
    { id: "A", status: "open", n: 1 },
    { id: "B", status: "open", n: 2 },
    { id: "C", status: "open", n: "x" },
  ]);
  rejectKeys = new Set(["B"]);
  const first = await runPipeline({ config, mode: "run" });
  assert.equal(first.exitCode, 4);
  assert.equal(first.outcomes.failed, 1);

  // The input is fixed and the remote now accepts B.
  rejectKeys = new Set();
  const fixed = pipeline(config.statePath, [
    { id: "A", status: "open", n: 1 },
    { id: "B", status: "open", n: 2 },
    { id: "C", status: "open", n: 3 },
  ]);
  const replay = await runPipeline({ config: fixed, mode: "run", replay: true });
  assert.equal(replay.exitCode, 0);
  assert.deepEqual(readerCommits, [], "a replay reads only the dead letters: the input stays");
  assert.deepEqual(replay.filtered, { "not selected for replay": 1 });
  assert.equal(replay.outcomes.created, 2);
  assert.deepEqual([...destination.keys()].sort(), ["A", "B", "C"]);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(store.countOpenDeadLetters(), 0);
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() stops with exit 3 on an auth error and keeps what was committed", async () => {
  const { dir, config } = await setup([
    { id: "A", status: "open", n: 1 },
    { id: "B", status: "open", n: 2 },
    { id: "C", status: "open", n: 3 },
  ]);
  authFailAfter = 1;
  const report = await runPipeline({ config, mode: "run" });
  assert.equal(report.exitCode, 3);
  assert.match(report.error ?? "", /Authentication failed/);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(
    store.getRecord("A")?.lastOutcome,
    "created",
    "the record synced before the stop is in the ledger",
  );
  assert.equal(store.listRuns()[0].status, "failed");
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() exits 75 while another run holds the lock, touching nothing", async () => {
  const { dir, config } = await setup();
  const lock = acquireLock(`${config.statePath}.lock`, "t");
  const report = await runPipeline({ config, mode: "run" });
  lock.release();
  assert.equal(report.exitCode, 75);
  assert.equal(report.read, 0);
  assert.equal(destination.size, 0);
  await assert.rejects(() => Deno.stat(config.statePath), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() honours --limit and an abort signal", async () => {
  const many = Array.from({ length: 50 }, (_, i) => ({ id: `K${i}`, status: "open", n: i }));
  const { dir, config } = await setup(many);
  const limited = await runPipeline({ config, mode: "run", limit: 7 });
  assert.equal(limited.read, 7);
  assert.equal(limited.outcomes.created, 7);
  assert.deepEqual(readerCommits, [], "a limited run leaves its input for the next run");

  const controller = new AbortController();
  controller.abort("SIGTERM");
  const stopped = await runPipeline({ config, mode: "run", signal: controller.signal });
  assert.equal(stopped.exitCode, 143);
  assert.match(stopped.error ?? "", /interrupted/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() with a sink that commits at close: ledger and reader commit wait for it", async () => {
  const dir = await Deno.makeTempDir();
  const text = (statePath: string) =>
    JSON.stringify({
      name: "t",
      key: "id",
      state: { path: statePath },
      stages: [
        {
          use: "read.inline",
          records: [{ id: "A", status: "open", n: 1 }, { id: "B", status: "open", n: 2 }],
        },
        { use: "sync-tickets.atclose" },
      ],
    });
  const config = parseConfig(text(join(dir, "t.state.db")), "t.json", { registry, env: {} });
  destination.clear();
  readerCommits.length = 0;
  failAtClose = true;
  const failed = await runPipeline({ config, mode: "run" });
  assert.equal(failed.exitCode, 3);
  assert.match(failed.error ?? "", /COMMIT failed/);
  assert.deepEqual(
    readerCommits,
    [],
    "the reader does not move its input when the destination failed",
  );
  let store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(
    store.countRecords(),
    0,
    "the ledger does not claim records the destination rolled back",
  );
  store.close();

  failAtClose = false;
  const ok = await runPipeline({ config, mode: "run" });
  assert.equal(ok.exitCode, 0);
  assert.deepEqual(ok.outcomes.created, 2);
  assert.deepEqual(readerCommits, ["committed"]);
  store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(store.countRecords(), 2);
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() counts a record the reader dead-letters as read, so the books balance", async () => {
  const { dir, config } = await setup([
    { id: "A", status: "open", n: 1 },
    { unparsable: true },
    { id: "B", status: "open", n: 2 },
  ]);
  const report = await runPipeline({ config, mode: "run" });
  assert.equal(report.error, undefined);
  assert.equal(report.exitCode, 4);
  assert.equal(report.read, 3);
  assert.deepEqual(report.deadLettered, { "not valid JSON": 1 });
  assert.equal(report.outcomes.created, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() leaves the input in place when a record failed, and commits it once all sync", async () => {
  const { dir, config } = await setup([{ id: "A", status: "open", n: 1 }, {
    id: "B",
    status: "open",
    n: 2,
  }]);
  rejectKeys = new Set(["B"]);
  const partial = await runPipeline({ config, mode: "run" });
  assert.equal(partial.exitCode, 4);
  assert.deepEqual(readerCommits, [], "not moved: the dead letter still points at it");
  rejectKeys = new Set();
  const retried = await runPipeline({ config, mode: "run" });
  assert.equal(retried.exitCode, 0);
  assert.deepEqual(retried.outcomes, {
    created: 1,
    updated: 0,
    unchanged: 1,
    skipped: 0,
    failed: 0,
  });
  assert.deepEqual(readerCommits, ["committed"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() opens no destination when the reader has nothing to read", async () => {
  const dir = await Deno.makeTempDir();
  const run = async (hasInput: boolean, data: Record<string, unknown>[]) => {
    const text = JSON.stringify({
      name: "t",
      key: "id",
      state: { path: join(dir, "t.state.db") },
      stages: [{ use: "read.inline", records: data, hasInput }, { use: "sync-tickets.probe" }],
    });
    return await runPipeline({
      config: parseConfig(text, "t.json", { registry, env: {} }),
      mode: "run",
    });
  };
  probeCreates = 0;
  readerCommits.length = 0;
  const idle = await run(false, []);
  assert.equal(idle.exitCode, 0);
  assert.equal(probeCreates, 0, "the sink is not created");
  assert.deepEqual(readerCommits, ["committed"], "the reader still commits (e.g. moves the file)");
  const busy = await run(true, [{ id: "A" }]);
  assert.equal(busy.exitCode, 0);
  assert.equal(probeCreates, 1);
  assert.equal(busy.outcomes.created, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() dead-letters a record whose key is an object or an array", async () => {
  const { dir, config } = await setup([
    { id: { a: 1 }, status: "open", n: 1 },
    { id: { b: 2 }, status: "open", n: 2 },
    { id: [1, 2], status: "open", n: 3 },
    { id: "1,2", status: "open", n: 4 },
  ]);
  const report = await runPipeline({ config, mode: "run" });
  assert.equal(report.exitCode, 4);
  assert.equal(report.outcomes.created, 1, '"1,2" is synced, not taken for the array [1, 2]');
  assert.deepEqual([...destination.keys()], ["1,2"]);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.deepEqual(store.listDeadLetters().map((d) => `${d.position} ${d.reason}`), [
    'index 0 invalid key: "id" is an object, expected text or a number',
    'index 1 invalid key: "id" is an object, expected text or a number',
    'index 2 invalid key: "id" is an array, expected text or a number',
  ]);
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() resolves a transform's dead letter only when that record syncs, not another at its position", async () => {
  const { dir, config } = await setup([{ id: "X", status: "open", n: "x" }]);
  assert.equal((await runPipeline({ config, mode: "run" })).exitCode, 4);
  const next = (records: Record<string, unknown>[]) => pipeline(config.statePath, records);
  const open = () => {
    const store = StateStore.open(config.statePath, { readOnly: true });
    const letters = store.listDeadLetters().map((d) => `${d.key} ${d.stage}`);
    store.close();
    return letters;
  };
  assert.deepEqual(open(), ["inline#index 0 stages[2] transform.number"]);
  // X left the input; Y now sits at index 0 and syncs: X is still not fixed.
  assert.equal(
    (await runPipeline({ config: next([{ id: "Y", status: "open", n: 1 }]), mode: "run" }))
      .exitCode,
    0,
  );
  assert.deepEqual(open(), ["inline#index 0 stages[2] transform.number"]);
  // X comes back fixed: resolved.
  const fixed = await runPipeline({
    config: next([{ id: "Y", status: "open", n: 1 }, { id: "X", status: "open", n: 2 }]),
    mode: "run",
  });
  assert.equal(fixed.exitCode, 0);
  assert.deepEqual(open(), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() resolves a letter without a key of its own when a record syncs at its origin", async () => {
  const { dir, config } = await setup([{ unparsable: true }]);
  assert.equal((await runPipeline({ config, mode: "run" })).exitCode, 4);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.deepEqual(store.listDeadLetters().map((d) => d.key), ["inline#index 0"]);
  store.close();
  const fixed = pipeline(config.statePath, [{ id: "A", status: "open", n: 1 }]);
  assert.equal((await runPipeline({ config: fixed, mode: "run" })).exitCode, 0);
  const after = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(after.countOpenDeadLetters(), 0, "the line at that origin now parses and syncs");
  after.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() stopped while a stage waits on the run's signal exits 143, interrupted, not failed", async () => {
  const many = Array.from({ length: 50 }, (_, i) => ({ id: `K${i}`, status: "open", n: i }));
  const { dir, config } = await setup(many);
  const slow = pipeline(config.statePath, many, ["transform.slow", "sync-tickets.memory"]);
  const controller = new AbortController();
  setTimeout(() => controller.abort("SIGTERM"), 70);
  const report = await runPipeline({ config: slow, mode: "run", signal: controller.signal });
  assert.equal(report.exitCode, 143);
  assert.match(report.error ?? "", /^interrupted \(SIGTERM\)/);
  const store = StateStore.open(config.statePath, { readOnly: true });
  assert.equal(store.listRuns()[0].status, "interrupted");
  store.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runPipeline() after a stop logs five failures one by one and the rest in one line", async () => {
  const many = Array.from({ length: 40 }, (_, i) => ({ id: `K${i}`, status: "open", n: i }));
  const { dir, config } = await setup(many);
  const held = pipeline(config.statePath, many, ["transform.stopper", "sync-tickets.hold"]);
  const controller = new AbortController();
  onPassed = (count) => {
    if (count === 30) controller.abort("SIGTERM");
  };
  try {
    await withLogs(async (lines) => {
      const report = await runPipeline({ config: held, mode: "run", signal: controller.signal });
      assert.equal(report.exitCode, 143);
      assert.equal(report.outcomes.failed, 30);
      const failed = lines.filter((line) => line.startsWith("Failed K"));
      assert.equal(failed.length, 5, lines.join("\n"));
      assert.ok(
        lines.includes(
          "25 more records failed after the stop, not listed one by one (the ledger holds each with its reason; the next run retries them)",
        ),
        lines.join("\n"),
      );
    });
    const store = StateStore.open(config.statePath, { readOnly: true });
    assert.equal(store.getRecord("K29")?.lastError, "not written: the run was stopped");
    store.close();
  } finally {
    onPassed = () => {};
    await Deno.remove(dir, { recursive: true });
  }
});
