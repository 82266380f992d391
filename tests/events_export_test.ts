/**
 * The database -> JSON files export (seed 001) end to end through the real
 * CLI and a real PostgreSQL: `examples/events_export/*.json` read the fixture
 * tables (`fixtures/events_db`) and write `data/<table>.json`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type postgres from "postgres";
import { StateStore } from "../lib/state.ts";
import { type CliOptions, killUntilDone, ROOT, runCli } from "./cli.ts";
import { type Watch, watchWhile } from "./harness.ts";
import { dropSchema, freshSchema, pgTest } from "./pg_env.ts";

const TABLES = ["sources", "cities", "venues", "events"] as const;
const SCHEMA_SQL = await Deno.readTextFile(join(ROOT, "fixtures/events_db/schema.sql"));
const SEED_SQL = await Deno.readTextFile(join(ROOT, "fixtures/events_db/seed.sql"));
/** Never sent (trust auth), but it must not appear in any output either. */
const PASSWORD = "s3cret-pw";

type Row = Record<string, unknown>;
interface Export {
  metadata: { version: string; generated_at: string; total_count: number; source: string };
  statistics: Record<string, Record<string, number>>;
  [records: string]: unknown;
}

/** The fixture tables in `schema`, and a scratch working directory with the example configs. */
async function setUp(sql: postgres.Sql, url: string, schema: string) {
  await sql.begin(async (tx) => {
    await tx.unsafe(`set local search_path to "${schema}"`);
    await tx.unsafe(SCHEMA_SQL);
    await tx.unsafe(SEED_SQL);
  });
  const dir = await Deno.makeTempDir({ prefix: "ticketsync-export-" });
  await Deno.mkdir(join(dir, "examples/events_export"), { recursive: true });
  for (const table of TABLES) {
    await Deno.copyFile(
      join(ROOT, `examples/events_export/${table}.json`),
      join(dir, `examples/events_export/${table}.json`),
    );
  }
  const databaseUrl = url.replace("postgres@", `postgres:${PASSWORD}@`) +
    `?search_path=${schema}`;
  const env = { DATABASE_URL: databaseUrl };
  async function cli(args: string[]) {
    const result = await runCli([...args, "--no-progress"], { cwd: dir, env });
    assert.doesNotMatch(result.stderr + result.stdout, new RegExp(PASSWORD));
    return result;
  }
  const run = (config: string) => cli(["run", config]);
  return {
    dir,
    /** The environment of the CLI runs (the database URL). */
    env,
    cli,
    run,
    exportRun: (table: string) => run(`examples/events_export/${table}.json`),
    read: async (table: string) =>
      JSON.parse(await Deno.readTextFile(join(dir, `data/${table}.json`))) as Export,
    text: (table: string) => Deno.readTextFile(join(dir, `data/${table}.json`)),
    backups: () => listDir(join(dir, "data/backups")),
    cleanUp: () => Deno.remove(dir, { recursive: true }),
  };
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

function byId(records: unknown, id: number): Row {
  const found = (records as Row[]).find((record) => record.id === id);
  assert.ok(found, `record ${id}`);
  return found;
}

pgTest(
  "events_export: each table is written to data/<table>.json with metadata, statistics and relationship names",
  async ({ url, sql, schema }) => {
    const t = await setUp(sql, url, schema);
    try {
      const results = await Promise.all(TABLES.map((table) => t.exportRun(table)));
      for (const [index, result] of results.entries()) {
        assert.equal(result.code, 0, result.stderr);
        const count = { sources: 4, cities: 3, venues: 7, events: 7 }[TABLES[index]];
        assert.match(
          result.stderr,
          new RegExp(`${count} ${TABLES[index]} read, ${count} created, 0 updated, 0 unchanged`),
        );
      }

      const venues = await t.read("venues");
      assert.equal(venues.metadata.version, "1.0");
      assert.equal(venues.metadata.total_count, 7);
      assert.equal(venues.metadata.source, "database");
      assert.ok(Temporal.Instant.from(venues.metadata.generated_at));
      assert.deepEqual(venues.statistics, {
        venue_type: { museum: 3, music_venue: 2, park: 1, theatre: 1 },
        city_name: { Baltimore: 3, Lisbon: 2, Nairobi: 1 },
      });
      assert.deepEqual((venues.venues as Row[]).map((v) => v.id), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(byId(venues.venues, 4), {
        id: 4,
        name: "Museu Nacional do Azulejo",
        venue_type: "museum",
        address: "Rua da Madre de Deus 4",
        city_id: 2,
        city_name: "Lisbon",
        description: "Portuguese tiles since the 15th century.",
        opening_hours: "Tue-Sun 10:00-18:00",
        phone: null,
        email: null,
        website: null,
        admission_fee: 8,
        image_url: null,
        coordinates: { latitude: 38.7248, longitude: -9.1134 },
        created_at: "2025-08-03T12:00:00Z",
        updated_at: null,
      });
      assert.equal(byId(venues.venues, 7).city_name, null, "a venue without a city keeps null");

      const events = await t.read("events");
      assert.equal(events.metadata.total_count, 7);
      assert.deepEqual(events.statistics.event_type, {
        concert: 3,
        exhibition: 1,
        festival: 1,
        tour: 1,
        workshop: 1,
      });
      assert.deepEqual(events.statistics.city_name, { Baltimore: 3, Lisbon: 2, Nairobi: 1 });
      assert.equal(events.statistics.venue_name["Rams Head Live"], 1);
      const fado = byId(events.events, 5);
      assert.equal(fado.venue_name, "Coliseu dos Recreios");
      assert.equal(fado.city_name, "Lisbon");
      assert.equal(fado.start_date, "2025-11-01");
      assert.equal(fado.start_time, "21:00:00");
      assert.equal(fado.price, 40);

      const sources = await t.read("sources");
      assert.equal(sources.metadata.total_count, 4);
      assert.deepEqual(byId(sources.sources, 1).event_types, ["concert", "exhibition", "festival"]);
      assert.equal(byId(sources.sources, 1).reliability_score, 0.9);
      assert.equal(byId(sources.sources, 1).updated_at, "2025-09-18T18:46:58Z");
      assert.deepEqual(sources.statistics.source_type, { website: 2, rss: 1, social: 1 });

      const cities = await t.read("cities");
      assert.deepEqual((cities.cities as Row[]).map((c) => c.name), [
        "Baltimore",
        "Lisbon",
        "Nairobi",
      ]);
      assert.deepEqual(await t.backups(), [], "a first export has nothing to back up");
    } finally {
      await t.cleanUp();
    }
  },
);

pgTest(
  "events_export: an unchanged database leaves the file untouched; a change backs up the old file first",
  async ({ url, sql, schema }) => {
    const t = await setUp(sql, url, schema);
    try {
      assert.equal((await t.exportRun("venues")).code, 0);
      const first = await t.text("venues");
      const firstStat = await Deno.stat(join(t.dir, "data/venues.json"));

      const again = await t.exportRun("venues");
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /7 venues read, 0 created, 0 updated, 7 unchanged/);
      assert.match(again.stderr, /venues\.json is up to date \(7 records\): not rewritten/);
      assert.equal(await t.text("venues"), first, "same bytes (generated_at included)");
      const againStat = await Deno.stat(join(t.dir, "data/venues.json"));
      assert.equal(againStat.mtime?.getTime(), firstStat.mtime?.getTime());
      assert.equal(againStat.ino, firstStat.ino, "not replaced by a rename either");
      assert.deepEqual(await t.backups(), []);

      // A city renamed (three venues' city_name) and a venue added.
      await sql.unsafe(`
      update "${schema}".cities set name = 'Baltimore City' where id = 1;
      insert into "${schema}".venues (name, venue_type, city_id) values ('Ottobar', 'music_venue', 1)`);
      const changed = await t.exportRun("venues");
      assert.equal(changed.code, 0, changed.stderr);
      assert.match(changed.stderr, /8 venues read, 1 created, 3 updated, 4 unchanged/);
      const backups = await t.backups();
      assert.equal(backups.length, 1);
      assert.match(backups[0], /^venues\.json\.backup\.\d{8}_\d{6}$/);
      assert.equal(
        await Deno.readTextFile(join(t.dir, "data/backups", backups[0])),
        first,
        "the backup is the old file",
      );
      const venues = await t.read("venues");
      assert.equal(venues.metadata.total_count, 8);
      assert.deepEqual(venues.statistics.city_name, { "Baltimore City": 4, Lisbon: 2, Nairobi: 1 });
      assert.equal(byId(venues.venues, 1).city_name, "Baltimore City");
      assert.equal(byId(venues.venues, 8).name, "Ottobar");

      // A venue deleted from the table leaves the file: every other venue is unchanged, and a
      // line says which one left.
      await sql.unsafe(`delete from "${schema}".venues where id = 7`);
      const deleted = await t.exportRun("venues");
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.match(deleted.stderr, /7 venues read, 0 created, 0 updated, 7 unchanged/);
      assert.match(
        deleted.stderr,
        /1 record of the old .*venues\.json is not in this run's input and leaves the file: 7\n/,
      );
      const after = await t.read("venues");
      assert.equal(after.metadata.total_count, 7);
      assert.deepEqual((after.venues as Row[]).map((v) => v.id), [1, 2, 3, 4, 5, 6, 8]);
      assert.equal((await t.backups()).length, 2);
    } finally {
      await t.cleanUp();
    }
  },
);

pgTest(
  "events_export: a query failing mid-way or an unwritable backup leaves the original file untouched",
  async ({ url, sql, schema }) => {
    const t = await setUp(sql, url, schema);
    try {
      assert.equal((await t.exportRun("venues")).code, 0);
      const original = await t.text("venues");
      await sql.unsafe(`update "${schema}".venues set name = 'Renamed' where id = 2`);

      // The shipped config with a query that fails on the fourth venue, two rows per fetch.
      const config = JSON.parse(
        await Deno.readTextFile(join(t.dir, "examples/events_export/venues.json")),
      );
      config.stages[0].query = "select v.*, 100 / (v.id - 4) as boom from venues v";
      config.stages[0].batchSize = 2;
      await Deno.writeTextFile(join(t.dir, "broken.json"), JSON.stringify(config, null, 2));
      const broken = await t.run("broken.json");
      assert.equal(broken.code, 3, broken.stderr);
      assert.match(broken.stderr, /Cannot read "venues": after row \d+: division by zero/);
      assert.equal(await t.text("venues"), original);
      assert.deepEqual(await t.backups(), []);

      // The backup cannot be written (data/backups is a file): nothing is replaced.
      await Deno.writeTextFile(join(t.dir, "data/backups"), "not a directory");
      const blocked = await t.exportRun("venues");
      assert.equal(blocked.code, 4, blocked.stderr);
      assert.match(
        blocked.stderr,
        /Cannot write ".*venues\.json": .*\(the file was left as it was\)/,
      );
      assert.equal(await t.text("venues"), original);
      assert.deepEqual(
        (await listDir(join(t.dir, "data"))).filter((name) => name.endsWith(".tmp")),
        [],
        "no temporary file left behind",
      );

      // Fixed: the next run exports the change.
      await Deno.remove(join(t.dir, "data/backups"));
      const fixed = await t.exportRun("venues");
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.stderr, /0 created, 1 updated, 6 unchanged/);
      assert.equal(byId((await t.read("venues")).venues, 2).name, "Renamed");
      assert.equal((await t.backups()).length, 1);
    } finally {
      await t.cleanUp();
    }
  },
);

