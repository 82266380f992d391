/**
 * The real PostgreSQL the tests use (127.0.0.1:5432, user postgres, database
 * `test`) and a fresh schema per test, dropped afterwards.
 *
 * When the server is unreachable, tests are ignored with a console line saying
 * why; with `TICKETSYNC_REQUIRE_PG=1` (CI) an unreachable server is an error
 * instead, so a missing database can never pass as green.
 * @module
 */
import postgres from "postgres";

/** The URL of the test database. */
export const PG_TEST_URL = "postgres://postgres@127.0.0.1:5432/test";

let probe: Promise<string | null> | undefined;

/**
 * {@linkcode PG_TEST_URL} when the server answers within 3 seconds, else
 * `null` (or a thrown error when `TICKETSYNC_REQUIRE_PG` is `1`). Probed once
 * per test process.
 */
export function pgTestUrl(): Promise<string | null> {
  probe ??= probeServer();
  return probe;
}

async function probeServer(): Promise<string | null> {
  const sql = postgres(PG_TEST_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    await dropStaleSchemas(sql);
    return PG_TEST_URL;
  } catch (error) {
    const why = `PostgreSQL at ${PG_TEST_URL} is unreachable: ${
      error instanceof Error ? error.message : String(error)
    }`;
    if (Deno.env.get("TICKETSYNC_REQUIRE_PG") === "1") {
      throw new Error(`${why} (TICKETSYNC_REQUIRE_PG=1)`);
    }
    console.warn(`${why}; PostgreSQL tests are ignored`);
    return null;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** A client for tests: one connection, notices silenced. End it with `sql.end()`. */
export function testSql(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {}, idle_timeout: 5 });
}

const SCHEMA_NAME = /^ts_test_([0-9a-z]+)_[0-9a-f]{12}$/;
const STALE_MS = 3_600_000;

/**
 * Creates a schema with a unique name (`ts_test_<time>_<random>`) and returns
 * the name.
 */
export async function freshSchema(sql: postgres.Sql): Promise<string> {
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const name = `ts_test_${Date.now().toString(36)}_${random}`;
  await sql.unsafe(`create schema "${name}"`);
  return name;
}

/** Drops a schema made by {@linkcode freshSchema}, with everything in it. */
export async function dropSchema(sql: postgres.Sql, schema: string): Promise<void> {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`Refusing to drop schema "${schema}"`);
  await sql.unsafe(`drop schema if exists "${schema}" cascade`);
}

/** Drops test schemas over an hour old: left behind by a test process that was killed. */
async function dropStaleSchemas(sql: postgres.Sql): Promise<void> {
  const schemas = await sql<{ name: string }[]>`
    select nspname as name from pg_namespace where nspname like 'ts\_test\_%'`;
  for (const { name } of schemas) {
    const created = SCHEMA_NAME.exec(name)?.[1];
    if (created && Date.now() - parseInt(created, 36) > STALE_MS) await dropSchema(sql, name);
  }
}

/** What {@linkcode pgTest} hands a test body. */
export interface PgTestContext {
  url: string;
  sql: postgres.Sql;
  schema: string;
}

const url = await pgTestUrl();

/**
 * Registers a test that gets a client and a fresh schema, and drops the schema
 * and ends the client afterwards, pass or fail. Ignored (with a reason printed
 * once) when PostgreSQL is unreachable.
 */
export function pgTest(name: string, fn: (t: PgTestContext) => Promise<void>): void {
  Deno.test({
    name: url === null ? `${name} (ignored: PostgreSQL unreachable)` : name,
    ignore: url === null,
    async fn() {
      const sql = testSql(url!);
      const schema = await freshSchema(sql);
      try {
        await fn({ url: url!, sql, schema });
      } finally {
        await dropSchema(sql, schema);
        await sql.end();
      }
    },
  });
}
