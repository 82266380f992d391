/**
 * Issue #4's acceptance, end to end: the INC example (examples/inc/pipeline.json)
 * through the real CLI against the real PostgreSQL and a real S3-compatible
 * server (s3rver, in-process): a first load, the next hour's snapshot, an
 * unchanged one skipped by ETag, loads failing half-way (a strict bad row, a
 * cut connection), the geocoder stub and its wrong-city guard. The SLA edges
 * need a pinned clock, which the CLI does not take: that test drives
 * `runPipeline` in-process with the same config and a FixedClock.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadConfig } from "../lib/config.ts";
import { runPipeline } from "../lib/pipeline.ts";
import { Registry } from "../lib/registry.ts";
import { StateStore } from "../lib/state.ts";
import { stageLoaders } from "../stages/mod.ts";
import { generateInc, INC_COLUMNS, SENTINEL } from "../tools/gen_inc.ts";
import { type CliOptions, type CliResult, killUntilDone, ROOT, runCli } from "./cli.ts";
import { FixedClock } from "./harness.ts";
import { dropSchema, freshSchema, pgTest, type PgTestContext } from "./pg_env.ts";
import { startS3, type TestS3 } from "./s3_server.ts";
import { type StubRequest, StubServer } from "./stub_server.ts";

const CONFIG = join(ROOT, "examples/inc/pipeline.json");
const INC = "automations/inc/";
const S17 = "2026-06-15T17-00-00.csv";
const S18 = "2026-06-15T18-00-00.csv";
const S19 = "2026-06-15T19-00-00.csv";
const FIXTURE_17 = await Deno.readTextFile(join(ROOT, "fixtures/inc", S17));
const FIXTURE_18 = await Deno.readTextFile(join(ROOT, "fixtures/inc", S18));
/** The non-alarm, non-sentinel tickets of both fixtures. */
const LOADED = ["INC000101", "INC000103", "INC000104", "INC000106", "INC000107", "INC000108"];

/** What an INC test gets: the database, a fresh bucket and a scratch working directory. */
interface IncContext extends PgTestContext {
  s3: TestS3;
  /** Working directory of the CLI runs (holds data/ and the gazetteer). */
  dir: string;
}

