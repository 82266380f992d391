/**
 * The CLI's commands and operator-facing behaviour: schema, systemd, state,
 * parameter help, JSON logs, redaction, SIGTERM.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { acquireLock } from "../lib/lock.ts";
import { cliCommand, ROOT, runCli } from "./cli.ts";

const QUICKSTART = "examples/quickstart/pipeline.json";

async function scratch(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync-cli-" });
  await Deno.mkdir(join(dir, "examples/quickstart"), { recursive: true });
  await Deno.copyFile(join(ROOT, QUICKSTART), join(dir, QUICKSTART));
  await Deno.mkdir(join(dir, "fixtures/texas811"), { recursive: true });
  await Deno.copyFile(
    join(ROOT, "fixtures/texas811/tickets.json"),
    join(dir, "fixtures/texas811/tickets.json"),
  );
  return dir;
}

Deno.test("cli: version, help and unknown commands", async () => {
  const version = await runCli(["version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^ticketsync \d+\.\d+\.\d+ \(deno 2\./);
  const help = await runCli(["help"]);
  assert.match(help.stdout, /Exit codes: 0 ok, 1 invalid arguments or config/);
  const bad = await runCli(["frobnicate"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Unknown command "frobnicate"/);
  const missing = await runCli(["run", "nope/pipeline.json"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot read config "nope\/pipeline.json": file does not exist/);
});

Deno.test("cli: schema prints a JSON Schema with every stage, which the examples satisfy in shape", async () => {
  const result = await runCli(["schema"]);
  assert.equal(result.code, 0, result.stderr);
  const schema = JSON.parse(result.stdout);
  assert.equal(schema.type, "object");
  assert.equal(schema.additionalProperties, false);
  const uses = (schema.properties.stages.items.oneOf ?? schema.properties.stages.items.anyOf)
    .map((entry: { properties: { use: { const: string } } }) => entry.properties.use.const);
  for (const expected of ["read.json", "transform.map", "sync-tickets.sqlite", "report.json"]) {
    assert.ok(uses.includes(expected), `${expected} in the schema`);
  }
});

Deno.test("cli: run CONFIG --help lists the config's parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "p.json"),
      JSON.stringify({
        name: "p",
        key: "id",
        params: {
          "tenant-id": { type: "string", required: true, description: "Tenant to import" },
          days: { type: "integer", default: 90, description: "Days back" },
        },
        stages: [
          { use: "read.json", path: "x.json" },
          { use: "sync-tickets.sqlite", path: "x.db" },
        ],
      }),
    );
    const help = await runCli(["run", "p.json", "--help"], { cwd: dir });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--tenant-id\s+Tenant to import \(string, required\)/);
    assert.match(help.stdout, /--days\s+Days back \(integer, default 90\)/);
    const missing = await runCli(["run", "p.json"], { cwd: dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--tenant-id: required parameter is missing \(Tenant to import\)/);
    const typed = await runCli(["run", "p.json", "--tenant-id", "acme", "--days", "x"], {
      cwd: dir,
    });
    assert.equal(typed.code, 1);
    assert.match(typed.stderr, /--days: expected an integer, got "x"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: validate and run report every cross-field config problem with its path, touching nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync-cli-" });
  try {
    await Deno.writeTextFile(join(dir, "tickets.csv"), "T1,2026-01-01\n");
    await Deno.writeTextFile(
      join(dir, "p.json"),
      JSON.stringify({
        name: "p",
        key: "id",
        state: { path: "./state/p.state.db" },
        stages: [
          // No header row, and no column names either.
          { use: "read.csv", path: "tickets.csv", header: false },
          // A date format on a field that is not a date.
          { use: "transform.map", fields: { id: "id", opened: { from: "b", format: "iso" } } },
          { use: "sync-tickets.sqlite", path: "./out/p.db" },
        ],
      }),
    );
    for (const command of ["validate", "run"]) {
      const result = await runCli([command, "p.json"], { cwd: dir });
      assert.equal(result.code, 1, `${command}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /stages\[0\]\.columns: required when "header" is false: expected the column names in file order/,
      );
      assert.match(
        result.stderr,
        /stages\[1\]\.fields\.opened\.format: expected "type": "date" with it, got no "type"/,
      );
      assert.doesNotMatch(result.stdout, /is valid/);
    }
    // run stopped before it took the lock or opened the state or the destination.
    const created = [];
    for await (const entry of Deno.readDir(dir)) created.push(entry.name);
    assert.deepEqual(created.sort(), ["p.json", "tickets.csv"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: systemd prints a oneshot service and a timer", async () => {
  const result = await runCli([
    "systemd",
    QUICKSTART,
    "--on-calendar",
    "*:15",
    "--user",
    "ticketsync",
    "--workdir",
    "/var/lib/ticketsync",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /Type=oneshot/);
  assert.match(result.stdout, /User=ticketsync/);
  assert.match(result.stdout, /WorkingDirectory=\/var\/lib\/ticketsync/);
  assert.match(
    result.stdout,
    /ExecStart=\/usr\/local\/bin\/ticketsync run \S+quickstart\/pipeline.json --log-format json --no-progress/,
  );
  assert.match(result.stdout, /SuccessExitStatus=4 75/);
  assert.match(result.stdout, /OnCalendar=\*:15/);
});

Deno.test("cli: JSON logs are one object a line; state shows runs, cursors, verify; reset-cursor", async () => {
  const dir = await scratch();
  try {
    const run = await runCli(["run", QUICKSTART, "--log-format", "json"], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assert.ok(lines.length > 3);
    const records = lines.map((line) => JSON.parse(line));
    for (const record of records) {
      assert.equal(typeof record.time, "string");
      assert.equal(typeof record.level, "string");
      assert.equal(typeof record.message, "string");
    }
    assert.ok(records.some((r) => /200 tickets read, 200 created/.test(r.message)));

    const verify = await runCli(["state", QUICKSTART, "verify"], { cwd: dir });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /is sound: 200 records, 0 open dead letters/);
    const record = await runCli(["state", QUICKSTART, "record", "2500945266", "--json"], {
      cwd: dir,
    });
    assert.equal(JSON.parse(record.stdout).lastOutcome, "created");
    const absent = await runCli(["state", QUICKSTART, "record", "nope"], { cwd: dir });
    assert.equal(absent.code, 2);
    const reset = await runCli(["state", QUICKSTART, "reset-cursor", "nope"], { cwd: dir });
    assert.equal(reset.code, 2);
    assert.match(reset.stderr, /No cursor "nope"/);
    // While a run holds the pipeline's lock, a state write waits its turn: exit 75.
    const lock = acquireLock(join(dir, "data/quickstart.state.db.lock"), "quickstart");
    try {
      const locked = await runCli(["state", QUICKSTART, "reset-cursor", "nope"], { cwd: dir });
      assert.equal(locked.code, 75, locked.stderr);
      const reading = await runCli(["state", QUICKSTART, "runs"], { cwd: dir });
      assert.equal(reading.code, 0, "reading the state needs no lock");
    } finally {
      lock.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: secrets from the environment never reach the output", async () => {
  const dir = await scratch();
  try {
    const config = JSON.parse(await Deno.readTextFile(join(dir, QUICKSTART)));
    config.stages[0].path = "${env:INPUT_TOKEN}/tickets.json";
    await Deno.writeTextFile(join(dir, "secret.json"), JSON.stringify(config));
    const result = await runCli(["run", "secret.json"], {
      cwd: dir,
      env: { INPUT_TOKEN: "tok-9f8e7d6c5b" },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /Cannot read "\*\*\*\/tickets.json": file does not exist/);
    assert.ok(!result.stderr.includes("tok-9f8e7d6c5b"));
    assert.ok(!result.stdout.includes("tok-9f8e7d6c5b"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: SIGTERM stops after the records in flight, exits 143, and the next run completes", async () => {
  const dir = await scratch();
  try {
    const fixture = JSON.parse(
      await Deno.readTextFile(join(dir, "fixtures/texas811/tickets.json")),
    );
    const tickets = [];
    for (let copy = 0; copy < 50; copy++) {
      for (const ticket of fixture.tickets) {
        tickets.push({ ...ticket, ticketNumber: `${ticket.ticketNumber}-${copy}` });
      }
    }
    await Deno.writeTextFile(join(dir, "big.json"), JSON.stringify({ tickets }));
    const args = ["run", QUICKSTART, "--var", "input=big.json", "--no-progress"];
    const child = cliCommand(args, { cwd: dir }).spawn();
    const decoder = new TextDecoder();
    let seen = "";
    const reader = child.stderr.getReader();
    while (!/Imported \d+/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
    child.kill("SIGTERM");
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
    const status = await child.status;
    await child.stdout.cancel();
    assert.equal(status.code, 143, seen);
    assert.match(seen, /SIGTERM received: stopping after the records in flight; state is saved/);
    assert.match(seen, /Stopped: interrupted \(SIGTERM\)/);

    const next = await runCli(args, { cwd: dir });
    assert.equal(next.code, 0, next.stderr);
    const done = /(\d+) created, 0 updated, (\d+) unchanged/.exec(next.stderr);
    assert.ok(done, next.stderr);
    assert.equal(Number(done[1]) + Number(done[2]), 10_000);
    assert.ok(Number(done[2]) > 0, "what the first run finished is not redone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: plan prints each create or update with the changed fields, and writes nothing", async () => {
  const dir = await scratch();
  try {
    assert.equal((await runCli(["run", QUICKSTART, "--no-progress"], { cwd: dir })).code, 0);
    const path = join(dir, "fixtures/texas811/tickets.json");
    const document = JSON.parse(await Deno.readTextFile(path));
    document.tickets[0].status = "Open";
    document.tickets.push({ ...document.tickets[1], ticketNumber: "2599999999" });
    await Deno.writeTextFile(path, JSON.stringify(document));
    const before = await Deno.readFile(join(dir, "data/quickstart.db"));
    const plan = await runCli(["plan", QUICKSTART, "--no-progress"], { cwd: dir });
    assert.equal(plan.code, 0, plan.stderr);
    const lines = plan.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), [
      `update  ${document.tickets[0].ticketNumber}`,
      '          status: "expired" → "open"',
      "create  2599999999",
    ]);
    // The new ticket's responses are listed as what would be created.
    assert.equal(lines.length, 3 + document.tickets[1].responses.length);
    for (const line of lines.slice(3)) {
      assert.match(line, /^ {10}responses\["[A-Z]+@.+"\]: null → \{/);
    }
    assert.deepEqual(
      await Deno.readFile(join(dir, "data/quickstart.db")),
      before,
      "plan wrote nothing",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a config that fails on a looked-up or env secret never prints it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync-cli-" });
  try {
    const db = new DatabaseSync(join(dir, "tenants.db"));
    db.exec(`create table tenants (id text, base_url text);
      insert into tenants values ('acme', 'not a url, but a secret: sk-4f3e2d1c0b');`);
    db.close();
    await Deno.writeTextFile(join(dir, "in.csv"), "id\n1\n");
    const config = (params: string[]) =>
      JSON.stringify({
        name: "p",
        key: "id",
        lookups: {
          tenant: {
            sqlite: "tenants.db",
            query: "select base_url from tenants where id = $1",
            params,
            columns: { base_url: { secret: true, example: "https://x.example" } },
          },
        },
        stages: [
          { use: "read.http", baseUrl: "${lookup:tenant.base_url}", path: "/x", items: "rows" },
          { use: "sync-tickets.sqlite", path: "out.db", table: "t", columns: { id: {} } },
        ],
      });
    await Deno.writeTextFile(join(dir, "bad-url.json"), config(["acme"]));
    const badUrl = await runCli(["run", "bad-url.json"], { cwd: dir });
    assert.equal(badUrl.code, 1, badUrl.stderr);
    assert.match(badUrl.stderr, /stages\[0\]\.baseUrl: .*got "\*\*\*"/);
    assert.doesNotMatch(badUrl.stderr, /sk-4f3e2d1c0b/);

    await Deno.writeTextFile(join(dir, "bad-param.json"), config(["${env:TENANT_TOKEN}"]));
    const noRow = await runCli(["run", "bad-param.json"], {
      cwd: dir,
      env: { TENANT_TOKEN: "tok_live_9a8b7c6d5e" },
    });
    assert.equal(noRow.code, 2, noRow.stderr);
    assert.match(noRow.stderr, /lookups\.tenant: no row for \["\*\*\*"\]/);
    assert.doesNotMatch(noRow.stderr, /tok_live/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
