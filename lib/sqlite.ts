/**
 * Small helpers over `node:sqlite` (built into Deno): opening a database the
 * way every embedded store here wants it, quoting identifiers from config,
 * transactions, and typed columns mapped from record fields.
 * @module
 */
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { z } from "zod";
import { diffFields } from "./diff.ts";
import { ConfigError, MissingError, RecordError } from "./errors.ts";
import { stableStringify } from "./hash.ts";
import { getPath } from "./paths.ts";
import type { FieldChange } from "./stage.ts";

export type { DatabaseSync, StatementSync };

/** A value `node:sqlite` binds to a statement parameter. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** Options for {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /** Create the file (and its parent directory) when missing; otherwise a missing file is an error. */
  create: boolean;
  /** Open read-only (for `plan`): no pragma that writes is issued. */
  readOnly?: boolean;
}

/**
 * Opens a SQLite file tuned for a single-host tool: WAL journal (readers never
 * block the writer), `synchronous=NORMAL` (durable at each checkpoint, fast
 * commits) and a 5 s busy timeout. `:memory:` is accepted.
 * @throws {MissingError} when the file does not exist and `create` is false.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions): DatabaseSync {
  const memory = path === ":memory:";
  if (!memory && !fileExists(path)) {
    if (!options.create || options.readOnly) {
      throw new MissingError(`Cannot open database "${path}": the file does not exist`);
    }
    Deno.mkdirSync(dirname(path), { recursive: true });
  }
  const db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    if (!options.readOnly) {
      if (!memory) db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Whether `path` names an existing file. */
export function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `name` as a double-quoted SQL identifier. Only plain names are accepted, so
 * a table or column name from config can never inject SQL.
 * @throws {ConfigError} for anything but letters, digits and underscores.
 */
export function quoteIdent(name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new ConfigError(
      `Invalid SQL identifier "${name}": use letters, digits and underscores, not starting with a digit`,
    );
  }
  return `"${name}"`;
}

/**
 * Runs `fn` inside `BEGIN IMMEDIATE` (the write lock is taken up front, so a
 * busy database fails here rather than at commit) and commits; rolls back and
 * re-throws if `fn` throws. `fn` must be synchronous: `node:sqlite` is.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  let value: T;
  try {
    value = fn();
  } catch (error) {
    rollbackQuietly(db, "ROLLBACK");
    throw error;
  }
  try {
    db.exec("COMMIT");
  } catch (error) {
    rollbackQuietly(db, "ROLLBACK");
    throw error;
  }
  return value;
}

let savepointCounter = 0;

/**
 * Runs `fn` inside a savepoint (nestable, usable inside {@linkcode transaction}):
 * released on success, rolled back on throw, so one record's partial writes
 * never survive its failure while the surrounding batch goes on.
 */
export function savepoint<T>(db: DatabaseSync, fn: () => T): T {
  const name = `sp_${++savepointCounter}`;
  db.exec(`SAVEPOINT ${name}`);
  let value: T;
  try {
    value = fn();
  } catch (error) {
    rollbackQuietly(db, `ROLLBACK TO ${name}; RELEASE ${name}`);
    throw error;
  }
  db.exec(`RELEASE ${name}`);
  return value;
}

function rollbackQuietly(db: DatabaseSync, sql: string): void {
  try {
    db.exec(sql);
  } catch {
    // The transaction may already be gone (SQLite rolls back on some errors); the original error matters.
  }
}

/** Whether `table` exists in the main schema. */
export function tableExists(db: DatabaseSync, table: string): boolean {
  // SQLite's names are case-insensitive: "Tickets" is the table "tickets".
  const row = db.prepare(
    "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
  ).get(table);
  return row !== undefined;
}

/**
 * The column names of `table`, lower-cased (empty when it does not exist):
 * SQLite's names are case-insensitive, so "City" is the column "city".
 */
export function tableColumns(db: DatabaseSync, table: string): string[] {
  const rows = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all();
  return rows.map((row) => String(row.name).toLowerCase());
}

// ---------------------------------------------------------------------------
// Typed columns mapped from record fields (shared by the SQLite sinks).

/** The column types a config may ask for. */
export const COLUMN_TYPES = ["text", "integer", "real", "boolean", "json"] as const;

/** One of {@linkcode COLUMN_TYPES}. */
export type ColumnType = typeof COLUMN_TYPES[number];