pgTest(
  "events_export: a missing table exits 2 and leaves the file as it was",
  async ({ url, sql, schema }) => {
    const t = await setUp(sql, url, schema);
    try {
      assert.equal((await t.exportRun("events")).code, 0);
      const original = await t.text("events");
      await sql.unsafe(`drop table "${schema}".events`);
      const result = await t.exportRun("events");
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Cannot read "events": table does not exist/);
      assert.equal(await t.text("events"), original);
    } finally {
      await t.cleanUp();
    }
  },
);

pgTest(
  "events_export: --limit or a replay with no file yet writes nothing (exit 4); the full run writes every venue and resolves the letters",
  async ({ url, sql, schema }) => {
    const t = await setUp(sql, url, schema);
    const config = "examples/events_export/venues.json";
    const reason =
      /not exported: a replay or --limit run cannot write ".*venues\.json", which does not exist yet: run the export in full/;
    try {
      // A first export of 4 venues out of 7 would be a file of 4 venues, exit 0.
      const limited = await t.cli(["run", config, "--limit", "4"]);
      assert.equal(limited.code, 4, limited.stderr);
      assert.match(
        limited.stderr,
        /4 venues read, 0 created, 0 updated, 0 unchanged, 0 skipped, 4 failed/,
      );
      assert.match(limited.stderr, reason);
      await assert.rejects(Deno.stat(join(t.dir, "data/venues.json")), Deno.errors.NotFound);

      // The replay the summary suggests fails the same way, and says what to do.
      const replay = await t.cli(["replay", config]);
      assert.equal(replay.code, 4, replay.stderr);
      assert.match(
        replay.stderr,
        /7 venues read, 0 created, 0 updated, 0 unchanged, 0 skipped, 4 failed/,
      );
      assert.match(replay.stderr, /Filtered out: 3 "not selected for replay"/);
      assert.match(replay.stderr, reason);
      await assert.rejects(Deno.stat(join(t.dir, "data/venues.json")), Deno.errors.NotFound);

      const full = await t.exportRun("venues");
      assert.equal(full.code, 0, full.stderr);
      assert.match(
        full.stderr,
        /7 venues read, 7 created, 0 updated, 0 unchanged, 0 skipped, 0 failed/,
      );
      assert.deepEqual(((await t.read("venues")).venues as Row[]).map((v) => v.id), [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
      ]);
      const letters = await t.cli(["state", config, "deadletters"]);
      assert.equal(letters.code, 0, letters.stderr);
      assert.match(letters.stdout, /No open dead letters/);

      // With the file there, a --limit run updates what it read and keeps the rest.
      await sql.unsafe(`update "${schema}".venues set name = 'Renamed' where id = 2`);
      const partial = await t.cli(["run", config, "--limit", "3"]);
      assert.equal(partial.code, 0, partial.stderr);
      assert.match(partial.stderr, /3 venues read, 0 created, 1 updated, 2 unchanged/);
      const venues = await t.read("venues");
      assert.equal(venues.metadata.total_count, 7);
      assert.equal(byId(venues.venues, 2).name, "Renamed");
    } finally {
      await t.cleanUp();
    }
  },
);

