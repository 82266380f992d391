/**
 * The ServiceDesk Plus workflow (examples/servicedesk/pipeline.json) end to
 * end through the real CLI: the emulated SDP API (tests/sdp_api.ts) on a stub
 * server, and the real PostgreSQL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { StateStore } from "../lib/state.ts";
import { type CliOptions, killUntilDone, ROOT, runCli } from "./cli.ts";
import { dropSchema, freshSchema, pgTest, type PgTestContext } from "./pg_env.ts";
import { mountSdp, type SdpApi, type SdpRequest, sdpTickets } from "./sdp_api.ts";
import { StubServer } from "./stub_server.ts";

const TOKEN = "sdp-test-token-1234";
const DAY = 86_400_000;
const CONFIG = "pipeline.json";

interface Setup extends AsyncDisposable {
  dir: string;
  stub: StubServer;
  api: SdpApi;
  env: Record<string, string>;
  table: string;
  run(args: string[], env?: Record<string, string>): ReturnType<typeof runCli>;
}

/** Overrides of the example's page size, rate limit and insert batch size (long runs). */
interface Pace {
  pageSize: number;
  minIntervalMs: number;
  batchSize: number;
}

/**
 * A temp directory with the example (its table in the test's schema, paced by
 * `pace` when given) and the emulated API.
 */
