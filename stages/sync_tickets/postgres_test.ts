import assert from "node:assert/strict";
import type postgres from "postgres";
import { stage } from "./postgres.ts";
import { MissingError, TicketsyncError } from "../../lib/errors.ts";
import type { Item, SyncResult, SyncRuntime } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  MemoryState,
  result,
  testContext,
  type TestContextOptions,
} from "../../tests/harness.ts";
import { pgTest } from "../../tests/pg_env.ts";

const COLUMNS = {
  ticket_id: { type: "text" },
  status: { type: "text" },
  age: { from: "metrics.age", type: "integer" },
  opened_at: { type: "timestamptz" },
  tags: { type: "text[]" },
};

function ticket(id: string, status: string, extra: Record<string, unknown> = {}): Item {
  return item(id, {
    ticket_id: id,
    status,
    metrics: { age: 3 },
    opened_at: "2026-06-15T17:00:00+03:00",
    tags: ["a", "b"],
    ...extra,
  }, `line ${id}`);
}

/** Creates the sink for `schema.inc` (created if missing unless overridden). */
function sink(
  url: string,
  schema: string,
  config: Record<string, unknown> = {},
  options: TestContextOptions = {},
): Promise<SyncRuntime> {
  const { ctx } = testContext(options);
  return createStage(stage, {
    url,
    table: `${schema}.inc`,
    createTable: true,
    key: ["ticket_id"],
    columns: COLUMNS,
    ...config,
  }, ctx);
}

/** Runs one load to completion (close on success, abort on failure). */
async function load(
  url: string,
  schema: string,
  items: (Item | SyncResult)[],
  config: Record<string, unknown> = {},
  options: TestContextOptions = {},
): Promise<SyncResult[]> {
  const runtime = await sink(url, schema, config, options);
  try {
    const out = await collect(
      runtime.sync(fromArray(items.map((i) => "hash" in i ? i : result(i)))),
    );
    await runtime.close!();
    return out;
  } catch (error) {
    await runtime.abort!();
    throw error;
  }
}

function outcomes(results: SyncResult[]): Record<string, string | null> {
  return Object.fromEntries(results.map((r) => [r.item.key, r.outcome]));
}

async function rows(sql: postgres.Sql, schema: string): Promise<Record<string, unknown>[]> {
  return await sql.unsafe(
    `select ticket_id, status, age, opened_at, tags, raw, xmin::text as xmin, updated_at
     from "${schema}".inc order by ticket_id`,
  );
}

pgTest(
  "sync-tickets.postgres creates rows, then an identical load leaves every row untouched",
  async ({ url, sql, schema }) => {
    const items = [ticket("A1", "open"), ticket("A2", "open", { metrics: { age: "" } })];
    const first = await load(url, schema, items);
    assert.deepEqual(outcomes(first), { A1: "created", A2: "created" });
    const before = await rows(sql, schema);
    assert.equal(before.length, 2);
    assert.equal(before[0].status, "open");
    assert.equal(before[0].age, 3);
    assert.equal(before[1].age, null);
    assert.deepEqual(before[0].tags, ["a", "b"]);
    assert.equal((before[0].opened_at as Date).toISOString(), "2026-06-15T14:00:00.000Z");
    assert.deepEqual(before[0].raw, items[0].data);

    const second = await load(url, schema, items);
    assert.deepEqual(outcomes(second), { A1: "unchanged", A2: "unchanged" });
    const after = await rows(sql, schema);
    assert.deepEqual(
      after.map((r) => [r.xmin, r.updated_at]),
      before.map((r) => [r.xmin, r.updated_at]),
    );
  },
);

pgTest(
  "sync-tickets.postgres matches outcomes to records by position when a key is not text",
  async ({ url, sql, schema }) => {
    // An integer key is stored as 7 whatever text it arrived as ("007"), so the
    // returned key cannot be matched to the record's text: the statement joins back.
    const config = {
      key: ["number"],
      columns: { number: { type: "integer" }, status: { type: "text" } },
      raw: null,
    };
    const numbered = (key: string, number: string, status: string) =>
      item(key, { number, status }, `line ${key}`);
    const first = await load(url, schema, [
      numbered("a", "007", "open"),
      numbered("b", "8", "open"),
    ], config);
    assert.deepEqual(outcomes(first), { a: "created", b: "created" });
    const second = await load(url, schema, [
      numbered("c", "9", "new"),
      numbered("b", "08", "open"),
      numbered("a", "7", "closed"),
    ], config);
    assert.deepEqual(outcomes(second), { c: "created", b: "unchanged", a: "updated" });
    const stored = await sql.unsafe(`select number, status from "${schema}".inc order by number`);
    assert.deepEqual(stored.map((r) => [r.number, r.status]), [
      [7, "closed"],
      [8, "open"],
      [9, "new"],
    ]);
  },
);

