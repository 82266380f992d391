/**
 * PostgreSQL helpers shared by the postgres stages: connecting (postgres.js)
 * with errors that name a redacted URL, identifier quoting, the column types a
 * config may use, and converting record values to those types in TypeScript
 * before they are sent, so one bad value fails one record, not a batch.
 * @module
 */
import type postgres from "postgres";
import { ConfigError, MissingError, RemoteError } from "./errors.ts";

/** A postgres.js client. */
export type Sql = postgres.Sql;

/** The column types a config may declare. */
export const PG_TYPES = [
  "text",
  "integer",
  "bigint",
  "numeric",
  "double precision",
  "boolean",
  "timestamptz",
  "date",
  "jsonb",
  "text[]",
] as const;

/** One of {@linkcode PG_TYPES}. */
export type PgType = typeof PG_TYPES[number];

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /** Pool size (default 4). */
  max?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
  /** Seconds an idle connection stays open (default 30; 0 for no limit). */
  idleTimeout?: number;
  /** Called when a connection closes (also when the server cut it). */
  onclose?: (connectionId: number) => void;
  /**
   * Ask the server for its array types when connecting (default true), so
   * array columns in results arrive as arrays. A client that reads no array
   * saves that query (about 15 ms of every start).
   */
  fetchTypes?: boolean;
}

/**
 * A postgres.js client for `url`: notices silenced, a small pool, prepared
 * statements, a connect timeout. Connects lazily; use {@linkcode openDatabase}
 * to fail early with a plain error. postgres.js itself is loaded on first use,
 * so a pipeline without a PostgreSQL stage never pays for it at start-up.
 */
export async function connect(url: string, opts: ConnectOptions = {}): Promise<Sql> {
  const { default: postgresJs } = await import("postgres");
  try {
    return postgresJs(url, {
      max: opts.max ?? 4,
      prepare: true,
      connect_timeout: opts.connectTimeout ?? 10,
      idle_timeout: opts.idleTimeout ?? 30,
      onnotice: () => {},
      onclose: opts.onclose,
      fetch_types: opts.fetchTypes ?? true,
      connection: { application_name: "ticketsync" },
    });
  } catch (error) {
    throw new ConfigError(`Invalid PostgreSQL URL "${redactUrl(url)}": ${pgErrorMessage(error)}`);
  }
}

/**
 * Connects and runs `select 1`, so a wrong host or database fails before
 * anything is read: an unknown database is a {@linkcode MissingError}, any
 * other failure (refused, timeout, authentication) a {@linkcode RemoteError}.
 * Messages name the URL with its password redacted.
 */
export async function openDatabase(url: string, opts: ConnectOptions = {}): Promise<Sql> {
  const sql = await connect(url, opts);
  try {
    await sql`select 1`;
    return sql;
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw connectError(url, error);
  }
}

/**
 * The server's major version (15 for "15.19 (Debian 15.19-0+deb12u1)"), from
 * what the server reported when the client connected; NaN before that.
 */
export function serverMajorVersion(sql: Sql): number {
  const parameters = sql.parameters as unknown as Record<string, string | undefined>;
  return Number.parseInt(parameters.server_version ?? "", 10);
}

/**
 * Throws a {@linkcode MissingError} naming `user` when the server's major
 * version is below `minimum` (a server whose version is unknown is let through).
 */
export function requireServerVersion(sql: Sql, minimum: number, user: string): void {
  const major = serverMajorVersion(sql);
  if (major < minimum) {
    throw new MissingError(
      `${user}: the server runs PostgreSQL ${major}; ${minimum} or newer is needed`,
    );
  }
}

/** The error to throw when connecting to `url` failed with `error`. */
export function connectError(url: string, error: unknown): MissingError | RemoteError {
  const message = `Cannot connect to "${redactUrl(url)}": ${pgErrorMessage(error)}`;
  if (sqlState(error) === "3D000") return new MissingError(message, { cause: error });
  return new RemoteError(message, undefined, { cause: error });
}

