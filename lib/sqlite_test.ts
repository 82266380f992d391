import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, MissingError, RecordError } from "./errors.ts";
import {
  type Column,
  columnChanges,
  openDatabase,
  quoteIdent,
  rawChanges,
  resolveColumns,
  rowValues,
  savepoint,
  tableColumns,
  tableExists,
  toSqlValue,
  transaction,
} from "./sqlite.ts";

Deno.test("openDatabase() creates the parent directory and enables WAL", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "nested/deeper/state.db");
  const db = openDatabase(path, { create: true });
  try {
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    assert.equal(db.prepare("PRAGMA synchronous").get()?.synchronous, 1); // NORMAL
    assert.equal(db.prepare("PRAGMA busy_timeout").get()?.timeout, 5000);
    assert.ok((await Deno.stat(path)).isFile);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDatabase() refuses a missing file unless asked to create it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "missing.db");
    assert.throws(
      () => openDatabase(path, { create: false }),
      (error) =>
        error instanceof MissingError &&
        error.message === `Cannot open database "${path}": the file does not exist`,
    );
    assert.throws(() => openDatabase(path, { create: true, readOnly: true }), MissingError);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDatabase() read-only refuses writes", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "ro.db");
  const writer = openDatabase(path, { create: true });
  writer.exec("CREATE TABLE t (a TEXT)");
  writer.close();
  const reader = openDatabase(path, { create: false, readOnly: true });
  try {
    assert.ok(tableExists(reader, "t"));
    assert.throws(() => reader.exec("INSERT INTO t VALUES ('x')"), /readonly/);
  } finally {
    reader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quoteIdent() quotes plain names and rejects anything else", () => {
  assert.equal(quoteIdent("tickets_2025"), `"tickets_2025"`);
  assert.equal(quoteIdent("_x"), `"_x"`);
  for (const bad of ["", "1abc", "a-b", 'a"b', "t; DROP TABLE x", "naïve"]) {
    assert.throws(() => quoteIdent(bad), ConfigError, bad);
  }
  assert.throws(
    () => quoteIdent("a b"),
    (error) =>
      error instanceof ConfigError &&
      error.message ===
        'Invalid SQL identifier "a b": use letters, digits and underscores, not starting with a digit',
  );
});

Deno.test("transaction() commits on success and rolls back on throw", () => {
  const db = openDatabase(":memory:", { create: true });
  try {
    db.exec("CREATE TABLE t (a TEXT)");
    const value = transaction(db, () => {
      db.prepare("INSERT INTO t VALUES (?)").run("kept");
      return 42;
    });
    assert.equal(value, 42);
    assert.throws(() =>
      transaction(db, () => {
        db.prepare("INSERT INTO t VALUES (?)").run("lost");
        throw new Error("boom");
      }), /boom/);
    assert.deepEqual(db.prepare("SELECT a FROM t").all().map((row) => row.a), ["kept"]);
    assert.equal(db.isTransaction, false);
  } finally {
    db.close();
  }
});

Deno.test("savepoint() undoes only its own writes inside a transaction", () => {
  const db = openDatabase(":memory:", { create: true });
  try {
    db.exec("CREATE TABLE t (a TEXT)");
    transaction(db, () => {
      db.prepare("INSERT INTO t VALUES (?)").run("outer");
      assert.throws(() =>
        savepoint(db, () => {
          db.prepare("INSERT INTO t VALUES (?)").run("inner");
          throw new Error("child failed");
        }), /child failed/);
      savepoint(db, () => db.prepare("INSERT INTO t VALUES (?)").run("second"));
    });
    assert.deepEqual(db.prepare("SELECT a FROM t ORDER BY a").all().map((row) => row.a), [
      "outer",
      "second",
    ]);
  } finally {
    db.close();
  }
});

Deno.test("tableColumns() lists a table's columns", () => {
  const db = openDatabase(":memory:", { create: true });
  try {
    assert.deepEqual(tableColumns(db, "t"), []);
    assert.equal(tableExists(db, "t"), false);
    db.exec("CREATE TABLE t (a TEXT, b INTEGER)");
    assert.deepEqual(tableColumns(db, "t"), ["a", "b"]);
  } finally {
    db.close();
  }
});

Deno.test("resolveColumns() defaults from to the column name and rejects reserved names", () => {
  assert.deepEqual(
    resolveColumns({ city: { type: "text" }, n: { from: "a.b", type: "integer" } }, ["key"]),
    [{ name: "city", from: "city", type: "text" }, { name: "n", from: "a.b", type: "integer" }],
  );
  assert.throws(() => resolveColumns({ KEY: { type: "text" } }, ["key"]), ConfigError);
  assert.throws(() => resolveColumns({ "bad name": { type: "text" } }, []), ConfigError);
});

Deno.test("toSqlValue() converts per column type", () => {
  const col = (type: Column["type"]): Column => ({ name: "c", from: "f", type });
  assert.equal(toSqlValue(col("text"), 12), "12");
  assert.equal(toSqlValue(col("text"), { b: 1, a: 2 }), `{"a":2,"b":1}`);
  assert.equal(toSqlValue(col("text"), undefined), null);
  assert.equal(toSqlValue(col("integer"), "42"), 42);
  assert.equal(toSqlValue(col("real"), "2.5"), 2.5);
  assert.equal(toSqlValue(col("boolean"), "Yes"), 1);
  assert.equal(toSqlValue(col("boolean"), false), 0);
  assert.equal(toSqlValue(col("json"), [1, "a"]), `[1,"a"]`);
  assert.throws(
    () => toSqlValue(col("integer"), "4.5"),
    (error) =>
      error instanceof RecordError &&
      error.message === 'Cannot store field "f" in column "c": expected an integer, got "4.5"',
  );
  assert.throws(() => toSqlValue(col("real"), ""), RecordError);
  assert.throws(() => toSqlValue(col("boolean"), "maybe"), RecordError);
});

Deno.test("columnChanges() and rawChanges() list differing fields", () => {
  const columns: Column[] = [
    { name: "city", from: "city", type: "text" },
    { name: "n", from: "n", type: "integer" },
  ];
  const values = rowValues(columns, { city: "Austin", n: 3 });
  assert.deepEqual(columnChanges(columns, { city: "Austin", n: 2 }, values), [
    { path: "n", before: 2, after: 3 },
  ]);
  assert.deepEqual(columnChanges(columns, {}, values), [
    { path: "city", before: null, after: "Austin" },
    { path: "n", before: null, after: 3 },
  ]);
  assert.deepEqual(rawChanges(`{"a":1,"b":2}`, { a: 1, c: 3 }, "raw."), [
    { path: "raw.b", before: 2, after: null },
    { path: "raw.c", before: null, after: 3 },
  ]);
});
