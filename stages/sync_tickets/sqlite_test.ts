import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { RunOptions, SyncResult } from "../../lib/stage.ts";
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
import { stage } from "./sqlite.ts";

const CONFIG = {
  path: "db/tickets.db",
  columns: {
    ticket_number: { type: "text" },
    city: { from: "location.city", type: "text" },
    priority: { type: "integer" },
    emergency: { type: "boolean" },
  },
};

const T1 = { ticket_number: "2501", location: { city: "Austin" }, priority: 2, emergency: false };
const T2 = { ticket_number: "2502", location: { city: "Waco" }, priority: "3", emergency: "yes" };

interface Harness {
  dir: string;
  clock: FixedClock;
  sync(
    results: SyncResult[],
    options?: Partial<RunOptions>,
    config?: Record<string, unknown>,
  ): Promise<SyncResult[]>;
  rows(): Record<string, unknown>[];
}

async function harness(): Promise<Harness> {
  const dir = await Deno.makeTempDir();
  const clock = new FixedClock(Temporal.Instant.from("2026-01-01T00:00:00Z"));
  return {
    dir,
    clock,
    async sync(results, options = {}, config = CONFIG) {
      const { ctx } = testContext({ cwd: dir, clock, options });
      const sink = await createStage(stage, config, ctx);
      try {
        return await collect(sink.sync(fromArray(results)));
      } finally {
        await sink.close?.();
      }
    },
    rows() {
      const db = new DatabaseSync(join(dir, "db/tickets.db"));
      try {
        return db.prepare(`SELECT * FROM tickets ORDER BY key`).all().map((row) => ({ ...row }));
      } finally {
        db.close();
      }
    },
  };
}

function outcomes(results: SyncResult[]): Record<string, string | null> {
  return Object.fromEntries(results.map((r) => [r.item.key, r.outcome]));
}

/** A result whose ledger says it was synced with the same content. */
function synced(key: string, data: Record<string, unknown>): SyncResult {
  const fresh = result(item(key, data));
  return result(item(key, data), { hash: fresh.hash, lastOutcome: "created" });
}

