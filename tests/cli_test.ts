/**
 * The CLI's commands and operator-facing behaviour: schema, systemd, state,
 * parameter help, JSON logs, redaction, SIGTERM.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { acquireLock } from "../lib/lock.ts";
import { cliCommand, ROOT, runCli } from "./cli.ts";
import { withTempDir } from "./harness.ts";

const QUICKSTART = "examples/quickstart/pipeline.json";

/** Writes `config` as `p.json` in `dir`. */
async function writeConfig(dir: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(join(dir, "p.json"), JSON.stringify(config));
}

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
  await withTempDir("ticketsync-cli-", async (dir) => {
    await writeConfig(dir, {
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
    });
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
  });
});

Deno.test("cli: validate and run report every cross-field config problem with its path, touching nothing", async () => {
  await withTempDir("ticketsync-cli-", async (dir) => {
    await Deno.writeTextFile(join(dir, "tickets.csv"), "T1,2026-01-01\n");
    await writeConfig(dir, {
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
    });
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
  });
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
  assert.match(result.stdout, /^# \/etc\/systemd\/system\/ticketsync-quickstart\.service$/m);
  assert.match(result.stdout, /^# \/etc\/systemd\/system\/ticketsync-quickstart\.timer$/m);
  assert.match(result.stdout, /Type=oneshot/);
  assert.match(result.stdout, /User=ticketsync/);
  assert.match(result.stdout, /WorkingDirectory=\/var\/lib\/ticketsync/);
  assert.match(
    result.stdout,
    /ExecStart=\/usr\/local\/bin\/ticketsync run \S+quickstart\/pipeline.json --log-format json --no-progress/,
  );
  // 143/130: stopped by SIGTERM (systemctl stop) or SIGINT after saving state: not a failure.
  assert.match(result.stdout, /^SuccessExitStatus=4 75 130 143$/m);
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
  await withTempDir("ticketsync-cli-", async (dir) => {
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
  });
});

/**
 * Splits an ExecStart= value as systemd does (words split on whitespace; double or single
 * quotes; C escapes), then undoes `%%` and `$$`; fails on a lone `%` (a specifier) or `$NAME`
 * (a variable), which systemd would have replaced.
 */
function systemdArgv(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /[ \t]/.test(value[i])) i++;
    if (i >= value.length) break;
    let word = "";
    let quote = "";
    for (; i < value.length; i++) {
      const c = value[i];
      if (!quote && /[ \t]/.test(c)) break;
      if (c === "\\") {
        const next = value[++i];
        if (next === "x") {
          word += String.fromCharCode(parseInt(value.slice(i + 1, i + 3), 16));
          i += 2;
        } else word += ({ n: "\n", t: "\t" } as Record<string, string>)[next] ?? next;
      } else if (quote && c === quote) quote = "";
      else if (!quote && (c === '"' || c === "'")) quote = c;
      else word += c;
    }
    assert.equal(quote, "", `unterminated quote in ${value}`);
    assert.doesNotMatch(word, /(^|[^%])(%%)*%([^%]|$)/, `unescaped % in ${word}`);
    assert.doesNotMatch(word, /(^|[^$])(\$\$)*\$[A-Za-z_{]/, `unescaped $ in ${word}`);
    words.push(word.replaceAll("%%", "%").replaceAll("$$", "$"));
  }
  return words;
}

function unitLine(units: string, key: string): string[] {
  return units.split("\n").filter((line) => line.startsWith(`${key}=`)).map((line) =>
    line.slice(key.length + 1)
  );
}

Deno.test("cli: systemd quotes and escapes ExecStart, keeps --var and --env-file, names a unit per parameter value", async () => {
  await withTempDir("ticketsync-cli-", async (dir) => {
    await Deno.mkdir(join(dir, "my configs"));
    await Deno.mkdir(join(dir, "my env"));
    await Deno.writeTextFile(join(dir, "my env/.env"), "REGION_KEY=x\n");
    await Deno.writeTextFile(
      join(dir, "my configs/quick start.json"),
      JSON.stringify({
        name: "tenants",
        description: 'Tenant import,\n  100% of "tickets"',
        key: "id",
        params: {
          "tenant-id": { type: "string", required: true, description: "Tenant" },
          days: { type: "integer", default: 90, description: "Days back" },
        },
        stages: [
          { use: "read.json", path: "${var:input:-in.json}" },
          { use: "sync-tickets.sqlite", path: "./data/${var:tenant-id}.db" },
        ],
      }),
    );
    const systemd = (...extra: string[]) =>
      runCli(["systemd", "my configs/quick start.json", ...extra], { cwd: dir });

    const result = await systemd(
      "--binary",
      "/opt/my tools/ticketsync",
      "--tenant-id",
      "acme corp",
      "--days",
      "30",
      "--var",
      'input=100% "off" $HOME\\x.json',
      "--var",
      "note=two\nlines;",
      "--env-file",
      "my env/.env",
      "--workdir",
      "/srv/100% data",
    );
    assert.equal(result.code, 0, result.stderr);
    const [execStart] = unitLine(result.stdout, "ExecStart");
    assert.deepEqual(systemdArgv(execStart), [
      "/opt/my tools/ticketsync",
      "run",
      join(dir, "my configs/quick start.json"),
      "--tenant-id",
      "acme corp",
      "--days",
      "30",
      "--var",
      'input=100% "off" $HOME\\x.json',
      "--var",
      "note=two\nlines;",
      "--env-file",
      join(dir, "my env/.env"),
      "--log-format",
      "json",
      "--no-progress",
    ]);
    assert.ok(
      execStart.startsWith(
        `"/opt/my tools/ticketsync" run "${dir}/my configs/quick start.json" --tenant-id "acme corp" --days 30`,
      ),
      execStart,
    );
    assert.deepEqual(unitLine(result.stdout, "WorkingDirectory"), ["/srv/100%% data"]);
    assert.deepEqual(unitLine(result.stdout, "SuccessExitStatus"), ["4 75 130 143"]);
    const descriptions = unitLine(result.stdout, "Description");
    assert.equal(descriptions.length, 2);
    assert.match(
      descriptions[0],
      /^ticketsync pipeline tenants .*: Tenant import, 100%% of "tickets"$/,
    );
    for (const description of descriptions) assert.doesNotMatch(description, /(^|[^%])%([^%]|$)/);

    // One unit per tenant, named after the parameter values, in systemd's unit-name characters.
    const names = (units: string) =>
      [...units.matchAll(/^# \/etc\/systemd\/system\/(.+)\.(service|timer)$/gm)].map((m) => m[1]);
    const [service, timer] = names(result.stdout);
    assert.equal(service, timer);
    assert.match(service, /^[A-Za-z0-9:_.-]+$/);
    assert.match(service, /^ticketsync-tenants-acme-corp-30/);
    const acme = await systemd("--tenant-id", "acme");
    const globex = await systemd("--tenant-id", "globex");
    assert.equal(acme.code, 0, acme.stderr);
    assert.equal(globex.code, 0, globex.stderr);
    assert.deepEqual(names(acme.stdout), ["ticketsync-tenants-acme", "ticketsync-tenants-acme"]);
    assert.deepEqual(names(globex.stdout), [
      "ticketsync-tenants-globex",
      "ticketsync-tenants-globex",
    ]);
    assert.deepEqual(systemdArgv(unitLine(acme.stdout, "ExecStart")[0]).slice(1, 5), [
      "run",
      join(dir, "my configs/quick start.json"),
      "--tenant-id",
      "acme",
    ]);
  });
});

Deno.test("cli: --log-format json prints an argument error as one JSON log line", async () => {
  for (
    const args of [
      ["run", QUICKSTART, "--log-format", "json", "--limit", "ten"],
      ["frobnicate", "--log-format=json"],
    ]
  ) {
    const result = await runCli(args);
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    const record = JSON.parse(lines[0]);
    assert.equal(typeof record.time, "string");
    assert.equal(record.level, "error");
    assert.equal(record.logger, "ticketsync");
    assert.match(record.message, /--limit: expected a whole number|Unknown command "frobnicate"/);
  }
  // Without it, the error stays a human line.
  const human = await runCli(["run", QUICKSTART, "--limit", "ten"]);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^Invalid arguments:\n {2}--limit: expected a whole number/);
});

Deno.test("cli: state on a pipeline with no ledger yet exits 2 naming the path, and creates nothing", async () => {
  const dir = await scratch();
  try {
    const before = await listTree(dir);
    for (
      const sub of [
        ["runs"],
        ["runs", "--json"],
        ["cursors"],
        ["deadletters"],
        ["record", "2500945266"],
        ["verify"],
        ["reset-cursor", "etag"],
        [],
      ]
    ) {
      const result = await runCli(["state", QUICKSTART, ...sub], { cwd: dir });
      assert.equal(result.code, 2, `${sub.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "", sub.join(" "));
      assert.match(
        result.stderr,
        /No state at ".*data\/quickstart\.state\.db": no run has used it yet \(or the working directory is not the pipeline's\)/,
      );
    }
    // A mistyped subcommand is still a usage error.
    const unknown = await runCli(["state", QUICKSTART, "frobnicate"], { cwd: dir });
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.deepEqual(await listTree(dir), before, "nothing was created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    names.push(path);
    if (entry.isDirectory) names.push(...await listTree(dir, path));
  }
  return names.sort();
}

Deno.test("cli: systemd refuses a setting ending in a backslash and trims one off a description", async () => {
  await withTempDir("ticketsync-cli-", async (dir) => {
    await writeConfig(dir, {
      name: "p",
      description: "Exports to \\\\srv\\share\\",
      key: "id",
      stages: [
        { use: "read.json", path: "in.json" },
        { use: "sync-tickets.sqlite", path: "out.db" },
      ],
    });
    const refused = await runCli(["systemd", "p.json", "--workdir", "wd\\"], { cwd: dir });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /--workdir: expected one line .* or a trailing backslash/);
    const units = await runCli(["systemd", "p.json"], { cwd: dir });
    assert.equal(units.code, 0, units.stderr);
    for (const line of units.stdout.split("\n")) {
      assert.ok(!line.endsWith("\\"), `a unit line ends in a backslash: ${line}`);
    }
  });
});

Deno.test("cli: plan shows a change of an integer beyond 2^53 held by a SQLite destination", async () => {
  await withTempDir("ticketsync-cli-", async (dir) => {
    await writeConfig(dir, {
      name: "p",
      key: "id",
      stages: [
        { use: "read.json", path: "in.json" },
        { use: "sync-tickets.sqlite", path: "out.db", columns: { big: { type: "integer" } } },
      ],
    });
    await Deno.writeTextFile(join(dir, "in.json"), '[{"id":"a","big":"9007199254740993"}]');
    assert.equal((await runCli(["run", "p.json"], { cwd: dir })).code, 0);
    await Deno.writeTextFile(join(dir, "in.json"), '[{"id":"a","big":"9007199254740995"}]');
    const plan = await runCli(["plan", "p.json"], { cwd: dir });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /big: "9007199254740993" → "9007199254740995"/);
    const json = await runCli(["plan", "p.json", "--json"], { cwd: dir });
    assert.equal(json.code, 0, json.stderr);
    assert.match(json.stdout, /"before":"9007199254740993"/);
  });
});

Deno.test("cli: state and systemd need none of the environment the stages use", async () => {
  await withTempDir("ticketsync-cli-", async (dir) => {
    // examples/texas811 reads TEXAS811_API_URL and TEXAS811_API_TOKEN: neither is set here.
    const config = join(ROOT, "examples/texas811/pipeline.json");
    const state = await runCli(["state", config, "runs"], { cwd: dir });
    assert.equal(state.code, 2, state.stderr);
    assert.match(state.stderr, /No state at ".*texas811\.state\.db"/);
    const units = await runCli(["systemd", config], { cwd: dir });
    assert.equal(units.code, 0, units.stderr);
    assert.match(units.stdout, /ExecStart=.*texas811\/pipeline\.json/);
    // validate still checks everything, the environment included.
    const validate = await runCli(["validate", config], { cwd: dir });
    assert.equal(validate.code, 1);
    assert.match(validate.stderr, /environment variable "TEXAS811_API_URL" is not set/);
  });
});
