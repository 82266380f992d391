/**
 * Config lookups: values a config takes from a database row before the run
 * starts, as `${lookup:NAME.COLUMN}`; the ServiceDesk import reads a tenant's
 * base URL and API key from a `tenant_configs` table this way.
 *
 * A lookup is declared once, in the config's `lookups` section: where to ask
 * (`postgres` URL or `sqlite` file), one query with `$1`-style parameters,
 * and the columns it must return (which are secret, and an example value
 * that `validate` uses, so checking a config needs no database). The query
 * must return exactly one row: none is a missing thing (exit 2, "tenant not
 * found"), several a config problem (exit 1).
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { ConfigError, errorMessage, MissingError, RemoteError, TicketsyncError } from "./errors.ts";
import { openDatabase, pgErrorMessage } from "./postgres.ts";
import { namedLikeSecret, secret } from "./secret.ts";
import { openDatabase as openSqlite } from "./sqlite.ts";

/** A column a lookup returns. */
export const lookupColumnSchema = z.object({
  secret: z.boolean().default(false).describe(
    "Redact the value from all output (columns named like key, token, secret or password always are).",
  ),
  example: z.union([z.string(), z.number(), z.boolean()]).default("example").describe(
    "Value `validate` and `--help` use instead of asking the database.",
  ),
}).strict();

/** One lookup: a query returning one row. */
export const lookupSchema = z.object({
  postgres: secret(z.string().min(1)).optional().describe(
    "PostgreSQL URL to query, e.g. ${env:DATABASE_URL}.",
  ),
  sqlite: z.string().min(1).optional().describe(
    "SQLite file to query (relative to the working directory); it must exist.",
  ),
  query: z.string().min(1).describe(
    'One SELECT returning one row, parameters as $1, $2, ..., e.g. "select base_url, api_key from tenant_configs where tenant_id = $1".',
  ),
  params: z.array(z.union([z.string(), z.number(), z.boolean()])).default([]).describe(
    "Values of $1, $2, ... (usually ${var:...}).",
  ),
  columns: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), lookupColumnSchema).refine(
    (columns) => Object.keys(columns).length > 0,
    "expected at least one column",
  ).describe("The columns the row must have, usable as ${lookup:NAME.COLUMN}."),
  missing: z.string().optional().describe(
    'Message when no row matches, e.g. "tenant ${var:tenant-id} is not in tenant_configs".',
  ),
}).strict().refine(
  (lookup) => (lookup.postgres === undefined) !== (lookup.sqlite === undefined),
  "expected exactly one of postgres or sqlite",
);

/** A declared lookup. */
export type Lookup = z.output<typeof lookupSchema>;

/** The `lookups` section: lookups by name. */
export const lookupsSchema = z.record(
  z.string().regex(/^[a-z][a-z0-9_-]*$/, "expected a lower-case name like tenant"),
  lookupSchema,
);

/** Looked-up values: `values[name][column]`. */
export type LookupValues = Record<string, Record<string, unknown>>;

/** Whether a declared column's value must be redacted. */
export function isSecretColumn(name: string, column: Lookup["columns"][string]): boolean {
  return column.secret || namedLikeSecret(name);
}

/** Every lookup's example values, for checking a config without a database. */
export function exampleValues(lookups: Record<string, Lookup>): LookupValues {
  const out: LookupValues = {};
  for (const [name, lookup] of Object.entries(lookups)) {
    out[name] = Object.fromEntries(
      Object.entries(lookup.columns).map(([column, spec]) => [column, spec.example]),
    );
  }
  return out;
}

/**
 * Runs every lookup; returns its row's declared columns. Throws
 * {@linkcode MissingError} (exit 2) when a query matches no row or a declared
 * column is null, {@linkcode ConfigError} (exit 1) when it matches several or
 * lacks a declared column, {@linkcode RemoteError} (exit 3) when the database
 * cannot be asked.
 */
export async function runLookups(
  lookups: Record<string, Lookup>,
  cwd: string,
): Promise<LookupValues> {
  const out: LookupValues = {};
  for (const [name, lookup] of Object.entries(lookups)) {
    const rows = lookup.postgres !== undefined
      ? await queryPostgres(name, lookup.postgres, lookup)
      : querySqlite(name, resolve(cwd, lookup.sqlite!), lookup);
    out[name] = pickRow(name, lookup, rows);
  }
  return out;
}

function pickRow(
  name: string,
  lookup: Lookup,
  rows: Record<string, unknown>[],
): Record<string, unknown> {
  const at = `lookups.${name}`;
  if (rows.length === 0) {
    throw new MissingError(
      `${at}: ${lookup.missing ?? `no row for ${JSON.stringify(lookup.params)}`}`,
    );
  }
  if (rows.length > 1) {
    throw new ConfigError(
      `${at}: expected one row, got ${rows.length} for ${
        JSON.stringify(lookup.params)
      } (the query must select one)`,
    );
  }
  const row = rows[0];
  const values: Record<string, unknown> = {};
  for (const column of Object.keys(lookup.columns)) {
    if (!(column in row)) {
      throw new ConfigError(
        `${at}.columns.${column}: the query returned no such column (it returned ${
          Object.keys(row).join(", ") || "none"
        })`,
      );
    }
    const value = row[column];
    if (value === null || value === undefined) {
      throw new MissingError(`${at}: ${column} is null in the row found`);
    }
    values[column] = plainValue(value);
  }
  return values;
}

/** A database value as a config value: text, a number or a boolean. */
function plainValue(value: unknown): unknown {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value;
  }
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

async function queryPostgres(
  name: string,
  url: string,
  lookup: Lookup,
): Promise<Record<string, unknown>[]> {
  let sql;
  try {
    sql = await openDatabase(url, { max: 1, fetchTypes: false });
  } catch (error) {
    throw withContext(name, error);
  }
  try {
    return [...await sql.unsafe(lookup.query, lookup.params.map(String))];
  } catch (error) {
    throw new RemoteError(
      `lookups.${name}: the query failed: ${pgErrorMessage(error)}`,
      undefined,
      {
        cause: error,
      },
    );
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

function querySqlite(name: string, path: string, lookup: Lookup): Record<string, unknown>[] {
  let db;
  try {
    db = openSqlite(path, { create: false, readOnly: true });
  } catch (error) {
    throw withContext(name, error);
  }
  try {
    // SQLite reads `$1` as a parameter named "$1".
    const named = Object.fromEntries(
      lookup.params.map((
        value,
        i,
      ) => [`$${i + 1}`, typeof value === "boolean" ? Number(value) : value]),
    );
    const statement = db.prepare(lookup.query);
    const rows = lookup.params.length ? statement.all(named) : statement.all();
    return rows as Record<string, unknown>[];
  } catch (error) {
    throw new ConfigError(`lookups.${name}: the query failed: ${errorMessage(error)}`);
  } finally {
    db.close();
  }
}

/** An error opening the database, named after the lookup that needed it. */
function withContext(name: string, error: unknown): Error {
  if (!(error instanceof TicketsyncError)) {
    return new RemoteError(`lookups.${name}: ${errorMessage(error)}`, undefined, { cause: error });
  }
  error.message = `lookups.${name}: ${error.message}`;
  return error;
}
