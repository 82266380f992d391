import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MissingError } from "../../lib/errors.ts";
import type { Item } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  MemoryState,
  testContext,
  withLogs,
} from "../../tests/harness.ts";
import { stage } from "./files.ts";

const FIXTURES = new URL("../../fixtures/inc/", import.meta.url);
const S17 = "2026-06-15T17-00-00.csv";
const S18 = "2026-06-15T18-00-00.csv";

function fixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, FIXTURES));
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A temp dir with `automations/inc/` holding the given snapshots. */
async function bucketDir(files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync_files_" });
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, "automations/inc", name);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

function ids(items: Item[]): string[] {
  return items.map((item) => String(item.data.ticket_id));
}

Deno.test("readFiles() picks the newest snapshot by the time in its name, not mtime", async () => {
  const dir = await bucketDir({
    [S17]: fixture(S17),
    [S18]: fixture(S18),
    "latest.json": "{}",
    // Newer than both, but already processed: never considered.
    "processed/2026-06-15T19-00-00.csv": '"ticket_id"\n"OLD"\n',
  });
  try {
    // The older snapshot was touched last; the name decides anyway.
    await Deno.utime(join(dir, "automations/inc", S17), new Date(), new Date());
    await Deno.utime(join(dir, "automations/inc", S18), new Date(2000, 0, 1), new Date(2000, 0, 1));
    const { ctx } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    const items = await collect(reader.read());
    assert.equal(items.length, 9);
    assert.match(String(items[0].data.ticket_id), /^EXPORT STOPPED DUE TO EXCESSIVE SIZE/);
    assert.equal(Object.keys(items[1].data).length, 32);
    assert.deepEqual(items[1].origin, { source: `automations/inc/${S18}`, position: "line 3" });
    assert.equal(items[1].key, `automations/inc/${S18}#line 3`);
    const ticket = items.find((item) => item.data.ticket_id === "INC000103")!;
    assert.equal(ticket.data.status, "Closed");
    assert.equal(ticket.data.latitude, "");
    assert.equal(ticket.data.created_at_service, "2026-06-14 10:30:00");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() commit moves the snapshot to processed/ and saves the cursors", async () => {
  const dir = await bucketDir({ [S17]: fixture(S17), [S18]: fixture(S18) });
  try {
    const { ctx, state } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    await collect(reader.read());
    assert.equal(state.getCursor("snapshot.etag"), null, "the skip cursor waits for commit");
    // A sink writing the freshness row commits before the reader: it must know the file already.
    assert.equal(state.getCursor("source.etag"), sha256(fixture(S18)));
    assert.equal(state.getCursor("source.name"), `automations/inc/${S18}`);
    await reader.commit!();
    // The superseded 17:00 snapshot goes along with the newest one.
    assert.deepEqual(await listDir(join(dir, "automations/inc")), ["processed"]);
    assert.deepEqual(await listDir(join(dir, "automations/inc/processed")), [S17, S18]);
    assert.equal(state.getCursor("snapshot.etag"), sha256(fixture(S18)));
    assert.equal(state.getCursor("source.etag"), sha256(fixture(S18)));
    assert.equal(state.getCursor("source.name"), `automations/inc/${S18}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() leaves the file where it was when the run does not commit", async () => {
  const dir = await bucketDir({ [S17]: fixture(S17) });
  try {
    const { ctx, state } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    assert.equal((await collect(reader.read())).length, 9);
    // A failed run: the engine never calls commit.
    await reader.close?.();
    assert.ok(await exists(join(dir, "automations/inc", S17)));
    assert.equal(await exists(join(dir, "automations/inc/processed")), false);
    assert.equal(state.getCursor("snapshot.etag"), null);
    // So the next run reads it again.
    const again = await createStage(stage, { dir: "." }, testContext({ cwd: dir, state }).ctx);
    assert.equal((await collect(again.read())).length, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() skips a snapshot whose SHA-256 matches the last load, and still moves it", async () => {
  const dir = await bucketDir({ [S18]: fixture(S18) });
  try {
    await withLogs(async (lines) => {
      const state = new MemoryState();
      const first = await createStage(stage, { dir: "." }, testContext({ cwd: dir, state }).ctx);
      assert.equal((await collect(first.read())).length, 9);
      await first.commit!();

      // The next hour's export is byte-identical, under a new name.
      await Deno.writeFile(join(dir, "automations/inc/2026-06-15T19-00-00.csv"), fixture(S18));
      const second = await createStage(stage, { dir: "." }, testContext({ cwd: dir, state }).ctx);
      assert.deepEqual(await collect(second.read()), []);
      const hash = sha256(fixture(S18));
      assert.ok(
        lines.includes(
          `Skipped "automations/inc/2026-06-15T19-00-00.csv": unchanged since the last load (SHA-256 "${hash}")`,
        ),
        lines.join("\n"),
      );
      await second.commit!();
      assert.deepEqual(await listDir(join(dir, "automations/inc/processed")), [
        S18,
        "2026-06-15T19-00-00.csv",
      ]);
      assert.equal(state.getCursor("source.name"), "automations/inc/2026-06-15T19-00-00.csv");

      // A changed snapshot is read again.
      await Deno.writeFile(join(dir, "automations/inc/2026-06-15T20-00-00.csv"), fixture(S17));
      const third = await createStage(stage, { dir: "." }, testContext({ cwd: dir, state }).ctx);
      assert.equal((await collect(third.read())).length, 9);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() reads an unchanged snapshot when skipUnchanged is false", async () => {
  const dir = await bucketDir({ [S18]: fixture(S18) });
  try {
    const state = new MemoryState();
    state.setCursor("inc.etag", sha256(fixture(S18)));
    const config = { dir: ".", skipUnchanged: false, cursor: "inc" };
    const reader = await createStage(stage, config, testContext({ cwd: dir, state }).ctx);
    assert.equal((await collect(reader.read())).length, 9);
    const skipping = await createStage(
      stage,
      { ...config, skipUnchanged: true },
      testContext({ cwd: dir, state }).ctx,
    );
    assert.equal((await collect(skipping.read())).length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() with all-oldest-first reads one snapshot a run, in time order", async () => {
  const dir = await bucketDir({
    "changes/2026-06-15T18-00-00.csv": '"ticket_id","status"\n"INC2","closed"\n',
    "changes/2026-06-15T09-30-00.csv": '"ticket_id","status"\n"INC1","open"\n',
    "changes/2026-06-15T17-00-00.csv": '"ticket_id","status"\n"INC1","closed"\n',
    "changes/processed/2026-06-15T08-00-00.csv": '"ticket_id","status"\n"INC0","open"\n',
  });
  try {
    const { state } = testContext({ cwd: dir });
    const config = { dir: ".", prefix: "automations/inc/changes", select: "all-oldest-first" };
    const runs: string[][] = [];
    for (let run = 0; run < 4; run++) {
      const reader = await createStage(stage, config, testContext({ cwd: dir, state }).ctx);
      const items = await collect(reader.read());
      runs.push(
        items.map((item) => `${item.data.ticket_id} ${item.data.status} ${item.origin.source}`),
      );
      await reader.commit!();
      assert.equal(reader.moreInput!(), run < 2, `run ${run}: more input waits`);
    }
    // INC1 changes in two files: each is its own run, so the later change is loaded last.
    assert.deepEqual(runs, [
      ["INC1 open automations/inc/changes/2026-06-15T09-30-00.csv"],
      ["INC1 closed automations/inc/changes/2026-06-15T17-00-00.csv"],
      ["INC2 closed automations/inc/changes/2026-06-15T18-00-00.csv"],
      [],
    ]);
    assert.deepEqual(await listDir(join(dir, "automations/inc/changes")), ["processed"]);
    assert.equal(
      state.getCursor("snapshot.etag"),
      sha256(new TextEncoder().encode('"ticket_id","status"\n"INC2","closed"\n')),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() keeps files in place when moveOnSuccess is false", async () => {
  const dir = await bucketDir({ [S17]: fixture(S17) });
  try {
    const { ctx, state } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: ".", moveOnSuccess: false }, ctx);
    await collect(reader.read());
    await reader.commit!();
    assert.deepEqual(await listDir(join(dir, "automations/inc")), [S17]);
    assert.equal(state.getCursor("snapshot.etag"), sha256(fixture(S17)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() yields nothing when the folder has no snapshot", async () => {
  const dir = await bucketDir({ "latest.json": "{}" });
  try {
    const { ctx, state } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    assert.deepEqual(await collect(reader.read()), []);
    await reader.commit!();
    assert.deepEqual(await listDir(join(dir, "automations/inc")), ["latest.json"]);
    assert.equal(state.cursors.size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() dead-letters a row with the wrong number of columns", async () => {
  const dir = await bucketDir({ [S17]: '"ticket_id","status"\n"INC1","open"\n"INC2"\n' });
  try {
    const { ctx, deadLetters } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    assert.deepEqual(ids(await collect(reader.read())), ["INC1"]);
    assert.equal(deadLetters.length, 1);
    assert.equal(deadLetters[0].reason, "expected 2 columns, got 1");
    assert.deepEqual(deadLetters[0].item.origin, {
      source: `automations/inc/${S17}`,
      position: "line 3",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() reports a missing directory as MissingError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ticketsync_files_" });
  try {
    const { ctx } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "nope" }, ctx);
    await assert.rejects(() => collect(reader.read()), (error: unknown) => {
      assert.ok(error instanceof MissingError);
      assert.equal(error.exitCode, 2);
      assert.equal(error.message, 'Cannot list "nope/automations/inc/": directory does not exist');
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("read.files config: columns are required without a header, at validation", () => {
  assert.deepEqual(configProblems(stage, { dir: "d", header: false, zone: "Mars/Base" }), [
    'stages[0].zone: expected an IANA time zone like "America/Chicago", got "Mars/Base"',
    'stages[0].columns: required when "header" is false: expected the column names in file order',
  ]);
  assert.deepEqual(configProblems(stage, { dir: "d", header: false, columns: ["a", "b"] }), []);
});

Deno.test("read.files reads the committed fixtures with an empty prefix", async () => {
  const { ctx } = testContext({ cwd: fileURLToPath(new URL("../../", import.meta.url)) });
  const reader = await createStage(
    stage,
    { dir: "fixtures/inc", prefix: "", moveOnSuccess: false },
    ctx,
  );
  const items = await collect(reader.read());
  assert.equal(items[0].origin.source, `fixtures/inc/${S18}`);
  assert.deepEqual(ids(items).filter((id) => id.startsWith("INC")).length, 8);
  assert.equal(items.filter((item) => item.data.is_alarm === "true").length, 2);
});

Deno.test("readFiles() reads an unchanged snapshot again under --full", async () => {
  const dir = await bucketDir({ [S17]: fixture(S17) });
  try {
    const { state } = testContext({ cwd: dir });
    const config = { dir: "." };
    const first = await createStage(stage, config, testContext({ cwd: dir, state }).ctx);
    const loaded = (await collect(first.read())).length;
    await first.commit!();
    await Deno.writeFile(join(dir, "automations/inc", S18), fixture(S17));
    const plain = await createStage(stage, config, testContext({ cwd: dir, state }).ctx);
    assert.equal(await plain.hasInput!(), false, "unchanged: skipped");
    const full = await createStage(
      stage,
      config,
      testContext({ cwd: dir, state, options: { full: true } }).ctx,
    );
    assert.equal(await full.hasInput!(), true);
    assert.equal((await collect(full.read())).length, loaded);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFiles() leaves a file written to while it was loaded where it is", async () => {
  const dir = await bucketDir({ [S17]: '"ticket_id","status"\n"A","Open"\n' });
  try {
    const { ctx } = testContext({ cwd: dir });
    const reader = await createStage(stage, { dir: "." }, ctx);
    assert.equal((await collect(reader.read())).length, 1);
    await new Promise((resolve) => setTimeout(resolve, 20)); // a later mtime
    await Deno.writeTextFile(join(dir, "automations/inc", S17), '"B","Open"\n', { append: true });
    await reader.commit!();
    assert.deepEqual(await listDir(join(dir, "automations/inc")), [S17], "not archived unread");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