/** Events in the tables of the kill test: about 2 MB of export, a run of 1-2 s. */
const KILL_EVENTS = 4_000;
/** Venues in the tables of the kill test. */
const KILL_VENUES = 1_000;

/**
 * Grows the fixture tables in `schema` to 60 cities, {@linkcode KILL_VENUES}
 * venues and {@linkcode KILL_EVENTS} events. Deterministic (no `now()`, no
 * randomness), so two schemas export the same records.
 */
async function growTables(sql: postgres.Sql, schema: string): Promise<void> {
  await sql.unsafe(`
    set search_path to "${schema}";
    insert into cities (id, name, country, timezone, created_at)
    select i, 'City ' || i, (array['Kenya', 'Portugal', 'United States', 'Japan'])[1 + i % 4],
           (array['Africa/Nairobi', 'Europe/Lisbon', 'America/New_York', 'Asia/Tokyo'])[1 + i % 4],
           '2025-08-01 00:00:00+00'
    from generate_series(4, 60) i;
    insert into venues (id, name, venue_type, address, city_id, description, admission_fee,
                        latitude, longitude, created_at)
    select i, 'Venue ' || i, (array['museum', 'music_venue', 'park', 'theatre'])[1 + i % 4],
           i || ' ' || md5('street' || i) || ' St', 1 + i % 60, repeat(md5('venue' || i), 2),
           i % 50 + 0.5, i % 120 - 60 + 0.123456, i % 340 - 170 + 0.654321,
           timestamptz '2025-08-05 12:00:00+00' + i * interval '1 minute'
    from generate_series(8, ${KILL_VENUES}) i;
    insert into events (id, title, description, start_date, end_date, start_time, event_type,
                        venue_id, url, price, created_at)
    select i, 'Event ' || i || ' ' || md5(i::text), repeat(md5('event' || i), 4),
           date '2025-10-01' + i % 200, date '2025-10-02' + i % 200,
           time '19:00' + (i % 8) * interval '15 minutes',
           (array['concert', 'exhibition', 'festival', 'tour', 'workshop'])[1 + i % 5],
           1 + i % ${KILL_VENUES}, 'https://example.org/events/' || i, i % 90 + 0.25,
           timestamptz '2025-09-01 00:00:00+00' + i * interval '1 minute'
    from generate_series(8, ${KILL_EVENTS}) i;
    reset search_path`);
}

