import assert from "node:assert/strict";
import { z } from "zod";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { withTempDir } from "../tests/harness.ts";
import { loadConfig, parseConfig, parseDotenv } from "./config.ts";
import { ConfigError, MissingError, secretsOf } from "./errors.ts";
import { Registry } from "./registry.ts";
import { secret } from "./secret.ts";
import { defineStage } from "./stage.ts";

// Small real stages: the loader is tested against the contract, not the shipped stages.
const registry = new Registry([
  defineStage({
    kind: "read",
    name: "lines",
    summary: "Reads test lines.",
    config: z.object({ path: z.string().describe("File.") }).strict(),
    create: () => ({ read: async function* () {} }),
  }),
  defineStage({
    kind: "transform",
    name: "noop",
    summary: "Passes items on.",
    config: z.object({
      rateLimit: z.object({ perMinute: z.number().positive().describe("Per minute.") }).strict()
        .optional().describe("Limit."),
      mode: z.enum(["a", "b"]).default("a").describe("Mode."),
    }).strict(),
    create: () => ({ process: (items) => items }),
  }),
  defineStage({
    kind: "sync-tickets",
    name: "sink",
    summary: "Writes items.",
    config: z.object({
      url: secret().describe("Where."),
      days: z.number().int().default(1).describe("Days."),
    }).strict(),
    create: () => ({ sync: (results) => results }),
  }),
]);

function config(stages: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ name: "t", key: "id", stages, ...extra });
}

