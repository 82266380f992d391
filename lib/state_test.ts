import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { STATE_SCHEMA_VERSION, StateStore } from "./state.ts";

async function withStore(fn: (store: StateStore, path: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "nested", "p.state.db");
  const store = StateStore.open(path);
  try {
    await fn(store, path);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const origin = { source: "in.json", position: "line 3" };

Deno.test("StateStore migrates a new file to the current schema version", async () => {
  await withStore((store, path) => {
    assert.deepEqual(store.verify(), []);
    const db = new DatabaseSync(path, { readOnly: true });
    const version = db.prepare("PRAGMA user_version").get() as { user_version: number };
    db.close();
    assert.equal(version.user_version, STATE_SCHEMA_VERSION);
  });
});

Deno.test("StateStore.commitResults() keeps hash and remote id; a failure keeps the last good hash", async () => {
  await withStore((store) => {
    store.commitResults([{
      key: "A",
      hash: "h1",
      outcome: "created",
      remoteId: "r1",
      runId: "run1",
      origin,
    }]);
    assert.deepEqual(
      { ...store.getRecord("A"), syncedAt: null },
      {
        key: "A",
        hash: "h1",
        remoteId: "r1",
        lastOutcome: "created",
        attempts: 0,
        lastError: null,
        syncedAt: null,
      },
    );
    store.commitResults([{
      key: "A",
      hash: "h2",
      outcome: "failed",
      error: "422 nope",
      runId: "run2",
      origin,
    }]);
    const failed = store.getRecord("A")!;
    assert.equal(failed.hash, "h1");
    assert.equal(failed.remoteId, "r1");
    assert.equal(failed.lastOutcome, "failed");
    assert.equal(failed.attempts, 1);
    assert.equal(failed.lastError, "422 nope");
    const letters = store.listDeadLetters();
    assert.equal(letters.length, 1);
    assert.equal(letters[0].key, "A");
    assert.equal(letters[0].position, "line 3");
    assert.equal(letters[0].reason, "422 nope");

    // A second failure updates the same open dead letter instead of adding one.
    store.commitResults([{
      key: "A",
      hash: "h2",
      outcome: "failed",
      error: "422 again",
      runId: "run3",
      origin,
    }]);
    assert.equal(store.listDeadLetters().length, 1);
    assert.equal(store.listDeadLetters()[0].attempts, 2);
    assert.equal(store.getRecord("A")!.attempts, 2);

    // Success resolves it.
    store.commitResults([{ key: "A", hash: "h2", outcome: "updated", runId: "run4", origin }]);
    assert.equal(store.countOpenDeadLetters(), 0);
    assert.equal(store.listDeadLetters({ includeResolved: true }).length, 1);
    assert.equal(store.getRecord("A")!.attempts, 0);
  });
});

Deno.test("StateStore resolves a dead letter by origin when the record now has a key", async () => {
  await withStore((store) => {
    store.addDeadLetter(
      { key: "in.json#line 3", data: { x: 1 }, origin },
      "key",
      "missing key",
      "run1",
    );
    assert.equal(store.countOpenDeadLetters(), 1);
    assert.deepEqual(store.listDeadLetters()[0].data, { x: 1 });
    store.commitResults([{ key: "T-9", hash: "h", outcome: "created", runId: "run2", origin }]);
    assert.equal(store.countOpenDeadLetters(), 0);
  });
});

Deno.test("StateStore.commitResults() stores a mixed batch; unchanged keeps the synced time", async () => {
  await withStore((_, path) => {
    let tick = 0;
    const store = StateStore.open(path, {
      now: () => new Date(Date.UTC(2026, 0, 1, 0, tick++)).toISOString(),
    });
    const at = (n: number) => ({ source: "in.csv", position: `line ${n}` });
    const many = Array.from({ length: 700 }, (_, i) => ({
      key: `K${i}`,
      hash: `h${i}`,
      outcome: "created" as const,
      runId: "run1",
      origin: at(i),
    }));
    store.commitResults(many);
    assert.equal(store.countRecords(), 700);
    const firstSync = store.getRecord("K1")!.syncedAt;
    assert.ok(firstSync);
    store.commitResults([
      { key: "K1", hash: "h1", outcome: "unchanged", runId: "run2", origin: at(1) },
      { key: "K2", hash: "h2b", outcome: "updated", remoteId: "r2", runId: "run2", origin: at(2) },
      { key: "K3", hash: "h3b", outcome: "failed", error: "bad", runId: "run2", origin: at(3) },
      {
        key: "K4",
        hash: "h4",
        outcome: "skipped",
        error: "not ours",
        runId: "run2",
        origin: at(4),
      },
    ]);
    assert.equal(store.getRecord("K1")!.lastOutcome, "unchanged");
    assert.equal(store.getRecord("K1")!.syncedAt, firstSync);
    assert.deepEqual(
      [store.getRecord("K2")!.hash, store.getRecord("K2")!.remoteId],
      ["h2b", "r2"],
    );
    assert.equal(store.getRecord("K3")!.hash, "h3");
    assert.equal(store.getRecord("K4")!.lastOutcome, "skipped");
    assert.notEqual(store.getRecord("K2")!.syncedAt, firstSync);
    assert.equal(store.countOpenDeadLetters(), 1);
    store.close();
  });
});

Deno.test("StateStore cursors, cache and runs persist across reopen", async () => {
  await withStore((store, path) => {
    store.setCursor("snapshot.etag", '"abc"');
    store.setCursor("snapshot.etag", '"def"');
    store.cachePut("geocode", "nakuru, kenya", { lat: -0.3, lon: 36.1 });
    store.cachePut("geocode", "nowhere", []);
    store.startRun("r1", "run p.json");
    store.startRun("r2", "run p.json");
    store.finishRun("r2", "finished", 0, { read: 3 });
    store.close();

    const again = StateStore.open(path);
    assert.equal(again.getCursor("snapshot.etag"), '"def"');
    assert.deepEqual(again.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3, lon: 36.1 });
    assert.deepEqual(again.cacheGet("geocode", "nowhere"), []);
    assert.equal(again.cacheGet("geocode", "other"), undefined);
    assert.equal(again.markAbandonedRuns(), 1, "the run that never finished is marked killed");
    const runs = again.listRuns();
    assert.deepEqual(runs.map((r) => [r.id, r.status]).sort(), [["r1", "killed"], [
      "r2",
      "finished",
    ]]);
    assert.ok(again.deleteCursor("snapshot.etag"));
    assert.equal(again.getCursor("snapshot.etag"), null);
    again.close();
  });
});

Deno.test("StateStore.open() read-only never creates a missing file", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "absent.db");
  const store = StateStore.open(path, { readOnly: true });
  assert.equal(store.getRecord("x"), null);
  store.close();
  await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("StateStore.getRecords() reads many keys at once", async () => {
  await withStore((store) => {
    store.commitResults([
      { key: "A", hash: "h1", outcome: "created", runId: "r", origin },
      { key: "B'\"", hash: "h2", outcome: "updated", remoteId: "9", runId: "r", origin },
    ]);
    const found = store.getRecords(["A", "B'\"", "C"]);
    assert.deepEqual([...found.keys()].sort(), ["A", "B'\""]);
    assert.equal(found.get("B'\"")?.remoteId, "9");
    assert.equal(store.getRecords([]).size, 0);
  });
});

Deno.test("StateStore keeps cached values in their own file: a rolled-back run keeps them", async () => {
  await withStore((store, path) => {
    store.holdWrites();
    store.commitResults([{ key: "A", hash: "h1", outcome: "created", runId: "r", origin }]);
    store.cachePut("geocode", "nakuru, kenya", { lat: -0.3, lon: 36.1 });
    store.rollbackHeld();
    assert.equal(store.getRecord("A"), null, "the held ledger write is gone");
    assert.deepEqual(store.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3, lon: 36.1 });
    assert.equal(store.cachePath, `${path}.cache`);
    store.close();
    assert.ok(Deno.statSync(`${path}.cache`).isFile);

    // plan reads the cache file but writes nothing to it.
    const planning = StateStore.open(path, { readOnly: true });
    assert.deepEqual(planning.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3, lon: 36.1 });
    planning.cachePut("geocode", "new", 1);
    planning.close();
    const again = StateStore.open(path);
    assert.equal(again.cacheGet("geocode", "new"), undefined);
    again.close();
  });
});