/**
 * Changes the grown tables in `schema` as a day of edits would: a city renamed
 * (the `city_name` of every event in it), events edited, deleted and added.
 */
async function changeTables(sql: postgres.Sql, schema: string): Promise<void> {
  await sql.unsafe(`
    set search_path to "${schema}";
    update cities set name = 'City 5 (renamed)' where id = 5;
    update events set title = title || ' (moved)', price = price + 1 where id % 97 = 0;
    delete from events where id % 251 = 0;
    insert into events (id, title, start_date, event_type, venue_id, price, created_at)
    select i, 'Late event ' || i, date '2026-01-01' + i % 30, 'concert', 1 + i % 50, 12.5,
           '2025-12-01 00:00:00+00'
    from generate_series(${KILL_EVENTS + 1}, ${KILL_EVENTS + 60}) i;
    reset search_path`);
}

/** An export's text with its `metadata.generated_at` blanked: what does not depend on when it ran. */
function withoutGeneratedAt(text: string): string {
  return text.replace(/"generated_at": "[^"]*"/, '"generated_at": ""');
}

/**
 * Asserts that the events export `actual` holds what `expected` does, byte for byte
 * but for `metadata.generated_at`. Compact on failure: the metadata, the
 * statistics, the record count, then only the first record that differs.
 */
