/**
 * The Vivenu historical sync (examples/vivenu/pipeline.json) and its pull-only
 * variant (examples/vivenu/pull.json) end to end through the real CLI, against
 * the emulated tickets API and webhook receiver (tests/vivenu_api.ts), each on
 * its own stub server (two hosts, as in production: the 1.8 s spacing of the
 * webhook host does not slow the API reads).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadConfig } from "../lib/config.ts";
import { Registry } from "../lib/registry.ts";
import { stageLoaders } from "../stages/mod.ts";
import { uuidV5 } from "../stages/transform/envelope.ts";
import { cliCommand, killUntilDone, ROOT, runCli } from "./cli.ts";
import { type Watch, watchWhile } from "./harness.ts";
import { StubServer } from "./stub_server.ts";
import {
  mountVivenu,
  mountWebhook,
  type VivenuApi,
  type VivenuTicket,
  vivenuTickets,
  type WebhookReceiver,
} from "./vivenu_api.ts";

const FIXTURE = JSON.parse(
  await Deno.readTextFile(join(ROOT, "fixtures/vivenu/tickets.json")),
) as { rows: VivenuTicket[] };
const FIXTURE_EVENT = "68108c20c5c88849372bfb61";
const KEYS = { PROD_API: "prod-key-1234", DEV_API: "dev-key-5678" };

interface Setup extends AsyncDisposable {
  dir: string;
  api: VivenuApi;
  apiStub: StubServer;
  hookStub: StubServer;
  receiver: WebhookReceiver;
  env: Record<string, string>;
  run(config: string, args: string[], env?: Record<string, string>): ReturnType<typeof runCli>;
}

/** A temp working directory with both example configs, the tickets API and the webhook. */
async function setup(): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "vivenu_test_" });
  for (const name of ["pipeline.json", "pull.json"]) {
    await Deno.copyFile(join(ROOT, "examples/vivenu", name), join(dir, name));
  }
  const apiStub = await StubServer.start();
  const hookStub = await StubServer.start();
  const api = mountVivenu(apiStub, { keys: Object.values(KEYS) });
  api.events.set(FIXTURE_EVENT, FIXTURE.rows);
  const receiver = mountWebhook(hookStub, ["/ticket-created", "/test-created"]);
  const env = {
    ...KEYS,
    ITALY_API: "revoked-key-0000",
    VIVENU_URL: apiStub.url,
    WEBHOOK_URL: `${hookStub.url}/ticket-created`,
  };
  return {
    dir,
    api,
    apiStub,
    hookStub,
    receiver,
    env,
    run: (config, args, extra = {}) =>
      runCli(["run", config, "--no-progress", ...args], { cwd: dir, env: { ...env, ...extra } }),
    async [Symbol.asyncDispose]() {
      await apiStub.close();
      await hookStub.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function envelopeFor(ticket: VivenuTicket) {
  return {
    id: uuidV5(`vivenu:${ticket._id}`),
    sellerId: ticket.sellerId,
    type: "ticket.created",
    mode: "prod",
    data: { ticket },
  };
}

Deno.test("vivenu: 1000 tickets, 50 wrong status and 200 not charity filtered, 750 webhooks; a re-run sends nothing", async () => {
  await using s = await setup();
  const tickets = vivenuTickets("e1000", { total: 1000, wrongStatus: 50, notCharity: 200 });
  s.api.events.set("e1000", tickets);
  const args = ["--region", "PROD", "--event-id", "e1000", "--spacing-ms", "1"];
  const first = await s.run("pipeline.json", args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /1000 tickets read, 750 created, 0 updated, 0 unchanged/);
  const filtered = /Filtered out: (.*)/.exec(first.stderr)?.[1] ?? "";
  assert.deepEqual(filtered.split(", ").sort(), ['200 "not charity"', '50 "wrong status"']);
  assert.match(first.stderr, /Imported 700 tickets/);

  const sent = s.receiver.at("/ticket-created");
  assert.equal(sent.length, 750);
  const expected = tickets.filter((t) =>
    ["VALID", "DETAILSREQUIRED"].includes(t.status) && /charity/i.test(t.ticketName)
  );
  assert.equal(expected.length, 750);
  assert.deepEqual(sent, expected.map(envelopeFor), "every valid charity ticket, in API order");
  assert.deepEqual(
    s.api.calls.map((c) => [c.skip, c.top, c.event, c.key]),
    Array.from({ length: 11 }, (_, i) => [i * 100, 100, "e1000", KEYS.PROD_API]),
  );

  const second = await s.run("pipeline.json", args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /1000 tickets read, 0 created, 0 updated, 750 unchanged/);
  assert.equal(s.receiver.received.length, 750, "nothing re-sent");
});

Deno.test("vivenu: the envelope wraps the full ticket; webhooks are spaced by --spacing-ms (default 1800)", async () => {
  await using s = await setup();
  const run = await s.run("pipeline.json", [
    "--region",
    "DEV",
    "--event-id",
    FIXTURE_EVENT,
    "--spacing-ms",
    "200",
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /5 tickets read, 2 created/);
  assert.match(run.stderr, /Filtered out: 2 "wrong status", 1 "not charity"/);
  assert.equal(s.api.calls[0].key, KEYS.DEV_API, "the DEV region's key");
  assert.deepEqual(s.receiver.at("/ticket-created"), [
    envelopeFor(FIXTURE.rows[0]),
    envelopeFor(FIXTURE.rows[1]),
  ]);
  const [a, b] = s.receiver.received;
  assert.match(a.key ?? "", /^[0-9a-f]{32}$/, "Idempotency-Key");
  assert.ok(b.at - a.at >= 190, `webhooks ${Math.round(b.at - a.at)} ms apart (spacing 200 ms)`);

  // A bigger event shows the spacing between every pair of webhooks.
  s.api.events.set("e5", vivenuTickets("e5", { total: 5, wrongStatus: 0, notCharity: 0 }));
  const spaced = await s.run("pipeline.json", [
    "--region",
    "PROD",
    "--event-id",
    "e5",
    "--spacing-ms",
    "150",
  ]);
  assert.equal(spaced.code, 0, spaced.stderr);
  const times = s.receiver.received.slice(2).map((r) => r.at);
  assert.equal(times.length, 5);
  // The limiter spaces request starts; arrival at the receiver adds a few ms of jitter either way,
  // so each gap gets that much slack and the whole span must hold every interval.
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - times[i - 1] >= 130, `gap ${Math.round(times[i] - times[i - 1])} ms`);
  }
  const span = times[times.length - 1] - times[0];
  assert.ok(span >= 4 * 150 - 10, `5 webhooks over ${Math.round(span)} ms (4 gaps of 150 ms)`);

  const config = await loadConfig(join(s.dir, "pipeline.json"), {
    registry: new Registry([], stageLoaders),
    env: s.env,
    paramArgs: { region: "PROD", "event-id": "e5" },
    cwd: s.dir,
  });
  const sink = config.stages.find((stage) => stage.use === "sync-tickets.webhook")!;
  assert.deepEqual(sink.config.rateLimit, { minIntervalMs: 1800 });
  assert.equal(sink.config.concurrency, 1);
});

Deno.test("vivenu: test mode (--limit 1 --webhook-url) sends one ticket to the test endpoint only", async () => {
  await using s = await setup();
  const base = ["--region", "PROD", "--event-id", FIXTURE_EVENT, "--spacing-ms", "1"];
  const test = await s.run("pipeline.json", [
    ...base,
    "--limit",
    "1",
    "--webhook-url",
    `${s.hookStub.url}/test-created`,
  ]);
  assert.equal(test.code, 0, test.stderr);
  assert.match(test.stderr, /1 tickets read, 1 created/);
  assert.deepEqual(s.receiver.at("/test-created"), [envelopeFor(FIXTURE.rows[0])]);
  assert.deepEqual(s.receiver.at("/ticket-created"), []);

  // Delivered to the test endpoint is not delivered to production.
  const prod = await s.run("pipeline.json", base);
  assert.equal(prod.code, 0, prod.stderr);
  assert.match(prod.stderr, /5 tickets read, 2 created/);
  assert.deepEqual(s.receiver.at("/ticket-created"), [
    envelopeFor(FIXTURE.rows[0]),
    envelopeFor(FIXTURE.rows[1]),
  ]);
});

Deno.test("vivenu: killed with SIGKILL mid-run, the next run sends only what was not delivered", async () => {
  await using s = await setup();
  const tickets = vivenuTickets("e40", { total: 40, wrongStatus: 0, notCharity: 0 });
  s.api.events.set("e40", tickets);
  // Slow answers: the kill is likely to catch a webhook in flight.
  s.hookStub.latency(30);
  const args = ["run", "pipeline.json", "--no-progress", "--region", "PROD", "--event-id", "e40"];
  const child = cliCommand([...args, "--spacing-ms", "40"], { cwd: s.dir, env: s.env }).spawn();
  for (let i = 0; i < 400 && s.receiver.received.length < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.equal(status.signal, "SIGKILL");
  const atKill = s.receiver.received.length;
  assert.ok(atKill >= 8 && atKill < 40, `killed mid-run (${atKill} of 40 delivered)`);

  s.hookStub.latency(0);
  const resumed = await runCli([...args, "--spacing-ms", "1"], { cwd: s.dir, env: s.env });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /Resuming after 1 run\(s\) that did not finish/);

  // What is asserted: every ticket arrived; at most one arrived twice (the one in flight at
  // the kill, which the killed run never logged as delivered), and its two copies are the
  // same envelope (same id, same body) with the same Idempotency-Key; none arrived 3 times.
  const byTicket = new Map<string, typeof s.receiver.received>();
  for (const delivery of s.receiver.received) {
    const id = delivery.body.data.ticket._id;
    byTicket.set(id, [...(byTicket.get(id) ?? []), delivery]);
  }
  assert.deepEqual([...byTicket.keys()].sort(), tickets.map((t) => t._id).sort());
  const twice = [...byTicket.values()].filter((list) => list.length > 1);
  assert.ok(twice.length <= 1, `${twice.length} tickets were sent more than once`);
  for (const list of twice) {
    assert.equal(list.length, 2);
    assert.deepEqual(list[1].body, list[0].body);
    assert.equal(list[1].key, list[0].key);
  }
  assert.equal(s.receiver.received.length, 40 + twice.length);
});

Deno.test("vivenu: a webhook 500 is retried; a 4xx dead-letters the ticket (exit 4); a revoked API key exits 3", async () => {
  await using s = await setup();
  s.hookStub.script("POST", "/ticket-created", [500]);
  s.receiver.unknownTypes.add(String(FIXTURE.rows[1].ticketTypeId));
  const base = ["--event-id", FIXTURE_EVENT, "--spacing-ms", "1"];
  const run = await s.run("pipeline.json", ["--region", "PROD", ...base]);
  assert.equal(run.code, 4, run.stderr);
  assert.match(run.stderr, /Retrying POST .*\/ticket-created .*answered 500/);
  assert.match(
    run.stderr,
    /5 tickets read, 1 created, 0 updated, 0 unchanged, 0 skipped, 1 failed/,
  );
  assert.deepEqual(s.receiver.at("/ticket-created"), [envelopeFor(FIXTURE.rows[0])]);

  const letters = JSON.parse(
    (await runCli(
      ["state", "pipeline.json", "deadletters", "--json", "--region", "PROD", ...base],
      {
        cwd: s.dir,
        env: s.env,
      },
    )).stdout,
  ) as { key: string; reason: string }[];
  assert.deepEqual(letters.map((l) => l.key), [FIXTURE.rows[1]._id]);
  assert.match(letters[0].reason, /answered 422: .*ticketTypeId not found in KV store/);

  // Once the ticket type is registered, a replay sends only that ticket.
  s.receiver.unknownTypes.clear();
  const replay = await runCli([
    "replay",
    "pipeline.json",
    "--no-progress",
    "--region",
    "PROD",
    ...base,
  ], {
    cwd: s.dir,
    env: s.env,
  });
  assert.equal(replay.code, 0, replay.stderr);
  assert.deepEqual(s.receiver.at("/ticket-created"), [
    envelopeFor(FIXTURE.rows[0]),
    envelopeFor(FIXTURE.rows[1]),
  ]);

  const revoked = await s.run("pipeline.json", ["--region", "ITALY", ...base]);
  assert.equal(revoked.code, 3, revoked.stderr);
  assert.match(revoked.stderr, /Authentication failed: GET .*\/api\/tickets.* answered 401/);
  assert.doesNotMatch(revoked.stderr, /revoked-key-0000/, "the key is redacted");
});

Deno.test("vivenu: the pull config writes the filtered tickets to all_tickets.json, metadata.json and individual/", async () => {
  await using s = await setup();
  const run = await s.run("pull.json", ["--region", "PROD", "--event-id", FIXTURE_EVENT]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /5 tickets read, 2 created/);
  assert.equal(s.hookStub.log.length, 0, "no webhook in pull mode");
  const file = JSON.parse(
    await Deno.readTextFile(join(s.dir, "purchased_tickets", FIXTURE_EVENT, "all_tickets.json")),
  );
  assert.deepEqual(file.tickets, [FIXTURE.rows[0], FIXTURE.rows[1]]);
  assert.equal(file.metadata.source, `vivenu PROD event ${FIXTURE_EVENT}`);
  assert.deepEqual(file.statistics.status, { VALID: 1, DETAILSREQUIRED: 1 });
  // The seed's layout: metadata.json beside it, and individual/<id>_<first> <last>.json.
  const eventDir = join(s.dir, "purchased_tickets", FIXTURE_EVENT);
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(join(eventDir, "metadata.json"))),
    { metadata: file.metadata, statistics: file.statistics },
  );
  const individual: string[] = [];
  for await (const entry of Deno.readDir(join(eventDir, "individual"))) {
    individual.push(entry.name);
  }
  assert.deepEqual(individual.sort(), [
    `${FIXTURE.rows[0]._id}_John Doe.json`,
    `${FIXTURE.rows[1]._id}_ .json`,
  ]);
  assert.deepEqual(
    JSON.parse(
      await Deno.readTextFile(join(eventDir, "individual", `${FIXTURE.rows[0]._id}_John Doe.json`)),
    ),
    FIXTURE.rows[0],
  );
  // Pulled again: nothing changed, nothing rewritten.
  const again = await s.run("pull.json", ["--region", "PROD", "--event-id", FIXTURE_EVENT]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /5 tickets read, 0 created, 0 updated, 2 unchanged/);
  assert.doesNotMatch(again.stderr, /Wrote \d+ record files/);
});