/** `url` with its password (in the authority or a `password=` parameter) replaced by `***`. */
export function redactUrl(url: string): string {
  return url
    // Up to the last `@` before the path: a password may hold a raw `@`.
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^\s/]*@/i, "$1***@")
    .replace(/([?&]password=)[^&]*/i, "$1***");
}

/** The SQLSTATE code of a PostgreSQL error, if `error` is one. */
export function sqlState(error: unknown): string | undefined {
  if (error !== null && typeof error === "object" && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/**
 * Whether `error` is about the data of rows (SQLSTATE class 22 data exception,
 * 23 integrity constraint violation, or 21000: one statement touched a row
 * twice), not the connection or the statement.
 */
export function isRowError(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined &&
    (code.startsWith("22") || code.startsWith("23") || code === "21000");
}

/** A one-line message for a postgres.js or socket error. */
export function pgErrorMessage(error: unknown): string {
  if (error !== null && typeof error === "object") {
    const e = error as { message?: unknown; code?: unknown; detail?: unknown };
    const message = typeof e.message === "string" && e.message !== "" ? e.message : String(e.code);
    if (e.code === "ECONNREFUSED") return `connection refused (${message})`;
    if (e.code === "CONNECT_TIMEOUT") return `connection timed out (${message})`;
    return typeof e.detail === "string" ? `${message} (${e.detail})` : message;
  }
  return String(error);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** `name` double-quoted, after checking it is a plain identifier; otherwise a {@linkcode ConfigError}. */
export function quoteIdent(name: string): string {
  if (typeof name !== "string" || !IDENT.test(name)) {
    throw new ConfigError(
      `Invalid identifier ${
        JSON.stringify(name)
      }: expected letters, digits, "_" or "$", not starting with a digit`,
    );
  }
  // PostgreSQL would cut a longer name silently, then not find the column it created.
  if (name.length > MAX_IDENT) {
    throw new ConfigError(
      `Invalid identifier ${
        JSON.stringify(name)
      }: expected at most ${MAX_IDENT} characters (PostgreSQL's limit), got ${name.length}`,
    );
  }
  return `"${name}"`;
}

/** PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1); IDENT allows ASCII only. */
const MAX_IDENT = 63;

/** A table name split into schema (default `public`) and table. */
export interface TableName {
  schema: string;
  table: string;
}

/** Splits `schema.table` (or `table`, in `public`) after checking both parts. */
export function parseTableName(name: string): TableName {
  const parts = typeof name === "string" ? name.split(".") : [];
  if (parts.length < 1 || parts.length > 2) {
    throw new ConfigError(
      `Invalid table name ${JSON.stringify(name)}: expected "table" or "schema.table"`,
    );
  }
  for (const part of parts) quoteIdent(part);
  return parts.length === 2
    ? { schema: parts[0], table: parts[1] }
    : { schema: "public", table: parts[0] };
}

/** `"tickets"."inc"` for `tickets.inc`: each part checked and quoted. */
export function qualifiedName(name: string): string {
  const { schema, table } = parseTableName(name);
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** A converted value: its PostgreSQL text form (or `null`), or why it cannot be converted. */
export type Converted = { ok: true; value: string | null } | { ok: false; reason: string };

const INTEGER_RANGE = {
  integer: [-(2n ** 31n), 2n ** 31n - 1n],
  bigint: [-(2n ** 63n), 2n ** 63n - 1n],
};
const INTEGER_TEXT = /^[+-]?\d+$/;
const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const ISO_INSTANT =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$/;
const BOOLEAN_TEXT: Record<string, boolean> = {
  true: true,
  t: true,
  yes: true,
  y: true,
  "1": true,
  false: false,
  f: false,
  no: false,
  n: false,
  "0": false,
};

/**
 * Converts a record value to the text PostgreSQL accepts for `type`.
 * `undefined`, `null` and (for every type but text) `""` become `null`.
 * Timestamps need a zone or offset (a bare local time is ambiguous) or are
 * epoch milliseconds.
 */
export function convertValue(value: unknown, type: PgType): Converted {
  // Most values are text for a text column: nothing to convert.
  if (type === "text" && typeof value === "string" && !value.includes("\u0000")) {
    return { ok: true, value };
  }
  if (value === undefined || value === null) return { ok: true, value: null };
  if (value === "" && type !== "text") return { ok: true, value: null };
  let result: string | undefined | Converted;
  try {
    result = convertPresent(value, type);
  } catch {
    result = undefined; // e.g. a circular object for jsonb
  }
  if (result === undefined) {
    return { ok: false, reason: `cannot convert ${showValue(value)} to ${type}` };
  }
  if (typeof result === "object") return result;
  if (result.includes("\u0000")) {
    return { ok: false, reason: `${showValue(value)} contains a NUL character` };
  }
  return { ok: true, value: result };
}

/** The text form, `undefined` when the value does not fit, or a failure with its own reason. */
function convertPresent(value: unknown, type: PgType): string | undefined | Converted {
  switch (type) {
    case "text":
      return scalarText(value);
    case "integer":
    case "bigint":
      return convertInteger(value, type);
    case "numeric":
    case "double precision":
      return convertNumber(value);
    case "boolean":
      return convertBoolean(value);
    case "timestamptz":
      return convertInstant(value);
    case "date":
      return convertDate(value);
    case "jsonb":
      return toJson(value);
    case "text[]":
      return convertTextArray(value);
  }
}

function scalarText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Temporal.Instant || value instanceof Temporal.PlainDate) {
    return value.toString();
  }
  return toJson(value);
}

function convertInteger(value: unknown, type: "integer" | "bigint"): string | undefined {
  let parsed: bigint;
  if (typeof value === "bigint") parsed = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) parsed = BigInt(value);
  else if (typeof value === "string" && INTEGER_TEXT.test(value.trim())) {
    parsed = BigInt(value.trim());
  } else return undefined;
  const [min, max] = INTEGER_RANGE[type];
  return parsed < min || parsed > max ? undefined : parsed.toString();
}

function convertNumber(value: unknown): string | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string" && DECIMAL_TEXT.test(value.trim())) return value.trim();
  return undefined;
}