pgTest(
  "sync-tickets.postgres matches by position when the table pads its text key (char(n))",
  async ({ url, sql, schema }) => {
    // The config says text, but the existing column is char(6): "AB" comes back
    // as "AB    ", so the returned key is not the text that was sent.
    await sql.unsafe(
      `create table "${schema}".inc (ticket_id char(6) primary key, status text)`,
    );
    const config = {
      createTable: false,
      columns: { ticket_id: { type: "text" }, status: { type: "text" } },
      raw: null,
    };
    const first = await load(url, schema, [ticket("AB", "open"), ticket("CD", "open")], config);
    assert.deepEqual(outcomes(first), { AB: "created", CD: "created" });
    const second = await load(url, schema, [ticket("CD", "open"), ticket("AB", "closed")], config);
    assert.deepEqual(outcomes(second), { CD: "unchanged", AB: "updated" });
  },
);

pgTest(
  "sync-tickets.postgres keeps awkward text, arrays and jsonb values exactly",
  async ({ url, sql, schema }) => {
    const awkward = 'quote " backslash \\ tab \t newline \n brace {x} comma, NULL \u00e9 \u{1F600}';
    const items = [
      ticket("J1", awkward, { tags: [awkward, "NULL", ""], meta: { nested: [1, { b: awkward }] } }),
      ticket("J2", "NULL", { tags: [], meta: null }),
    ];
    const out = await load(url, schema, items, {
      columns: { ...COLUMNS, meta: { type: "jsonb" } },
    });
    assert.deepEqual(outcomes(out), { J1: "created", J2: "created" });
    const stored = await sql.unsafe(
      `select ticket_id, status, tags, meta, meta is null as meta_is_sql_null, raw
       from "${schema}".inc order by ticket_id`,
    );
    assert.equal(stored[0].status, awkward);
    assert.deepEqual(stored[0].tags, [awkward, "NULL", ""]);
    assert.deepEqual(stored[0].meta, { nested: [1, { b: awkward }] });
    assert.deepEqual(stored[0].raw, items[0].data);
    assert.equal(stored[1].status, "NULL");
    assert.deepEqual(stored[1].tags, []);
    assert.equal(stored[1].meta_is_sql_null, true);
    // The same values again are recognised as unchanged.
    const again = await load(url, schema, items, {
      columns: { ...COLUMNS, meta: { type: "jsonb" } },
    });
    assert.deepEqual(outcomes(again), { J1: "unchanged", J2: "unchanged" });
  },
);

pgTest(
  "sync-tickets.postgres updates exactly the rows whose content changed",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("B1", "open"), ticket("B2", "open"), ticket("B3", "open")]);
    const before = await rows(sql, schema);
    const second = await load(url, schema, [
      ticket("B1", "open"),
      ticket("B2", "closed"),
      ticket("B3", "open", { note: "only in raw" }),
    ]);
    assert.deepEqual(outcomes(second), { B1: "unchanged", B2: "updated", B3: "updated" });
    const after = await rows(sql, schema);
    assert.equal(after[0].xmin, before[0].xmin);
    assert.notEqual(after[1].xmin, before[1].xmin);
    assert.equal(after[1].status, "closed");
    assert.ok(after[1].updated_at instanceof Date);
    assert.equal((after[2].raw as Record<string, unknown>).note, "only in raw");
  },
);

pgTest(
  "sync-tickets.postgres never deletes a row missing from a later load",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("C1", "open"), ticket("C2", "open")]);
    await load(url, schema, [ticket("C2", "closed")]);
    const after = await rows(sql, schema);
    assert.deepEqual(after.map((r) => [r.ticket_id, r.status]), [["C1", "open"], ["C2", "closed"]]);
  },
);

