/**
 * `sync-tickets.sqlite`: upserts each record into a table of an embedded
 * SQLite file (the default sink: no server needed).
 *
 * One row per record key: typed columns mapped from fields, the whole record
 * as JSON, and its content hash, so the outcome is right even when the ledger
 * is lost. One transaction per batch: a killed run loses at most one batch and
 * a re-run upserts the same rows again.
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { batches } from "../../lib/batch.ts";
import { errorMessage, RemoteError } from "../../lib/errors.ts";
import { stableStringify } from "../../lib/hash.ts";
import { isActionable, isUnchanged, mergeOutcome } from "../../lib/outcome.ts";
import {
  checkTableConfig,
  columnChanges,
  columnsSchema,
  type DatabaseSync,
  LazyTable,
  quoteIdent,
  rawChanges,
  resolveColumns,
  rowValues,
  sqlType,
  type SqlValue,
  type StatementSync,
  tableColumns,
  transaction,
} from "../../lib/sqlite.ts";
import { defineStage, type FieldChange, type SyncResult } from "../../lib/stage.ts";

const MANAGED = ["key", "content_hash", "first_synced_at", "synced_at"] as const;

/** What the destination says about one key. */
interface Decision {
  outcome: "created" | "updated" | "unchanged";
  write: boolean;
  changes?: FieldChange[];
}

