import assert from "node:assert/strict";
import { ConfigError, MissingError, RemoteError } from "../../lib/errors.ts";
import type { Item } from "../../lib/stage.ts";
import { configProblems, createStage, testContext } from "../../tests/harness.ts";
import { pgTest } from "../../tests/pg_env.ts";
import { parseArray, stage } from "./postgres.ts";

/** The test database, with unqualified names resolving in `schema`. */
function schemaUrl(url: string, schema: string): string {
  return `${url}?search_path=${schema}`;
}

/** Reads until the end, an error, or `limit` items (then stops the reader as a consumer would). */
async function readAll(config: Record<string, unknown>, limit = Infinity) {
  const test = testContext();
  const runtime = await createStage(stage, config, test.ctx);
  const items: Item[] = [];
  let error: Error | undefined;
  try {
    for await (const item of runtime.read()) {
      items.push(item);
      if (items.length >= limit) break;
    }
  } catch (caught) {
    error = caught as Error;
  } finally {
    await runtime.close?.();
  }
  return { items, error, runtime };
}

async function createCities(sql: import("postgres").Sql, schema: string): Promise<void> {
  await sql.unsafe(`
    create table "${schema}".cities (id int primary key, name text not null, country text);
    create table "${schema}".venues (id int primary key, name text, city_id int);
    insert into "${schema}".cities values (1, 'Baltimore', 'US'), (2, 'Lisbon', 'PT'), (3, 'Nairobi', 'KE');
    insert into "${schema}".venues values (10, 'Walters', 1), (11, 'Coliseu', 2), (12, 'Pop-up', null),
      (13, 'Azulejo', 2);
  `);
}

pgTest(
  "readPostgres() streams a query's rows in batches, with row origins and JOINed names",
  async ({ url, sql, schema }) => {
    await createCities(sql, schema);
    const { items, error } = await readAll({
      url: schemaUrl(url, schema),
      name: "venues",
      query: [
        "select v.id, v.name, c.name as city_name from venues v",
        "left join cities c on c.id = v.city_id where v.id >= $1 order by v.id",
      ],
      params: [11],
      batchSize: 2,
    });
    assert.equal(error, undefined);
    assert.deepEqual(items.map((item) => item.data), [
      { id: 11, name: "Coliseu", city_name: "Lisbon" },
      { id: 12, name: "Pop-up", city_name: null },
      { id: 13, name: "Azulejo", city_name: "Lisbon" },
    ]);
    assert.deepEqual(items.map((item) => item.origin), [
      { source: "postgres:venues", position: "row 1" },
      { source: "postgres:venues", position: "row 2" },
      { source: "postgres:venues", position: "row 3" },
    ]);
    assert.equal(items[2].key, "postgres:venues#row 3");
  },
);

pgTest(
  "readPostgres() reads a whole table, named by it in origins",
  async ({ url, sql, schema }) => {
    await createCities(sql, schema);
    for (const table of ["cities", `${schema}.cities`]) {
      const { items, error } = await readAll({ url: schemaUrl(url, schema), table });
      assert.equal(error, undefined);
      assert.deepEqual(
        items.map((item) => item.data.name).sort(),
        ["Baltimore", "Lisbon", "Nairobi"],
      );
      assert.equal(items[0].origin.source, `postgres:${table}`);
    }
  },
);

