import assert from "node:assert/strict";
import { ConfigError, MissingError, RemoteError } from "./errors.ts";
import {
  convertValue,
  isRowError,
  openDatabase,
  parseTableName,
  qualifiedName,
  quoteIdent,
  redactUrl,
  requireServerVersion,
  serverMajorVersion,
} from "./postgres.ts";
import { pgTest } from "../tests/pg_env.ts";

Deno.test("redactUrl() hides the password and keeps the rest", () => {
  assert.equal(
    redactUrl("postgres://user:s3cr%40t@db.local:5432/app"),
    "postgres://user:***@db.local:5432/app",
  );
  assert.equal(redactUrl("postgres://user@db.local/app"), "postgres://user@db.local/app");
  // A raw @ in the password (postgres.js accepts it): nothing of the password is left.
  assert.equal(
    redactUrl("postgres://postgres:hun@ter2pw@127.0.0.1:5/test"),
    "postgres://postgres:***@127.0.0.1:5/test",
  );
  assert.equal(
    redactUrl("postgres://db.local/app?password=x&sslmode=require"),
    "postgres://db.local/app?password=***&sslmode=require",
  );
});

Deno.test("quoteIdent() quotes plain identifiers and rejects anything else", () => {
  assert.equal(quoteIdent("ticket_id"), '"ticket_id"');
  assert.equal(quoteIdent("_a$1"), '"_a$1"');
  for (const bad of ['a"b', "a;drop table x", "1abc", "", "a b", "a.b"]) {
    assert.throws(() => quoteIdent(bad), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.includes(JSON.stringify(bad)), error.message);
      return true;
    });
  }
});

Deno.test("qualifiedName() quotes schema and table, defaulting to public", () => {
  assert.equal(qualifiedName("tickets.inc"), '"tickets"."inc"');
  assert.equal(qualifiedName("inc"), '"public"."inc"');
  assert.deepEqual(parseTableName("tickets.inc"), { schema: "tickets", table: "inc" });
  assert.throws(() => qualifiedName("a.b.c"), ConfigError);
  assert.throws(() => qualifiedName('tickets."inc"; --'), ConfigError);
});

Deno.test("convertValue() converts valid values to PostgreSQL text", () => {
  const cases: [unknown, Parameters<typeof convertValue>[1], string | null][] = [
    ["abc", "text", "abc"],
    ["", "text", ""],
    [12, "text", "12"],
    [" 42 ", "integer", "42"],
    [7, "integer", "7"],
    ["", "integer", null],
    [null, "integer", null],
    [undefined, "text", null],
    ["9007199254740993", "bigint", "9007199254740993"],
    ["1.50", "numeric", "1.50"],
    [2.5, "double precision", "2.5"],
    ["True", "boolean", "true"],
    ["0", "boolean", "false"],
    [false, "boolean", "false"],
    ["2026-06-15 17:00:00+03", "timestamptz", "2026-06-15 17:00:00+03"],
    ["2026-06-15T17:00:00+03:00[Africa/Nairobi]", "timestamptz", "2026-06-15T14:00:00Z"],
    [0, "timestamptz", "1970-01-01T00:00:00Z"],
    [new Date("2026-01-02T03:04:05.006Z"), "timestamptz", "2026-01-02T03:04:05.006Z"],
    ["2026-06-15", "date", "2026-06-15"],
    [{ a: [1, "x"] }, "jsonb", '{"a":[1,"x"]}'],
    ["plain", "jsonb", '"plain"'],
    [["a", 'b"c', null, "d\\e"], "text[]", '{"a","b\\"c",NULL,"d\\\\e"}'],
  ];
  for (const [value, type, expected] of cases) {
    assert.deepEqual(
      convertValue(value, type),
      { ok: true, value: expected },
      `${String(value)} as ${type}`,
    );
  }
});

Deno.test("convertValue() explains values that do not fit", () => {
  const cases: [unknown, Parameters<typeof convertValue>[1], string][] = [
    ["abc", "integer", 'cannot convert "abc" to integer'],
    [1.5, "integer", "cannot convert 1.5 to integer"],
    ["2147483648", "integer", 'cannot convert "2147483648" to integer'],
    ["1,5", "numeric", 'cannot convert "1,5" to numeric'],
    ["maybe", "boolean", 'cannot convert "maybe" to boolean'],
    ["2026-06-15 17:00:00", "timestamptz", 'cannot convert "2026-06-15 17:00:00" to timestamptz'],
    ["15/06/2026", "date", 'cannot convert "15/06/2026" to date'],
    ["a,b", "text[]", 'cannot convert "a,b" to text[]'],
    ["a\u0000b", "text", '"a\\u0000b" contains a NUL character'],
    [circular(), "jsonb", "cannot convert [object Object] to jsonb"],
  ];
  for (const [value, type, reason] of cases) {
    assert.deepEqual(
      convertValue(value, type),
      { ok: false, reason },
      `${String(value)} as ${type}`,
    );
  }
});

Deno.test("isRowError() tells data errors from connection errors", () => {
  assert.equal(isRowError({ code: "22P02" }), true);
  assert.equal(isRowError({ code: "23505" }), true);
  assert.equal(isRowError({ code: "21000" }), true);
  assert.equal(isRowError({ code: "08006" }), false);
  assert.equal(isRowError({ code: "ECONNREFUSED" }), false);
  assert.equal(isRowError(new Error("x")), false);
});

Deno.test("openDatabase() reports a refused connection as RemoteError with the password redacted", async () => {
  const error = await openDatabase("postgres://user:hunter22@127.0.0.1:1/test", {
    connectTimeout: 2,
  })
    .then(() => null, (e: unknown) => e);
  assert.ok(error instanceof RemoteError, String(error));
  assert.ok(
    error.message.startsWith('Cannot connect to "postgres://user:***@127.0.0.1:1/test": '),
    error.message,
  );
  assert.ok(!error.message.includes("hunter22"));
});

pgTest("openDatabase() reports an unknown database as MissingError", async ({ url }) => {
  const missing = url.replace(/\/test$/, "/ts_no_such_database");
  await assert.rejects(openDatabase(missing), (error: unknown) => {
    assert.ok(error instanceof MissingError, String(error));
    assert.match(
      error.message,
      /^Cannot connect to "postgres:\/\/postgres@127\.0\.0\.1:5432\/ts_no_such_database": .*does not exist/,
    );
    return true;
  });
});

pgTest("openDatabase() returns a working client", async ({ url }) => {
  const sql = await openDatabase(url);
  try {
    const [row] = await sql`select 1 + 1 as n`;
    assert.equal(row.n, 2);
  } finally {
    await sql.end();
  }
});

pgTest("serverMajorVersion() is the major version the server reports", async ({ url }) => {
  const sql = await openDatabase(url);
  try {
    const [row] = await sql`select current_setting('server_version_num')::int as n`;
    assert.equal(serverMajorVersion(sql), Math.floor(row.n / 10000));
  } finally {
    await sql.end();
  }
});

pgTest("requireServerVersion() stops a server older than the minimum", async ({ url }) => {
  const sql = await openDatabase(url);
  try {
    const major = serverMajorVersion(sql);
    requireServerVersion(sql, major, "Cannot load");
    assert.throws(
      () => requireServerVersion(sql, major + 1, "Cannot load"),
      (error: unknown) => {
        assert.ok(error instanceof MissingError, String(error));
        assert.equal(
          error.message,
          `Cannot load: the server runs PostgreSQL ${major}; ${major + 1} or newer is needed`,
        );
        return true;
      },
    );
  } finally {
    await sql.end();
  }
});

function circular(): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  value.self = value;
  return value;
}
