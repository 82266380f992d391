/**
 * Issue #3 acceptance: the Texas811 workflow (examples/texas811/pipeline.json)
 * end to end against the emulated backend API on the stub server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../lib/config.ts";
import { runPipeline } from "../lib/pipeline.ts";
import { Registry } from "../lib/registry.ts";
import type { RunReport, SyncResult } from "../lib/stage.ts";
import { StateStore } from "../lib/state.ts";
import { stageLoaders } from "../stages/mod.ts";
import { type Backend, mountBackend } from "./backend_api.ts";
import { cliCommand, killUntilDone, ROOT, runCli } from "./cli.ts";
import { seededRandom, StubServer } from "./stub_server.ts";

const TOKEN = "t811-test-token";
const READ_ONLY_TOKEN = "t811-read-only-token";
const FIXTURE = join(ROOT, "fixtures/texas811/tickets.json");

interface ScrapedTicket {
  ticketNumber: string;
  remarks: string;
  createdDate: string;
  [field: string]: unknown;
}

/** A temp directory with the example pipeline (input and retry tweaked) and a backend. */
interface Setup extends AsyncDisposable {
  dir: string;
  config: string;
  statePath: string;
  stub: StubServer;
  backend: Backend;
  env: Record<string, string>;
  tickets: ScrapedTicket[];
  /** Rewrites the input file. */
  writeInput(tickets: ScrapedTicket[]): Promise<void>;
}