/** The sink. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "sqlite",
  summary: "Upsert records into a table of an embedded SQLite file, keyed by the record key.",
  config: z.object({
    path: z.string().min(1).default("./data/quickstart.db").describe(
      "SQLite file (created with its directory when missing); relative to the working directory.",
    ),
    table: z.string().default("tickets").describe(
      "Table to upsert into; created when missing (key TEXT PRIMARY KEY, the columns, raw, content_hash, first_synced_at, synced_at).",
    ),
    columns: columnsSchema.default({}).describe(
      'Typed columns: { "<column>": { "from": "<dotted field path>", "type": "text|integer|real|boolean|json" } }. Columns missing from an existing table are added.',
    ),
    raw: z.string().nullable().default("raw").describe(
      "Column holding the whole record as JSON, or null for none.",
    ),
    batchSize: z.number().int().positive().default(500).describe(
      "Records per transaction; results are passed on after each commit.",
    ),
  }).strict().superRefine((config, ctx) => checkTableConfig(config, MANAGED, ctx)),
  create(config, ctx) {
    const path = resolve(ctx.cwd, config.path);
    const plan = ctx.options.mode === "plan";
    const table = quoteIdent(config.table);
    const reserved = config.raw === null ? [...MANAGED] : [...MANAGED, config.raw];
    const columns = resolveColumns(config.columns, reserved);

    let select: StatementSync | null = null;
    let upsert: StatementSync | null = null;

    const destination = new LazyTable(path, config.table, plan, ensureTable);
    /** The destination database, opened on first use (in plan mode only if it exists). */
    function database(): DatabaseSync | null {
      return destination.open();
    }

    function ensureTable(db: DatabaseSync): void {
      const definitions = [
        `"key" TEXT PRIMARY KEY`,
        ...columns.map((column) => `${quoteIdent(column.name)} ${sqlType(column.type)}`),
        ...(config.raw === null ? [] : [`${quoteIdent(config.raw)} TEXT`]),
        `"content_hash" TEXT`,
        `"first_synced_at" TEXT`,
        `"synced_at" TEXT`,
      ];
      db.exec(`CREATE TABLE IF NOT EXISTS ${table} (${definitions.join(", ")})`);
      // A column added to the config later is added to the table, not silently dropped.
      const existing = new Set(tableColumns(db, config.table));
      const wanted: [string, string][] = [
        ...columns.map((column): [string, string] => [column.name, sqlType(column.type)]),
        ...(config.raw === null ? [] : [[config.raw, "TEXT"] as [string, string]]),
        ["content_hash", "TEXT"],
        ["first_synced_at", "TEXT"],
        ["synced_at", "TEXT"],
      ];
      for (const [name, type] of wanted) {
        if (!existing.has(name.toLowerCase())) {
          db.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(name)} ${type}`);
        }
      }
    }

    /** The destination row of `key` (only the columns the table has), if any. */
    function selectRow(db: DatabaseSync, key: string): Record<string, unknown> | undefined {
      if (!destination.has("key")) return undefined;
      if (select === null) {
        const wanted = [
          "key",
          "content_hash",
          ...columns.map((column) => column.name),
          ...(config.raw === null ? [] : [config.raw]),
        ].filter((name) => destination.has(name));
        select = db.prepare(
          `SELECT ${wanted.map(quoteIdent).join(", ")} FROM ${table} WHERE "key" = ?`,
        );
        // An integer beyond 2^53 reads as a bigint instead of throwing.
        select.setReadBigInts(true);
      }
      return select.get(key) as Record<string, unknown> | undefined;
    }

    /** Compares the destination row with the record. */
    function decide(
      stored: Record<string, unknown> | undefined,
      result: SyncResult,
      values: SqlValue[],
    ): Decision {
      if (stored === undefined) return { outcome: "created", write: true };
      if (stored.content_hash === result.hash && !ctx.options.full) {
        return { outcome: "unchanged", write: false };
      }
      if (!plan) return { outcome: "updated", write: true };
      let changes = columnChanges(columns, stored, values);
      if (changes.length === 0 && config.raw !== null) {
        changes = rawChanges(stored[config.raw], result.item.data, `${config.raw}.`);
      }
      return { outcome: "updated", write: true, changes };
    }

    function upsertStatement(db: DatabaseSync) {
      const names = [
        "key",
        ...columns.map((column) => column.name),
        ...(config.raw === null ? [] : [config.raw]),
        "content_hash",
        "first_synced_at",
        "synced_at",
      ];
      const updates = names
        .filter((name) => name !== "key" && name !== "first_synced_at")
        .map((name) => `${quoteIdent(name)} = excluded.${quoteIdent(name)}`);
      return db.prepare(
        `INSERT INTO ${table} (${names.map(quoteIdent).join(", ")}) VALUES (${
          names.map(() => "?").join(", ")
        }) ON CONFLICT ("key") DO UPDATE SET ${updates.join(", ")}`,
      );
    }

    /** Decides (and in run mode writes) one batch; returns when committed. */
    function handleBatch(batch: SyncResult[]): void {
      const pending: { result: SyncResult; values: SqlValue[]; decision: Decision }[] = [];
      for (const result of batch) {
        if (!isActionable(result)) continue;
        if (isUnchanged(result, ctx.options)) {
          result.outcome = mergeOutcome(result.outcome, "unchanged");
          result.remoteId = result.item.key;
          continue;
        }
        let values: SqlValue[];
        try {
          values = rowValues(columns, result.item.data);
        } catch (error) {
          fail(result, errorMessage(error));
          continue;
        }
        const handle = database();
        const stored = handle === null ? undefined : selectRow(handle, result.item.key);
        pending.push({ result, values, decision: decide(stored, result, values) });
      }
      if (!plan) write(pending.filter((entry) => entry.decision.write));
      for (const { result, decision } of pending) {
        if (result.outcome === "failed") continue;
        result.outcome = mergeOutcome(result.outcome, decision.outcome);
        result.remoteId = result.item.key;
        if (decision.changes) result.changes = [...(result.changes ?? []), ...decision.changes];
      }
    }

    /** Upserts the rows in one transaction; a failing row fails only its record. */
    function write(
      rows: { result: SyncResult; values: SqlValue[] }[],
    ): void {
      if (rows.length === 0) return;
      const handle = database() as DatabaseSync;
      // Prepared once: a statement per batch would hold native memory until GC.
      upsert ??= upsertStatement(handle);
      const statement = upsert;
      const now = ctx.clock.now().toString();
      try {
        transaction(handle, function upsertBatch() {
          for (const { result, values } of rows) {
            const raw = config.raw === null
              ? []
              : [result.json ?? stableStringify(result.item.data)];
            try {
              statement.run(result.item.key, ...values, ...raw, result.hash, now, now);
            } catch (error) {
              // A constraint failure aborts only its statement; the batch goes on.
              fail(result, `Cannot upsert into table "${config.table}": ${errorMessage(error)}`);
            }
          }
        });
      } catch (error) {
        throw new RemoteError(
          `Cannot write to "${path}": table "${config.table}": ${errorMessage(error)}`,
          undefined,
          { cause: error },
        );
      }
    }

    function fail(result: SyncResult, reason: string): void {
      result.outcome = "failed";
      result.reason = reason;
    }

    return {
      async *sync(results) {
        for await (const batch of batches(results, config.batchSize)) {
          handleBatch(batch);
          yield* batch;
        }
      },
      close() {
        destination.close();
        select = null;
        upsert = null;
      },
    };
  },
});