pgTest(
  "sync-tickets.postgres skips records whose hash matches the ledger and rewrites them with --full",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("D1", "open")]);
    const changed = ticket("D1", "closed");
    const known = result(changed, { lastOutcome: "updated" });
    known.previous!.hash = known.hash;
    const skipped = await load(url, schema, [known]);
    assert.deepEqual(outcomes(skipped), { D1: "unchanged" });
    assert.equal((await rows(sql, schema))[0].status, "open");

    const again = result(changed, { lastOutcome: "updated" });
    again.previous!.hash = again.hash;
    const full = await load(url, schema, [again], {}, { options: { full: true } });
    assert.deepEqual(outcomes(full), { D1: "updated" });
    assert.equal((await rows(sql, schema))[0].status, "closed");
  },
);

pgTest(
  "sync-tickets.postgres passes failed and skipped results through untouched",
  async ({ url, sql, schema }) => {
    const failed = result(ticket("E1", "open"));
    failed.outcome = "failed";
    failed.reason = "upstream";
    const out = await load(url, schema, [failed, ticket("E2", "open")]);
    assert.equal(out[0].outcome, "failed");
    assert.equal(out[0].reason, "upstream");
    assert.equal(out[1].outcome, "created");
    assert.deepEqual((await rows(sql, schema)).map((r) => r.ticket_id), ["E2"]);
  },
);

pgTest(
  "sync-tickets.postgres insert-ignore skips existing (tenant_id, ticket_id) pairs",
  async ({ url, sql, schema }) => {
    await sql.unsafe(`create table "${schema}".history (
    id bigserial primary key, tenant_id text not null, ticket_id text not null,
    description text, source text, ingested_at timestamptz not null default now(),
    unique (tenant_id, ticket_id))`);
    const config = {
      table: `${schema}.history`,
      createTable: false,
      key: ["tenant_id", "ticket_id"],
      columns: {
        tenant_id: { type: "text" },
        ticket_id: { type: "text" },
        description: { type: "text" },
        source: { type: "text" },
      },
      raw: null,
      mode: "insert-ignore",
      transaction: "batch",
    };
    function record(tenant: string, id: string, description: string): Item {
      return item(`${tenant}/${id}`, {
        tenant_id: tenant,
        ticket_id: id,
        description,
        source: "bulk_import",
      });
    }
    const first = await load(
      url,
      schema,
      [record("acme", "1", "a"), record("acme", "2", "b")],
      config,
    );
    assert.deepEqual(outcomes(first), { "acme/1": "created", "acme/2": "created" });
    const second = await load(url, schema, [
      record("acme", "1", "changed"),
      record("acme", "3", "c"),
      record("other", "1", "d"),
    ], config);
    assert.deepEqual(outcomes(second), {
      "acme/1": "skipped",
      "acme/3": "created",
      "other/1": "created",
    });
    assert.equal(second[0].reason, "already exists");
    const stored = await sql.unsafe(
      `select tenant_id, ticket_id, description, source from "${schema}".history order by tenant_id, ticket_id`,
    );
    assert.deepEqual(stored.map((r) => [r.tenant_id, r.ticket_id, r.description, r.source]), [
      ["acme", "1", "a", "bulk_import"],
      ["acme", "2", "b", "bulk_import"],
      ["acme", "3", "c", "bulk_import"],
      ["other", "1", "d", "bulk_import"],
    ]);
  },
);

pgTest(
  "sync-tickets.postgres fails a row with a bad value and loads the others",
  async ({ url, sql, schema }) => {
    const out = await load(url, schema, [
      ticket("F1", "open"),
      ticket("F2", "open", { metrics: { age: "abc" } }),
      ticket("F3", "open"),
      item("F4", { status: "open" }),
    ]);
    assert.deepEqual(outcomes(out), { F1: "created", F2: "failed", F3: "created", F4: "failed" });
    assert.equal(out[1].reason, 'column "age": cannot convert "abc" to integer');
    assert.equal(out[3].reason, 'column "ticket_id": key value is missing');
    assert.deepEqual((await rows(sql, schema)).map((r) => r.ticket_id), ["F1", "F3"]);
  },
);