async function setup(options: { latencyMs?: number } = {}): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "texas811_test_" });
  const stub = await StubServer.start({ latencyMs: options.latencyMs ?? 0 });
  const backend = mountBackend(stub, { token: TOKEN, readOnlyTokens: [READ_ONLY_TOKEN] });
  const pipeline = JSON.parse(
    await Deno.readTextFile(join(ROOT, "examples/texas811/pipeline.json")),
  );
  pipeline.stages[0].path = "tickets.json";
  for (const entry of pipeline.stages) {
    if (String(entry.use).endsWith(".http")) {
      // Quick retries so the fault test stays fast; more attempts so 10% faults never exhaust them.
      entry.retry = { attempts: 8, initialMs: 5, maxMs: 40 };
    }
  }
  const config = join(dir, "pipeline.json");
  await Deno.writeTextFile(config, JSON.stringify(pipeline, null, 2));
  const document = JSON.parse(await Deno.readTextFile(FIXTURE));
  const tickets = document.tickets as ScrapedTicket[];
  async function writeInput(list: ScrapedTicket[]): Promise<void> {
    await Deno.writeTextFile(
      join(dir, "tickets.json"),
      JSON.stringify({ ...document, tickets: list }, null, 2),
    );
  }
  await writeInput(tickets);
  return {
    dir,
    config,
    statePath: join(dir, "data/texas811.state.db"),
    stub,
    backend,
    env: { TEXAS811_API_URL: stub.url, TEXAS811_API_TOKEN: TOKEN },
    tickets,
    writeInput,
    async [Symbol.asyncDispose]() {
      await stub.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs the pipeline in this process; returns the report and every final result. */
async function run(
  s: Setup,
  mode: "run" | "plan" = "run",
  env: Record<string, string> = s.env,
): Promise<{ report: RunReport; results: SyncResult[] }> {
  const config = await loadConfig(s.config, {
    registry: new Registry([], stageLoaders),
    env,
    cwd: s.dir,
  });
  const results: SyncResult[] = [];
  const report = await runPipeline({
    config,
    mode,
    cwd: s.dir,
    onResult: (result) => results.push(result),
  });
  return { report, results };
}

/** The mapped records the pipeline derives from its input (a plan against the backend). */
async function expectedRecords(s: Setup): Promise<Map<string, Record<string, unknown>>> {
  const { results } = await run(s, "plan");
  return new Map(results.map((r) => [r.item.key, r.item.data]));
}

function responseKey(response: Record<string, unknown>): string {
  return `${response.member_code}@${response.responded_at}`;
}

/** The backend holds exactly the input: one ticket per number, its fields and its responses. */
function assertStateEquals(backend: Backend, expected: Map<string, Record<string, unknown>>) {
  const state = backend.state();
  const numbers = state.map((ticket) => String(ticket.ticket_number));
  const duplicates = numbers.filter((n, i) => numbers.indexOf(n) !== i);
  assert.deepEqual(duplicates, [], "no ticket number is stored twice");
  assert.equal(state.length, expected.size);
  for (const ticket of state) {
    const want = expected.get(String(ticket.ticket_number));
    assert.ok(want, `unexpected ticket ${ticket.ticket_number}`);
    const { id: _id, responses, ...fields } = ticket;
    const { responses: wantResponses, ...wantFields } = want;
    assert.deepEqual(fields, wantFields);
    const stored = responses.map(({ id: _rid, ticket_id: _tid, ...rest }) => rest)
      .sort((a, b) => responseKey(a).localeCompare(responseKey(b)));
    const wanted = [...(wantResponses as Record<string, unknown>[])]
      .sort((a, b) => responseKey(a).localeCompare(responseKey(b)));
    assert.deepEqual(stored, wanted, `responses of ${ticket.ticket_number}`);
  }
}

function writes(stub: StubServer) {
  return stub.log.filter((req) => req.method !== "GET");
}

Deno.test("texas811: plan only reads; the first run creates every ticket and response and the stub equals the input", async () => {
  await using s = await setup();
  const expected = await expectedRecords(s);
  assert.equal(expected.size, s.tickets.length);
  assert.equal(writes(s.stub).length, 0, "plan sends no POST, PUT or PATCH");
  assert.equal(s.stub.log.length, s.tickets.length, "plan: one lookup per ticket");

  const { report } = await run(s);

  assert.equal(report.exitCode, 0);
  assert.equal(report.outcomes.created, s.tickets.length);
  assertStateEquals(s.backend, expected);
  // The seed's date rule, checked by hand: "01/09/2025 02:57 PM" in Chicago is CST (-06:00).
  const first = s.tickets[0];
  assert.equal(first.createdDate, "01/09/2025 02:57 PM");
  assert.equal(
    s.backend.ticketsByNumber(first.ticketNumber)[0].created_at,
    "2025-01-09T14:57:00-06:00",
  );
  const responses = s.tickets.reduce((n, t) => n + (t.responses as unknown[]).length, 0);
  assert.equal(s.stub.requests("POST").length, s.tickets.length + responses);
});

Deno.test("texas811: a second run sends no write; with 10 tickets changed exactly those 10 are updated", async () => {
  await using s = await setup();
  assert.equal((await run(s)).report.exitCode, 0);

  s.stub.reset();
  const again = await run(s);
  assert.equal(again.report.exitCode, 0);
  assert.equal(again.report.outcomes.unchanged, s.tickets.length);
  assert.equal(writes(s.stub).length, 0);
  assert.equal(s.stub.log.length, 0, "unchanged tickets need no request at all");

  const changed = new Set(s.tickets.filter((_, i) => i % 20 === 3).map((t) => t.ticketNumber));
  assert.equal(changed.size, 10);
  await s.writeInput(
    s.tickets.map((t) =>
      changed.has(t.ticketNumber) ? { ...t, remarks: `Call before digging ${t.ticketNumber}` } : t
    ),
  );

  s.stub.reset();
  const planned = await run(s, "plan");
  assert.equal(writes(s.stub).length, 0);
  const updates = planned.results.filter((r) => r.outcome === "updated");
  assert.deepEqual(new Set(updates.map((r) => r.item.key)), changed);
  for (const update of updates) {
    assert.deepEqual(update.changes?.map((c) => c.path), ["remarks"]);
  }

  s.stub.reset();
  const third = await run(s);
  assert.equal(third.report.exitCode, 0);
  assert.equal(third.report.outcomes.updated, 10);
  assert.equal(third.report.outcomes.unchanged, s.tickets.length - 10);
  const puts = writes(s.stub);
  assert.ok(puts.every((req) => req.method === "PUT"), "only updates, no create");
  assert.deepEqual(
    new Set(puts.map((req) => (req.json as { ticket_number: string }).ticket_number)),
    changed,
  );
  assert.equal(puts.length, 10, "responses did not change: no response write");
  assertStateEquals(s.backend, await expectedRecords(s));
});

Deno.test("texas811: with 10% of requests answered 500 or 503 the run completes, exit 0, no duplicate", async () => {
  await using s = await setup();
  const expected = await expectedRecords(s);
  s.stub.reset();
  s.stub.faults({ rate: 0.1, statuses: [500, 503], seed: 811 });
  // Some faults ask to wait (Retry-After), and some creates are stored but their answer is lost.
  const wait = { status: 503, headers: { "retry-after": "1" }, body: { error: "maintenance" } };
  s.stub.script("POST", "/api/tickets", [wait]);
  s.stub.script("GET", "/api/tickets/by-number/:number", [wait]);
  s.backend.dropAfterWrite(5);

  const { report } = await run(s);

  assert.equal(report.exitCode, 0, report.error);
  assert.equal(report.outcomes.created, s.tickets.length);
  assertStateEquals(s.backend, expected);
  const responses = s.tickets.reduce((n, t) => n + (t.responses as unknown[]).length, 0);
  const withoutFaults = s.tickets.length * 2 + responses; // lookup + create, then each response
  assert.ok(s.stub.log.length > withoutFaults + 50, "faults were answered and retried");
});

Deno.test("texas811: a ticket answered 422 every time is dead-lettered (exit 4); replay syncs it once accepted", async () => {
  await using s = await setup();
  const rejected = s.tickets[17].ticketNumber;
  s.backend.reject(rejected, 422, "excavator_phone is not a valid phone number");

  const first = await runCli(["run", s.config], { env: s.env, cwd: s.dir });

  assert.equal(first.code, 4, first.stderr);
  assert.equal(s.backend.ticketCount(), s.tickets.length - 1);
  assert.equal(s.backend.ticketsByNumber(rejected).length, 0);
  const store = StateStore.open(s.statePath, { readOnly: true });
  const letters = store.listDeadLetters();
  store.close();
  assert.equal(letters.length, 1);
  assert.equal(letters[0].key, rejected);
  assert.match(
    letters[0].reason,
    /^POST http:\/\/127\.0\.0\.1:\d+\/api\/tickets answered 422: .*excavator_phone is not a valid phone number/,
  );
  assert.match(first.stderr, new RegExp(`Failed ${rejected} .*answered 422`));

  s.backend.accept(rejected);
  s.stub.reset();
  const replay = await runCli(["replay", s.config], { env: s.env, cwd: s.dir });

  assert.equal(replay.code, 0, replay.stderr);
  assert.equal(s.backend.ticketsByNumber(rejected).length, 1);
  const ticketPosts = s.stub.requests("POST").filter((req) => req.path === "/api/tickets");
  assert.equal(ticketPosts.length, 1, "replay sends only the dead-lettered ticket");
  const after = StateStore.open(s.statePath, { readOnly: true });
  assert.equal(after.countOpenDeadLetters(), 0);
  after.close();
  assertStateEquals(s.backend, await expectedRecords(s));
});

Deno.test("texas811: 401 on the first write stops the run with exit 3 and nothing is written", async () => {
  await using s = await setup();
  const env = { ...s.env, TEXAS811_API_TOKEN: READ_ONLY_TOKEN };

  const result = await runCli(["run", s.config], { env, cwd: s.dir });

  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /Authentication failed: POST .*\/api\/tickets answered 401/);
  assert.ok(!result.stderr.includes(READ_ONLY_TOKEN), "the token is never logged");
  assert.equal(s.backend.ticketCount(), 0);
  // Only writes already in flight when the 401 came back (one per concurrency slot) were sent.
  const sent = writes(s.stub);
  assert.ok(sent.length >= 1 && sent.length <= 16, `${sent.length} writes sent`);
});

Deno.test("texas811: a run killed at random (SIGKILL) and restarted never creates a ticket twice", async () => {
  await using s = await setup({ latencyMs: 5 });
  const expected = await expectedRecords(s);
  const seed = Date.now() % 1_000_000;
  const random = seededRandom(seed);

  for (let kill = 0; kill < 2; kill++) {
    const threshold = s.backend.ticketCount() + 10 + Math.floor(random() * 60);
    const child = cliCommand(["run", s.config], { env: s.env, cwd: s.dir }).spawn();
    let exited = false;
    child.status.then(() => exited = true);
    while (!exited && s.backend.ticketCount() < threshold) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    if (!exited) child.kill("SIGKILL");
    const killed = await child.output();
    assert.equal(
      killed.signal,
      "SIGKILL",
      `seed ${seed}: ${new TextDecoder().decode(killed.stderr)}`,
    );
    assert.ok(s.backend.ticketCount() < s.tickets.length, `seed ${seed}: killed before the end`);
  }

  const rerun = await runCli(["run", s.config], { env: s.env, cwd: s.dir });

  assert.equal(rerun.code, 0, rerun.stderr);
  assertStateEquals(s.backend, expected);
});

Deno.test("texas811: runs stopped with SIGTERM at any moment exit 143 within 10 s; restarted, they never create a ticket twice and end as one uninterrupted run did", async () => {
  await using s = await setup({ latencyMs: 5 });
  const expected = await expectedRecords(s);
  s.stub.reset();
  // Faults, so that SIGTERM also lands in retry backoffs and a 1 s Retry-After wait, and
  // lost answers (stored creates whose connection drops), which a restart must not repeat.
  s.stub.faults({ rate: 0.1, statuses: [500, 503], seed: 811 });
  const wait = { status: 503, headers: { "retry-after": "1" }, body: { error: "maintenance" } };
  s.stub.script("POST", "/api/tickets", [wait, wait, wait]);
  s.backend.dropAfterWrite(5);

  // 40 ms steps: a run takes about 1 s, so SIGTERM lands in every phase of it.
  const sweep = await killUntilDone(
    ["run", s.config, "--no-progress"],
    { env: s.env, cwd: s.dir },
    40,
    "SIGTERM",
  );

  assert.ok(sweep.interrupted >= 3, `stopped gracefully ${sweep.interrupted} times`);
  assertStateEquals(s.backend, expected);
  // Every graceful stop is in the ledger as an interrupted run; none was left running or failed.
  const store = StateStore.open(s.statePath, { readOnly: true });
  const statuses = store.listRuns(1_000).map((run) => run.status);
  store.close();
  const count = (status: string) => statuses.filter((s) => s === status).length;
  assert.equal(count("interrupted"), sweep.interrupted, statuses.join());
  assert.ok(count("finished") >= 1, statuses.join());
  assert.equal(count("interrupted") + count("finished"), statuses.length, statuses.join());
});

Deno.test("texas811: a ticket deleted on the backend is created again, with its responses, by a --full run", async () => {
  await using s = await setup();
  await s.writeInput(s.tickets.slice(0, 3));
  assert.equal((await run(s)).report.exitCode, 0);
  const victim = s.tickets[0];
  const before = s.backend.ticketsByNumber(victim.ticketNumber)[0];
  s.backend.deleteTicket(before.id);

  // The same content: the create's idempotency key must differ from the first create's, or
  // the backend replays that answer, naming the deleted row.
  const config = await loadConfig(s.config, {
    registry: new Registry([], stageLoaders),
    env: s.env,
    cwd: s.dir,
  });
  const full = await runPipeline({ config, mode: "run", cwd: s.dir, full: true });
  assert.equal(full.exitCode, 0);
  const again = s.backend.ticketsByNumber(victim.ticketNumber);
  assert.equal(again.length, 1, "the ticket is on the backend again");
  assert.notEqual(again[0].id, before.id);
  assert.equal(again[0].responses.length, before.responses.length, "with its responses");
});
