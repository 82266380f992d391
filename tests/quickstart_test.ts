/**
 * The foundation's acceptance, end to end through the real CLI: the quickstart
 * twice, malformed records and replay, config validation, the lock, and a run
 * killed with SIGKILL then resumed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cliCommand, ROOT, runCli } from "./cli.ts";
import { acquireLock } from "../lib/lock.ts";

interface Ticket {
  ticketNumber: string;
  responses: unknown[];
  [field: string]: unknown;
}

const fixture = JSON.parse(
  await Deno.readTextFile(join(ROOT, "fixtures/texas811/tickets.json")),
) as { tickets: Ticket[] };

/** A scratch working directory holding the quickstart config, as a fresh clone would. */
async function workspace(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync-qs-" });
  await Deno.mkdir(join(dir, "examples/quickstart"), { recursive: true });
  await Deno.copyFile(
    join(ROOT, "examples/quickstart/pipeline.json"),
    join(dir, "examples/quickstart/pipeline.json"),
  );
  await Deno.mkdir(join(dir, "fixtures/texas811"), { recursive: true });
  for (const name of ["tickets.json", "tickets_bad.json"]) {
    await Deno.copyFile(
      join(ROOT, "fixtures/texas811", name),
      join(dir, "fixtures/texas811", name),
    );
  }
  return dir;
}