/** `schema.inc` whose status must be open or closed: the database rejects other rows. */
async function createCheckedTable(sql: postgres.Sql, schema: string): Promise<void> {
  await sql.unsafe(`create table "${schema}".inc (
    ticket_id text primary key, status text check (status in ('open', 'closed')),
    age integer, opened_at timestamptz, tags text[], raw jsonb)`);
}

pgTest(
  "sync-tickets.postgres fails a row the database rejects and loads the rest of its batch",
  async ({ url, sql, schema }) => {
    await createCheckedTable(sql, schema);
    const out = await load(url, schema, [
      ticket("G1", "open"),
      ticket("G2", "bogus"),
      ticket("G3", "closed"),
      ticket("G4", "open", { opened_at: "2026-02-30T10:00:00Z" }),
    ], { createTable: false });
    assert.deepEqual(outcomes(out), { G1: "created", G2: "failed", G3: "created", G4: "failed" });
    assert.match(out[1].reason!, /^database rejected the row: .*check constraint/);
    assert.match(out[3].reason!, /^database rejected the row: .*out of range/);
    const stored = await sql.unsafe(`select ticket_id from "${schema}".inc order by ticket_id`);
    assert.deepEqual(stored.map((r) => r.ticket_id), ["G1", "G3"]);
  },
);

pgTest(
  "sync-tickets.postgres transaction run: rejected rows in several batches fail alone, every other row loads",
  async ({ url, sql, schema }) => {
    await createCheckedTable(sql, schema);
    const out = await load(url, schema, [
      ticket("P1", "open"),
      ticket("P2", "bogus"),
      ticket("P3", "closed"),
      ticket("P4", "open"),
      ticket("P5", "bogus"),
      ticket("P6", "open"),
      ticket("P7", "closed"),
    ], { createTable: false, transaction: "run", batchSize: 2 });
    assert.deepEqual(outcomes(out), {
      P1: "created",
      P2: "failed",
      P3: "created",
      P4: "created",
      P5: "failed",
      P6: "created",
      P7: "created",
    });
    assert.match(out[4].reason!, /^database rejected the row: .*check constraint/);
    const stored = await sql.unsafe(`select ticket_id from "${schema}".inc order by ticket_id`);
    assert.deepEqual(stored.map((r) => r.ticket_id), ["P1", "P3", "P4", "P6", "P7"]);
  },
);

pgTest(
  "sync-tickets.postgres strict mode stops at a bad row and leaves the table as it was",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("H1", "open")]);
    const before = await rows(sql, schema);
    await assert.rejects(
      load(url, schema, [ticket("H1", "closed"), ticket("H2", "open", { metrics: { age: "x" } })], {
        strict: true,
        batchSize: 1,
      }),
      (error: unknown) => {
        assert.ok(error instanceof TicketsyncError && !(error instanceof MissingError));
        assert.equal(error.exitCode, 3);
        assert.match(
          error.message,
          /^Cannot load into "ts_test_\w+\.inc": test\.json line H2: column "age": cannot convert "x" to integer/,
        );
        return true;
      },
    );
    assert.deepEqual(await rows(sql, schema), before);
  },
);

pgTest(
  "sync-tickets.postgres transaction run: nothing is visible before close and abort() rolls back",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("I1", "open")]);
    const before = await rows(sql, schema);
    const runtime = await sink(url, schema, { batchSize: 2 });
    const out = await collect(runtime.sync(fromArray([
      result(ticket("I1", "closed")),
      result(ticket("I2", "open")),
      result(ticket("I3", "open")),
    ])));
    assert.deepEqual(outcomes(out), { I1: "updated", I2: "created", I3: "created" });
    assert.deepEqual(await rows(sql, schema), before);
    await runtime.abort!();
    assert.deepEqual(await rows(sql, schema), before);

    const committed = await sink(url, schema, { batchSize: 2 });
    await collect(committed.sync(fromArray([result(ticket("I2", "open"))])));
    await committed.close!();
    assert.deepEqual((await rows(sql, schema)).map((r) => r.ticket_id), ["I1", "I2"]);
  },
);

