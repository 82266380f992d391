/**
 * The database -> JSON files export (seed 001) end to end through the real
 * CLI and a real PostgreSQL: `examples/events_export/*.json` read the fixture
 * tables (`fixtures/events_db`) and write `data/<table>.json`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type postgres from "postgres";
import { ROOT, runCli } from "./cli.ts";
import { pgTest } from "./pg_env.ts";

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
  async function cli(args: string[]) {
    const result = await runCli([...args, "--no-progress"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl },
    });
    assert.doesNotMatch(result.stderr + result.stdout, new RegExp(PASSWORD));
    return result;
  }
  const run = (config: string) => cli(["run", config]);
  return {
    dir,
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