/** Config schema of one typed column. */
export const columnSchema = z.object({
  from: z.string().min(1).optional().describe(
    "Dotted path of the field to store (default: the column name).",
  ),
  type: z.enum(COLUMN_TYPES).default("text").describe(
    "SQLite type: text, integer, real, boolean (stored 0/1) or json (stored as JSON text).",
  ),
}).strict();

/** Config schema of a column map: `{ "<column>": { from?, type } }`. */
export const columnsSchema = z.record(z.string(), columnSchema);

/** A typed column after config resolution. */
export interface Column {
  name: string;
  from: string;
  type: ColumnType;
}

const SQL_TYPES: Record<ColumnType, string> = {
  text: "TEXT",
  integer: "INTEGER",
  real: "REAL",
  boolean: "INTEGER",
  json: "TEXT",
};

/** The SQLite declared type of a column type. */
export function sqlType(type: ColumnType): string {
  return SQL_TYPES[type];
}

/**
 * The table rules of a SQLite sink's config, as a zod refinement (so config
 * validation reports each problem with its path): the table, every column and
 * the raw column are plain identifiers; no column takes a name the sink
 * manages (`managed`, compared case-insensitively as SQLite does); the raw
 * column takes a name no other column has.
 */
export function checkTableConfig(
  config: { table: string; columns: Record<string, unknown>; raw: string | null },
  managed: readonly string[],
  ctx: z.RefinementCtx,
): void {
  const issue = (path: PropertyKey[], message: string, input?: unknown) =>
    ctx.addIssue({ code: "custom", path, message, input });
  const plain = "expected letters, digits and underscores, not starting with a digit";
  const taken = (name: string, names: readonly string[]) =>
    names.some((other) => other.toLowerCase() === name.toLowerCase());
  if (!IDENTIFIER.test(config.table)) {
    issue(["table"], `invalid table name: ${plain}`, config.table);
  }
  const seen: string[] = [];
  for (const name of Object.keys(config.columns)) {
    if (!IDENTIFIER.test(name)) {
      issue(["columns", name], `invalid column name: ${plain}`);
    } else if (taken(name, seen)) {
      issue(["columns", name], "expected a name no other column has (SQLite ignores case)");
    } else if (taken(name, managed)) {
      issue(
        ["columns", name],
        `the column is managed by the sink: expected a name other than ${
          managed.map((other) => `"${other}"`).join(", ")
        }`,
      );
    }
    seen.push(name);
  }
  const raw = config.raw;
  if (raw === null) return;
  if (!IDENTIFIER.test(raw)) {
    issue(["raw"], `invalid column name: ${plain}`, raw);
  } else if (taken(raw, [...managed, ...Object.keys(config.columns)])) {
    issue(["raw"], "expected a name no other column of the table has", raw);
  }
}

/**
 * Resolves a column map from config, checking names are plain identifiers and
 * none collides with a column the sink manages itself.
 * @throws {ConfigError} naming the offending column.
 */
export function resolveColumns(
  columns: Record<string, z.output<typeof columnSchema>>,
  reserved: readonly string[],
): Column[] {
  const out: Column[] = [];
  for (const [name, spec] of Object.entries(columns)) {
    if (!IDENTIFIER.test(name)) {
      throw new ConfigError(
        `columns."${name}": invalid column name: use letters, digits and underscores, not starting with a digit`,
      );
    }
    if (reserved.some((other) => other.toLowerCase() === name.toLowerCase())) {
      throw new ConfigError(
        `columns."${name}": the column is managed by the sink: reserved names are ${
          reserved.map((other) => `"${other}"`).join(", ")
        }`,
      );
    }
    out.push({ name, from: spec.from ?? name, type: spec.type });
  }
  return out;
}

/**
 * Converts one field value to what `column` stores. `null`/`undefined` store
 * NULL; numeric strings are accepted for numbers, `"true"`/`"yes"`/`"1"` and
 * their opposites for booleans.
 * @throws {RecordError} when the value cannot be stored as the column's type.
 */
export function toSqlValue(column: Column, value: unknown): SqlValue {
  if (value === null || value === undefined) return null;
  switch (column.type) {
    case "text":
      if (typeof value === "string") return value;
      if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
        return String(value);
      }
      return stableStringify(value);
    case "integer": {
      if (typeof value === "bigint") return value;
      // Text holding a whole number: exactly, as SQLite's 64-bit integer (a Number would round it).
      if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) {
        const whole = BigInt(value.trim());
        if (whole >= -(2n ** 63n) && whole < 2n ** 63n) {
          return Number.isSafeInteger(Number(whole)) ? Number(whole) : whole;
        }
        throw typeError(column, "an integer within 64 bits", value);
      }
      const number = typeof value === "number"
        ? value
        : typeof value === "string" && value.trim() !== ""
        ? Number(value)
        : NaN;
      if (Number.isInteger(number)) return number;
      throw typeError(column, "an integer", value);
    }
    case "real": {
      const number = typeof value === "number"
        ? value
        : typeof value === "string" && value.trim() !== ""
        ? Number(value)
        : NaN;
      if (Number.isFinite(number)) return number;
      throw typeError(column, "a number", value);
    }
    case "boolean":
      return toBoolean(column, value);
    case "json":
      return stableStringify(value);
  }
}