pgTest(
  "sync-tickets.postgres transaction batch: committed batches survive an abort",
  async ({ url, sql, schema }) => {
    const runtime = await sink(url, schema, { batchSize: 2, transaction: "batch" });
    const iterator = runtime.sync(
      fromArray([1, 2, 3, 4, 5].map((n) => result(ticket(`J${n}`, "open")))),
    )[
      Symbol.asyncIterator
    ]();
    const firstResult = await iterator.next();
    assert.equal(firstResult.value.outcome, "created");
    // J1 and J2 are committed before their results are passed on; the second
    // batch (J3, J4) is in flight and may or may not be committed yet.
    const seen = (await rows(sql, schema)).map((r) => r.ticket_id);
    assert.ok(
      [["J1", "J2"], ["J1", "J2", "J3", "J4"]].some((ids) => ids.join() === seen.join()),
      seen.join(),
    );
    await iterator.return!(undefined);
    await runtime.abort!();
    // The second batch was sent before the first one's results were passed on
    // and is finished and committed; the third was never sent.
    assert.deepEqual((await rows(sql, schema)).map((r) => r.ticket_id), ["J1", "J2", "J3", "J4"]);
  },
);

pgTest(
  "sync-tickets.postgres loads a key repeated in one batch, the later record winning",
  async ({ url, sql, schema }) => {
    const out = await load(url, schema, [
      ticket("K1", "open"),
      ticket("K2", "open"),
      ticket("K1", "closed"),
    ]);
    assert.deepEqual(out.map((r) => r.outcome), ["created", "created", "updated"]);
    assert.deepEqual((await rows(sql, schema)).map((r) => [r.ticket_id, r.status]), [[
      "K1",
      "closed",
    ], ["K2", "open"]]);
  },
);

pgTest(
  "sync-tickets.postgres stops with MissingError when the table is missing and createTable is false",
  async ({ url, sql, schema }) => {
    await assert.rejects(sink(url, schema, { createTable: false }), (error: unknown) => {
      assert.ok(error instanceof MissingError);
      assert.equal(error.message, `Cannot load into "${schema}.inc": table does not exist`);
      assert.equal(error.exitCode, 2);
      return true;
    });
    const tables =
      await sql`select 1 from information_schema.tables where table_schema = ${schema}`;
    assert.equal(tables.length, 0);
  },
);

pgTest(
  "sync-tickets.postgres stops with MissingError on a missing column or key constraint",
  async ({ url, sql, schema }) => {
    await sql.unsafe(`create table "${schema}".inc (ticket_id text, status text, raw jsonb)`);
    await assert.rejects(
      sink(url, schema, {
        createTable: false,
        columns: { ticket_id: { type: "text" }, status: { type: "text" } },
      }),
      {
        name: "MissingError",
        message: `Cannot load into "${schema}.inc": no unique constraint on ("ticket_id")`,
      },
    );
    await assert.rejects(sink(url, schema, { createTable: false }), {
      name: "MissingError",
      message: `Cannot load into "${schema}.inc": columns "age", "opened_at", "tags" do not exist`,
    });
  },
);

pgTest(
  "sync-tickets.postgres plan mode writes nothing and reports field changes",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("L1", "open"), ticket("L2", "open"), ticket("L3", "open")]);
    const before = await rows(sql, schema);
    const out = await load(
      url,
      schema,
      [
        ticket("L1", "open"),
        ticket("L2", "closed", { note: "new" }),
        ticket("L4", "open"),
        ticket("L5", "open", { metrics: { age: "old" } }),
      ],
      {},
      { options: { mode: "plan" } },
    );
    assert.deepEqual(outcomes(out), {
      L1: "unchanged",
      L2: "updated",
      L4: "created",
      L5: "failed",
    });
    assert.deepEqual(out[1].changes, [
      { path: "status", before: "open", after: "closed" },
      { path: "raw.note", before: null, after: "new" },
    ]);
    assert.deepEqual(await rows(sql, schema), before);

    const missing = await load(
      url,
      schema,
      [ticket("M1", "open")],
      { table: `${schema}.not_yet` },
      {
        options: { mode: "plan" },
      },
    );
    assert.deepEqual(outcomes(missing), { M1: "created" });
    const tables =
      await sql`select table_name from information_schema.tables where table_schema = ${schema}`;
    assert.deepEqual(tables.map((t) => t.table_name), ["inc"]);
  },
);