function assertSameExport(actual: string, expected: string, label: string): void {
  if (withoutGeneratedAt(actual) === withoutGeneratedAt(expected)) return;
  const [got, want] = [actual, expected].map((text) => JSON.parse(text) as Export);
  assert.deepEqual(
    { ...got.metadata, generated_at: undefined },
    { ...want.metadata, generated_at: undefined },
    `${label}: metadata`,
  );
  assert.ok(isDeepStrictEqual(got.statistics, want.statistics), `${label}: statistics differ`);
  const [records, wanted] = [got.events, want.events] as Row[][];
  assert.equal(records.length, wanted.length, `${label}: record count`);
  const at = records.findIndex((record, index) => !isDeepStrictEqual(record, wanted[index]));
  if (at >= 0) assert.deepEqual(records[at], wanted[at], `${label}: record ${at}`);
  assert.fail(`${label}: the same document, written differently`);
}

/** What {@linkcode watchExport} saw. */
/**
 * Looks at `data/events.json` and `data/backups/` under `dir` every few
 * milliseconds until the returned function is called (it resolves with what
 * was seen), while runs are started and killed. At every look the file must
 * be absent (only while there is no `old` export), byte for byte the `old`
 * export, or the complete new one (`expected`, but for `generated_at`): never
 * a truncated or half-written file. Every backup must be the complete `old`
 * export, and once the new file is there, its backup must be too.
 */
function watchExport(dir: string, old: string | null, expected: string): () => Promise<Watch> {
  const file = join(dir, "data/events.json");
  const wanted = withoutGeneratedAt(expected);

  /** Every backup of the file (not the temporary copies, whose names start with a dot). */
  async function backups(): Promise<string[]> {
    const names = (await listDir(join(dir, "data/backups")))
      .filter((name) => name.startsWith("events.json.backup."));
    return await Promise.all(
      names.map((name) => Deno.readTextFile(join(dir, "data/backups", name))),
    );
  }

  /** The file's state now; throws what is wrong. */
  async function look(): Promise<string> {
    let text: string | null = null;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    // Listed after the file is read: a backup made before the rename is seen here.
    const copies = await backups();
    if (copies.some((copy) => copy !== old)) {
      const sizes = copies.map((copy) => copy.length).join(", ");
      throw new Error(`a backup is not the old export (sizes ${sizes}, old ${old?.length})`);
    }
    if (text === null) {
      if (old !== null) throw new Error("the export is gone");
      return "absent";
    }
    if (text === old) return "old";
    if (withoutGeneratedAt(text) === wanted) {
      if (old !== null && copies.length === 0) {
        throw new Error("the new export is there, but no backup of the old one");
      }
      return "new";
    }
    let json = "valid JSON";
    try {
      JSON.parse(text);
    } catch {
      json = "not JSON";
    }
    throw new Error(
      `neither the old nor the new export: ${text.length} bytes (old ${old?.length}, new ${expected.length}), ${json}`,
    );
  }

  return watchWhile(look, 5);
}

/** What {@linkcode exportStopped} leaves for a test to check. */
interface StoppedExport<R> {
  /** What each phase's sweep returned (see killUntilDone). */
  sweeps: R[];
  /** The status of every run the stopped export's ledger holds, newest first. */
  statuses: string[];
}

/**
 * Exports the grown events table twice, a first export and one after a day of
 * changes: into a reference (its own schema and directory) by one run each,
 * and in `schema` through `stopRuns`, a sweep of runs stopped again and again
 * (see killUntilDone), with `data/events.json` and its backups watched
 * throughout ({@linkcode watchExport}). After each phase the stopped runs'
 * files must be the reference's: the same export (but for `generated_at`), no
 * temporary file left over, every backup the complete old export; and in the
 * end no dead letter open.
 */