Deno.test("syncTicketsSqlite() creates the table and inserts typed rows", async () => {
  const h = await harness();
  try {
    const out = await h.sync([result(item("2501", T1)), result(item("2502", T2))]);
    assert.deepEqual(outcomes(out), { "2501": "created", "2502": "created" });
    assert.deepEqual(out.map((r) => r.remoteId), ["2501", "2502"]);
    const rows = h.rows();
    assert.equal(rows.length, 2);
    assert.deepEqual(
      { ...rows[1], raw: JSON.parse(String(rows[1].raw)) },
      {
        key: "2502",
        ticket_number: "2502",
        city: "Waco",
        priority: 3,
        emergency: 1,
        raw: T2,
        content_hash: out[1].hash,
        first_synced_at: "2026-01-01T00:00:00Z",
        synced_at: "2026-01-01T00:00:00Z",
      },
    );
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() leaves rows alone when the ledger hash is equal", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1))]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const out = await h.sync([synced("2501", T1)]);
    assert.deepEqual(outcomes(out), { "2501": "unchanged" });
    assert.equal(out[0].remoteId, "2501");
    assert.equal(h.rows()[0].synced_at, "2026-01-01T00:00:00Z");
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() updates a changed record and keeps first_synced_at", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1))]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const changed = { ...T1, priority: 1 };
    const out = await h.sync([
      result(item("2501", changed), { hash: "old", lastOutcome: "created" }),
    ]);
    assert.deepEqual(outcomes(out), { "2501": "updated" });
    const [row] = h.rows();
    assert.equal(row.priority, 1);
    assert.deepEqual(JSON.parse(String(row.raw)), changed);
    assert.equal(row.first_synced_at, "2026-01-01T00:00:00Z");
    assert.equal(row.synced_at, "2026-01-02T00:00:00Z");
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() rewrites every row with --full", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1))]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const out = await h.sync([synced("2501", T1)], { full: true });
    assert.deepEqual(outcomes(out), { "2501": "updated" });
    assert.equal(h.rows()[0].synced_at, "2026-01-02T00:00:00Z");
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() finds unchanged rows by content_hash when the ledger is lost", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1)), result(item("2502", T2))]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const changed = { ...T2, location: { city: "Dallas" } };
    const out = await h.sync([result(item("2501", T1)), result(item("2502", changed))]);
    assert.deepEqual(outcomes(out), { "2501": "unchanged", "2502": "updated" });
    const rows = h.rows();
    assert.equal(rows[0].synced_at, "2026-01-01T00:00:00Z");
    assert.equal(rows[1].synced_at, "2026-01-02T00:00:00Z");
    assert.equal(rows[1].city, "Dallas");
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() passes failed and skipped results through untouched", async () => {
  const h = await harness();
  try {
    const failed: SyncResult = {
      ...result(item("2501", T1)),
      outcome: "failed",
      reason: "HTTP 422",
    };
    const skipped: SyncResult = { ...result(item("2502", T2)), outcome: "skipped", reason: "test" };
    const out = await h.sync([failed, skipped, result(item("2503", T1))]);
    assert.deepEqual(outcomes(out), { "2501": "failed", "2502": "skipped", "2503": "created" });
    assert.equal(out[0].reason, "HTTP 422");
    assert.equal(out[0].remoteId, undefined);
    assert.deepEqual(h.rows().map((row) => row.key), ["2503"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() fails only the record a constraint or type rejects", async () => {
  const h = await harness();
  try {
    await Deno.mkdir(join(h.dir, "db"));
    const db = new DatabaseSync(join(h.dir, "db/tickets.db"));
    db.exec(`CREATE TABLE tickets (key TEXT PRIMARY KEY, ticket_number TEXT NOT NULL)`);
    db.close();
    const out = await h.sync([
      result(item("a", T1)),
      result(item("b", { ...T1, ticket_number: null })),
      result(item("c", { ...T1, priority: "high" })),
    ]);
    assert.deepEqual(outcomes(out), { a: "created", b: "failed", c: "failed" });
    assert.match(
      out[1].reason ?? "",
      /^Cannot upsert into table "tickets": NOT NULL constraint failed/,
    );
    assert.equal(
      out[2].reason,
      'Cannot store field "priority" in column "priority": expected an integer, got "high"',
    );
    // Missing columns were added to the existing table.
    const rows = h.rows();
    assert.deepEqual(rows.map((row) => row.key), ["a"]);
    assert.equal(rows[0].city, "Austin");
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() yields each batch only after its commit", async () => {
  const h = await harness();
  const { ctx } = testContext({ cwd: h.dir, clock: h.clock });
  const sink = await createStage(stage, { ...CONFIG, batchSize: 2 }, ctx);
  try {
    const input = ["1", "2", "3", "4", "5"].map((key) => result(item(key, { ...T1, n: key })));
    const iterator = sink.sync(fromArray(input))[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.value.item.key, "1");
    assert.equal(h.rows().length, 2);
    const rest = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      rest.push(next.value.item.key);
    }
    assert.deepEqual(rest, ["2", "3", "4", "5"]);
    assert.equal(h.rows().length, 5);
  } finally {
    await sink.close?.();
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() plan mode writes nothing and lists changes", async () => {
  const h = await harness();
  try {
    // No file yet: everything would be created, and no file appears.
    const none = await h.sync([result(item("2501", T1))], { mode: "plan" });
    assert.deepEqual(outcomes(none), { "2501": "created" });
    await assert.rejects(Deno.stat(join(h.dir, "db/tickets.db")), Deno.errors.NotFound);

    await h.sync([result(item("2501", T1)), result(item("2502", T2))]);
    const file = join(h.dir, "db/tickets.db");
    const before = await Deno.stat(file);
    const rowsBefore = h.rows();
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const out = await h.sync([
      result(item("2501", { ...T1, priority: 5, location: { city: "Austin" } })),
      result(item("2502", T2)),
      result(item("2503", T1)),
    ], { mode: "plan" });
    assert.deepEqual(outcomes(out), { "2501": "updated", "2502": "unchanged", "2503": "created" });
    assert.deepEqual(out[0].changes, [{ path: "priority", before: 2, after: 5 }]);
    assert.deepEqual(h.rows(), rowsBefore);
    assert.equal((await Deno.stat(file)).mtime?.getTime(), before.mtime?.getTime());
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() plan mode shows raw field changes when no column differs", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1))]);
    const out = await h.sync([result(item("2501", { ...T1, note: "call first" }))], {
      mode: "plan",
    });
    assert.deepEqual(out[0].changes, [{ path: "raw.note", before: null, after: "call first" }]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() config: unsafe or reserved names are reported at validation", () => {
  const managed = '"key", "content_hash", "first_synced_at", "synced_at"';
  assert.deepEqual(
    configProblems(stage, {
      table: "tickets; DROP TABLE x",
      columns: { synced_at: { type: "text" }, "bad name": {}, city: {} },
      raw: "City",
    }),
    [
      'stages[1].table: invalid table name: expected letters, digits and underscores, not starting with a digit, got "tickets; DROP TABLE x"',
      `stages[1].columns.synced_at: the column is managed by the sink: expected a name other than ${managed}`,
      'stages[1].columns["bad name"]: invalid column name: expected letters, digits and underscores, not starting with a digit',
      'stages[1].raw: expected a name no other column of the table has, got "City"',
    ],
  );
  assert.deepEqual(configProblems(stage, { raw: "content_hash" }), [
    'stages[1].raw: expected a name no other column of the table has, got "content_hash"',
  ]);
  assert.deepEqual(configProblems(stage, { raw: "raw-json" }), [
    'stages[1].raw: invalid column name: expected letters, digits and underscores, not starting with a digit, got "raw-json"',
  ]);
  assert.deepEqual(configProblems(stage, { raw: null, columns: { raw: {} } }), []);
  assert.throws(() => stage.config.parse({ columns: { a: { type: "date" } } }));
});

Deno.test("syncTicketsSqlite() keeps integers beyond 2^53 exact, and reads them back without failing", async () => {
  const h = await harness();
  try {
    const big = { ...T1, priority: "9007199254740993" };
    assert.deepEqual((await h.sync([result(item("2501", big))])).map((r) => r.outcome), [
      "created",
    ]);
    const db = new DatabaseSync(join(h.dir, "db/tickets.db"));
    const select = db.prepare(`SELECT priority FROM tickets`);
    select.setReadBigInts(true);
    const row = select.get()!;
    db.close();
    assert.equal(String(row.priority), "9007199254740993");
    // The row is read back to compare (changed content): a bigint, not a RangeError.
    const changed = { ...big, emergency: true };
    assert.deepEqual((await h.sync([result(item("2501", changed))])).map((r) => r.outcome), [
      "updated",
    ]);
    // The ledger lost: the row is found unchanged by its content hash, read back exactly.
    assert.deepEqual((await h.sync([result(item("2501", changed))])).map((r) => r.outcome), [
      "unchanged",
    ]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncTicketsSqlite() config: column names differing only in case are one column to SQLite", () => {
  assert.deepEqual(
    configProblems(stage, {
      path: "x.db",
      columns: { city: { type: "text" }, City: { type: "text" } },
    }),
    ["stages[1].columns.City: expected a name no other column has (SQLite ignores case)"],
  );
});

Deno.test("syncTicketsSqlite() finds an existing table and its columns whatever their case", async () => {
  const h = await harness();
  try {
    await h.sync([result(item("2501", T1))]);
    // The same table named "Tickets", its column "city" asked for as "City".
    const config = { ...CONFIG, table: "Tickets", columns: { ...CONFIG.columns, city: undefined } };
    delete (config.columns as Record<string, unknown>).city;
    (config.columns as Record<string, unknown>).City = { from: "location.city", type: "text" };
    const planned = await h.sync(
      [result(item("2501", { ...T1, priority: 5 }))],
      { mode: "plan" },
      config,
    );
    assert.deepEqual(planned.map((r) => r.outcome), ["updated"]);
    const run = await h.sync([result(item("2501", { ...T1, priority: 5 }))], {}, config);
    assert.deepEqual(run.map((r) => r.outcome), ["updated"]);
    assert.equal(h.rows().length, 1);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});