Deno.test("sync-tickets.postgres config validation checks every name and the key, with their paths", () => {
  const base = {
    url: "postgres://nobody:pw@127.0.0.1:1/none",
    table: "tickets.inc",
    columns: COLUMNS,
  };
  const problems = (config: Record<string, unknown>) =>
    configProblems(stage, { ...base, ...config }).map((line) => line.replace(/^stages\[1\]\./, ""));
  assert.deepEqual(problems({}), []);
  assert.deepEqual(problems({ table: 'tickets.inc"; drop table x; --' }), [
    'table: invalid identifier "inc\\"; drop table x; --": expected letters, digits, "_" or "$", not starting with a digit',
  ]);
  assert.deepEqual(problems({ columns: { ...COLUMNS, "a;b": { type: "text" } } }), [
    'columns["a;b"]: invalid identifier "a;b": expected letters, digits, "_" or "$", not starting with a digit',
  ]);
  assert.deepEqual(problems({ raw: 'raw"' }).length, 1);
  assert.deepEqual(
    problems({ importMeta: { table: "tickets.meta;", sourceKey: "inc" } }).length,
    1,
  );
  const long = "c".repeat(64);
  assert.deepEqual(problems({ columns: { ...COLUMNS, [long]: { type: "text" } } }), [
    `columns.${long}: invalid identifier "${long}": expected at most 63 characters (PostgreSQL's limit), got 64`,
  ]);
  assert.deepEqual(problems({ key: ["nope", "ticket_id", "ticket_id"], raw: "status" }), [
    'key[0]: expected a column of "columns", got "nope"',
    'key[2]: "ticket_id" is listed twice',
    'raw: expected a name other than the typed columns\', got "status"',
  ]);
});

pgTest(
  "sync-tickets.postgres writes the importMeta freshness row after a successful run",
  async ({ url, sql, schema }) => {
    const state = new MemoryState();
    state.setCursor("source.etag", '"abc123"');
    state.setCursor("source.name", "automations/inc/2026-06-15T17-00-00.csv");
    const clock = new FixedClock(Temporal.Instant.from("2026-06-15T14:20:00Z"));
    const config = { importMeta: { table: `${schema}.import_meta`, sourceKey: "inc" } };
    await load(url, schema, [ticket("N1", "open"), ticket("N2", "open")], config, { state, clock });
    const out = await load(
      url,
      schema,
      [
        ticket("N1", "closed"),
        ticket("N2", "open"),
        ticket("N3", "open"),
        ticket("N4", "open", { metrics: { age: 1.5 } }),
      ],
      config,
      { state, clock },
    );
    assert.deepEqual(outcomes(out), {
      N1: "updated",
      N2: "unchanged",
      N3: "created",
      N4: "failed",
    });
    const meta = await sql.unsafe(`select * from "${schema}".import_meta`);
    assert.equal(meta.length, 1);
    assert.equal(meta[0].source_key, "inc");
    assert.equal(meta[0].source_etag, '"abc123"');
    assert.deepEqual([meta[0].rows_seen, meta[0].rows_loaded, meta[0].rows_skipped], [4, 2, 1]);
    assert.equal((meta[0].loaded_at as Date).toISOString(), "2026-06-15T14:20:00.000Z");
    assert.equal(meta[0].metadata.source_name, "automations/inc/2026-06-15T17-00-00.csv");
    assert.equal(meta[0].metadata.failed, 1);
    assert.equal(meta[0].metadata.source_etag, '"abc123"');
  },
);

pgTest(
  "sync-tickets.postgres keeps the importMeta row of a file loaded again with nothing to write, and names a new file even when no row reached it",
  async ({ url, sql, schema }) => {
    const state = new MemoryState();
    state.setCursor("source.etag", "etag-17");
    const config = { importMeta: { table: `${schema}.import_meta`, sourceKey: "inc" } };
    const clock = new FixedClock(Temporal.Instant.from("2026-06-15T14:20:00Z"));
    await load(url, schema, [ticket("N1", "open")], config, { state, clock });
    const before = await sql.unsafe(`select *, xmin::text as x from "${schema}".import_meta`);
    // The same file again (a run killed after its commit, resumed): every row unchanged.
    const later = new FixedClock(Temporal.Instant.from("2026-06-15T15:20:00Z"));
    const again = await load(url, schema, [ticket("N1", "open")], config, { state, clock: later });
    assert.deepEqual(outcomes(again), { N1: "unchanged" });
    const after = await sql.unsafe(`select *, xmin::text as x from "${schema}".import_meta`);
    assert.deepEqual(after, before);
    assert.deepEqual([after[0].rows_seen, after[0].rows_loaded], [1, 1]);

    // A new file whose every row was filtered out: still the file this table was refreshed from.
    state.setCursor("source.etag", "etag-18");
    assert.deepEqual(await load(url, schema, [], config, { state, clock: later }), []);
    const [meta] = await sql.unsafe(`select * from "${schema}".import_meta`);
    assert.equal(meta.source_etag, "etag-18");
    assert.deepEqual([meta.rows_seen, meta.rows_loaded, meta.rows_skipped], [0, 0, 0]);
    assert.equal((meta.loaded_at as Date).toISOString(), "2026-06-15T15:20:00.000Z");
  },
);