function convertBoolean(value: unknown): string | undefined {
  if (typeof value === "boolean") return String(value);
  if (value === 1 || value === 0) return String(value === 1);
  if (typeof value === "string") {
    const parsed = BOOLEAN_TEXT[value.trim().toLowerCase()];
    return parsed === undefined ? undefined : String(parsed);
  }
  return undefined;
}

function convertInstant(value: unknown): string | undefined {
  try {
    if (value instanceof Temporal.Instant) return value.toString();
    if (value instanceof Temporal.ZonedDateTime) return value.toInstant().toString();
    if (value instanceof Date) {
      return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
    }
    if (typeof value === "number" && Number.isFinite(value)) {
      return Temporal.Instant.fromEpochMilliseconds(Math.trunc(value)).toString();
    }
    if (typeof value === "string") {
      const text = value.trim();
      // Fast path (Temporal parsing is slow on 100k+ values): PostgreSQL reads
      // this form exactly; an impossible date it rejects fails that row only.
      if (ISO_INSTANT.test(text)) return text;
      return Temporal.Instant.from(text).toString();
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function convertDate(value: unknown): string | undefined {
  try {
    if (value instanceof Temporal.PlainDate) return value.toString();
    if (value instanceof Date) {
      return Number.isNaN(value.getTime()) ? undefined : value.toISOString().slice(0, 10);
    }
    if (typeof value === "string") return Temporal.PlainDate.from(value.trim()).toString();
  } catch {
    return undefined;
  }
  return undefined;
}

function convertTextArray(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  const elements = value.map(function arrayElement(element) {
    if (element === null || element === undefined) return "NULL";
    return `"${scalarText(element).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${elements.join(",")}}`;
}

/** JSON text of `value` (bigints as strings, `undefined` as `null`). */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    // A bigint somewhere (rare): retry with a replacer, which is much slower.
    return JSON.stringify(value, function jsonValue(_key, v) {
      return typeof v === "bigint" ? v.toString() : v;
    }) ?? "null";
  }
}

/** A value for a message: quoted, shortened to 60 characters. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : toJson(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