function problems(
  text: string,
  options: Partial<Parameters<typeof parseConfig>[2]> = {},
): string[] {
  try {
    parseConfig(text, "p.json", { registry, env: {}, ...options });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.exitCode, 1);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

const good = [
  { use: "read.lines", path: "x" },
  { use: "sync-tickets.sink", url: "${env:SINK_URL}" },
];

Deno.test("parseConfig() accepts a valid config and applies defaults", () => {
  const loaded = parseConfig(config(good), "p.json", {
    registry,
    env: { SINK_URL: "http://user:pw@h/" },
    cwd: "/srv",
  });
  assert.equal(loaded.name, "t");
  assert.equal(loaded.stages.length, 2);
  assert.equal(loaded.stages[1].id, "stages[1] sync-tickets.sink");
  assert.deepEqual(loaded.stages[1].config, { url: "http://user:pw@h/", days: 1 });
  assert.equal(loaded.statePath, "/srv/.ticketsync/t.state.db");
  assert.ok(loaded.secrets.has("http://user:pw@h/"), "secret field value is registered");
});

Deno.test("parseConfig() names every problem with its JSON path, expectation and value", () => {
  const found = problems(config([
    { use: "read.lines", pth: "x" },
    { use: "transform.noop", rateLimit: { perMinute: "fast" }, mode: "c" },
    { use: "sync-tickets.sink", url: "${env:MISSING_URL}", id: 7 },
  ]));
  assert.deepEqual(found, [
    'stages[2].url: environment variable "MISSING_URL" is not set (used as ${env:MISSING_URL})',
    "stages[0].path: required: expected a string",
    'stages[0].pth: unknown key (did you mean "path"?); expected one of path',
    'stages[1].rateLimit.perMinute: expected a number, got "fast"',
    'stages[1].mode: expected one of "a", "b", got "c"',
    "stages[2].id: expected a string, got 7",
  ]);
  // A named stage keeps its name in logs.
  const named = parseConfig(config([good[0], { ...good[1], id: "warehouse" }]), "p.json", {
    registry,
    env: { SINK_URL: "u" },
  });
  assert.equal(named.stages[1].id, "stages[1] warehouse");
  assert.deepEqual(named.stages[1].config, { url: "u", days: 1 });
});

Deno.test("parseConfig() reports a stage's cross-field rules (zod refinements) with their paths, with every other problem", () => {
  // A refined schema stays a zod object: its shape still gives the unknown-key hints.
  const refined = defineStage({
    kind: "transform",
    name: "window",
    summary: "Checks hours.",
    config: z.object({
      low: z.number().describe("Low."),
      high: z.number().describe("High."),
      label: z.string().min(1).optional().describe("Label."),
    }).strict().superRefine((config, ctx) => {
      if (config.low > config.high) {
        ctx.addIssue({
          code: "custom",
          path: ["low"],
          message: `expected a number <= high (${config.high})`,
          input: config.low,
        });
      }
      if (config.label === undefined) {
        ctx.addIssue({ code: "custom", path: [], message: 'expected a "label"', input: undefined });
      }
    }),
    create: () => ({ process: (items) => items }),
  });
  const withRefined = new Registry([...registry.stages, refined]);
  const found = problems(
    config([
      good[0],
      { use: "transform.window", low: 5, high: 2 },
      { use: "transform.window", low: 1, high: 2, label: "" },
      { use: "transform.window", low: 1, hihg: 2 },
      { use: "sync-tickets.sink", url: "u", days: "x" },
    ]),
    { registry: withRefined },
  );
  assert.deepEqual(found, [
    "stages[1].low: expected a number <= high (2), got 5",
    'stages[1]: expected a "label"',
    'stages[2].label: expected >= 1 characters, got ""',
    "stages[3].high: required: expected a number",
    'stages[3].hihg: unknown key (did you mean "high"?); expected one of low, high, label',
    'stages[4].days: expected a number, got "x"',
  ]);
});

Deno.test("parseConfig() rejects unknown stages, top-level keys and bad order", () => {
  assert.deepEqual(
    problems(config([{ use: "read.line", path: "x" }, good[1]], { nmae: "x" }), {
      env: { SINK_URL: "u" },
    }),
    [
      "nmae: unknown key",
      'stages[0].use: unknown stage "read.line" (did you mean "read.lines"?); expected one of "read.lines", "transform.noop", "sync-tickets.sink"',
    ],
  );
  assert.deepEqual(problems(config([good[1], good[0]]), { env: { SINK_URL: "x" } }), [
    'stages[0]: expected a read stage first, got "sync-tickets.sink"',
    'stages[1]: only one read stage is allowed, got "read.lines"',
    "stages[1]: a read stage cannot come after a later kind; expected order read, filter/transform, sync-tickets, sync-responses, report",
  ]);
  assert.deepEqual(
    problems(config([{ use: "transform.noop", rateLimit: { perMinute: 0 } }, good[0]])).slice(0, 1),
    [
      "stages[0].rateLimit.perMinute: expected a positive number, got 0",
    ],
  );
});

Deno.test("parseConfig() reports JSON syntax errors with line and column", () => {
  assert.throws(
    () =>
      parseConfig('{\n  "name": "t",\n  "key": "id"\n  "stages": []\n}', "p.json", { registry }),
    /Cannot read config "p.json": line 4, column 3/,
  );
});

Deno.test("parseConfig() interpolates env, vars, defaults, nesting and typed single placeholders", () => {
  const text = JSON.stringify({
    name: "t",
    key: "id",
    params: { region: { type: "string", required: true }, days: { type: "integer", default: 90 } },
    stages: [
      { use: "read.lines", path: "in/${var:region}.json" },
      { use: "sync-tickets.sink", url: "${env:${var:region}_API}", days: "${var:days}" },
    ],
  });
  const loaded = parseConfig(text, "p.json", {
    registry,
    env: { ITALY_API: "k-italy-123" },
    paramArgs: { region: "ITALY", days: "30" },
  });
  assert.equal(loaded.stages[0].config.path, "in/ITALY.json");
  assert.equal(loaded.stages[1].config.url, "k-italy-123");
  assert.equal(loaded.stages[1].config.days, 30);
  assert.ok(loaded.secrets.has("k-italy-123"), "env value whose name says API/KEY is secret");

  const fallback = parseConfig(
    config([{ use: "read.lines", path: "${env:IN:-default.json}" }, good[1]]),
    "p.json",
    { registry, env: { SINK_URL: "u" } },
  );
  assert.equal(fallback.stages[0].config.path, "default.json");
});

Deno.test("parseConfig() checks parameters: required, typed, unknown", () => {
  const text = JSON.stringify({
    name: "t",
    key: "id",
    params: {
      "tenant-id": { type: "string", required: true, description: "Tenant" },
      days: { type: "integer", default: 90 },
      since: { type: "date" },
    },
    stages: good,
  });
  assert.deepEqual(
    problems(text, {
      env: { SINK_URL: "u" },
      paramArgs: { days: "ninety", since: "2026-02-30", tenant: "x" },
    }),
    [
      "--tenant: unknown option; this pipeline's parameters are --tenant-id, --days, --since",
      "--tenant-id: required parameter is missing (Tenant)",
      '--days: expected an integer, got "ninety"',
      '--since: expected a date like 2026-01-31, got "2026-02-30"',
    ],
  );
  const loaded = parseConfig(text, "p.json", {
    registry,
    env: { SINK_URL: "u" },
    paramArgs: { "tenant-id": "acme" },
  });
  assert.deepEqual(loaded.vars, { "tenant-id": "acme", days: 90 });

  // validate / --help: a required parameter not given gets a typed placeholder instead of an error.
  const checked = parseConfig(text, "p.json", {
    registry,
    env: { SINK_URL: "u" },
    placeholders: true,
  });
  assert.deepEqual(checked.vars, { "tenant-id": "example", days: 90 });
});

Deno.test("parseDotenv() reads quotes, export and comments", () => {
  assert.deepEqual(
    parseDotenv("# c\nexport A=1\nB=\"two words\"\nC='x#y'\nD=plain # note\n\nbad line\n"),
    { A: "1", B: "two words", C: "x#y", D: "plain" },
  );
});

Deno.test("parseConfig() inserts values as they are: no $ pattern, no placeholder inside a value", () => {
  const loaded = parseConfig(
    config([{ use: "read.lines", path: "x-${env:A}-${env:B}-y" }, {
      use: "sync-tickets.sink",
      url: "${env:C}",
    }]),
    "p.json",
    { registry, env: { A: "a$$b$`d$&", B: "lit-${env:HOME}", C: "pa$$w$&rd", HOME: "/root" } },
  );
  assert.equal(loaded.stages[0].config.path, "x-a$$b$`d$&-lit-${env:HOME}-y");
  assert.equal(loaded.stages[1].config.url, "pa$$w$&rd");
  // The private-use character that stands in for $ meanwhile is kept where it really is.
  const marks = parseConfig(
    config([{ use: "read.lines", path: "in\uE000${env:A}\uE000\uE001a.json" }, {
      use: "sync-tickets.sink",
      url: "u\uE000",
    }]),
    "p.json",
    { registry, env: { A: "$x\uE000$" } },
  );
  assert.equal(marks.stages[0].config.path, "in\uE000$x\uE000$\uE000\uE001a.json");
  assert.equal(marks.stages[1].config.url, "u\uE000");
});

Deno.test("parseConfig() keeps an env value secret inside a secret field built around it", () => {
  const loaded = parseConfig(
    config([{ use: "read.lines", path: "in/${env:REGION}.json" }, {
      use: "sync-tickets.sink",
      url: "https://api.example/${env:REGION}?token=${env:ITALY_API}",
    }]),
    "p.json",
    { registry, env: { ITALY_API: "topsecretvalue123", REGION: "italy-north" } },
  );
  // ITALY_API is not named like a secret, but it is inside the sink's secret url.
  assert.ok(loaded.secrets.has("topsecretvalue123"));
  assert.ok(loaded.secrets.has("italy-north"), "every env piece of a secret is kept secret");
  assert.ok(loaded.secrets.has("https://api.example/italy-north?token=topsecretvalue123"));
});

Deno.test("parseConfig() refuses a parameter named like a global option", () => {
  assert.deepEqual(
    problems(config(good, { params: { limit: { type: "integer" }, user: {} } }), {
      env: { SINK_URL: "u" },
    }).map((line) => line.replace(/ \(var, env-file, .*\)/, " (...)")),
    [
      'params.limit: expected a name that is not a global option (...), got "limit"',
      'params.user: expected a name that is not a global option (...), got "user"',
    ],
  );
});

/** A config whose sink takes its URL from a tenant lookup in `tenants.db`. */
function lookupConfig(stages: unknown[] = [
  { use: "read.lines", path: "in/${lookup:tenant.region}.json" },
  { use: "sync-tickets.sink", url: "${lookup:tenant.base_url}/v1", days: "${lookup:tenant.days}" },
]): string {
  return JSON.stringify({
    name: "t",
    key: "id",
    params: { "tenant-id": { required: true } },
    lookups: {
      tenant: {
        sqlite: "tenants.db",
        query: "select region, base_url, days from tenants where id = $1",
        params: ["${var:tenant-id}"],
        columns: {
          region: {},
          base_url: { secret: true, example: "https://tenant.example" },
          days: { example: 7 },
        },
        missing: "tenant ${var:tenant-id} is not in tenants",
      },
    },
    stages,
  });
}

Deno.test("parseConfig() fills ${lookup:...} with the columns' examples, redacting none", () => {
  const loaded = parseConfig(lookupConfig(), "p.json", { registry, placeholders: true });
  assert.equal(loaded.stages[0].config.path, "in/example.json");
  assert.equal(loaded.stages[1].config.url, "https://tenant.example/v1");
  assert.equal(loaded.stages[1].config.days, 7, "a whole-string lookup keeps the value's type");
  assert.deepEqual(Object.keys(loaded.lookups), ["tenant"]);
  assert.equal(loaded.lookups.tenant.params[0], "example");
  // The sink's url is a secret field, so its (example) value is registered; the column is not.
  assert.ok(!loaded.secrets.has("https://tenant.example"));
});

Deno.test("parseConfig() names undeclared lookups and columns, and a lookup inside lookups", () => {
  const found = problems(
    lookupConfig([
      { use: "read.lines", path: "${lookup:tenant.nope}" },
      { use: "sync-tickets.sink", url: "${lookup:other.x}" },
    ]),
    { paramArgs: { "tenant-id": "a" } },
  );
  assert.deepEqual(found, [
    'stages[0].path: expected ${lookup:tenant.COLUMN} with COLUMN one of region, base_url, days, got "tenant.nope"',
    'stages[1].url: lookup "other" is not declared in "lookups"; declared: tenant',
  ]);
  const nested = JSON.parse(lookupConfig());
  nested.lookups.tenant.params = ["${lookup:tenant.region}"];
  nested.lookups.tenant.sqlite = 5;
  assert.deepEqual(problems(JSON.stringify(nested), { paramArgs: { "tenant-id": "a" } }), [
    "lookups.tenant.params[0]: a lookup cannot use ${lookup:tenant.region}",
    "lookups.tenant.sqlite: expected a string, got 5",
  ]);
});

/** Writes the lookup config and its SQLite table (tenant acme) in `dir`. */
async function lookupFiles(dir: string, text = lookupConfig()): Promise<string> {
  const db = new DatabaseSync(join(dir, "tenants.db"));
  db.exec(`create table tenants (id text, region text, base_url text, days integer);
    insert into tenants values ('acme', 'eu', 'https://acme.example', 30);`);
  db.close();
  await Deno.writeTextFile(join(dir, "p.json"), text);
  return join(dir, "p.json");
}

Deno.test("loadConfig() with lookups asks the database and redacts secret columns", async () => {
  await withTempDir("config_test_", async (dir) => {
    const path = await lookupFiles(dir);
    const options = { registry, env: {}, cwd: dir, lookups: true };
    const loaded = await loadConfig(path, { ...options, paramArgs: { "tenant-id": "acme" } });
    assert.equal(loaded.stages[0].config.path, "in/eu.json");
    assert.equal(loaded.stages[1].config.url, "https://acme.example/v1");
    assert.equal(loaded.stages[1].config.days, 30);
    assert.ok(loaded.secrets.has("https://acme.example"), "a secret column is redacted");
    assert.ok(!loaded.secrets.has("eu"));

    await assert.rejects(
      loadConfig(path, { ...options, paramArgs: { "tenant-id": "ghost" } }),
      (error) => {
        assert.ok(error instanceof MissingError);
        assert.equal(error.message, "lookups.tenant: tenant ghost is not in tenants");
        return true;
      },
    );
    // Without `lookups` (validate, state) the examples stand in; the database is not asked.
    const checked = await loadConfig(path, { registry, env: {}, cwd: dir, placeholders: true });
    assert.equal(checked.stages[1].config.url, "https://tenant.example/v1");
  });
});

Deno.test("loadConfig() reports config problems before a lookup asks its database", async () => {
  await withTempDir("config_test_", async (dir) => {
    const bad = JSON.parse(lookupConfig());
    bad.stages[1].days = "soon";
    bad.lookups.tenant.sqlite = "missing.db";
    const path = await lookupFiles(dir, JSON.stringify(bad));
    await assert.rejects(
      loadConfig(path, {
        registry,
        env: {},
        cwd: dir,
        lookups: true,
        paramArgs: { "tenant-id": "acme" },
      }),
      (error) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.deepEqual(error.problems, ['stages[1].days: expected a number, got "soon"']);
        return true;
      },
    );
  });
});