async function setup(pg: PgTestContext, tickets: SdpRequest[], pace?: Pace): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "servicedesk_test_" });
  const stub = await StubServer.start();
  const api = mountSdp(stub, { token: TOKEN });
  api.tickets.push(...tickets);
  const pipeline = JSON.parse(
    await Deno.readTextFile(join(ROOT, "examples/servicedesk/pipeline.json")),
  );
  const table = `${pg.schema}.ticket_history`;
  pipeline.stages[0].retry = { attempts: 3, initialMs: 5, maxMs: 20 };
  pipeline.stages[4].table = table;
  pipeline.lookups.tenant.query = pipeline.lookups.tenant.query.replace(
    "tenant_configs",
    `${pg.schema}.tenant_configs`,
  );
  if (pace) {
    pipeline.stages[0].pagination.size = pace.pageSize;
    pipeline.stages[0].rateLimit = { minIntervalMs: pace.minIntervalMs };
    pipeline.stages[4].batchSize = pace.batchSize;
  }
  await Deno.writeTextFile(join(dir, CONFIG), JSON.stringify(pipeline, null, 2));
  // The seed's tenant_configs: each tenant's API base URL and key.
  await pg.sql.unsafe(`create table ${pg.schema}.tenant_configs
    (tenant_id text primary key, base_url text not null, api_key text not null)`);
  await pg.sql.unsafe(
    `insert into ${pg.schema}.tenant_configs values
      ('acme-corp', $1, $2), ('acme', $1, $2), ('t1', $1, $2), ('other', $1, 'wrong-token')`,
    [stub.url, TOKEN],
  );
  const env = { DATABASE_URL: pg.url };
  return {
    dir,
    stub,
    api,
    env,
    table,
    run: (args, extra = {}) =>
      runCli(["run", CONFIG, "--no-progress", ...args], { cwd: dir, env: { ...env, ...extra } }),
    async [Symbol.asyncDispose]() {
      await stub.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** 150 closed/resolved requests in the last 80 days, plus requests the API's criteria leave out. */
function recentTickets(): SdpRequest[] {
  const now = Date.now();
  const inRange = sdpTickets(150, { from: now - 80 * DAY, to: now - DAY });
  const open = sdpTickets(10, { from: now - 80 * DAY, to: now - DAY, firstId: 200_001 })
    .map((t) => ({ ...t, status: { name: "Open" } }));
  const old = sdpTickets(5, { from: now - 200 * DAY, to: now - 100 * DAY, firstId: 300_001 });
  return [...inRange.slice(0, 70), ...open, ...inRange.slice(70), ...old];
}

interface Row {
  tenant_id: string;
  ticket_id: string;
  description: string;
  resolution: string | null;
  resolved_date: Date;
  tags: string[] | null;
  source: string;
  ingested_at: Date;
}

async function rows(pg: PgTestContext, table: string): Promise<Row[]> {
  return await pg.sql.unsafe<Row[]>(`select * from ${table} order by ticket_id`);
}

pgTest(
  "servicedesk: 2 pages (100 + 50) insert 150 tickets with every field; a re-run inserts nothing",
  async (pg) => {
    const tickets = recentTickets();
    await using s = await setup(pg, tickets);
    const before = Date.now();
    const first = await s.run(["--tenant-id", "acme-corp"]);
    const after = Date.now();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /150 tickets read, 150 created, 0 updated, 0 unchanged, 0 skipped/);
    assert.match(first.stderr, /Imported 100\/150 tickets \(66%\)/);

    // The API was asked for closed/resolved requests of the last 90 days, 100 at a time.
    assert.deepEqual(s.api.calls.map((c) => [c.startIndex, c.rowCount]), [[1, 100], [101, 100]]);
    const call = s.api.calls[0];
    assert.deepEqual(call.statuses, ["Closed", "Resolved"]);
    assert.equal(call.resolvedTo! - call.resolvedFrom!, 90 * DAY);
    assert.ok(call.resolvedTo! >= before && call.resolvedTo! <= after, "the range ends at the run");
    const [page1, page2] = s.stub.requests("GET").map((r) => r.at);
    // Starts are 600 ms apart at the client; arrival adds the first request's connection setup.
    assert.ok(page2 - page1 >= 550, `pages ${Math.round(page2 - page1)} ms apart (limit 600 ms)`);
    assert.equal(
      s.stub.requests("GET")[0].headers.get("accept"),
      "application/vnd.manageengine.sdp.v3+json",
    );

    const stored = await rows(pg, s.table);
    assert.equal(stored.length, 150);
    const byId = new Map(stored.map((r) => [r.ticket_id, r]));
    const full = tickets[0] as {
      id: string;
      subject: string;
      description: string;
      resolution: { content: string };
      resolved_time: { value: string };
      tags: { name: string }[];
    };
    const row = byId.get(full.id)!;
    assert.equal(row.tenant_id, "acme-corp");
    assert.equal(row.description, `${full.subject}\n\n${full.description}`);
    assert.equal(row.resolution, full.resolution.content);
    assert.equal(row.resolved_date.getTime(), Number(full.resolved_time.value));
    assert.deepEqual(row.tags, full.tags.map((t) => t.name));
    assert.equal(row.source, "bulk_import");
    assert.ok(row.ingested_at.getTime() >= before - 1000 && row.ingested_at.getTime() <= after);
    const bare = byId.get(String(tickets[4].id))!; // every fifth has no resolution and no tags
    assert.equal(bare.resolution, "");
    assert.deepEqual(bare.tags, []);

    const second = await s.run(["--tenant-id", "acme-corp"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /150 tickets read, 0 created, 0 updated, 0 unchanged, 150 skipped/);
    const again = await rows(pg, s.table);
    assert.equal(again.length, 150);
    assert.deepEqual(again.map((r) => r.ingested_at), stored.map((r) => r.ingested_at));
  },
);

pgTest(
  "servicedesk: --days and --start-date/--end-date set the resolved_time range the API is asked for",
  async (pg) => {
    const fixture = JSON.parse(
      await Deno.readTextFile(join(ROOT, "fixtures/servicedesk/requests.json")),
    );
    await using s = await setup(pg, fixture.requests);
    const before = Date.now();
    const days = await s.run(["--tenant-id", "t1", "--days", "30"]);
    assert.equal(days.code, 0, days.stderr);
    const last = s.api.calls[0];
    assert.equal(last.resolvedTo! - last.resolvedFrom!, 30 * DAY);
    assert.ok(last.resolvedTo! >= before);
    assert.match(days.stderr, /0 tickets read/);

    const dated = await s.run([
      "--tenant-id",
      "t1",
      "--start-date",
      "2024-01-01",
      "--end-date",
      "2024-03-31",
    ]);
    assert.equal(dated.code, 0, dated.stderr);
    const call = s.api.calls[1];
    assert.equal(call.resolvedFrom, Date.UTC(2024, 0, 1));
    assert.equal(call.resolvedTo, Date.UTC(2024, 3, 1) - 1);
    const stored = await rows(pg, s.table);
    assert.deepEqual(stored.map((r) => [r.ticket_id, r.resolution, r.tags]), [
      ["123456", "Restarted Apache service", ["critical", "web-server"]],
      ["123457", "Raised the DHCP lease time", ["network"]],
      ["123458", "", []],
    ]);
    assert.equal(
      stored[0].description,
      "Server not responding\n\nWeb server down at 192.168.1.100",
    );

    const bad = await s.run(["--tenant-id", "t1", "--start-date", "2024-02-30"]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /--start-date: expected a date like 2026-01-31, got "2024-02-30"/);
  },
);

pgTest(
  "servicedesk: invalid tickets are dead-lettered with their page and index, the others go in, exit 4",
  async (pg) => {
    const now = Date.now();
    const tickets = sdpTickets(20, { from: now - 10 * DAY, to: now - DAY });
    tickets.splice(3, 0, { ...tickets[0], id: "900001", resolved_time: { value: "soon" } });
    tickets.splice(7, 0, { ...tickets[0], id: undefined });
    tickets.splice(12, 0, { ...tickets[0], id: "900003", subject: " ", description: "" });
    await using s = await setup(pg, tickets);
    const result = await s.run(["--tenant-id", "acme"]);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, /23 tickets read, 20 created/);
    assert.equal((await rows(pg, s.table)).length, 20);

    const letters = JSON.parse(
      (await runCli(["state", CONFIG, "deadletters", "--json", "--tenant-id", "acme"], {
        cwd: s.dir,
        env: s.env,
      })).stdout,
    ) as { position: string; reason: string }[];
    assert.deepEqual(letters.map((l) => l.position).sort(), [
      "page 1, index 12",
      "page 1, index 3",
      "page 1, index 7",
    ]);
    const reasons = letters.map((l) => l.reason).join("\n");
    assert.match(reasons, /resolved_date: .*"soon"/);
    assert.match(reasons, /missing required field "ticket_id"/);
    assert.match(reasons, /missing required field "description"/);
  },
);

pgTest(
  "servicedesk: a 429 with Retry-After is waited out and retried; 401 stops with exit 3",
  async (pg) => {
    const now = Date.now();
    await using s = await setup(pg, sdpTickets(30, { from: now - 5 * DAY, to: now - DAY }));
    s.stub.script("GET", "/api/v3/requests", [
      { status: 429, headers: { "retry-after": "1" }, body: { error: "Too many requests" } },
    ]);
    const limited = await s.run(["--tenant-id", "acme"]);
    assert.equal(limited.code, 0, limited.stderr);
    assert.match(limited.stderr, /Retrying GET .* in 1000 ms .*answered 429/);
    assert.match(limited.stderr, /30 tickets read, 30 created/);
    const [refused, retried] = s.stub.requests("GET").map((r) => r.at);
    assert.ok(retried - refused >= 990, `retried after ${Math.round(retried - refused)} ms`);

    const denied = await s.run(["--tenant-id", "other"]);
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(denied.stderr, /Authentication failed: GET .*\/api\/v3\/requests.* answered 401/);
    assert.doesNotMatch(denied.stderr, /wrong-token/, "the token is redacted");
    const other = await pg.sql.unsafe(
      `select count(*)::int as n from ${s.table} where tenant_id = 'other'`,
    );
    assert.equal(other[0].n, 0);
  },
);

pgTest(
  "servicedesk: a page failing after its retries stops with exit 3; the pages before it stay imported",
  async (pg) => {
    const now = Date.now();
    await using s = await setup(pg, sdpTickets(150, { from: now - 5 * DAY, to: now - DAY }));
    s.stub.route("GET", "/api/v3/requests", (req) => {
      const input = JSON.parse(req.query.get("input_data")!);
      if (input.list_info.start_index > 1) return new Response("upstream down", { status: 503 });
      return s.api.handle(req);
    });
    const result = await s.run(["--tenant-id", "acme"]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /Cannot read page 2 of .*failed after 3 attempts: answered 503/);
    assert.equal((await rows(pg, s.table)).length, 100);
  },
);

Deno.test("servicedesk: a missing --tenant-id exits 1 before any database is asked", async () => {
  const config = join(ROOT, "examples/servicedesk/pipeline.json");
  const missing = await runCli(["run", config, "--days", "7"], {
    env: { DATABASE_URL: "postgres://u@127.0.0.1:9/x" },
  });
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /--tenant-id: required parameter is missing/);
});