Deno.test("vivenu: a missing --event-id or region key exits 1, naming it", async () => {
  await using s = await setup();
  const noEvent = await s.run("pipeline.json", ["--region", "PROD"]);
  assert.equal(noEvent.code, 1, noEvent.stderr);
  assert.match(noEvent.stderr, /--event-id: required parameter is missing/);
  const noKey = await s.run("pipeline.json", ["--region", "DACH", "--event-id", "e"]);
  assert.equal(noKey.code, 1, noKey.stderr);
  assert.match(noKey.stderr, /environment variable "DACH_API" is not set/);
  assert.equal(s.apiStub.log.length + s.hookStub.log.length, 0, "nothing was touched");
});

Deno.test("vivenu: SIGTERM lets the webhook in flight finish, so the next run does not send it again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vivenu_sigterm_" });
  await Deno.copyFile(join(ROOT, "examples/vivenu/pipeline.json"), join(dir, "pipeline.json"));
  const apiStub = await StubServer.start();
  const hookStub = await StubServer.start({ latencyMs: 1500 }); // a slow webhook worker
  const api = mountVivenu(apiStub, { keys: ["prod-key-1234"] });
  api.events.set("e", vivenuTickets("e", { total: 5, wrongStatus: 0, notCharity: 0 }));
  const receiver = mountWebhook(hookStub, ["/ticket-created"]);
  const env = {
    PROD_API: "prod-key-1234",
    VIVENU_URL: apiStub.url,
    WEBHOOK_URL: `${hookStub.url}/ticket-created`,
  };
  const args = ["run", "pipeline.json", "--no-progress", "--region", "PROD", "--event-id", "e"];
  try {
    const child = cliCommand([...args, "--spacing-ms", "10"], { env, cwd: dir }).spawn();
    while (hookStub.log.length < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 300)); // the first webhook is at the receiver
    child.kill("SIGTERM");
    const stopped = await child.output();
    assert.equal(stopped.code, 143);
    assert.equal(receiver.received.length, 1, "the one in flight was finished, no other started");

    const again = await cliCommand([...args, "--spacing-ms", "10"], { env, cwd: dir }).output();
    assert.equal(again.code, 0, new TextDecoder().decode(again.stderr));
    const ids = receiver.received.map((r) => String(r.body.data.ticket._id));
    assert.equal(ids.length, 5);
    assert.equal(new Set(ids).size, 5, `no ticket twice: ${ids.join(", ")}`);
  } finally {
    await apiStub.close();
    await hookStub.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Tickets of the pull kill test's event: 1,350 pulled, one file each; a first pull of 1-2 s. */
const KILL_TICKETS = 1_500;
/** How much later each run of the pull kill test is killed than the one before, in ms. */
const KILL_STEP_MS = 100;
/** The event of the pull kill test. */
const KILL_EVENT = "e1500";
/** The event's output directory, under a working directory. */
const KILL_OUTPUT = `purchased_tickets/${KILL_EVENT}`;

/**
 * The event's tickets a day later: some edited (the file of the ticket
 * changes), some renamed (a new file; the old one stays), some invalidated
 * (they leave all_tickets.json; their files stay), and new ones sold.
 */
function ticketsADayLater(tickets: VivenuTicket[]): VivenuTicket[] {
  const edited = tickets.map((ticket, i): VivenuTicket =>
    i % 7 === 0
      ? { ...ticket, email: `changed${i}@example.com`, barcode: `BX${i}` }
      : i % 101 === 0
      ? { ...ticket, lastname: `Married${i}` }
      : i % 211 === 0
      ? { ...ticket, status: "INVALID" }
      : ticket
  );
  const sold = tickets.slice(0, 150).map((ticket, i): VivenuTicket => ({
    ...ticket,
    _id: `7f${i.toString(16).padStart(22, "0")}`,
    firstname: `Late${i}`,
    createdAt: new Date(Date.UTC(2025, 6, 1) + i * 60_000).toISOString(),
  }));
  return [...edited, ...sold];
}

/** A file's text with its `generated_at` blanked: what does not depend on when it ran. */
function withoutGeneratedAt(text: string): string {
  return text.replace(/"generated_at": "[^"]*"/, '"generated_at": ""');
}

/** Whether `path` (relative to the output directory) is a per-ticket file. */
function isIndividual(path: string): boolean {
  return path.startsWith("individual/");
}

/** Whether a file name is a temporary file of an atomic write (`.<name>.<8 hex>.tmp`). */
function isTemporary(name: string): boolean {
  return /^\..+\.[0-9a-f]{8}\.tmp$/.test(name);
}

/** Names in `dir` (none when it does not exist), sorted. */
async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/** Every file under `dir` by path relative to it (`individual/<name>`), with its text. */
async function filesUnder(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  async function walk(relative: string): Promise<void> {
    for await (const entry of Deno.readDir(join(dir, relative))) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else files.set(path, await Deno.readTextFile(join(dir, path)));
    }
  }
  try {
    await walk("");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files;
}

/**
 * The files of an output directory as a run leaves them, but for when it ran:
 * `generated_at` blanked outside `individual/`, and the backups (named by the
 * time they were made) as `backups/1`, `backups/2`, ... in name order.
 */
function comparableFiles(files: Map<string, string>): Map<string, string> {
  const result = new Map<string, string>();
  let backup = 0;
  for (const path of [...files.keys()].sort()) {
    const text = files.get(path)!;
    const isBackup = /^backups\/all_tickets\.json\.backup\./.test(path);
    result.set(
      isBackup ? `backups/${++backup}` : path,
      isIndividual(path) ? text : withoutGeneratedAt(text),
    );
  }
  return result;
}

/** Where two texts first differ, with a little of each around it. */
function firstDifference(actual: string, expected: string): string {
  let at = 0;
  while (at < actual.length && actual[at] === expected[at]) at++;
  const around = (text: string) => JSON.stringify(text.slice(Math.max(0, at - 40), at + 40));
  return `at character ${at}: ${around(actual)} instead of ${around(expected)}`;
}

/**
 * Asserts that two output directories hold the same files ({@linkcode comparableFiles}).
 * Compact on failure: the first path that differs, then the first file that differs and where.
 */
function assertSameFiles(
  actual: Map<string, string>,
  expected: Map<string, string>,
  label: string,
): void {
  const [got, want] = [actual, expected].map((files) => [...files.keys()].sort());
  if (!isDeepStrictEqual(got, want)) {
    const at = got.findIndex((path, index) => path !== want[index]);
    const extra = got.filter((path) => !expected.has(path));
    const missing = want.filter((path) => !actual.has(path));
    assert.fail(
      `${label}: ${got.length} files instead of ${want.length}; from #${at}: ${got[at]} instead ` +
        `of ${want[at]}; not expected: ${extra.slice(0, 5).join(", ")} (${extra.length}); ` +
        `missing: ${missing.slice(0, 5).join(", ")} (${missing.length})`,
    );
  }
  for (const path of got) {
    const [text, wanted] = [actual.get(path)!, expected.get(path)!];
    if (text !== wanted) assert.fail(`${label}: ${path} differs ${firstDifference(text, wanted)}`);
  }
}

/** What {@linkcode watchOutput} saw. */
interface OutputWatch extends Watch {
  /** How many per-ticket files it read (a share of them at each look). */
  ticketReads: number;
}

/** Per-ticket files read at each look of {@linkcode watchOutput}, in turn. */
const TICKET_FILES_PER_LOOK = 250;

/**
 * Looks at the output directory `dir` every few milliseconds until the
 * returned function is called (it resolves with what was seen), while runs
 * are started and killed. `old` are the files before the runs, `next` those
 * of the uninterrupted run ({@linkcode comparableFiles} both), `oldExport` the
 * exact text of the old all_tickets.json. At every look, but for the
 * temporary files of writes in progress: every file is one of the old run's
 * or the new one's, whole (its old text or its new one; a file absent only if
 * it was not there before); every old per-ticket file is still there; every
 * backup is the complete old export, and there are never more backups than
 * the uninterrupted run makes. The per-ticket files are read a share at a
 * time ({@linkcode TICKET_FILES_PER_LOOK}), each of them every few looks.
 */
function watchOutput(
  dir: string,
  old: Map<string, string>,
  next: Map<string, string>,
  oldExport: string | null,
): () => Promise<OutputWatch> {
  let ticketReads = 0;
  const backupsAllowed = [...next.keys()].filter((path) => path.startsWith("backups/")).length;
  const oldTickets = [...old.keys()].filter(isIndividual);
  let turn = 0;

  /** Reads `path`, null when absent. */
  async function read(path: string): Promise<string | null> {
    try {
      return await Deno.readTextFile(join(dir, path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  /** Throws unless `text` (null: absent) is the old or the new version of `path`; which one. */
  function check(path: string, text: string | null): string {
    const comparable = text === null || isIndividual(path) ? text : withoutGeneratedAt(text);
    if (comparable === (old.get(path) ?? null)) return text === null ? "absent" : "old";
    if (comparable === (next.get(path) ?? null)) return "new";
    let json = "valid JSON";
    try {
      if (text !== null) JSON.parse(text);
    } catch {
      json = "not JSON";
    }
    throw new Error(
      text === null
        ? `${path} is gone`
        : `${path} is neither its old nor its new version: ${text.length} bytes, ${json}`,
    );
  }

  async function look(): Promise<string> {
    for (const name of await names(dir)) {
      if (
        !isTemporary(name) && !["all_tickets.json", "metadata.json", "backups", "individual"]
          .includes(name)
      ) throw new Error(`unexpected file ${name}`);
    }
    const state = check("all_tickets.json", await read("all_tickets.json"));
    check("metadata.json", await read("metadata.json"));
    const backups = (await names(join(dir, "backups"))).filter((name) => !isTemporary(name));
    if (backups.length > backupsAllowed) {
      throw new Error(`${backups.length} backups: ${backups.join(", ")}`);
    }
    for (const name of backups) {
      if (!/^all_tickets\.json\.backup\.\d{8}_\d{6}(_\d+)?$/.test(name)) {
        throw new Error(`unexpected backup name ${name}`);
      }
      if (await read(`backups/${name}`) !== oldExport) {
        throw new Error(`backup ${name} is not the complete old export`);
      }
    }
    const tickets = (await names(join(dir, "individual")))
      .filter((name) => !isTemporary(name))
      .map((name) => `individual/${name}`);
    const present = new Set(tickets);
    const gone = oldTickets.find((path) => !present.has(path));
    if (gone !== undefined) throw new Error(`${gone} is gone`);
    const stranger = tickets.find((path) => !old.has(path) && !next.has(path));
    if (stranger !== undefined) throw new Error(`unexpected file ${stranger}`);
    const share = tickets.length === 0 ? [] : Array.from(
      { length: Math.min(TICKET_FILES_PER_LOOK, tickets.length) },
      () => tickets[turn++ % tickets.length],
    );
    const texts = await Promise.all(share.map(read));
    // A per-ticket file, once there, stays (nothing deletes one): listed, then absent, is gone.
    share.forEach((path, index) => check(path, texts[index]));
    ticketReads += share.length;
    return state;
  }

  const stop = watchWhile(look, 3);
  return async () => ({ ...await stop(), ticketReads });
}

Deno.test("vivenu: pull runs killed with SIGKILL at any moment and started again end with the files of one uninterrupted run, every file always whole", async () => {
  await using killed = await setup();
  await using reference = await setup();
  // The shipped pull config, with pages of 50 tickets: 40 requests per run.
  const config = JSON.parse(await Deno.readTextFile(join(killed.dir, "pull.json")));
  config.stages[0].pagination.size = 50;
  for (const s of [killed, reference]) {
    await Deno.writeTextFile(join(s.dir, "pull-kill.json"), JSON.stringify(config, null, 2));
  }
  const args = ["run", "pull-kill.json", "--no-progress", "--region", "PROD"];
  const tickets = vivenuTickets(KILL_EVENT, {
    total: KILL_TICKETS,
    wrongStatus: 60,
    notCharity: 90,
  });
  // The day's changes, counted as the pull sees them (only valid charity tickets are pulled).
  const later = ticketsADayLater(tickets);
  const pulled = (list: VivenuTicket[]) =>
    new Map(
      list.filter((t) =>
        ["VALID", "DETAILSREQUIRED"].includes(t.status) && /charity/i.test(t.ticketName)
      )
        .map((t) => [t._id, t]),
    );
  const [before, after] = [pulled(tickets), pulled(later)];
  const added = [...after.keys()].filter((id) => !before.has(id)).length;
  const edited =
    [...after].filter(([id, t]) => before.has(id) && !isDeepStrictEqual(before.get(id), t))
      .length;
  const phases = [
    {
      phase: "first pull",
      rows: tickets,
      summary: `${before.size} created, 0 updated, 0 unchanged`,
    },
    {
      phase: "after a day of sales and edits",
      rows: later,
      summary: `${added} created, ${edited} updated, ${after.size - added - edited} unchanged`,
    },
  ];
  const left = [...before.keys()].filter((id) => !after.has(id)).length;
  // Every kind of change is there: files added, rewritten, renamed (in `edited`), left behind.
  assert.deepEqual([before.size, added, edited, left], [1350, 137, 204, 6]);
  const kills: number[] = [];
  for (const { phase, rows, summary } of phases) {
    killed.api.events.set(KILL_EVENT, rows);
    reference.api.events.set(KILL_EVENT, rows);
    // The reference: one run without interruption.
    const run = await reference.run("pull-kill.json", [
      "--region",
      "PROD",
      "--event-id",
      KILL_EVENT,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stderr.includes(`${rows.length} tickets read, ${summary}`), run.stderr);
    const next = comparableFiles(await filesUnder(join(reference.dir, KILL_OUTPUT)));

    // The same pull, killed again and again until a run ends by itself, watched throughout.
    const output = join(killed.dir, KILL_OUTPUT);
    const old = await filesUnder(output);
    const oldExport = old.get("all_tickets.json") ?? null;
    const stop = watchOutput(output, comparableFiles(old), next, oldExport);
    let watched: OutputWatch;
    try {
      kills.push(
        await killUntilDone([...args, "--event-id", KILL_EVENT], {
          cwd: killed.dir,
          env: killed.env,
        }, KILL_STEP_MS),
      );
    } finally {
      watched = await stop();
    }
    assert.equal(watched.problem, null, `${phase}: while the runs were killed`);
    assert.ok(watched.looks >= 50, `${phase}: looked ${watched.looks} times`);
    // The first look, before any run: the old export (none before the first pull).
    assert.equal(watched.states[0], oldExport === null ? "absent" : "old", phase);
    assert.ok(
      watched.ticketReads >= 3 * next.size,
      `${phase}: read ${watched.ticketReads} ticket files (${next.size} files)`,
    );

    // No temporary file left anywhere, then the very files of the uninterrupted run.
    const files = await filesUnder(output);
    const temporaries = [...files.keys()].filter((path) => isTemporary(path.split("/").at(-1)!));
    assert.deepEqual(
      temporaries.slice(0, 5),
      [],
      `${phase}: ${temporaries.length} temporary files`,
    );
    assertSameFiles(comparableFiles(files), next, phase);
    // Every backup is the complete old export, byte for byte.
    for (const [path, text] of files) {
      if (path.startsWith("backups/")) assert.ok(text === oldExport, `${phase}: ${path}`);
    }
    // metadata.json is the metadata and statistics of all_tickets.json, as one run writes them.
    const file = JSON.parse(files.get("all_tickets.json")!);
    assert.deepEqual(
      JSON.parse(files.get("metadata.json")!),
      { metadata: file.metadata, statistics: file.statistics },
      `${phase}: metadata.json`,
    );
  }
  assert.ok(kills.every((n) => n >= 3), `killed ${kills.join(" and ")} times`);
});
