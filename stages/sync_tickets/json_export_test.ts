import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { parseConfig } from "../../lib/config.ts";
import { runPipeline } from "../../lib/pipeline.ts";
import { Registry } from "../../lib/registry.ts";
import {
  defineStage,
  type Item,
  type Outcome,
  type RunOptions,
  type SyncResult,
} from "../../lib/stage.ts";
import { StateStore } from "../../lib/state.ts";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  result,
  testContext,
  withLogs,
} from "../../tests/harness.ts";
import { fileName, internals, stage } from "./json_export.ts";

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

const NOT_EXPORTED_PARTIAL =
  /^not exported: a replay or --limit run cannot write ".*venues\.json", which does not exist yet: run the export in full \(without --limit, not as a replay\)$/;

Deno.test("jsonExport() in a partial run with no old file writes nothing and fails its records", async () => {
  const h = await harness();
  try {
    // A --limit run (or a replay after a first export that never wrote the file) would write a
    // file holding only its own records, and say nothing.
    const out = await h.sync(venues(VENUES.slice(0, 2)), { partial: true }, WITH_FILES);
    assert.deepEqual(outcomes(out), ["failed", "failed"]);
    for (const r of out) assert.match(r.reason ?? "", NOT_EXPORTED_PARTIAL);
    await assert.rejects(Deno.stat(join(h.dir, "data")), Deno.errors.NotFound);

    // The same in plan mode: it shows what the run would do.
    const planned = await h.sync(venues(VENUES.slice(0, 2)), { partial: true, mode: "plan" });
    assert.deepEqual(outcomes(planned), ["failed", "failed"]);

    // Nothing to export (a replay with nothing to replay): no file either, nothing failed.
    assert.deepEqual(await h.sync([], { partial: true }), []);
    await assert.rejects(Deno.stat(h.file), Deno.errors.NotFound);

    // The full export writes every record.
    assert.deepEqual(outcomes(await h.sync(venues(), {}, WITH_FILES)), [
      "created",
      "created",
      "created",
    ]);
    assert.equal(JSON.parse(await Deno.readTextFile(h.file)).venues.length, 3);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() in a partial run leaves an old file that is not a readable export alone", async () => {
  const h = await harness();
  try {
    await Deno.mkdir(join(h.dir, "data"));
    for (
      const [text, problem] of [
        ["{ truncated", /not valid JSON: /],
        ['{ "metadata": {}, "records": [] }', /no "venues" list of records/],
      ] as const
    ) {
      await Deno.writeTextFile(h.file, text);
      const out = await h.sync(venues(VENUES.slice(0, 1)), { partial: true });
      assert.deepEqual(outcomes(out), ["failed"]);
      assert.match(
        out[0].reason ?? "",
        /^not exported: a replay or --limit run cannot write ".*venues\.json", which is not a readable export \(.*\): run the export in full/,
      );
      assert.match(out[0].reason ?? "", problem);
      assert.equal(await Deno.readTextFile(h.file), text);
    }
    // A full run replaces it, saying so (the old file is backed up first).
    await withLogs(async (lines) => {
      assert.deepEqual(outcomes(await h.sync(venues())), ["created", "created", "created"]);
      assert.ok(
        lines.some((line) =>
          /The existing .*venues\.json is not a readable export \(no "venues" list of records\): it will be replaced/
            .test(line)
        ),
        lines.join("\n"),
      );
    });
    assert.equal(JSON.parse(await Deno.readTextFile(h.file)).venues.length, 3);
    assert.equal((await h.backups()).length, 1);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() interrupted before writing fails its records; the next run writes the whole file", async () => {
  const h = await harness();
  try {
    const { ctx, controller } = testContext({ cwd: h.dir, clock: h.clock });
    const sink = await createStage(stage, CONFIG, ctx);
    controller.abort("SIGTERM");
    const out = await collect(sink.sync(fromArray(venues(VENUES.slice(0, 2)))));
    assert.deepEqual(outcomes(out), ["failed", "failed"]);
    assert.match(
      out[0].reason ?? "",
      /^not exported: the run was interrupted before ".*venues\.json" was written \(the next run writes it\)$/,
    );
    await assert.rejects(Deno.stat(h.file), Deno.errors.NotFound);
    assert.deepEqual(outcomes(await h.sync(venues())), ["created", "created", "created"]);
    assert.equal(JSON.parse(await Deno.readTextFile(h.file)).venues.length, 3);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

// Through the runner and a real ledger: what is dead-lettered, and what resolves it.
let interrupt: { controller: AbortController; at: number } | null = null;
const registry = new Registry([
  defineStage({
    kind: "read",
    name: "inline",
    summary: "Yields the records given in config; aborts `interrupt` on reaching its index.",
    config: z.object({ records: z.array(z.record(z.string(), z.unknown())).describe("Records.") })
      .strict(),
    create: (config) => ({
      async *read() {
        for (const [index, data] of config.records.entries()) {
          if (interrupt && index === interrupt.at) interrupt.controller.abort("SIGTERM");
          const origin = { source: "inline", position: `index ${index}` };
          yield { key: String(data.id), data, origin } as Item;
        }
      },
    }),
  }),
  stage,
]);

Deno.test("jsonExport() through the runner: an interrupted first export, a replay, then a full run", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "venues.json");
  const statePath = join(dir, "t.state.db");
  const config = parseConfig(
    JSON.stringify({
      name: "t",
      key: "id",
      state: { path: statePath },
      stages: [
        { use: "read.inline", records: VENUES },
        { use: "sync-tickets.json_export", path: file, recordsKey: "venues" },
      ],
    }),
    "t.json",
    { registry, env: {} },
  );
  const openLetters = () => {
    const store = StateStore.open(statePath, { readOnly: true });
    try {
      return store.listDeadLetters().map((letter) => `${letter.key}: ${letter.reason}`);
    } finally {
      store.close();
    }
  };
  try {
    // SIGTERM after two records: they fail (the ledger must not claim them), nothing is written.
    const controller = new AbortController();
    interrupt = { controller, at: 2 };
    const stopped = await runPipeline({ config, mode: "run", signal: controller.signal, cwd: dir });
    interrupt = null;
    assert.equal(stopped.exitCode, 143);
    assert.equal(stopped.outcomes.failed, 2);
    await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
    assert.equal(openLetters().length, 2);
    for (const letter of openLetters()) assert.match(letter, /the run was interrupted/);

    // The replay the summary suggests cannot write a file of two venues out of three.
    const replay = await runPipeline({ config, mode: "run", replay: true, cwd: dir });
    assert.equal(replay.exitCode, 4);
    assert.equal(replay.outcomes.failed, 2);
    await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
    assert.deepEqual(openLetters().map((letter) => letter.slice(0, 3)), ["1: ", "2: "]);
    for (const letter of openLetters()) assert.match(letter, /which does not exist yet/);

    // The full run writes every venue and resolves the letters (by key).
    const full = await runPipeline({ config, mode: "run", cwd: dir });
    assert.equal(full.exitCode, 0);
    assert.equal(full.outcomes.created, 3);
    const document = JSON.parse(await Deno.readTextFile(file));
    assert.deepEqual(document.venues.map((v: { id: number }) => v.id), [1, 2, 3]);
    assert.deepEqual(openLetters(), []);
  } finally {
    interrupt = null;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("jsonExport() a backup copy failing half-way leaves no file in the backup directory", async () => {
  const h = await harness();
  const copyFile = internals.copyFile;
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    // As a full disk would: half the bytes written, then an error.
    internals.copyFile = async (from, to) => {
      const bytes = await Deno.readFile(from);
      await Deno.writeFile(to, bytes.subarray(0, bytes.length >> 1));
      throw new Error("No space left on device (os error 28)");
    };
    const out = await h.sync(venues([{ ...VENUES[0], name: "Renamed" }, VENUES[1], VENUES[2]]));
    assert.deepEqual(outcomes(out), ["failed", "failed", "failed"]);
    assert.match(
      out[0].reason ?? "",
      /^Cannot write ".*venues\.json": No space left on device \(os error 28\) \(the file was left as it was\)$/,
    );
    assert.equal(await Deno.readTextFile(h.file), original);
    assert.deepEqual(await h.backups(), [], "no partial backup, no temporary file");
    assert.deepEqual(await listDir(join(h.dir, "data")), ["backups", "venues.json"]);

    // Space again: the next run backs up the whole old file and writes the change.
    internals.copyFile = copyFile;
    const fixed = await h.sync(venues([{ ...VENUES[0], name: "Renamed" }, VENUES[1], VENUES[2]]));
    assert.deepEqual(outcomes(fixed), ["updated", "unchanged", "unchanged"]);
    const backups = await h.backups();
    assert.deepEqual(backups, ["venues.json.backup.20250918_184658"]);
    assert.equal(await Deno.readTextFile(join(h.dir, "data/backups", backups[0])), original);
  } finally {
    internals.copyFile = copyFile;
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() a backup name taken already gets the next suffix, and is left as it was", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    await Deno.mkdir(join(h.dir, "data/backups"));
    for (
      const name of ["venues.json.backup.20250918_184658", "venues.json.backup.20250918_184658_1"]
    ) {
      await Deno.writeTextFile(join(h.dir, "data/backups", name), "older");
    }
    await h.sync(venues(VENUES.slice(0, 2)));
    assert.deepEqual(await h.backups(), [
      "venues.json.backup.20250918_184658",
      "venues.json.backup.20250918_184658_1",
      "venues.json.backup.20250918_184658_2",
    ]);
    const read = (name: string) => Deno.readTextFile(join(h.dir, "data/backups", name));
    assert.equal(await read("venues.json.backup.20250918_184658"), "older");
    assert.equal(await read("venues.json.backup.20250918_184658_1"), "older");
    assert.equal(await read("venues.json.backup.20250918_184658_2"), original);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() says which records of the old file leave it", async () => {
  const h = await harness();
  try {
    const many = Array.from({ length: 9 }, (_, i) => ({
      id: i + 1,
      name: `Venue ${i + 1}`,
      venue_type: "bar",
      city_name: "Baltimore",
    }));
    await h.sync(venues(many));
    const removedLine = (lines: string[]) =>
      lines.filter((line) => line.includes("are not in this run's input"));
    await withLogs(async (lines) => {
      // Deleted at the source: the summary would say "2 unchanged" and nothing else.
      const plan = await h.sync(venues(many.slice(0, 2)), { mode: "plan" });
      assert.deepEqual(outcomes(plan), ["unchanged", "unchanged"]);
      assert.deepEqual(removedLine(lines), [
        `7 records of the old ${h.file} are not in this run's input and would leave the file: 3, 4, 5, 6, 7 and 2 more`,
      ]);
      lines.length = 0;

      // A partial run keeps them; an unchanged run rewrites nothing: no line.
      await h.sync(venues(many.slice(0, 2)), { partial: true });
      await h.sync(venues(many));
      assert.deepEqual(removedLine(lines), []);

      const out = await h.sync(venues(many.filter((_, i) => i % 2 === 0)));
      assert.deepEqual(outcomes(out), Array(5).fill("unchanged"));
      assert.deepEqual(removedLine(lines), [
        `4 records of the old ${h.file} are not in this run's input and leave the file: 2, 4, 6, 8`,
      ]);
      assert.equal(JSON.parse(await Deno.readTextFile(h.file)).venues.length, 5);
    });
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() on a filesystem without hard links backs up by claiming the name, then renaming", async () => {
  const h = await harness();
  const link = internals.link;
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    await Deno.mkdir(join(h.dir, "data/backups"));
    await Deno.writeTextFile(
      join(h.dir, "data/backups/venues.json.backup.20250918_184658"),
      "older",
    );
    internals.link = () => Promise.reject(new Deno.errors.NotSupported("Operation not supported"));
    const out = await h.sync(venues(VENUES.slice(0, 2)));
    assert.deepEqual(outcomes(out), ["unchanged", "unchanged"]);
    assert.deepEqual(await h.backups(), [
      "venues.json.backup.20250918_184658",
      "venues.json.backup.20250918_184658_1",
    ]);
    assert.equal(
      await Deno.readTextFile(join(h.dir, "data/backups/venues.json.backup.20250918_184658")),
      "older",
      "an existing backup is never overwritten",
    );
    assert.equal(
      await Deno.readTextFile(join(h.dir, "data/backups/venues.json.backup.20250918_184658_1")),
      original,
    );
  } finally {
    internals.link = link;
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() after a run killed between its backup and its rename: its temporary files go, the backup is not made twice", async () => {
  const h = await harness();
  try {
    await h.sync(venues());
    const original = await Deno.readTextFile(h.file);
    // What a run SIGKILLed just before its rename leaves: the backup (made in the same second),
    // the new file half-written under a temporary name, a backup copy's temporary file.
    await Deno.mkdir(join(h.dir, "data/backups"));
    await Deno.writeTextFile(
      join(h.dir, "data/backups/venues.json.backup.20250918_184658"),
      original,
    );
    await Deno.writeTextFile(join(h.dir, "data/.venues.json.0badf00d.tmp"), '{"metadata": {');
    await Deno.writeTextFile(join(h.dir, "data/backups/.venues.json.1234abcd.tmp"), "{");
    // Another export's write in progress in the same directories is left alone.
    await Deno.writeTextFile(join(h.dir, "data/.cities.json.0badf00d.tmp"), "{");
    await Deno.writeTextFile(join(h.dir, "data/backups/.cities.json.1234abcd.tmp"), "{");

    const changed = venues([{ ...VENUES[0], name: "Renamed" }, VENUES[1], VENUES[2]]);
    await withLogs(async (lines) => {
      const out = await h.sync(changed);
      assert.deepEqual(outcomes(out), ["updated", "unchanged", "unchanged"]);
      assert.ok(
        lines.includes(`Removed 2 temporary files left by interrupted writes of ${h.file}`),
        lines.join("\n"),
      );
    });
    assert.equal(JSON.parse(await Deno.readTextFile(h.file)).venues[2].name, "Renamed");
    assert.deepEqual(await listDir(join(h.dir, "data")), [
      ".cities.json.0badf00d.tmp",
      "backups",
      "venues.json",
    ]);
    assert.deepEqual(
      await h.backups(),
      [".cities.json.1234abcd.tmp", "venues.json.backup.20250918_184658"],
      "the old file is backed up already: no copy of it as venues.json.backup.20250918_184658_1",
    );

    // The next change backs up the file the killed run could not replace: a new backup.
    const renamed = await Deno.readTextFile(h.file);
    await h.sync(venues([{ ...VENUES[0], name: "Renamed again" }, VENUES[1], VENUES[2]]));
    assert.deepEqual((await h.backups()).slice(1), [
      "venues.json.backup.20250918_184658",
      "venues.json.backup.20250918_184658_1",
    ]);
    assert.equal(
      await Deno.readTextFile(join(h.dir, "data/backups/venues.json.backup.20250918_184658_1")),
      renamed,
    );
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() after runs killed writing record files: their temporary files go, other files of the shared directory stay", async () => {
  const h = await harness();
  try {
    await h.sync(venues(), {}, WITH_FILES);
    const individual = join(h.dir, "data/individual");
    // What runs SIGKILLed mid-write leave: a record file's temporary (one per kill), also of a
    // name the record no longer has (venue 2 is renamed before the next run).
    const leftovers = [
      ".1_Zeppelin Hall.json.0badf00d.tmp",
      ".1_Zeppelin Hall.json.1234abcd.tmp",
      ".2_Anthem.json.cafe0001.tmp",
    ];
    // The directory is shared: another writer's files and temporaries, one of them shaped like
    // this export's names, are not this export's to remove.
    const others = [
      ".9_Not a venue here.json.0badf00d.tmp",
      ".notes.txt.0badf00d.tmp",
      "9_Not a venue here.json",
      "notes.txt",
    ];
    for (const name of [...leftovers, ...others]) {
      await Deno.writeTextFile(join(individual, name), '{"id": ');
    }

    const renamed = [VENUES[0], { ...VENUES[1], name: "The Anthem" }, VENUES[2]];
    await withLogs(async (lines) => {
      const out = await h.sync(venues(renamed), {}, WITH_FILES);
      assert.deepEqual(outcomes(out), ["unchanged", "updated", "unchanged"]);
      assert.ok(
        lines.includes(
          `Removed 3 temporary files left by interrupted writes in ${individual}`,
        ),
        lines.join("\n"),
      );
    });
    assert.deepEqual(await listDir(individual), [
      ...others.slice(0, 2),
      "1_Zeppelin Hall.json",
      "2_Anthem.json",
      "2_The Anthem.json",
      "3_Ottobar.json",
      ...others.slice(2),
    ]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() writes a lost metadata file with the generated_at of the file it describes", async () => {
  const h = await harness();
  try {
    await h.sync(venues(), {}, WITH_FILES);
    const main = JSON.parse(await Deno.readTextFile(h.file));
    // As a run killed between the rename of the file and the write of the metadata leaves it.
    await Deno.remove(join(h.dir, "data/metadata.json"));
    h.clock.instant = Temporal.Instant.from("2025-09-19T00:00:00Z");
    const out = await h.sync(venues(), {}, WITH_FILES);
    assert.deepEqual(outcomes(out), ["unchanged", "unchanged", "unchanged"]);
    assert.equal(
      JSON.parse(await Deno.readTextFile(h.file)).metadata.generated_at,
      "2025-09-18T18:46:58.25Z",
    );
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(h.dir, "data/metadata.json"))), {
      metadata: main.metadata,
      statistics: main.statistics,
    });
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("jsonExport() rewrites the metadata file when only the file's generated_at is new", async () => {
  const h = await harness();
  try {
    await h.sync(venues(), {}, WITH_FILES);
    // A field no statistic counts: the file is rewritten, its metadata and statistics are alike
    // but for generated_at, which the metadata file must follow.
    h.clock.instant = Temporal.Instant.from("2025-09-19T00:00:00Z");
    const changed = [{ ...VENUES[0], capacity: 900 }, VENUES[1], VENUES[2]];
    assert.deepEqual(outcomes(await h.sync(venues(changed), {}, WITH_FILES)), [
      "updated",
      "unchanged",
      "unchanged",
    ]);
    const main = JSON.parse(await Deno.readTextFile(h.file));
    assert.equal(main.metadata.generated_at, "2025-09-19T00:00:00Z");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(h.dir, "data/metadata.json"))), {
      metadata: main.metadata,
      statistics: main.statistics,
    });
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});