pgTest(
  "servicedesk: a tenant not in tenant_configs exits 2 and touches nothing",
  async (pg) => {
    await using s = await setup(pg, sdpTickets(5, { from: Date.now() - 5 * DAY, to: Date.now() }));
    const ghost = await s.run(["--tenant-id", "ghost"]);
    assert.equal(ghost.code, 2, ghost.stderr);
    assert.match(ghost.stderr, /lookups\.tenant: tenant "ghost" is not in tenant_configs/);
    assert.equal(s.stub.requests("GET").length, 0, "the API was not asked");
    const [table] = await pg.sql`select to_regclass(${s.table}) as name`;
    assert.equal(table.name, null, "ticket_history was not created");
    // validate checks the config with the lookup's examples, without the database.
    const valid = await runCli(["validate", CONFIG], {
      cwd: s.dir,
      env: { DATABASE_URL: "postgres://u@127.0.0.1:9/x" },
    });
    assert.equal(valid.code, 0, valid.stderr);
  },
);

/**
 * `count` closed/resolved requests in the last 80 days (ids from 100001), with
 * 20 open ones amid them and 10 resolved 100-200 days ago after them: the 30
 * the API's criteria leave out.
 */
function manyTickets(count: number): SdpRequest[] {
  const now = Date.now();
  const inRange = sdpTickets(count, { from: now - 80 * DAY, to: now - DAY, seed: 3 });
  const open = sdpTickets(20, { from: now - 80 * DAY, to: now - DAY, firstId: 200_001 })
    .map((t) => ({ ...t, status: { name: "Open" } }));
  const old = sdpTickets(10, { from: now - 200 * DAY, to: now - 100 * DAY, firstId: 300_001 });
  const half = Math.floor(count / 2);
  return [...inRange.slice(0, half), ...open, ...inRange.slice(half), ...old];
}