function query<T>(dir: string, sql: string): T[] {
  const db = new DatabaseSync(join(dir, "data/quickstart.db"), { readOnly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

const CONFIG = "examples/quickstart/pipeline.json";

Deno.test("quickstart: first run creates every ticket and response; second run is all unchanged", async () => {
  const dir = await workspace();
  try {
    const first = await runCli(["run", CONFIG, "--no-progress"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stderr,
      /200 tickets read, 200 created, 0 updated, 0 unchanged, 0 skipped, 0 failed/,
    );

    const tickets = query<{ n: number }>(dir, "SELECT count(*) AS n FROM tickets")[0].n;
    assert.equal(tickets, fixture.tickets.length);
    const responses = query<{ n: number }>(dir, "SELECT count(*) AS n FROM responses")[0].n;
    assert.equal(responses, fixture.tickets.reduce((sum, t) => sum + t.responses.length, 0));

    // Dates were read as America/Chicago wall-clock times: CST in January, CDT in July.
    const first0 = fixture.tickets[0];
    const row = query<{ created_at: string; raw: string }>(
      dir,
      `SELECT created_at, raw FROM tickets WHERE key = '${first0.ticketNumber}'`,
    )[0];
    assert.equal(first0.createdDate, "01/09/2025 02:57 PM");
    assert.equal(row.created_at, "2025-01-09T14:57:00-06:00");
    const summer = fixture.tickets.find((t) => String(t.createdDate).startsWith("07/"))!;
    const [mm, dd, yyyy] = String(summer.createdDate).slice(0, 10).split("/");
    const summerRow = query<{ created_at: string }>(
      dir,
      `SELECT created_at FROM tickets WHERE key = '${summer.ticketNumber}'`,
    )[0];
    assert.ok(summerRow.created_at.startsWith(`${yyyy}-${mm}-${dd}T`));
    assert.ok(summerRow.created_at.endsWith("-05:00"), summerRow.created_at);

    const synced = query<{ synced_at: string }>(dir, "SELECT synced_at FROM tickets ORDER BY key");
    const second = await runCli(["run", CONFIG, "--no-progress"], { cwd: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /200 tickets read, 0 created, 0 updated, 200 unchanged/);
    assert.deepEqual(
      query<{ synced_at: string }>(dir, "SELECT synced_at FROM tickets ORDER BY key"),
      synced,
      "unchanged tickets are not rewritten",
    );

    const state = await runCli(["state", CONFIG, "runs", "--json"], { cwd: dir });
    const runs = JSON.parse(state.stdout) as { status: string; exitCode: number }[];
    assert.deepEqual(runs.map((r) => [r.status, r.exitCode]), [["finished", 0], ["finished", 0]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quickstart: malformed records are dead-lettered with origin, exit 4, and replay fixes them", async () => {
  const dir = await workspace();
  try {
    const bad = "fixtures/texas811/tickets_bad.json";
    const run = await runCli(["run", CONFIG, "--var", `input=${bad}`, "--no-progress"], {
      cwd: dir,
    });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /20 tickets read, 17 created/);

    const letters = JSON.parse(
      (await runCli(["state", CONFIG, "deadletters", "--json"], { cwd: dir })).stdout,
    ) as { source: string; position: string; reason: string }[];
    assert.equal(letters.length, 3);
    for (const letter of letters) {
      assert.equal(letter.source, bad);
      assert.match(letter.position, /line \d+/, "origin names the line in the file");
    }
    const reasons = letters.map((l) => l.reason).join("\n");
    assert.match(
      reasons,
      /expected a date like "MM\/dd\/yyyy hh:mm a", got "13\/45\/2025 99:99 XM"/,
    );
    assert.match(reasons, /ticket_number/);

    // The operator fixes the input, then replays only the dead letters.
    const document = JSON.parse(await Deno.readTextFile(join(dir, bad))) as { tickets: Ticket[] };
    for (const [index, ticket] of document.tickets.entries()) {
      for (const [field, value] of Object.entries(ticket)) {
        if (value === "13/45/2025 99:99 XM") ticket[field] = "03/09/2025 03:18 AM";
      }
      for (const response of ticket.responses as Record<string, unknown>[]) {
        if (response.responseDate === "13/45/2025 99:99 XM") {
          response.responseDate = "03/09/2025 03:18 AM";
        }
      }
      if (!ticket.ticketNumber) ticket.ticketNumber = `25999${String(index).padStart(5, "0")}`;
    }
    await Deno.writeTextFile(join(dir, bad), JSON.stringify(document, null, 2));
    const replay = await runCli(["replay", CONFIG, "--var", `input=${bad}`, "--no-progress"], {
      cwd: dir,
    });
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stderr, /3 created/);
    assert.match(replay.stderr, /17 "not selected for replay"/);
    const after = await runCli(["state", CONFIG, "deadletters", "--json"], { cwd: dir });
    assert.deepEqual(JSON.parse(after.stdout), []);
    assert.equal(query<{ n: number }>(dir, "SELECT count(*) AS n FROM tickets")[0].n, 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate: a misspelt key, a wrong type and a missing env var exit 1, each named, nothing written", async () => {
  const dir = await workspace();
  try {
    const config = JSON.parse(await Deno.readTextFile(join(dir, CONFIG)));
    config.stages[0].pth = config.stages[0].path; // misspelt key
    config.stages[3].batchSize = "many"; // wrong type
    config.stages[6].path = "${env:TICKETSYNC_REPORT_DIR}/report.json"; // missing env var
    await Deno.writeTextFile(join(dir, "broken.json"), JSON.stringify(config, null, 2));
    for (const command of ["validate", "run"]) {
      const result = await runCli([command, "broken.json"], { cwd: dir });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /stages\[0\]\.pth: unknown key \(did you mean "path"\?\)/);
      assert.match(result.stderr, /stages\[3\]\.batchSize: expected a number, got "many"/);
      assert.match(
        result.stderr,
        /stages\[6\]\.path: environment variable "TICKETSYNC_REPORT_DIR" is not set/,
      );
    }
    await assert.rejects(
      () => Deno.stat(join(dir, "data")),
      Deno.errors.NotFound,
      "nothing was written",
    );

    const ok = await runCli(["validate", CONFIG], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /is valid: pipeline "quickstart", 7 stages/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: a second run while one holds the lock exits 75 and touches nothing", async () => {
  const dir = await workspace();
  try {
    const lock = acquireLock(join(dir, "data/quickstart.state.db.lock"), "quickstart");
    try {
      const result = await runCli(["run", CONFIG, "--no-progress"], { cwd: dir });
      assert.equal(result.code, 75, result.stderr);
      assert.match(result.stderr, /another run holds the lock/);
    } finally {
      lock.release();
    }
    await assert.rejects(() => Deno.stat(join(dir, "data/quickstart.db")), Deno.errors.NotFound);
    await assert.rejects(
      () => Deno.stat(join(dir, "data/quickstart.state.db")),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** 12,000 tickets made from the fixture with new numbers: long enough to kill mid-way. */
async function bigInput(path: string): Promise<void> {
  const tickets: Ticket[] = [];
  for (let copy = 0; copy < 60; copy++) {
    for (const ticket of fixture.tickets) {
      tickets.push({ ...ticket, ticketNumber: `${ticket.ticketNumber}-${copy}` });
    }
  }
  await Deno.writeTextFile(path, JSON.stringify({ tickets }));
}

function snapshot(dir: string): { tickets: unknown[]; responses: unknown[] } {
  return {
    tickets: query(dir, "SELECT key, content_hash, raw FROM tickets ORDER BY key"),
    responses: query(
      dir,
      "SELECT parent_key, child_key, raw FROM responses ORDER BY parent_key, child_key",
    ),
  };
}

Deno.test("run: killed with SIGKILL mid-way, the next run ends with the same database as an uninterrupted run", async () => {
  const killed = await workspace();
  const clean = await workspace();
  try {
    await bigInput(join(killed, "big.json"));
    await Deno.copyFile(join(killed, "big.json"), join(clean, "big.json"));
    const args = ["run", CONFIG, "--var", "input=big.json", "--no-progress"];

    const child = cliCommand(args, { cwd: killed }).spawn();
    // Wait until some, not all, tickets are in, then kill without warning.
    let rows = 0;
    for (let i = 0; i < 600 && rows < 1500; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        rows = query<{ n: number }>(killed, "SELECT count(*) AS n FROM tickets")[0].n;
      } catch {
        rows = 0; // not created yet
      }
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    assert.equal(status.signal, "SIGKILL");
    assert.ok(rows > 0 && rows < 12_000, `killed mid-way (${rows} tickets in)`);

    const resumed = await runCli(args, { cwd: killed });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /Resuming after 1 run\(s\) that did not finish/);
    const uninterrupted = await runCli(args, { cwd: clean });
    assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

    const a = snapshot(killed);
    const b = snapshot(clean);
    assert.equal(a.tickets.length, 12_000);
    assert.deepEqual(a, b);
  } finally {
    await Deno.remove(killed, { recursive: true });
    await Deno.remove(clean, { recursive: true });
  }
});
