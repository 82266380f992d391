/**
 * The state ledger: one SQLite file per pipeline (`node:sqlite`), holding runs,
 * per-record sync state, cursors and dead letters. Written as records
 * complete, so a run killed at any moment resumes where it stopped.
 *
 * Caches (geocoder answers, the webhook delivery log) live in a second file
 * beside it, `<state>.cache`, on a connection of their own: what they record
 * happened outside (a paid lookup, a delivered webhook) and must survive a run
 * whose ledger writes are held and then rolled back, or a kill.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { fileExists, openDatabase, transaction } from "./sqlite.ts";
import type { Item, Outcome, RecordState, StageState } from "./stage.ts";

/** The cache file's one table (a ledger's own `cache` table is from before: adopted once). */
const CACHE_TABLE = `CREATE TABLE IF NOT EXISTS cache (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
)`;

/** Ordered migrations; `PRAGMA user_version` is the index of the last applied. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     command TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     status TEXT NOT NULL,
     exit_code INTEGER,
     report TEXT
   );
   CREATE TABLE records (
     key TEXT PRIMARY KEY,
     hash TEXT,
     remote_id TEXT,
     idempotency_key TEXT,
     last_outcome TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     synced_at TEXT,
     updated_at TEXT NOT NULL,
     run_id TEXT
   );
   CREATE TABLE cursors (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE dead_letters (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key TEXT NOT NULL,
     source TEXT NOT NULL,
     position TEXT NOT NULL,
     stage TEXT NOT NULL,
     reason TEXT NOT NULL,
     data TEXT,
     run_id TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 1,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     resolved_at TEXT
   );
   CREATE UNIQUE INDEX dead_letters_open_key ON dead_letters(key) WHERE resolved_at IS NULL;
   CREATE INDEX dead_letters_origin ON dead_letters(source, position);
   CREATE TABLE cache (
     namespace TEXT NOT NULL,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (namespace, key)
   );`,
  // The key a record had when a filter or transform dead-lettered it (see #resolve).
  `ALTER TABLE dead_letters ADD COLUMN record_key TEXT;
   CREATE INDEX dead_letters_open_record ON dead_letters(record_key) WHERE resolved_at IS NULL;`,
];

/** The schema version this build writes. */
export const STATE_SCHEMA_VERSION = MIGRATIONS.length;

/** One final result to remember. */
export interface RecordCommit {
  key: string;
  hash: string;
  outcome: Outcome;
  remoteId?: string;
  error?: string;
  runId: string;
  origin: Item["origin"];
}

/** A stored dead letter. */
export interface DeadLetter {
  id: number;
  key: string;
  source: string;
  position: string;
  stage: string;
  reason: string;
  data: unknown;
  runId: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  resolvedAt: string | null;
}

/** A stored run. */
export interface RunRow {
  id: string;
  command: string;
  startedAt: string;
  finishedAt: string | null;
  status: string;
  exitCode: number | null;
  report: unknown;
}

type Row = Record<string, string | number | null>;

/** The ledger of one pipeline. */
export class StateStore implements StageState {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #now: () => string;
  readonly #readOnly: boolean;
  /** Set for a replay: a letter is then resolved by its origin alone (see #resolve). */
  replaying = false;
  /** The cache file's connection, opened on first use. */
  #cacheDb: DatabaseSync | undefined;
  readonly #cacheStatements = new Map<string, StatementSync>();

  private constructor(path: string, db: DatabaseSync, now: () => string, readOnly = false) {
    this.path = path;
    this.#db = db;
    this.#now = now;
    this.#readOnly = readOnly;
  }

  /** Where the caches are kept: beside the ledger. */
  get cachePath(): string {
    return this.path === ":memory:" ? ":memory:" : `${this.path}.cache`;
  }