/** A row of ticket_history without the columns that tell when it was loaded. */
type LoadedTicket = Omit<Row, "ingested_at">;

/** The rows of `table` by ticket_id, without the columns that tell when they were loaded. */
async function loadedTickets(pg: PgTestContext, table: string): Promise<LoadedTicket[]> {
  const stored = await pg.sql.unsafe<(Row & { first_loaded_at: Date; updated_at: Date | null })[]>(
    `select * from ${table} order by ticket_id`,
  );
  return stored.map(({ ingested_at: _, first_loaded_at: __, updated_at: ___, ...row }) => row);
}

/**
 * deepEqual, but only the first row that differs is shown (node:assert's diff
 * of hundreds of rows is slow and huge): a missing ticket shows as the row
 * after it taking its place.
 */
function assertSameTickets(actual: LoadedTicket[], expected: LoadedTicket[]): void {
  const counts = `${actual.length} rows, expected ${expected.length}`;
  const at = expected.findIndex((row, index) => !isDeepStrictEqual(actual[index], row));
  if (at >= 0) assert.deepEqual(actual[at], expected[at], `row ${at} differs (${counts})`);
  assert.equal(actual.length, expected.length, counts);
}

/** What {@linkcode loadStopped} leaves for a test to check. */
interface StoppedLoad<R> {
  /** What the sweep returned (see killUntilDone). */
  sweep: R;
  /** The status of every run the stopped pipeline's ledger holds, newest first. */
  statuses: string[];
}

