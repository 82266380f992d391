import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { pgTest } from "../tests/pg_env.ts";
import { withTempDir } from "../tests/harness.ts";
import { ConfigError, MissingError, RemoteError } from "./errors.ts";
import { exampleValues, isSecretColumn, type Lookup, lookupSchema, runLookups } from "./lookup.ts";

function tenantLookup(source: Record<string, string>, tenant: string): Lookup {
  return lookupSchema.parse({
    ...source,
    query: "select base_url, api_key from tenant_configs where tenant_id = $1",
    params: [tenant],
    columns: { base_url: { example: "https://sdp.example.com" }, api_key: {} },
    missing: `tenant "${tenant}" is not in tenant_configs`,
  });
}

/** A SQLite file with a tenant_configs table: acme (full), twin (two rows), nokey (null key). */
function tenantsFile(dir: string): string {
  const path = join(dir, "tenants.db");
  const db = new DatabaseSync(path);
  db.exec(`create table tenant_configs (tenant_id text, base_url text, api_key text);
    insert into tenant_configs values
      ('acme', 'https://sdp.acme.example', 'acme-key-1'),
      ('twin', 'https://a.example', 'k1'), ('twin', 'https://b.example', 'k2'),
      ('nokey', 'https://nokey.example', null);`);
  db.close();
  return path;
}

Deno.test("runLookups() returns the declared columns of the one row found (SQLite)", async () => {
  await withTempDir("lookup_test_", async (dir) => {
    tenantsFile(dir);
    const values = await runLookups(
      { tenant: tenantLookup({ sqlite: "tenants.db" }, "acme") },
      dir,
    );
    assert.deepEqual(values, {
      tenant: { base_url: "https://sdp.acme.example", api_key: "acme-key-1" },
    });
  });
});

Deno.test("runLookups() refuses no row (exit 2), several rows (exit 1) and a null column (exit 2)", async () => {
  await withTempDir("lookup_test_", async (dir) => {
    tenantsFile(dir);
    const run = (tenant: string) =>
      runLookups({ tenant: tenantLookup({ sqlite: "tenants.db" }, tenant) }, dir);
    await assert.rejects(run("ghost"), (error) => {
      assert.ok(error instanceof MissingError);
      assert.equal(error.exitCode, 2);
      assert.equal(error.message, 'lookups.tenant: tenant "ghost" is not in tenant_configs');
      return true;
    });
    await assert.rejects(run("twin"), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(
        error.message,
        'lookups.tenant: expected one row, got 2 for ["twin"] (the query must select one)',
      );
      return true;
    });
    await assert.rejects(run("nokey"), MissingError, "lookups.tenant: api_key is null");
  });
});

Deno.test("runLookups() names a declared column the query does not return", async () => {
  await withTempDir("lookup_test_", async (dir) => {
    tenantsFile(dir);
    const lookup = lookupSchema.parse({
      sqlite: "tenants.db",
      query: "select base_url from tenant_configs where tenant_id = $1",
      params: ["acme"],
      columns: { base_url: {}, token: {} },
    });
    await assert.rejects(
      runLookups({ tenant: lookup }, dir),
      ConfigError,
      "lookups.tenant.columns.token: the query returned no such column (it returned base_url)",
    );
  });
});

Deno.test("runLookups() says which lookup lacks its SQLite file", async () => {
  await withTempDir("lookup_test_", async (dir) => {
    await assert.rejects(
      runLookups({ tenant: tenantLookup({ sqlite: "missing.db" }, "acme") }, dir),
      (error) => {
        assert.ok(error instanceof MissingError);
        assert.match(error.message, /^lookups\.tenant: Cannot open database ".*missing\.db"/);
        return true;
      },
    );
  });
});

Deno.test("lookupSchema needs exactly one source and at least one column", () => {
  const base = { query: "select 1 as x", columns: { x: {} } };
  assert.equal(lookupSchema.safeParse(base).success, false);
  assert.equal(lookupSchema.safeParse({ ...base, sqlite: "a", postgres: "b" }).success, false);
  assert.equal(lookupSchema.safeParse({ ...base, sqlite: "a", columns: {} }).success, false);
  assert.equal(lookupSchema.safeParse({ ...base, sqlite: "a" }).success, true);
});

Deno.test("exampleValues() and isSecretColumn()", () => {
  const lookup = tenantLookup({ sqlite: "x.db" }, "acme");
  assert.deepEqual(exampleValues({ tenant: lookup }), {
    tenant: { base_url: "https://sdp.example.com", api_key: "example" },
  });
  assert.equal(isSecretColumn("api_key", lookup.columns.api_key), true);
  assert.equal(isSecretColumn("base_url", lookup.columns.base_url), false);
  assert.equal(isSecretColumn("base_url", { secret: true, example: "x" }), true);
});

pgTest("runLookups() reads a tenant_configs row from PostgreSQL", async (pg) => {
  await pg.sql.unsafe(`create table ${pg.schema}.tenant_configs
    (tenant_id text primary key, base_url text not null, api_key text not null, days int)`);
  await pg.sql.unsafe(
    `insert into ${pg.schema}.tenant_configs values ('acme', 'https://sdp.acme.example', 'k-1', 30)`,
  );
  const lookup = (tenant: string) =>
    lookupSchema.parse({
      postgres: pg.url,
      query: `select base_url, api_key, days from ${pg.schema}.tenant_configs where tenant_id = $1`,
      params: [tenant],
      columns: { base_url: {}, api_key: {}, days: { example: 1 } },
    });
  assert.deepEqual(await runLookups({ tenant: lookup("acme") }, "."), {
    tenant: { base_url: "https://sdp.acme.example", api_key: "k-1", days: 30 },
  });
  await assert.rejects(
    runLookups({ tenant: lookup("ghost") }, "."),
    MissingError,
    'lookups.tenant: no row for ["ghost"]',
  );
});

pgTest(
  "runLookups() stops with exit 3 when PostgreSQL refuses the query or the connection",
  async (pg) => {
    const broken = lookupSchema.parse({
      postgres: pg.url,
      query: `select base_url from ${pg.schema}.no_such_table where tenant_id = $1`,
      params: ["acme"],
      columns: { base_url: {} },
    });
    await assert.rejects(runLookups({ tenant: broken }, "."), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.exitCode, 3);
      assert.match(error.message, /^lookups\.tenant: the query failed: .*no_such_table/);
      return true;
    });
    const unreachable = lookupSchema.parse({
      postgres: "postgres://postgres:hunter2@127.0.0.1:1/test",
      query: "select 1 as x",
      columns: { x: {} },
    });
    await assert.rejects(runLookups({ tenant: unreachable }, "."), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.match(
        error.message,
        /^lookups\.tenant: Cannot connect to "postgres:\/\/postgres:\*\*\*@/,
      );
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  },
);