/** A pgTest with an S3 server and a working directory, all cleaned up afterwards. */
function incTest(name: string, fn: (t: IncContext) => Promise<void>): void {
  pgTest(name, async (pg) => {
    const s3 = await startS3();
    const dir = await Deno.makeTempDir({ prefix: "ticketsync-inc-" });
    try {
      await Deno.mkdir(join(dir, "fixtures/inc"), { recursive: true });
      await Deno.copyFile(
        join(ROOT, "fixtures/inc/gazetteer.json"),
        join(dir, "fixtures/inc/gazetteer.json"),
      );
      await fn({ ...pg, s3, dir });
    } finally {
      await s3.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** The environment the example reads, pointing at the test servers. */
function incEnv(t: IncContext, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RUSTFS_ENDPOINT: t.s3.endpoint,
    RUSTFS_BUCKET: t.s3.bucket,
    RUSTFS_ACCESS_KEY: t.s3.accessKeyId,
    RUSTFS_SECRET_KEY: t.s3.secretAccessKey,
    DATABASE_URL: t.url,
    ...extra,
  };
}

/** `ticketsync run CONFIG --schema <test schema>` in the test's working directory. */
function runInc(
  t: IncContext,
  options: { config?: string; env?: Record<string, string>; args?: string[] } = {},
): Promise<CliResult> {
  return runCli(
    [
      "run",
      options.config ?? CONFIG,
      "--schema",
      t.schema,
      "--no-progress",
      ...(options.args ?? []),
    ],
    { cwd: t.dir, env: options.env ?? incEnv(t) },
  );
}

/** The example with its sink's settings changed, written to the working directory. */
async function configVariant(t: IncContext, sink: Record<string, unknown>): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  const entry = config.stages.find((s: { use: string }) => s.use === "sync-tickets.postgres");
  Object.assign(entry, sink);
  const path = join(t.dir, "pipeline.variant.json");
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** The fixture's data lines by ticket id. */
function linesById(csv: string): Map<string, string> {
  const lines = csv.split("\n").filter((line) => line !== "");
  return new Map(lines.slice(1).map((line) => [JSON.parse(line.split(",")[0]) as string, line]));
}

/** A snapshot: the 17:00 fixture with some tickets' lines replaced or left out. */
function editSnapshot(replace: Record<string, string | null>): string {
  const header = FIXTURE_17.split("\n")[0];
  const out = [header];
  for (const [id, line] of linesById(FIXTURE_17)) {
    if (!(id in replace)) out.push(line);
    else if (replace[id] !== null) out.push(replace[id]!);
  }
  return out.join("\n") + "\n";
}

/** A snapshot built from rows of named values; other columns are empty. */
function snapshotCsv(rows: Record<string, string>[]): string {
  const line = (values: readonly string[]) =>
    values.map((value) => `"${value.replaceAll('"', '""')}"`).join(",");
  const sentinel = INC_COLUMNS.map((column) => column === "ticket_id" ? SENTINEL : "");
  return [
    line(INC_COLUMNS),
    line(sentinel),
    ...rows.map((row) => line(INC_COLUMNS.map((column) => row[column] ?? ""))),
  ].join("\r\n") + "\r\n";
}

type TicketRow = Record<string, unknown> & { ticket_id: string; raw: Record<string, unknown> };

async function tickets(t: IncContext): Promise<TicketRow[]> {
  const rows = await t.sql.unsafe(
    `select *, xmin::text as xmin from "${t.schema}".inc order by ticket_id`,
  );
  return [...rows] as unknown as TicketRow[];
}

async function importMeta(t: IncContext): Promise<Record<string, unknown>[]> {
  return [...await t.sql.unsafe(`select * from "${t.schema}".import_meta`)];
}

function byId(rows: TicketRow[]): Map<string, TicketRow> {
  return new Map(rows.map((row) => [row.ticket_id, row]));
}

function iso(value: unknown): string | null {
  return value instanceof Date ? value.toISOString() : value === null ? null : String(value);
}

incTest(
  "inc: the fixture snapshot loads with typed columns, its import_meta row, and moves to processed/",
  async (t) => {
    const etag = await t.s3.put(`${INC}${S17}`, FIXTURE_17);
    await t.s3.put("automations/crq/2026-06-15T17-00-00.csv", '"ticket_id"\n"CRQ1"\n');

    const run = await runInc(t);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /9 tickets read, 6 created, 0 updated, 0 unchanged, 0 skipped, 0 failed/,
    );
    // Alarms and the sentinel are counted separately.
    assert.match(run.stderr, /Filtered out: 1 "sentinel row", 2 "alarm"/);
    assert.match(run.stderr, /Geocoding is off/);

    const rows = await tickets(t);
    assert.deepEqual(rows.map((row) => row.ticket_id), LOADED);
    const row = byId(rows);

    // Zones: EAT wall times (UTC+3) became instants.
    const open = row.get("INC000101")!;
    assert.equal(iso(open.created_at_service), "2026-06-13T06:12:44.000Z");
    assert.equal(iso(open.last_seen_at), "2026-06-15T13:58:12.000Z");
    assert.equal(iso(open.source_updated_at), "2026-06-13T06:12:44.000Z");
    assert.equal(open.raw.created_at_service, "2026-06-13T06:12:44Z");
    // Cases: region lower, raw_status upper; status as exported.
    assert.deepEqual([open.region, open.raw_status, open.status], ["nairobi", "OPEN", "Open"]);
    const progress = row.get("INC000103")!;
    assert.deepEqual([progress.region, progress.raw_status], ["rift valley", "IN PROGRESS"]);
    // Nulls: empty strings became null, in the typed columns and the raw record.
    assert.equal(progress.assigned_team, null);
    assert.equal(progress.raw.assigned_team, null);
    assert.equal(progress.closed_at, null);
    const blank = row.get("INC000108")!;
    assert.deepEqual([blank.region, blank.town, blank.location, blank.owner], [
      null,
      null,
      null,
      null,
    ]);
    assert.deepEqual([blank.latitude, blank.longitude, blank.geocode_level], [null, null, null]);
    // Types: numeric, boolean, timestamps.
    const closed = row.get("INC000104")!;
    assert.equal(closed.mttr, "61.2");
    assert.equal(closed.is_actionable, true);
    assert.equal(iso(closed.closed_at), "2026-06-13T17:17:22.000Z");
    // Closed tickets keep the source's SLA value; open ones are aged from a start field.
    assert.deepEqual([closed.sla_state, closed.sla_basis], ["Breached", "sla_status"]);
    assert.equal(row.get("INC000106")!.sla_basis, "first_seen_at");
    assert.equal(open.sla_basis, "created_at_service");
    // The raw record lost the dropped columns and nothing else.
    const dropped = [
      "week_start",
      "week_end",
      "source_s3_bucket",
      "source_s3_key",
      "source_snapshot_id",
      "department",
      "source_type",
      "service_type",
    ];
    assert.deepEqual(
      Object.keys(open.raw).sort(),
      [...INC_COLUMNS.filter((c) => !dropped.includes(c)), "sla_state", "sla_basis"].sort(),
    );

    const [meta] = await importMeta(t);
    assert.equal(meta.source_key, "inc");
    assert.equal(meta.source_etag, etag);
    assert.deepEqual([meta.rows_seen, meta.rows_loaded, meta.rows_skipped], [6, 6, 0]);
    const metadata = meta.metadata as Record<string, unknown>;
    assert.equal(metadata.source_name, `${INC}${S17}`);
    assert.equal(metadata.created, 6);

    assert.deepEqual(await t.s3.list(), [
      "automations/crq/2026-06-15T17-00-00.csv",
      `${INC}processed/${S17}`,
    ]);
    assert.equal(await t.s3.get(`${INC}processed/${S17}`), FIXTURE_17);
  },
);

incTest(
  "inc: the next hour updates exactly the changed rows and deletes nothing; the same snapshot again is skipped by ETag",
  async (t) => {
    await t.s3.put(`${INC}${S17}`, FIXTURE_17);
    const first = await runInc(t);
    assert.equal(first.code, 0, first.stderr);
    const before = byId(await tickets(t));

    // 18:00: INC000103 closed, INC000106 in progress, INC000107 missing from the export.
    const next = linesById(FIXTURE_18);
    const snapshot18 = editSnapshot({
      INC000103: next.get("INC000103")!,
      INC000106: next.get("INC000106")!,
      INC000107: null,
    });
    const etag18 = await t.s3.put(`${INC}${S18}`, snapshot18);
    const second = await runInc(t);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /8 tickets read, 0 created, 2 updated, 3 unchanged, 0 skipped/);

    const after = byId(await tickets(t));
    assert.deepEqual([...after.keys()], LOADED, "no ticket is deleted, INC000107 included");
    const rewritten = LOADED.filter((id) => after.get(id)!.xmin !== before.get(id)!.xmin);
    assert.deepEqual(rewritten, ["INC000103", "INC000106"]);
    const closed = after.get("INC000103")!;
    assert.deepEqual([closed.raw_status, closed.status, closed.bucket], [
      "CLOSED",
      "Closed",
      "closed",
    ]);
    assert.equal(iso(closed.closed_at), "2026-06-15T14:45:00.000Z");
    assert.equal(closed.mttr, "31.5");
    assert.deepEqual([closed.sla_state, closed.sla_basis], ["Within SLA", "sla_status"]);
    assert.equal(after.get("INC000106")!.raw_status, "IN PROGRESS");
    assert.deepEqual(after.get("INC000107"), before.get("INC000107"));

    const [meta] = await importMeta(t);
    assert.equal(meta.source_etag, etag18);
    assert.deepEqual([meta.rows_seen, meta.rows_loaded, meta.rows_skipped], [5, 2, 3]);

    // 19:00 is byte-identical to 18:00: skipped by its ETag, nothing written, still archived.
    await t.s3.put(`${INC}${S19}`, snapshot18);
    const third = await runInc(t);
    assert.equal(third.code, 0, third.stderr);
    assert.ok(
      third.stderr.includes(
        `Skipped "${INC}${S19}": unchanged since the last load (ETag "${etag18}")`,
      ),
      third.stderr,
    );
    assert.match(third.stderr, /0 tickets read, 0 created, 0 updated, 0 unchanged/);
    assert.deepEqual(byId(await tickets(t)), after);
    assert.deepEqual(await importMeta(t), [meta]);
    assert.deepEqual(
      await t.s3.list(INC),
      [S17, S18, S19].map((name) => `${INC}processed/${name}`),
    );
  },
);

incTest("inc: a strict bad row half-way leaves the table and the file as they were", async (t) => {
  await t.s3.put(`${INC}${S17}`, FIXTURE_17);
  assert.equal((await runInc(t)).code, 0);
  const before = await tickets(t);
  const metaBefore = await importMeta(t);

  // Every row changes at 18:00; the last one has a mttr PostgreSQL cannot store as numeric.
  const bad = FIXTURE_18.replace(
    /^("INC000108",(?:"[^"]*",){6})""/m,
    '$1"4,5"',
  );
  assert.notEqual(bad, FIXTURE_18);
  await t.s3.put(`${INC}${S18}`, bad);
  // Two rows per statement, so two statements have run when the bad row comes.
  const strict = await configVariant(t, { strict: true, batchSize: 2 });
  const failed = await runInc(t, { config: strict });
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(
    failed.stderr,
    /automations\/inc\/2026-06-15T18-00-00\.csv line 10: column "mttr": cannot convert "4,5" to numeric \(strict: the run's transaction is rolled back\)/,
  );
  assert.deepEqual(await tickets(t), before, "every row as it was");
  assert.deepEqual(await importMeta(t), metaBefore);
  assert.deepEqual(await t.s3.list(INC), [`${INC}${S18}`, `${INC}processed/${S17}`]);

  // Fixed at the source, the same hour loads.
  await t.s3.put(`${INC}${S18}`, FIXTURE_18);
  const fixed = await runInc(t, { config: strict });
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stderr, /9 tickets read, 0 created, 6 updated/);
  assert.deepEqual(await t.s3.list(INC), [S17, S18].map((name) => `${INC}processed/${name}`));
});

/**
 * A TCP proxy in front of PostgreSQL that cuts the connection (both sides,
 * without forwarding) as soon as the client sends `marker`.
 */
class CuttingProxy {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Deno.Conn>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  readonly #marker: Uint8Array;
  cuts = 0;

  constructor(marker: string) {
    this.#marker = new TextEncoder().encode(marker);
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const server = await Deno.connect({ hostname: "127.0.0.1", port: 5432 });
        this.#conns.add(client).add(server);
        const cut = () => {
          for (const conn of [client, server]) this.#close(conn);
        };
        this.#track(this.#pump(client, server, cut, true));
        this.#track(this.#pump(server, client, cut, false));
      }
    } catch {
      // The listener was closed.
    }
  }

  #track(pump: Promise<void>): void {
    this.#pumps.add(pump);
    pump.finally(() => this.#pumps.delete(pump));
  }

  #close(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, cut: () => void, inspect: boolean): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let tail = new Uint8Array(0);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        const chunk = buffer.slice(0, n);
        if (inspect) {
          const window = new Uint8Array(tail.length + chunk.length);
          window.set(tail);
          window.set(chunk, tail.length);
          if (indexOf(window, this.#marker) !== -1) {
            this.cuts++;
            break;
          }
          tail = window.slice(Math.max(0, window.length - this.#marker.length));
        }
        let written = 0;
        while (written < chunk.length) written += await to.write(chunk.subarray(written));
      }
    } catch {
      // The other side was closed.
    }
    cut();
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of [...this.#conns]) this.#close(conn);
    await Promise.all([...this.#pumps]);
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

incTest("inc: a connection cut half-way leaves the table and the file as they were", async (t) => {
  await t.s3.put(`${INC}${S17}`, FIXTURE_17);
  assert.equal((await runInc(t)).code, 0);
  const before = await tickets(t);
  const metaBefore = await importMeta(t);

  await t.s3.put(`${INC}${S18}`, FIXTURE_18);
  const variant = await configVariant(t, { batchSize: 2 });
  // The third statement carries INC000107: two batches are in the transaction when it is cut.
  const proxy = new CuttingProxy("INC000107");
  try {
    const url = t.url.replace(":5432/", `:${proxy.port}/`);
    const cut = await runInc(t, { config: variant, env: incEnv(t, { DATABASE_URL: url }) });
    assert.equal(cut.code, 3, cut.stderr);
    assert.equal(proxy.cuts, 1);
    assert.match(cut.stderr, /Cannot load into "ts_test_\w+\.inc": .*(connection|closed)/);
  } finally {
    await proxy.close();
  }
  assert.deepEqual(await tickets(t), before, "every row as it was");
  assert.deepEqual(await importMeta(t), metaBefore);
  assert.deepEqual(await t.s3.list(INC), [`${INC}${S18}`, `${INC}processed/${S17}`]);

  const again = await runInc(t, { config: variant });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /9 tickets read, 0 created, 6 updated/);
});

incTest(
  "inc: SLA state for open tickets is right at the 36 h and 48 h edges, with the fallback clock",
  async (t) => {
    // The run's clock: 2026-06-15 17:00 EAT.
    const now = Temporal.Instant.from("2026-06-15T14:00:00Z");
    const eat = (hoursBefore: number, secondsAfter = 0) =>
      now.subtract({ hours: hoursBefore }).add({ seconds: secondsAfter })
        .toZonedDateTimeISO("Africa/Nairobi").toPlainDateTime().toString().replace("T", " ");
    const ticket = (id: string, fields: Record<string, string>) => ({
      ticket_id: id,
      is_alarm: "false",
      is_actionable: "true",
      raw_status: "open",
      status: "Open",
      first_seen_at: eat(1),
      ...fields,
    });
    const csv = snapshotCsv([
      ticket("T36", { created_at_service: eat(36) }),
      ticket("T36-1s", { created_at_service: eat(36, 1) }),
      ticket("T48", { created_at_service: eat(48) }),
      ticket("T48-1s", { created_at_service: eat(48, 1) }),
      // No created_at_service: first_seen_at is the start.
      ticket("F36", { first_seen_at: eat(36) }),
      ticket("F36-1s", { first_seen_at: eat(36, 1) }),
      ticket("F48", { first_seen_at: eat(48) }),
      ticket("F48-1s", { first_seen_at: eat(48, 1) }),
      ticket("NONE", { first_seen_at: "" }),
      ticket("CLOSED", {
        raw_status: "closed",
        status: "Closed",
        sla_status: "Within SLA",
        created_at_service: eat(100),
      }),
    ]);
    await t.s3.put(`${INC}${S17}`, csv);

    const config = await loadConfig(CONFIG, {
      registry: new Registry([], stageLoaders),
      env: incEnv(t),
      paramArgs: { schema: t.schema },
      cwd: t.dir,
    });
    const report = await runPipeline({
      config,
      mode: "run",
      cwd: t.dir,
      clock: new FixedClock(now),
    });
    assert.equal(report.exitCode, 0, report.error);
    assert.equal(report.outcomes.created, 10);

    const rows = byId(await tickets(t));
    const sla = (id: string) => [rows.get(id)!.sla_state, rows.get(id)!.sla_basis];
    assert.deepEqual(sla("T36"), ["at_risk", "created_at_service"]);
    assert.deepEqual(sla("T36-1s"), ["within", "created_at_service"]);
    assert.deepEqual(sla("T48"), ["breached", "created_at_service"]);
    assert.deepEqual(sla("T48-1s"), ["at_risk", "created_at_service"]);
    assert.deepEqual(sla("F36"), ["at_risk", "first_seen_at"]);
    assert.deepEqual(sla("F36-1s"), ["within", "first_seen_at"]);
    assert.deepEqual(sla("F48"), ["breached", "first_seen_at"]);
    assert.deepEqual(sla("F48-1s"), ["at_risk", "first_seen_at"]);
    assert.deepEqual(sla("NONE"), [null, null]);
    assert.equal(rows.get("NONE")!.raw.sla_reason, "no start time");
    assert.deepEqual(sla("CLOSED"), ["Within SLA", "sla_status"]);
  },
);

/** Due north of Nakuru (gazetteer), 40.2 km away: a wrong-city match. */
const NAKURU = { lat: -0.3031, lon: 36.08 };
const FAR_FROM_NAKURU = { lat: NAKURU.lat + 0.3615, lon: NAKURU.lon };

incTest(
  "inc: the geocoder stub sees each distinct address once across a failed run and two runs; a result 40 km from its town is rejected",
  async (t) => {
    const places: Record<string, { lat: number; lon: number }> = {
      "nairobi, nairobi, kenya": { lat: -1.2864, lon: 36.8172 },
      "kariobangi north, nairobi, kenya": { lat: -1.2522, lon: 36.8836 },
      "nakuru, rift valley, kenya": { lat: -0.3031, lon: 36.08 },
      "kwa ndege estate, nakuru, kenya": FAR_FROM_NAKURU,
      "mombasa, coast, kenya": { lat: -4.0435, lon: 39.6682 },
      "nyali, links road, mombasa, kenya": { lat: -4.0226, lon: 39.7199 },
      "kisumu, nyanza, kenya": { lat: -0.0917, lon: 34.768 },
      "milimani, kisumu, kenya": { lat: -0.0983, lon: 34.7564 },
      "eldoret, rift valley, kenya": { lat: 0.5143, lon: 35.2698 },
    };
    const key = "pk.inc-test-7c1e55";
    await using stub = await StubServer.start();
    stub.route("GET", "/v1/search", function search(req: StubRequest) {
      const point = places[req.query.get("q") ?? ""];
      if (!point) return new Response('{"error":"Unable to geocode"}', { status: 404 });
      return [{ lat: String(point.lat), lon: String(point.lon), display_name: "Kenya" }];
    });
    const env = incEnv(t, { GEOCODER_URL: `${stub.url}/v1`, GEOCODER_API_KEY: key });
    const args = ["--geocode-rate", "1000"];

    // A first attempt geocodes every row, then fails at its end (strict, a bad mttr): the
    // answers it paid for are kept although the run's ledger writes are rolled back.
    const bad = FIXTURE_17.replace(/^("INC000108",(?:"[^"]*",){6})""/m, '$1"4,5"');
    assert.notEqual(bad, FIXTURE_17);
    await t.s3.put(`${INC}${S17}`, bad);
    const failed = await runInc(t, { config: await configVariant(t, { strict: true }), env, args });
    assert.equal(failed.code, 3, failed.stderr);
    assert.ok(stub.requests("GET", "/v1/search").length > 0, "the failed run asked the geocoder");

    await t.s3.put(`${INC}${S17}`, FIXTURE_17);
    const first = await runInc(t, { env, args });
    assert.equal(first.code, 0, first.stderr);
    const asked = stub.requests("GET", "/v1/search").length;
    await t.s3.put(`${INC}${S18}`, FIXTURE_18);
    const second = await runInc(t, { env, args });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /9 tickets read, 0 created, 6 updated/);

    const queries = stub.requests("GET", "/v1/search").map((req) => req.query.get("q"));
    assert.equal(queries.length, asked, "the second run asks nothing new");
    assert.deepEqual([...queries].sort(), [...new Set(queries)].sort(), "no query twice");
    assert.deepEqual(
      new Set(queries),
      new Set([...Object.keys(places), "elgon view, eldoret, kenya"]),
    );
    for (const req of stub.requests()) assert.equal(req.query.get("key"), key);
    assert.ok(
      !first.stderr.includes(key) && !second.stderr.includes(key),
      "the key is never logged",
    );

    const rows = byId(await tickets(t));
    const nairobi = rows.get("INC000101")!;
    assert.deepEqual(
      [nairobi.latitude, nairobi.longitude, nairobi.geocode_level, nairobi.geocode_reason],
      [-1.2522, 36.8836, "precise", null],
    );
    // 40 km from Nakuru: rejected by the guard, the coarse point is used.
    const nakuru = rows.get("INC000103")!;
    assert.deepEqual([nakuru.latitude, nakuru.longitude, nakuru.geocode_level], [
      NAKURU.lat,
      NAKURU.lon,
      "coarse",
    ]);
    assert.match(String(nakuru.geocode_reason), /precise result 40\.\d km from "Nakuru" rejected/);
    // No precise answer for Elgon View: placed at the town.
    const eldoret = rows.get("INC000107")!;
    assert.equal(eldoret.geocode_level, "coarse");
    assert.match(
      String(eldoret.geocode_reason),
      /no precise result for "elgon view, eldoret, kenya"/,
    );
    // No address at all: loads anyway, with null coordinates and the reason.
    const blank = rows.get("INC000108")!;
    assert.deepEqual([blank.latitude, blank.longitude, blank.geocode_level], [null, null, null]);
    assert.match(String(blank.geocode_reason), /coarse query skipped: "town", "region" empty/);
  },
);

incTest(
  "inc: a changes/ feed read oldest first loads one file a run, so a ticket changed in two files ends with the later change",
  async (t) => {
    const changes = `${INC}changes/`;
    const config = JSON.parse(await Deno.readTextFile(CONFIG));
    Object.assign(config.stages[0], { prefix: changes, select: "all-oldest-first" });
    const path = join(t.dir, "pipeline.changes.json");
    await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
    const header = FIXTURE_17.split("\n")[0];
    const at17 = linesById(FIXTURE_17);
    const at18 = linesById(FIXTURE_18);
    // INC000103 is in progress at 17:00 and closed at 18:00; INC000101 only changes at 17:00.
    await t.s3.put(
      `${changes}${S17}`,
      [header, at17.get("INC000103"), at17.get("INC000101")].join("\n") + "\n",
    );
    const etag18 = await t.s3.put(
      `${changes}${S18}`,
      [header, at18.get("INC000103")].join("\n") + "\n",
    );

    const run = await runInc(t, { config: path });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /More input waits \(run 1 done\): running again/);
    assert.match(run.stderr, /2 tickets read, 2 created/);
    assert.match(run.stderr, /1 tickets read, 0 created, 1 updated/);
    const rows = byId(await tickets(t));
    assert.deepEqual([...rows.keys()], ["INC000101", "INC000103"]);
    assert.equal(rows.get("INC000103")!.raw_status, "CLOSED", "the later change wins");
    assert.deepEqual(await t.s3.list(changes), [
      `${changes}processed/${S17}`,
      `${changes}processed/${S18}`,
    ]);
    const [meta] = await importMeta(t);
    assert.equal(meta.source_etag, etag18, "the freshness row names the last file loaded");

    const again = await runInc(t, { config: path });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /running again/);
  },
);

incTest(
  "inc: a snapshot that breaks the 32-column contract stops before any row, naming the column",
  async (t) => {
    // The 17:00 fixture without its is_alarm column: the alarm filter would match nothing.
    const lines = FIXTURE_17.split("\n").filter((line) => line !== "");
    const index = lines[0].split(",").indexOf('"is_alarm"');
    assert.ok(index > 0);
    const cut = lines.map((line) => {
      const fields = line.split(/,(?=")/);
      fields.splice(index, 1);
      return fields.join(",");
    }).join("\n") + "\n";
    await t.s3.put(`${INC}${S17}`, cut);
    const run = await runInc(t);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /the header lacks a required column: is_alarm/);
    assert.match(run.stderr, /0 tickets read/);
    assert.deepEqual(await tickets(t), []);
    assert.deepEqual(await t.s3.list(INC), [`${INC}${S17}`], "the file stays where it is");
  },
);

incTest(
  "inc: a snapshot's bad row stays a dead letter until a newer snapshot loads cleanly and supersedes it",
  async (t) => {
    // A stray quote in one row of the 17:00 export: that row is dead-lettered, the rest load.
    const broken = FIXTURE_17.replace(/^"INC000104",/m, '"INC000104"x,');
    assert.notEqual(broken, FIXTURE_17);
    await t.s3.put(`${INC}${S17}`, broken);
    const first = await runInc(t);
    assert.equal(first.code, 4, first.stderr);
    assert.match(first.stderr, /invalid CSV: unexpected character after a closing quote/);
    const open = async () =>
      JSON.parse(
        (await runCli(["state", CONFIG, "deadletters", "--json", "--schema", t.schema], {
          cwd: t.dir,
          env: incEnv(t),
        })).stdout,
      ) as { source: string }[];
    assert.deepEqual((await open()).map((letter) => letter.source), [`${INC}${S17}`]);
    assert.deepEqual(await t.s3.list(INC), [`${INC}${S17}`], "left in place");

    await t.s3.put(`${INC}${S18}`, FIXTURE_18);
    const second = await runInc(t);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stderr,
      /Resolved 1 dead letter\(s\) of ".*2026-06-15T17-00-00\.csv": superseded/,
    );
    assert.deepEqual(await open(), []);
    assert.deepEqual(await t.s3.list(INC), [S17, S18].map((name) => `${INC}processed/${name}`));
  },
);

/** What a load leaves that does not depend on when it ran: rows and freshness, no load times. */
async function destination(t: IncContext) {
  const rows = await t.sql.unsafe(
    `select * from "${t.schema}".inc order by ticket_id`,
  );
  const meta = await importMeta(t);
  return {
    rows: rows.map(({ first_loaded_at: _, updated_at: __, ...row }) => row),
    meta: meta.map(({ loaded_at: _, metadata, ...row }) => {
      const { run_id: __, table: ___, ...rest } = metadata as Record<string, unknown>;
      return { ...row, metadata: rest };
    }),
    objects: await t.s3.list(),
  };
}

type Destination = Awaited<ReturnType<typeof destination>>;

/** deepEqual, but a differing row is shown alone (a diff of 2,000 rows takes minutes and GBs). */
function assertSameDestination(actual: Destination, expected: Destination, label: string): void {
  assert.deepEqual(actual.objects, expected.objects, label);
  assert.deepEqual(actual.meta, expected.meta, label);
  assert.equal(actual.rows.length, expected.rows.length, label);
  const at = actual.rows.findIndex((row, index) => !isDeepStrictEqual(row, expected.rows[index]));
  if (at >= 0) assert.deepEqual(actual.rows[at], expected.rows[at], `${label}: row ${at}`);
}

/** The hour `tick` of a generated 3,000-row snapshot (966 of its rows are not loaded). */
function killSnapshot(tick: number): string {
  return [...generateInc({ rows: 3_000, tick, seed: 11 })].join("");
}

/**
 * The example with batches of 100 rows, so that signals land between batches
 * of the open transaction too; written to the context's working directory.
 */
async function killConfig(c: IncContext): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  const sink = config.stages.find((s: { use: string }) => s.use === "sync-tickets.postgres");
  sink.batchSize = 100;
  const path = join(c.dir, "pipeline.kill.json");
  await Deno.writeTextFile(path, JSON.stringify(config));
  return path;
}

/**
 * Loads two generated hourly snapshots twice: into a reference (its own
 * schema, bucket and directory) without interruption, and into `t` through
 * `stopRuns`, a sweep of runs stopped again and again (see killUntilDone).
 * After each hour the two destinations must be equal. Returns each hour's
 * sweep result and the config `t`'s runs used.
 */
async function twoHoursStopped<R>(
  t: IncContext,
  stopRuns: (args: string[], options: CliOptions) => Promise<R>,
): Promise<{ sweeps: R[]; config: string }> {
  const reference: IncContext = {
    ...t,
    schema: await freshSchema(t.sql),
    s3: await startS3(),
    dir: await Deno.makeTempDir({ prefix: "ticketsync-inc-ref-" }),
  };
  try {
    const referenceConfig = await killConfig(reference);
    const config = await killConfig(t);
    const sweeps: R[] = [];
    for (const [name, tick] of [[S17, 0], [S18, 1]] as const) {
      const body = killSnapshot(tick);
      await reference.s3.put(`${INC}${name}`, body);
      const run = await runInc(reference, { config: referenceConfig });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /0 skipped, 0 failed/);
      const expected = await destination(reference);
      assert.equal(expected.rows.length, 3_000 - 966);
      assert.ok(expected.objects.includes(`${INC}processed/${name}`));

      await t.s3.put(`${INC}${name}`, body);
      sweeps.push(
        await stopRuns(["run", config, "--schema", t.schema, "--no-progress"], {
          cwd: t.dir,
          env: incEnv(t),
        }),
      );
      assertSameDestination(await destination(t), expected, `after ${name}`);
    }
    return { sweeps, config };
  } finally {
    await reference.s3.close();
    await dropSchema(t.sql, reference.schema);
    await Deno.remove(reference.dir, { recursive: true });
  }
}

incTest(
  "inc: runs killed with SIGKILL at any moment and started again end as one uninterrupted run did",
  async (t) => {
    const { sweeps: kills, config } = await twoHoursStopped(
      t,
      (args, options) => killUntilDone(args, options),
    );
    assert.ok(kills.every((n) => n >= 3), `killed ${kills.join(" and ")} times`);

    // The ledger saw each kill that came after a run started as killed, and nothing is left running.
    const runs = await runCli(["state", config, "runs", "--json", "--schema", t.schema], {
      cwd: t.dir,
      env: incEnv(t),
    });
    assert.equal(runs.code, 0, runs.stderr);
    const statuses = (JSON.parse(runs.stdout) as { status: string }[]).map((r) => r.status);
    assert.ok(!statuses.includes("running"), statuses.join());
    const noticed = statuses.filter((status) => status === "killed").length;
    assert.ok(noticed >= 2 && noticed <= kills[0] + kills[1], `${noticed} killed runs`);
  },
);

incTest(
  "inc: runs stopped with SIGTERM at any moment exit 143 within 10 s and, started again, end as one uninterrupted run did",
  async (t) => {
    const { sweeps } = await twoHoursStopped(
      t,
      (args, options) => killUntilDone(args, options, 60, "SIGTERM"),
    );
    const interrupted = sweeps.map((sweep) => sweep.interrupted);
    assert.ok(
      interrupted.every((n) => n >= 3),
      `stopped gracefully ${interrupted.join(" and ")} times`,
    );

    // Each graceful stop is in the ledger as an interrupted run; none was left running or failed.
    const store = StateStore.open(join(t.dir, "data/inc.state.db"), { readOnly: true });
    const statuses = store.listRuns(1_000).map((run) => run.status);
    store.close();
    const count = (status: string) => statuses.filter((s) => s === status).length;
    assert.equal(count("interrupted"), interrupted[0] + interrupted[1], statuses.join());
    assert.ok(count("finished") >= 2, statuses.join());
    assert.equal(count("interrupted") + count("finished"), statuses.length, statuses.join());
  },
);