/**
 * Loads 1,100 tickets (22 pages of 50, 40 ms apart, inserted 50 at a time)
 * twice: into a reference (its own schema, directory and API) by one
 * uninterrupted run, and into `pg` through `stopRuns`, a sweep of runs stopped
 * again and again (see killUntilDone). The stopped runs must end with the
 * reference's rows: every ticket once, as one uninterrupted run loads it.
 */
async function loadStopped<R>(
  pg: PgTestContext,
  stopRuns: (args: string[], options: CliOptions) => Promise<R>,
): Promise<StoppedLoad<R>> {
  // A run takes about 1.3 s, the last 0.8 s of it paging and inserting, with the ledger
  // written at 500 and 1,000 tickets. Signals 60 ms apart land in start-up, paging (rate-limit
  // waits, and page requests: the stopped runs' API answers after 25 ms), inserts, the ledger
  // and the end.
  const count = 1_100;
  const tickets = manyTickets(count);
  const pace: Pace = { pageSize: 50, minIntervalMs: 40, batchSize: 50 };
  const args = ["--tenant-id", "acme"];

  // The reference: one uninterrupted run, in a schema, directory and API of its own.
  const reference: PgTestContext = { ...pg, schema: await freshSchema(pg.sql) };
  try {
    await using r = await setup(reference, tickets, pace);
    const run = await r.run(args);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`${count} tickets read, ${count} created, .* 0 skipped`));
    assert.equal(r.api.calls.length, count / pace.pageSize, "pages");
    const expected = await loadedTickets(reference, r.table);
    // Exactly the closed/resolved tickets of the range (ids below 200001), each once.
    const wanted = tickets.map((t) => String(t.id)).filter((id) => Number(id) < 200_001);
    assert.deepEqual(expected.map((row) => row.ticket_id), wanted.sort());

    await using s = await setup(pg, tickets, pace);
    s.stub.latency(25);
    const sweep = await stopRuns(["run", CONFIG, "--no-progress", ...args], {
      cwd: s.dir,
      env: s.env,
    });
    assertSameTickets(await loadedTickets(pg, s.table), expected);

    // Every run in the ledger, not only the 20 `state CONFIG runs` lists.
    const ledger = join(s.dir, "data/servicedesk-acme.state.db");
    const store = StateStore.open(ledger, { readOnly: true });
    const statuses = store.listRuns(1_000).map((run) => run.status);
    store.close();
    return { sweep, statuses };
  } finally {
    await dropSchema(pg.sql, reference.schema);
  }
}

pgTest(
  "servicedesk: runs killed with SIGKILL at any moment and started again load every ticket once, as one uninterrupted run",
  async (pg) => {
    const { sweep: kills, statuses } = await loadStopped(
      pg,
      (args, options) => killUntilDone(args, options),
    );
    assert.ok(kills >= 3, `killed ${kills} times`);
    // The ledger marked the killed runs it saw as killed; none is left running.
    assert.ok(!statuses.includes("running"), statuses.join());
    const noticed = statuses.filter((status) => status === "killed").length;
    assert.ok(noticed >= 1 && noticed <= kills, `${noticed} killed runs of ${kills}`);
  },
);

pgTest(
  "servicedesk: runs stopped with SIGTERM at any moment exit 143 within 10 s and, started again, load every ticket once, as one uninterrupted run",
  async (pg) => {
    const { sweep, statuses } = await loadStopped(
      pg,
      (args, options) => killUntilDone(args, options, 60, "SIGTERM"),
    );
    assert.ok(sweep.interrupted >= 3, `stopped gracefully ${sweep.interrupted} times`);
    // Each graceful stop is in the ledger as an interrupted run; none was left running, killed
    // or failed.
    const count = (status: string) => statuses.filter((s) => s === status).length;
    assert.equal(count("interrupted"), sweep.interrupted, statuses.join());
    assert.ok(count("finished") >= 1, statuses.join());
    assert.equal(count("interrupted") + count("finished"), statuses.length, statuses.join());
  },
);
