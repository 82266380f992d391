import assert from "node:assert/strict";
import { join } from "node:path";
import type { Outcome, RunOptions, SyncResult } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  result,
  testContext,
} from "../../tests/harness.ts";
import { fileName, stage } from "./json_export.ts";

const CONFIG = {
  path: "data/venues.json",
  statsFields: ["venue_type", "city_name"],
  sortBy: "name",
  recordsKey: "venues",
};

const VENUES = [
  { id: 1, name: "Zeppelin Hall", venue_type: "bar", city_name: "Baltimore" },
  { id: 2, name: "Anthem", venue_type: "club", city_name: "Washington" },
  { id: 3, name: "Ottobar", venue_type: "bar", city_name: "Baltimore" },
];

function venues(list = VENUES): SyncResult[] {
  return list.map((venue) => result(item(String(venue.id), venue)));
}

interface Harness {
  dir: string;
  file: string;
  clock: FixedClock;
  sync(
    results: SyncResult[],
    options?: Partial<RunOptions>,
    config?: Record<string, unknown>,
  ): Promise<SyncResult[]>;
  backups(): Promise<string[]>;
}

async function harness(): Promise<Harness> {
  const dir = await Deno.makeTempDir();
  const clock = new FixedClock(Temporal.Instant.from("2025-09-18T18:46:58.250Z"));
  return {
    dir,
    file: join(dir, "data/venues.json"),
    clock,
    async sync(results, options = {}, config = CONFIG) {
      const { ctx } = testContext({ cwd: dir, clock, options });
      const sink = await createStage(stage, config, ctx);
      return await collect(sink.sync(fromArray(results)));
    },
    async backups() {
      const names: string[] = [];
      try {
        for await (const entry of Deno.readDir(join(dir, "data/backups"))) names.push(entry.name);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      return names.sort();
    },
  };
}

function outcomes(results: SyncResult[]): (Outcome | null)[] {
  return results.map((r) => r.outcome);
}

Deno.test("jsonExport() writes metadata, statistics and sorted records", async () => {
  const h = await harness();
  try {
    const out = await h.sync(venues());
    assert.deepEqual(outcomes(out), ["created", "created", "created"]);
    assert.deepEqual(out.map((r) => r.remoteId), ["1", "2", "3"]);
    const text = await Deno.readTextFile(h.file);
    const document = JSON.parse(text);
    assert.deepEqual(document, {
      metadata: {
        version: "1.0",
        generated_at: "2025-09-18T18:46:58.25Z",
        total_count: 3,
        source: "test",
      },
      statistics: {
        venue_type: { bar: 2, club: 1 },
        city_name: { Baltimore: 2, Washington: 1 },
      },
      venues: [VENUES[1], VENUES[2], VENUES[0]],
    });
    // The streamed text is exactly what JSON.stringify would produce.
    assert.equal(text, JSON.stringify(document, null, 2) + "\n");
    assert.deepEqual(await h.backups(), []);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() leaves an up-to-date file alone: no rewrite, no backup", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const before = await Deno.readTextFile(h.file);
    const mtime = (await Deno.stat(h.file)).mtime?.getTime();
    h.clock.instant = Temporal.Instant.from("2025-09-19T00:00:00Z");
    // Input order does not matter: records are sorted.
    const out = await h.sync(venues([...VENUES].reverse()));
    assert.deepEqual(outcomes(out), ["unchanged", "unchanged", "unchanged"]);
    assert.equal(await Deno.readTextFile(h.file), before);
    assert.equal((await Deno.stat(h.file)).mtime?.getTime(), mtime);
    assert.deepEqual(await h.backups(), []);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() backs up the old file before overwriting it", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    h.clock.instant = Temporal.Instant.from("2025-09-18T18:48:08Z");
    const changed = [{ ...VENUES[0], venue_type: "hall" }, VENUES[1], {
      id: 4,
      name: "Metro Gallery",
      venue_type: "club",
      city_name: "Baltimore",
    }];
    const out = await h.sync(venues(changed));
    assert.deepEqual(outcomes(out), ["updated", "unchanged", "created"]);
    assert.deepEqual(await h.backups(), ["venues.json.backup.20250918_184808"]);
    assert.equal(
      await Deno.readTextFile(join(h.dir, "data/backups/venues.json.backup.20250918_184808")),
      original,
    );
    const document = JSON.parse(await Deno.readTextFile(h.file));
    assert.equal(document.metadata.total_count, 3);
    assert.equal(document.metadata.generated_at, "2025-09-18T18:48:08Z");
    assert.deepEqual(document.statistics.venue_type, { club: 2, hall: 1 });
    assert.deepEqual(document.venues.map((v: { id: number }) => v.id), [2, 4, 1]);

    // A second change in the same second never overwrites the first backup.
    await h.sync(venues(VENUES));
    assert.deepEqual(await h.backups(), [
      "venues.json.backup.20250918_184808",
      "venues.json.backup.20250918_184808_1",
    ]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() keeps the original file when the write fails", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    // The backup directory cannot be created: a file is in the way.
    await Deno.writeTextFile(join(h.dir, "blocker"), "");
    const out = await h.sync(venues([{ ...VENUES[0], name: "Renamed" }]), {}, {
      ...CONFIG,
      backupDir: "blocker/backups",
    });
    assert.deepEqual(outcomes(out), ["failed"]);
    assert.match(
      out[0].reason ?? "",
      /^Cannot write ".*venues\.json": .*\(the file was left as it was\)$/,
    );
    assert.equal(await Deno.readTextFile(h.file), original);
    const leftovers = [];
    for await (const entry of Deno.readDir(join(h.dir, "data"))) leftovers.push(entry.name);
    assert.deepEqual(leftovers, ["venues.json"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() keeps the old version of a record that failed upstream", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const input = venues([{ ...VENUES[0], name: "Changed" }, VENUES[1], VENUES[2]]);
    input[0].outcome = "failed";
    input[0].reason = "HTTP 500";
    const out = await h.sync(input);
    assert.deepEqual(outcomes(out), ["failed", "unchanged", "unchanged"]);
    assert.equal(out[0].reason, "HTTP 500");
    const document = JSON.parse(await Deno.readTextFile(h.file));
    assert.deepEqual(document.venues.find((v: { id: number }) => v.id === 1), VENUES[0]);
    assert.deepEqual(await h.backups(), []);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() plan mode reports changes without writing", async () => {
  const h = await harness();
  try {
    const first = await h.sync(venues(), { mode: "plan" });
    assert.deepEqual(outcomes(first), ["created", "created", "created"]);
    await assert.rejects(Deno.stat(h.file), Deno.errors.NotFound);

    await h.sync(venues());
    const before = await Deno.readTextFile(h.file);
    const out = await h.sync(venues([{ ...VENUES[0], venue_type: "hall" }, VENUES[1]]), {
      mode: "plan",
    });
    assert.deepEqual(outcomes(out), ["updated", "unchanged"]);
    assert.deepEqual(out[0].changes, [{ path: "venue_type", before: "bar", after: "hall" }]);
    assert.equal(await Deno.readTextFile(h.file), before);
    assert.deepEqual(await h.backups(), []);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() config: a records key that clashes with a section, a file name without a field", () => {
  assert.deepEqual(configProblems(stage, { path: "x.json", recordsKey: "metadata" }), [
    'stages[1].recordsKey: expected a name other than the file\'s own sections "metadata" and "statistics", got "metadata"',
  ]);
  assert.deepEqual(
    configProblems(stage, { path: "x.json", individual: { dir: "d", name: "ticket.json" } }),
    [
      'stages[1].individual.name: expected a template with at least one {field} (every record would get one file), got "ticket.json"',
    ],
  );
});

const WITH_FILES = {
  ...CONFIG,
  metadataPath: "data/metadata.json",
  individual: { dir: "data/individual", name: "{id}_{name}.json" },
};

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

Deno.test("jsonExport() also writes the metadata file and one file per record", async () => {
  const h = await harness();
  try {
    const out = await h.sync(venues(), {}, WITH_FILES);
    assert.deepEqual(outcomes(out), ["created", "created", "created"]);
    const individual = join(h.dir, "data/individual");
    assert.deepEqual(await listDir(individual), [
      "1_Zeppelin Hall.json",
      "2_Anthem.json",
      "3_Ottobar.json",
    ]);
    assert.equal(
      await Deno.readTextFile(join(individual, "2_Anthem.json")),
      JSON.stringify(VENUES[1], null, 2) + "\n",
    );
    const main = JSON.parse(await Deno.readTextFile(h.file));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(h.dir, "data/metadata.json"))), {
      metadata: main.metadata,
      statistics: main.statistics,
    });

    // Unchanged: nothing is rewritten, not even the metadata's generated_at.
    const metadataBefore = await Deno.readTextFile(join(h.dir, "data/metadata.json"));
    const mtime = (await Deno.stat(join(individual, "1_Zeppelin Hall.json"))).mtime?.getTime();
    h.clock.instant = Temporal.Instant.from("2025-09-19T00:00:00Z");
    assert.deepEqual(outcomes(await h.sync(venues(), {}, WITH_FILES)), [
      "unchanged",
      "unchanged",
      "unchanged",
    ]);
    assert.equal(await Deno.readTextFile(join(h.dir, "data/metadata.json")), metadataBefore);
    assert.equal(
      (await Deno.stat(join(individual, "1_Zeppelin Hall.json"))).mtime?.getTime(),
      mtime,
    );

    // A record file lost (deleted, or a run killed before writing it) comes back; a changed
    // record rewrites its own file, and the metadata follows the main file.
    await Deno.remove(join(individual, "3_Ottobar.json"));
    const changed = [{ ...VENUES[0], venue_type: "hall" }, VENUES[1], VENUES[2]];
    assert.deepEqual(outcomes(await h.sync(venues(changed), {}, WITH_FILES)), [
      "updated",
      "unchanged",
      "unchanged",
    ]);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(individual, "1_Zeppelin Hall.json"))),
      changed[0],
    );
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(individual, "3_Ottobar.json"))),
      VENUES[2],
    );
    const metadata = JSON.parse(await Deno.readTextFile(join(h.dir, "data/metadata.json")));
    assert.equal(metadata.metadata.generated_at, "2025-09-19T00:00:00Z");
    assert.deepEqual(metadata.statistics.venue_type, { bar: 1, club: 1, hall: 1 });
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() fails a record whose file name is unusable or taken", async () => {
  const h = await harness();
  try {
    const list = [
      { id: 1, name: "AC/DC Hall", venue_type: "bar", city_name: "Baltimore" },
      { id: 2, name: "Twin", venue_type: "bar", city_name: "Baltimore" },
      { id: 3, name: "Twin", venue_type: "club", city_name: "Washington" },
      { id: 4, name: "", venue_type: "club", city_name: "Washington" },
    ];
    const out = await h.sync(venues(list), {}, {
      ...CONFIG,
      sortBy: "key",
      individual: { dir: "data/individual", name: "{name}" },
    });
    assert.deepEqual(outcomes(out), ["created", "created", "failed", "failed"]);
    assert.equal(out[2].reason, `individual file: "Twin" is already record "2"'s file`);
    assert.equal(out[3].reason, "individual file: the name template gives no usable file name");
    assert.deepEqual(await listDir(join(h.dir, "data/individual")), ["AC_DC Hall", "Twin"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() plan mode writes no metadata or record file", async () => {
  const h = await harness();
  try {
    await h.sync(venues(), { mode: "plan" }, WITH_FILES);
    await assert.rejects(Deno.stat(join(h.dir, "data")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("fileName() keeps one path segment", () => {
  assert.equal(fileName("HYgzx3nvev_Paddy McCann.json"), "HYgzx3nvev_Paddy McCann.json");
  assert.equal(fileName("../../etc/passwd"), ".._.._etc_passwd");
  assert.equal(fileName("a\\b\nc\u0000d"), "a_b_c_d");
  assert.equal(fileName("  spaced.json "), "spaced.json");
  assert.equal(fileName(""), null);
  assert.equal(fileName(".."), null);
  assert.equal(fileName(".json"), null);
});

Deno.test("jsonExport() in a partial run (--limit, replay) keeps the records it did not see", async () => {
  const h = await harness();
  try {
    await h.sync(venues(VENUES.slice(0, 2)));
    const added = { id: 4, name: "Metro Gallery", venue_type: "club", city_name: "Baltimore" };
    const changed = { ...VENUES[1], venue_type: "hall" };
    const out = await h.sync(venues([changed, added]), { partial: true });
    assert.deepEqual(outcomes(out), ["updated", "created"]);
    const document = JSON.parse(await Deno.readTextFile(h.file));
    assert.deepEqual(document.venues, [changed, added, VENUES[0]]);
    assert.equal(document.metadata.total_count, 3);

    // A full run is the whole input: a record it does not see leaves the file.
    await h.sync(venues([added]));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(h.file)).venues, [added]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});