pgTest(
  "readPostgres() streams through a cursor: 25 rows of a billion-row query, then stops",
  async ({ url }) => {
    // Lazily generated rows: a reader that fetched the whole result would never return.
    const { items, error } = await readAll({
      url,
      query: "select generate_series(1, 1000000000) as id",
      batchSize: 10,
    }, 25);
    assert.equal(error, undefined);
    assert.deepEqual(
      items.map((item) => item.data.id),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    assert.equal(items[24].origin.source, "postgres:query");
  },
);

pgTest("readPostgres() maps PostgreSQL types to JSON-friendly values", async ({ url }) => {
  const query = `select
    '2025-03-01 20:30:00.123456+02'::timestamptz as at,
    '2025-03-01 18:30:00'::timestamp as local_at,
    '2025-03-01'::date as day,
    '19:30'::time as starts,
    '2 hours 30 minutes'::interval as lasts,
    12.50::numeric(8, 2) as fee,
    9007199254740993::bigint as big,
    42::int as n,
    'NaN'::float8 as nan,
    0.25::float8 as ratio,
    true as open,
    '{"a": [1, "x"]}'::jsonb as doc,
    array['concert', 'tour'] as tags,
    array['2025-01-01 00:00:00+00'::timestamptz] as ats,
    '\\x0102'::bytea as bytes,
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as uid,
    null::text as none`;
  const { items, error } = await readAll({ url, query });
  assert.equal(error, undefined);
  assert.deepEqual(items[0].data, {
    at: "2025-03-01T18:30:00.123456Z",
    local_at: "2025-03-01T18:30:00",
    day: "2025-03-01",
    starts: "19:30:00",
    lasts: "PT2H30M",
    fee: 12.5,
    big: "9007199254740993",
    n: 42,
    nan: "NaN",
    ratio: 0.25,
    open: true,
    doc: { a: [1, "x"] },
    tags: ["concert", "tour"],
    ats: ["2025-01-01T00:00:00Z"],
    bytes: "\\x0102",
    uid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    none: null,
  });
  const exact = await readAll({
    url,
    query: "select 12345678901234567890.125::numeric as amount",
    numeric: "string",
  });
  assert.deepEqual(exact.items[0].data, { amount: "12345678901234567890.125" });
});

pgTest(
  "readPostgres() stops with RemoteError after the rows before a mid-way query error",
  async ({ url }) => {
    const { items, error } = await readAll({
      url,
      query: "select g as id, 10 / (5 - g) as q from generate_series(1, 10) g",
      batchSize: 2,
    });
    assert.deepEqual(items.map((item) => item.data.id), [1, 2, 3, 4]);
    assert.ok(error instanceof RemoteError, String(error));
    assert.equal(error.message, 'Cannot read "query": after row 4: division by zero');
  },
);

pgTest(
  "readPostgres() a missing table is a MissingError naming it",
  async ({ url, sql, schema }) => {
    await createCities(sql, schema);
    const base = schemaUrl(url, schema);
    const cases: [Record<string, unknown>, string][] = [
      [{ table: "events" }, 'Cannot read "events": table does not exist'],
      [
        { name: "events", query: "select e.id from events e join venues v on v.id = e.venue_id" },
        'Cannot read "events": table does not exist',
      ],
      [
        { name: "venues", query: "select v.id from venues v join regions r on r.id = v.city_id" },
        'Cannot read "venues": table "regions" does not exist',
      ],
    ];
    for (const [config, message] of cases) {
      const { items, error } = await readAll({ url: base, ...config });
      assert.deepEqual(items, []);
      assert.ok(error instanceof MissingError, String(error));
      assert.equal(error.message, message);
    }
    const column = await readAll({ url: base, name: "cities", query: "select nope from cities" });
    assert.ok(column.error instanceof ConfigError, String(column.error));
    assert.equal(column.error.message, 'Cannot read "cities": column "nope" does not exist');
  },
);

pgTest(
  "readPostgres() reads in a read-only transaction: a query that writes fails and writes nothing",
  async ({ url, sql, schema }) => {
    await createCities(sql, schema);
    const { error } = await readAll({
      url: schemaUrl(url, schema),
      name: "cities",
      query: "insert into cities values (4, 'Porto', 'PT') returning *",
    });
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(
      error.message,
      /^Cannot read "cities": cannot execute INSERT in a read-only transaction/,
    );
    const [{ n }] = await sql.unsafe(`select count(*)::int as n from "${schema}".cities`);
    assert.equal(n, 3);
  },
);

pgTest("readPostgres() stops after the current batch when the run is aborted", async ({ url }) => {
  const test = testContext();
  const runtime = await createStage(
    stage,
    { url, query: "select generate_series(1, 100) as id", batchSize: 4 },
    test.ctx,
  );
  const ids: unknown[] = [];
  for await (const item of runtime.read()) {
    ids.push(item.data.id);
    if (ids.length === 2) test.controller.abort("SIGTERM");
  }
  assert.deepEqual(ids, [1, 2, 3, 4]);
});

Deno.test("readPostgres() connection refused is a RemoteError with the password redacted", async () => {
  const { error } = await readAll({
    url: "postgres://postgres:hunter2@127.0.0.1:1/test",
    table: "venues",
  });
  assert.ok(error instanceof RemoteError, String(error));
  assert.match(
    error.message,
    /^Cannot connect to "postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test": connection refused/,
  );
  assert.doesNotMatch(error.message, /hunter2/);
});

pgTest("readPostgres() an unknown database is a MissingError", async () => {
  const { error } = await readAll({
    url: "postgres://postgres@127.0.0.1:5432/ticketsync_no_such_db",
    table: "venues",
  });
  assert.ok(error instanceof MissingError, String(error));
  assert.match(error.message, /^Cannot connect to ".*ticketsync_no_such_db": .*does not exist/);
});

Deno.test("readPostgres() config: exactly one of table or query; params only with a query", () => {
  const url = "postgres://postgres@127.0.0.1:5432/test";
  const cases: [Record<string, unknown>, string[]][] = [
    [{ url }, ['stages[0]: expected "table" or "query", got neither']],
    [{ url, table: "a", query: "select 1" }, [
      'stages[0].query: expected "table" or "query", not both',
    ]],
    [{ url, table: "a", params: [1] }, [
      'stages[0].params: only apply to "query": expected no "params" with "table"',
    ]],
    [{ url, table: "bad name" }, [
      'stages[0].table: invalid identifier "bad name": expected letters, digits, "_" or "$", not starting with a digit',
    ]],
    [{ url, table: "a.b.c" }, [
      'stages[0].table: invalid table name "a.b.c": expected "table" or "schema.table"',
    ]],
    [{ url, table: "public.venues" }, []],
    [{ url, query: ["select *", "from venues where id = $1"], params: [1] }, []],
  ];
  for (const [config, problems] of cases) {
    assert.deepEqual(configProblems(stage, config), problems, JSON.stringify(config));
  }
});

pgTest(
  "readPostgres() reads NULL elements of arrays as null, the text 'NULL' as text",
  async ({ url }) => {
    const { items, error } = await readAll({
      url,
      query: `select array['a', null, 'NULL', 'b,"c'] as t, array[1, null] as i,
      array[true, null] as b, array['{"a":1}'::jsonb, null] as j,
      array['2025-01-01 00:00:00+00'::timestamptz, null] as ts, '{{1,NULL},{NULL,4}}'::int[] as m`,
    });
    assert.equal(error, undefined, String(error));
    assert.deepEqual(items[0].data, {
      t: ["a", null, "NULL", 'b,"c'],
      i: [1, null],
      b: [true, null],
      j: [{ a: 1 }, null],
      ts: ["2025-01-01T00:00:00Z", null],
      m: [[1, null], [null, 4]],
    });
  },
);

Deno.test("parseArray() reads quoting, NULL, nesting, bounds and an empty array", () => {
  assert.deepEqual(parseArray('{a,"b c",NULL,"NULL","x\\"y"}', (t) => t), [
    "a",
    "b c",
    null,
    "NULL",
    'x"y',
  ]);
  assert.deepEqual(parseArray("[0:1]={1,2}", Number), [1, 2]);
  assert.deepEqual(parseArray("{}", Number), []);
  assert.deepEqual(parseArray("{{1,2},{3,NULL}}", Number), [[1, 2], [3, null]]);
});