Deno.test("loadConfig() keeps secret values out of its errors: cut values are concealed first, the rest noted", async () => {
  await withTempDir("config_test_", async (dir) => {
    // The looked-up URL is secret and invalid for the field that uses it.
    const db = new DatabaseSync(join(dir, "tenants.db"));
    db.exec(`create table tenants (id text, base_url text, token text);
      insert into tenants values ('acme', 'sdp.example.com/tok-9f8e7d6c5b4a-0123456789-abcdefghij-klmn', 't');`);
    db.close();
    await Deno.writeTextFile(
      join(dir, "p.json"),
      JSON.stringify({
        name: "t",
        key: "id",
        params: { "tenant-id": { required: true } },
        lookups: {
          tenant: {
            sqlite: "tenants.db",
            query: "select base_url from tenants where id = $1",
            params: ["${var:tenant-id}"],
            columns: { base_url: { secret: true, example: 7 } },
          },
        },
        stages: [
          { use: "read.lines", path: "x" },
          { use: "sync-tickets.sink", url: "u", days: "${lookup:tenant.base_url}" },
        ],
      }),
    );
    const options = { registry, env: {}, cwd: dir, lookups: true };
    const invalid = await loadConfig(join(dir, "p.json"), {
      ...options,
      paramArgs: { "tenant-id": "acme" },
    }).catch((error) => error);
    assert.ok(invalid instanceof ConfigError, String(invalid));
    assert.deepEqual(invalid.problems, ['stages[1].days: expected a number, got "***"']);
    assert.ok(
      secretsOf(invalid).includes("sdp.example.com/tok-9f8e7d6c5b4a-0123456789-abcdefghij-klmn"),
    );

    // A lookup that fails quoting a secret parameter: the secret goes with the error.
    const config = JSON.parse(await Deno.readTextFile(join(dir, "p.json")));
    config.lookups.tenant.params = ["${env:TENANT_TOKEN}"];
    await Deno.writeTextFile(join(dir, "p2.json"), JSON.stringify(config));
    const missing = await loadConfig(join(dir, "p2.json"), {
      ...options,
      env: { TENANT_TOKEN: "tok_live_9a8b7c6d5e" },
      paramArgs: { "tenant-id": "acme" },
    }).catch((error) => error);
    assert.ok(missing instanceof MissingError, String(missing));
    assert.match(missing.message, /no row for \["tok_live_9a8b7c6d5e"\]/);
    assert.ok(secretsOf(missing).includes("tok_live_9a8b7c6d5e"));
  });
});

Deno.test("parseConfig() counts a lookup's PostgreSQL URL, and the env pieces in it, as secrets", () => {
  const loaded = parseConfig(
    JSON.stringify({
      name: "t",
      key: "id",
      lookups: {
        tenant: {
          postgres: "postgres://app:${env:DB_PASS}@db.internal/agent",
          query: "select 1 as x",
          columns: { x: {} },
        },
      },
      stages: good,
    }),
    "p.json",
    { registry, env: { DB_PASS: "hunter2-pw", SINK_URL: "u" } },
  );
  assert.ok(loaded.secrets.has("postgres://app:hunter2-pw@db.internal/agent"));
  assert.ok(loaded.secrets.has("hunter2-pw"));
});