const TRUE_WORDS = new Set(["true", "yes", "y", "1", "t"]);
const FALSE_WORDS = new Set(["false", "no", "n", "0", "f"]);

function toBoolean(column: Column, value: unknown): number {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === 0 || value === 1) return value;
  if (typeof value === "string") {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return 1;
    if (FALSE_WORDS.has(word)) return 0;
  }
  throw typeError(column, "a boolean", value);
}

function typeError(column: Column, expected: string, value: unknown): RecordError {
  const shown = typeof value === "string" ? `"${value}"` : stableStringify(value);
  return new RecordError(
    `Cannot store field "${column.from}" in column "${column.name}": expected ${expected}, got ${shown}`,
  );
}

/** The values of every column for `data`, in column order. */
export function rowValues(columns: readonly Column[], data: unknown): SqlValue[] {
  return columns.map((column) => toSqlValue(column, getPath(data, column.from)));
}

/**
 * The typed columns whose stored value differs from the new one (for `plan`).
 * `stored` is the destination row (missing columns count as NULL).
 */
export function columnChanges(
  columns: readonly Column[],
  stored: Record<string, unknown>,
  values: readonly SqlValue[],
  prefix = "",
): FieldChange[] {
  const changes: FieldChange[] = [];
  columns.forEach((column, index) => {
    const before = normalizeStored(stored[column.name]);
    const after = normalizeStored(values[index]);
    if (before !== after) changes.push({ path: prefix + column.name, before, after });
  });
  return changes;
}

/** Top-level fields that differ between a stored JSON object and the new data (for `plan`). */
export function rawChanges(
  storedJson: unknown,
  data: Record<string, unknown>,
  prefix: string,
): FieldChange[] {
  let before: Record<string, unknown> = {};
  if (typeof storedJson === "string") {
    try {
      const parsed = JSON.parse(storedJson);
      if (parsed !== null && typeof parsed === "object") before = parsed;
    } catch {
      // An unparsable stored value differs from everything; show every field as new.
    }
  }
  return diffFields(before, data, prefix);
}

function normalizeStored(value: unknown): unknown {
  if (value === undefined) return null;
  // SQLite may return bigint for large integers; compare as numbers where safe.
  if (
    typeof value === "bigint" && value <= BigInt(Number.MAX_SAFE_INTEGER) &&
    value >= BigInt(Number.MIN_SAFE_INTEGER)
  ) return Number(value);
  // The other way round too: an integer number beyond 2^53 compares as the bigint it is stored as.
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return BigInt(value);
  }
  return value;
}

/**
 * A sink's destination table, opened on first use. In plan mode it opens
 * read-only and only if the file exists (a plan never creates one); otherwise
 * it creates the file and lets `ensure` create or extend the table.
 */
export class LazyTable {
  #db: DatabaseSync | null = null;
  /** Columns the table has, lower-cased (plan mode reads only these); ask {@linkcode has}. */
  present: Set<string> = new Set();

  /** Whether the table has column `name` (in any case). */
  has(name: string): boolean {
    return this.present.has(name.toLowerCase());
  }

  constructor(
    readonly path: string,
    readonly table: string,
    readonly plan: boolean,
    readonly ensure: (db: DatabaseSync) => void,
  ) {}

  /** The open database, or null in plan mode when the file does not exist. */
  open(): DatabaseSync | null {
    if (this.#db !== null) return this.#db;
    if (this.plan) {
      if (!fileExists(this.path)) return null;
      this.#db = openDatabase(this.path, { create: false, readOnly: true });
      this.present = new Set(
        tableExists(this.#db, this.table) ? tableColumns(this.#db, this.table) : [],
      );
      return this.#db;
    }
    this.#db = openDatabase(this.path, { create: true });
    this.ensure(this.#db);
    this.present = new Set(tableColumns(this.#db, this.table));
    return this.#db;
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
  }
}