  /**
   * Opens (creating if needed) the ledger and applies pending migrations.
   * `readOnly` opens an existing file without writing (for `plan` and `state`);
   * a missing file then gives an empty in-memory ledger.
   */
  static open(
    path: string,
    options: { readOnly?: boolean; now?: () => string } = {},
  ): StateStore {
    const now = options.now ?? (() => new Date().toISOString());
    if (options.readOnly) {
      let exists = true;
      try {
        Deno.statSync(path);
      } catch {
        exists = false;
      }
      const db = exists ? new DatabaseSync(path, { readOnly: true }) : new DatabaseSync(":memory:");
      const store = new StateStore(path, db, now, true);
      if (!exists) store.#migrate();
      else store.#checkVersion();
      return store;
    }
    Deno.mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    const store = new StateStore(path, db, now);
    store.#migrate();
    return store;
  }

  #checkVersion(): void {
    const version = this.#version();
    if (version > STATE_SCHEMA_VERSION) {
      throw new Error(
        `Cannot open state "${this.path}": schema version ${version} is newer than this ticketsync (${STATE_SCHEMA_VERSION})`,
      );
    }
  }

  #version(): number {
    return Number((this.#db.prepare("PRAGMA user_version").get() as Row).user_version);
  }

  #migrate(): void {
    this.#checkVersion();
    for (let version = this.#version(); version < MIGRATIONS.length; version++) {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        this.#db.exec(MIGRATIONS[version]);
        this.#db.exec(`PRAGMA user_version = ${version + 1}`);
        this.#db.exec("COMMIT");
      } catch (error) {
        this.#db.exec("ROLLBACK");
        throw error;
      }
    }
  }

  #stmt(sql: string): StatementSync {
    return prepared(this.#db, this.#statements, sql);
  }

  /** Runs `fn` in one transaction (a savepoint inside an open one). */
  transaction<T>(fn: () => T): T {
    const nested = this.#db.isTransaction;
    this.#db.exec(nested ? "SAVEPOINT ledger_batch" : "BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec(nested ? "RELEASE ledger_batch" : "COMMIT");
      return out;
    } catch (error) {
      this.#db.exec(nested ? "ROLLBACK TO ledger_batch; RELEASE ledger_batch" : "ROLLBACK");
      throw error;
    }
  }

  /**
   * Opens a transaction that spans the run, for destinations that commit only
   * at the end: the ledger's writes become durable with {@linkcode commitHeld}
   * or vanish with {@linkcode rollbackHeld}, so the ledger never claims what the
   * destination rolled back, and memory stays flat however long the run.
   */
  holdWrites(): void {
    if (!this.#db.isTransaction) this.#db.exec("BEGIN IMMEDIATE");
  }

  /** Makes the held writes durable. */
  commitHeld(): void {
    if (this.#db.isTransaction) this.#db.exec("COMMIT");
  }

  /** Drops the held writes. */
  rollbackHeld(): void {
    if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
  }

  // ---- runs ----

  startRun(id: string, command: string): void {
    this.#stmt(
      "INSERT INTO runs (id, command, started_at, status) VALUES (?, ?, ?, 'running')",
    ).run(id, command, this.#now());
  }

  finishRun(id: string, status: string, exitCode: number, report: unknown): void {
    this.#stmt(
      "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, report = ? WHERE id = ?",
    ).run(this.#now(), status, exitCode, JSON.stringify(report), id);
  }

  /** Runs that never finished (killed): marks them so. */
  markAbandonedRuns(): number {
    const result = this.#stmt(
      "UPDATE runs SET status = 'killed', finished_at = ? WHERE status = 'running'",
    ).run(this.#now());
    return Number(result.changes);
  }

  listRuns(limit = 20): RunRow[] {
    return (this.#stmt("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?").all(
      limit,
    ) as Row[]).map((row) => ({
      id: String(row.id),
      command: String(row.command),
      startedAt: String(row.started_at),
      finishedAt: row.finished_at as string | null,
      status: String(row.status),
      exitCode: row.exit_code as number | null,
      report: row.report ? JSON.parse(String(row.report)) : null,
    }));
  }

  // ---- records ----

  getRecord(key: string): RecordState | null {
    return this.getRecords([key]).get(key) ?? null;
  }

  /** The ledger state of many keys in one query (absent keys are left out). */
  getRecords(keys: readonly string[]): Map<string, RecordState> {
    const out = new Map<string, RecordState>();
    if (keys.length === 0) return out;
    const rows = this.#stmt(
      "SELECT * FROM records WHERE key IN (SELECT value FROM json_each(?))",
    ).all(JSON.stringify(keys)) as Row[];
    for (const row of rows) out.set(String(row.key), toRecordState(row));
    return out;
  }

  /** Number of records in the ledger. */
  countRecords(): number {
    return Number((this.#stmt("SELECT count(*) AS n FROM records").get() as Row).n);
  }

  /**
   * Remembers final results in one transaction: a success stores the hash and
   * resolves open dead letters for the key or origin; a failure keeps the last
   * good hash (so the record is retried) and stores a dead letter.
   */
  commitResults(commits: readonly RecordCommit[], stage = "sync"): void {
    if (commits.length === 0) return;
    const now = this.#now();
    this.transaction(() => {
      const synced: RecordCommit[] = [];
      for (const commit of commits) {
        if (commit.outcome === "failed") {
          this.#stmt(
            `INSERT INTO records (key, hash, remote_id, last_outcome, attempts, last_error, updated_at, run_id)
             VALUES (?, NULL, ?, 'failed', 1, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET last_outcome = 'failed', attempts = attempts + 1,
               last_error = excluded.last_error, updated_at = excluded.updated_at, run_id = excluded.run_id,
               remote_id = coalesce(excluded.remote_id, remote_id)`,
          ).run(commit.key, commit.remoteId ?? null, commit.error ?? null, now, commit.runId);
          this.#addDeadLetter(
            commit.key,
            commit.origin,
            stage,
            commit.error ?? "failed",
            null,
            commit.runId,
            now,
          );
        } else if (commit.outcome === "skipped") {
          this.#stmt(
            `INSERT INTO records (key, last_outcome, last_error, updated_at, run_id) VALUES (?, 'skipped', ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET last_outcome = 'skipped', last_error = excluded.last_error,
               updated_at = excluded.updated_at, run_id = excluded.run_id`,
          ).run(commit.key, commit.error ?? null, now, commit.runId);
          this.#resolve(commit.key, commit.origin, now);
        } else {
          synced.push(commit);
        }
      }
      this.#commitSynced(synced, now);
    });
  }

  /**
   * Stores successes in one statement (a JSON array read by `json_each`): a
   * statement per record was the ledger's main cost on large inputs.
   */
  #commitSynced(commits: readonly RecordCommit[], now: string): void {
    if (commits.length === 0) return;
    const rows = commits.map((c) => [c.key, c.hash, c.remoteId ?? null, c.outcome, c.runId]);
    this.#stmt(
      `INSERT INTO records (key, hash, remote_id, last_outcome, attempts, last_error, synced_at, updated_at, run_id)
       SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2, e.value ->> 3, 0, NULL, ?1, ?1, e.value ->> 4
       FROM json_each(?2) AS e WHERE true
       ON CONFLICT (key) DO UPDATE SET hash = excluded.hash,
         remote_id = coalesce(excluded.remote_id, remote_id), last_outcome = excluded.last_outcome,
         attempts = 0, last_error = NULL,
         synced_at = CASE WHEN excluded.last_outcome = 'unchanged' THEN synced_at ELSE excluded.synced_at END,
         updated_at = excluded.updated_at, run_id = excluded.run_id`,
    ).run(now, JSON.stringify(rows));
    // Most runs have no open dead letter: then there is nothing to resolve.
    if (this.#stmt("SELECT 1 FROM dead_letters WHERE resolved_at IS NULL LIMIT 1").get()) {
      for (const commit of commits) this.#resolve(commit.key, commit.origin, now);
    }
  }

  // ---- dead letters ----

  /**
   * Stores a dead letter at once (reopens/updates the open one for the same
   * key). `recordKey`: the pipeline key the record had when it failed, if it
   * had one (it tells the record from another that later sits at its origin).
   */
  addDeadLetter(
    item: Item,
    stage: string,
    reason: string,
    runId: string,
    recordKey: string | null = null,
  ): void {
    this.#addDeadLetter(
      item.key,
      item.origin,
      stage,
      reason,
      item.data,
      runId,
      this.#now(),
      recordKey,
    );
  }

  #addDeadLetter(
    key: string,
    origin: Item["origin"],
    stage: string,
    reason: string,
    data: unknown,
    runId: string,
    now: string,
    recordKey: string | null = null,
  ): void {
    this.#stmt(
      `INSERT INTO dead_letters (key, source, position, stage, reason, data, run_id, created_at, updated_at, record_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) WHERE resolved_at IS NULL DO UPDATE SET
         source = excluded.source, position = excluded.position, stage = excluded.stage,
         reason = excluded.reason, data = coalesce(excluded.data, data), run_id = excluded.run_id,
         attempts = attempts + 1, updated_at = excluded.updated_at, record_key = excluded.record_key`,
    ).run(
      key,
      origin.source,
      origin.position,
      stage,
      reason,
      data === null || data === undefined ? null : JSON.stringify(data),
      runId,
      now,
      now,
      recordKey,
    );
  }

  /**
   * Resolves the open dead letters of a record that synced: those under its
   * key or naming it as their record, and those stored under a key made of their origin (`source#position`,
   * or a duplicate's `key@source#position`) at the same origin, unless the
   * letter says the record there had another key (it left the input and
   * another took its place). A letter whose record's key changed later in the
   * pipeline (a map that upper-cases it) is resolved by origin in a replay,
   * which re-reads exactly those origins.
   */
  #resolve(key: string, origin: Item["origin"], now: string): void {
    this.#stmt(
      `UPDATE dead_letters SET resolved_at = ?1
       WHERE resolved_at IS NULL AND (key = ?2 OR record_key = ?2 OR (source = ?3 AND position = ?4
         AND substr(key, -length(?3 || '#' || ?4)) = ?3 || '#' || ?4
         AND (?5 OR record_key IS NULL OR record_key = ?2)))`,
    ).run(now, key, origin.source, origin.position, this.replaying ? 1 : 0);
  }

  /** Resolves every open dead letter read from `source`; returns how many. */
  resolveDeadLetters(source: string): number {
    return Number(
      this.#stmt("UPDATE dead_letters SET resolved_at = ? WHERE resolved_at IS NULL AND source = ?")
        .run(this.#now(), source).changes,
    );
  }

  listDeadLetters(options: { includeResolved?: boolean; limit?: number } = {}): DeadLetter[] {
    const where = options.includeResolved ? "" : "WHERE resolved_at IS NULL";
    return (this.#stmt(`SELECT * FROM dead_letters ${where} ORDER BY id LIMIT ?`).all(
      options.limit ?? 1_000_000,
    ) as Row[]).map((row) => ({
      id: Number(row.id),
      key: String(row.key),
      source: String(row.source),
      position: String(row.position),
      stage: String(row.stage),
      reason: String(row.reason),
      data: row.data ? JSON.parse(String(row.data)) : null,
      runId: String(row.run_id),
      attempts: Number(row.attempts),
      createdAt: String(row.created_at),
      updatedAt: String(row.updated_at),
      resolvedAt: row.resolved_at as string | null,
    }));
  }

  countOpenDeadLetters(): number {
    return Number(
      (this.#stmt("SELECT count(*) AS n FROM dead_letters WHERE resolved_at IS NULL").get() as Row)
        .n,
    );
  }

  // ---- cursors ----

  getCursor(name: string): string | null {
    const row = this.#stmt("SELECT value FROM cursors WHERE name = ?").get(name) as Row | undefined;
    return row ? String(row.value) : null;
  }

  setCursor(name: string, value: string): void {
    this.#stmt(
      `INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ).run(name, value, this.#now());
  }

  deleteCursor(name: string): boolean {
    return Number(this.#stmt("DELETE FROM cursors WHERE name = ?").run(name).changes) > 0;
  }

  listCursors(): { name: string; value: string; updatedAt: string }[] {
    return (this.#stmt("SELECT * FROM cursors ORDER BY name").all() as Row[]).map((row) => ({
      name: String(row.name),
      value: String(row.value),
      updatedAt: String(row.updated_at),
    }));
  }

  // ---- cache ----

  cacheGet(namespace: string, key: string): unknown {
    const row = this.#cacheStmt("SELECT value FROM cache WHERE namespace = ? AND key = ?").get(
      namespace,
      key,
    ) as Row | undefined;
    return row ? JSON.parse(String(row.value)) : undefined;
  }

  /** Stores a cached value at once, outside any held ledger transaction (read-only: not kept). */
  cachePut(namespace: string, key: string, value: unknown): void {
    if (this.#readOnly) return;
    this.#cacheStmt(
      `INSERT INTO cache (namespace, key, value, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at`,
    ).run(namespace, key, JSON.stringify(value ?? null), this.#now());
  }

  #cacheStmt(sql: string): StatementSync {
    return prepared(this.#cache(), this.#cacheStatements, sql);
  }

  #cache(): DatabaseSync {
    if (this.#cacheDb) return this.#cacheDb;
    let db: DatabaseSync;
    if (this.#readOnly) {
      // plan: read what is cached, keep nothing.
      const exists = this.cachePath !== ":memory:" && fileExists(this.cachePath);
      db = new DatabaseSync(exists ? this.cachePath : ":memory:", { readOnly: exists });
      if (!exists) {
        db.exec(CACHE_TABLE);
        this.#adoptLedgerCache(db);
      }
    } else {
      db = openDatabase(this.cachePath, { create: true });
      db.exec(CACHE_TABLE);
      if (Number((db.prepare("PRAGMA user_version").get() as Row).user_version) === 0) {
        this.#adoptLedgerCache(db);
        db.exec("PRAGMA user_version = 1");
      }
    }
    this.#cacheDb = db;
    return db;
  }

  /**
   * Copies into a new cache file the entries a ledger kept before the caches
   * had a file of their own (once: the file's user_version then says so).
   */
  #adoptLedgerCache(cache: DatabaseSync): void {
    const rows = this.#stmt("SELECT namespace, key, value, created_at FROM cache").all() as Row[];
    if (rows.length === 0) return;
    const insert = cache.prepare(
      "INSERT OR IGNORE INTO cache (namespace, key, value, created_at) VALUES (?, ?, ?, ?)",
    );
    transaction(cache, () => {
      for (const row of rows) insert.run(row.namespace, row.key, row.value, row.created_at);
    });
  }

  // ---- maintenance ----

  /** Integrity problems, or an empty list when the store is sound. */
  verify(): string[] {
    const problems: string[] = [];
    const rows = this.#db.prepare("PRAGMA integrity_check").all() as Row[];
    for (const row of rows) {
      const text = String(Object.values(row)[0]);
      if (text !== "ok") problems.push(text);
    }
    const version = this.#version();
    if (version !== STATE_SCHEMA_VERSION) {
      problems.push(`schema version ${version}, expected ${STATE_SCHEMA_VERSION}`);
    }
    return problems;
  }

  close(): void {
    this.#statements.clear();
    this.#cacheStatements.clear();
    if (this.#db.isOpen) this.#db.close();
    if (this.#cacheDb?.isOpen) this.#cacheDb.close();
  }
}

/** `sql` prepared once per connection (`cache` belongs to `db`). */
function prepared(db: DatabaseSync, cache: Map<string, StatementSync>, sql: string): StatementSync {
  let statement = cache.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    cache.set(sql, statement);
  }
  return statement;
}

function toRecordState(row: Row): RecordState {
  return {
    key: String(row.key),
    hash: row.hash as string | null,
    remoteId: row.remote_id as string | null,
    lastOutcome: row.last_outcome as Outcome | null,
    attempts: Number(row.attempts),
    lastError: row.last_error as string | null,
    syncedAt: row.synced_at as string | null,
  };
}