Deno.test("StateStore resolves a letter by origin only for the record it was, or in a replay", async () => {
  await withStore((store) => {
    const at = { source: "api/requests", position: "page 1, index 0" };
    const letter = (recordKey: string | null) =>
      store.addDeadLetter(
        { key: "api/requests#page 1, index 0", data: { id: "x" }, origin: at },
        "stages[1] transform.map",
        "bad",
        "r1",
        recordKey,
      );
    const synced = (key: string) =>
      store.commitResults([{ key, hash: "h", outcome: "created", runId: "r2", origin: at }]);

    letter("X");
    synced("Y"); // another record now at that page and index
    assert.equal(store.countOpenDeadLetters(), 1);
    synced("X"); // the record itself, fixed
    assert.equal(store.countOpenDeadLetters(), 0);

    // Its key changed after it failed (inc-1 became INC-1): a run leaves it, a replay resolves it.
    letter("inc-1");
    synced("INC-1");
    assert.equal(store.countOpenDeadLetters(), 1);
    store.replaying = true;
    synced("INC-1");
    assert.equal(store.countOpenDeadLetters(), 0);

    // A letter without a key (a line that did not parse) is resolved by its origin.
    store.replaying = false;
    letter(null);
    synced("Z");
    assert.equal(store.countOpenDeadLetters(), 0);
  });
});

Deno.test("StateStore moves a ledger's older cache entries into the cache file once", async () => {
  await withStore((store, path) => {
    store.close();
    // As a ledger written before the caches had a file of their own.
    const legacy = new DatabaseSync(path);
    legacy.prepare("INSERT INTO cache (namespace, key, value, created_at) VALUES (?, ?, ?, ?)")
      .run("geocode", "nakuru, kenya", '{"lat":-0.3}', "2026-01-01T00:00:00Z");
    legacy.close();

    const planning = StateStore.open(path, { readOnly: true });
    assert.deepEqual(planning.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3 });
    planning.close();

    const again = StateStore.open(path);
    assert.deepEqual(again.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3 });
    again.close();
    // Adopted: the cache file holds it now, whatever becomes of the ledger's copy.
    const cleared = new DatabaseSync(path);
    cleared.exec("DELETE FROM cache");
    cleared.close();
    const later = StateStore.open(path);
    assert.deepEqual(later.cacheGet("geocode", "nakuru, kenya"), { lat: -0.3 });
    later.close();
  });
});