pgTest(
  "sync-tickets.postgres sends quotes, backslashes, braces, commas and the text NULL exactly",
  async ({ url, sql, schema }) => {
    const awkward = ['a"b', "c\\d", "{x,y}", "NULL", "", " spaced ", "tab\there", "é\u2028"];
    const items = [
      ...awkward.map((status, n) => ticket(`Q${n}`, status, { tags: [status, null, "NULL"] })),
      ticket("QNULL", "open", { status: null }),
    ];
    await load(url, schema, items);
    const stored = await sql.unsafe(
      // As JSON: the driver reads a NULL array element back as the text "NULL".
      `select ticket_id, status, to_jsonb(tags) as tags from "${schema}".inc order by ticket_id`,
    );
    assert.deepEqual(
      stored.map((row) => [row.ticket_id, row.status, row.tags]),
      [
        ...awkward.map((status, n) => [`Q${n}`, status, [status, null, "NULL"]]),
        ["QNULL", null, ["a", "b"]],
      ].sort((a, b) => String(a[0]) < String(b[0]) ? -1 : 1),
    );
  },
);

pgTest("sync-tickets.postgres loads thousands of rows in batches", async ({ url, sql, schema }) => {
  const columns: Record<string, { type: string }> = { ticket_id: { type: "text" } };
  for (let c = 0; c < 31; c++) columns[`c${c}`] = { type: c % 3 === 0 ? "integer" : "text" };
  const items = Array.from({ length: 5000 }, (_, n) => {
    const data: Record<string, unknown> = { ticket_id: `T${n}` };
    for (let c = 0; c < 31; c++) data[`c${c}`] = c % 3 === 0 ? n + c : `value ${n} ${c} "q" \\ ,{}`;
    return item(`T${n}`, data);
  });
  const config = { columns, batchSize: 1000 };
  const first = await load(url, schema, items, config);
  assert.equal(first.filter((r) => r.outcome === "created").length, 5000);
  const [count] = await sql.unsafe(
    `select count(*)::int as n, max(c1) as c1 from "${schema}".inc where ticket_id = 'T42'`,
  );
  assert.deepEqual([count.n, count.c1], [1, 'value 42 1 "q" \\ ,{}']);
  const second = await load(url, schema, items, config);
  assert.equal(second.filter((r) => r.outcome === "unchanged").length, 5000);
});

pgTest(
  "sync-tickets.postgres transaction run: a cut connection fails the run and leaves nothing written",
  async ({ url, sql, schema }) => {
    await load(url, schema, [ticket("P1", "open")]);
    const before = await rows(sql, schema);
    const runtime = await sink(url, schema, { batchSize: 1 });
    const iterator = runtime.sync(fromArray([
      result(ticket("P1", "closed")),
      result(ticket("P2", "open")),
      result(ticket("P3", "open")),
    ]))[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value.outcome, "updated");
    // The sink's backend is the one holding a lock on this test's table.
    const killed = await sql.unsafe(
      `select pg_terminate_backend(pid) as ok from pg_locks
       where relation = '"${schema}".inc'::regclass and pid <> pg_backend_pid()`,
    );
    assert.deepEqual(killed.map((k) => k.ok), [true]);
    await assert.rejects(
      (async () => {
        while (!(await iterator.next()).done) { /* drain */ }
      })(),
      { name: "RemoteError" },
    );
    await runtime.abort!();
    assert.deepEqual(await rows(sql, schema), before);
  },
);