async function exportStopped<R>(
  { url, sql, schema }: { url: string; sql: postgres.Sql; schema: string },
  stopRuns: (args: string[], options: CliOptions) => Promise<R>,
): Promise<StoppedExport<R>> {
  const config = "examples/events_export/events.json";
  const referenceSchema = await freshSchema(sql);
  const stopped = await setUp(sql, url, schema);
  const reference = await setUp(sql, url, referenceSchema);
  try {
    await growTables(sql, schema);
    await growTables(sql, referenceSchema);
    const sweeps: R[] = [];
    let old: string | null = null;
    for (const phase of ["first export", "after a change"]) {
      if (old !== null) {
        await changeTables(sql, schema);
        await changeTables(sql, referenceSchema);
      }
      // The reference: one run without interruption.
      const run = await reference.exportRun("events");
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        old === null ? new RegExp(`${KILL_EVENTS} created`) : /60 created, \d+ updated/,
      );
      const expected = await reference.text("events");

      // The same export, stopped again and again until a run ends by itself, watched throughout.
      const stop = watchExport(stopped.dir, old, expected);
      let watched: Watch;
      try {
        const args = ["run", config, "--no-progress"];
        sweeps.push(await stopRuns(args, { cwd: stopped.dir, env: stopped.env }));
      } finally {
        watched = await stop();
      }
      assert.equal(watched.problem, null, `${phase}: while the runs were stopped`);
      assert.ok(watched.looks >= 100, `${phase}: looked ${watched.looks} times`);
      const actual = await stopped.text("events");
      assertSameExport(actual, expected, phase);

      // The same files: no temporary file left over, every backup the complete old export.
      assert.deepEqual(
        await listDir(join(stopped.dir, "data")),
        await listDir(join(reference.dir, "data")),
        phase,
      );
      const backups = await stopped.backups();
      assert.equal(backups.length, (await reference.backups()).length, `${phase}: ${backups}`);
      for (const name of backups) {
        assert.equal(await Deno.readTextFile(join(stopped.dir, "data/backups", name)), old, name);
      }
      old = actual;
    }

    // Every record the stopped runs read was exported in the end: no dead letter stays open.
    const letters = await stopped.cli(["state", config, "deadletters"]);
    assert.equal(letters.code, 0, letters.stderr);
    assert.match(letters.stdout, /No open dead letters/);
    // Every run in the ledger, not only the 20 `state CONFIG runs` lists.
    const ledger = join(stopped.dir, "data/state/export-events.state.db");
    const store = StateStore.open(ledger, { readOnly: true });
    const statuses = store.listRuns(1_000).map((run) => run.status);
    store.close();
    return { sweeps, statuses };
  } finally {
    await stopped.cleanUp();
    await reference.cleanUp();
    await dropSchema(sql, referenceSchema);
  }
}

pgTest(
  "events_export: runs killed with SIGKILL at any moment and started again end with the files of one uninterrupted run, the export always whole",
  async (pg) => {
    const { sweeps: kills, statuses } = await exportStopped(
      pg,
      (args, options) => killUntilDone(args, options),
    );
    assert.ok(kills.every((n) => n >= 3), `killed ${kills.join(" and ")} times`);
    assert.ok(!statuses.includes("running"), statuses.join());
  },
);

pgTest(
  "events_export: runs stopped with SIGTERM at any moment exit 143 within 10 s and, started again, end with the files of one uninterrupted run, the export always whole",
  async (pg) => {
    // 40 ms steps: a run takes well under a second, a third of it Deno starting, so 60 ms steps
    // stopped only 4 to 6 runs of an export gracefully; 40 ms stop 7 to 10.
    const { sweeps, statuses } = await exportStopped(
      pg,
      (args, options) => killUntilDone(args, options, 40, "SIGTERM"),
    );
    const interrupted = sweeps.map((sweep) => sweep.interrupted);
    assert.ok(
      interrupted.every((n) => n >= 3),
      `stopped gracefully ${interrupted.join(" and ")} times`,
    );
    // Each graceful stop is in the ledger as an interrupted run; none was left running, killed
    // or failed.
    const count = (status: string) => statuses.filter((s) => s === status).length;
    assert.equal(count("interrupted"), interrupted[0] + interrupted[1], statuses.join());
    assert.ok(count("finished") >= 2, statuses.join());
    assert.equal(count("interrupted") + count("finished"), statuses.length, statuses.join());
  },
);
