/**
 * `sync-responses.sqlite`: stores the child records of each ticket (utility
 * member responses) in a table of an embedded SQLite file.
 *
 * Children are identified within their parent by `key` fields and upserted,
 * never deleted, so the full response history is kept even when a later scrape
 * no longer lists an old response. A parent is all-or-nothing: if one of its
 * children cannot be stored, none of them are and the parent fails.
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { batches } from "../../lib/batch.ts";
import { errorMessage, RemoteError } from "../../lib/errors.ts";
import { contentHash, stableStringify } from "../../lib/hash.ts";
import { mergeOutcome, needsChildSync } from "../../lib/outcome.ts";
import { getPath } from "../../lib/paths.ts";
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
  savepoint,
  sqlType,
  type SqlValue,
  type StatementSync,
  tableColumns,
  transaction,
} from "../../lib/sqlite.ts";
import {
  type ChildStats,
  type ChildSyncRuntime,
  defineStage,
  type FieldChange,
  type SyncResult,
} from "../../lib/stage.ts";

const MANAGED = [
  "parent_key",
  "child_key",
  "content_hash",
  "first_synced_at",
  "synced_at",
] as const;

/** One child ready to be compared and written. */
interface Child {
  key: string;
  data: Record<string, unknown>;
  hash: string;
  values: SqlValue[];
}

/** A parent failure with a plain reason. */
class ChildError extends Error {}

/** The sink. */
export const stage = defineStage({
  kind: "sync-responses",
  name: "sqlite",
  summary: "Upsert each record's child records (responses) into a SQLite table; history is kept.",
  config: z.object({
    path: z.string().min(1).default("./data/quickstart.db").describe(
      "SQLite file (created with its directory when missing); relative to the working directory.",
    ),
    table: z.string().default("responses").describe(
      "Table of child records; created when missing (parent_key, child_key, the columns, raw, content_hash, first_synced_at, synced_at).",
    ),
    from: z.string().min(1).default("responses").describe(
      "Dotted path of the array of children in each record; a missing or null value means no children.",
    ),
    key: z.array(z.string().min(1)).min(1).default(["member_code", "responded_at"]).describe(
      'Fields of a child that identify it within its parent; joined with "@" into child_key.',
    ),
    columns: columnsSchema.default({}).describe(
      'Typed columns read from each child: { "<column>": { "from": "<dotted path>", "type": "text|integer|real|boolean|json" } }.',
    ),
    raw: z.string().nullable().default("raw").describe(
      "Column holding the whole child as JSON, or null for none.",
    ),
    batchSize: z.number().int().positive().default(100).describe(
      "Parent records per transaction; results are passed on after each commit.",
    ),
  }).strict().superRefine((config, ctx) => checkTableConfig(config, MANAGED, ctx)),
  create(config, ctx) {
    const path = resolve(ctx.cwd, config.path);
    const plan = ctx.options.mode === "plan";
    const table = quoteIdent(config.table);
    const columns = resolveColumns(
      config.columns,
      config.raw === null ? [...MANAGED] : [...MANAGED, config.raw],
    );
    const stats: ChildStats = {
      parents: 0,
      children: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      failedParents: 0,
    };

    let select: StatementSync | null = null;
    let upsert: StatementSync | null = null;

    const destination = new LazyTable(path, config.table, plan, ensureTable);
    /** The destination database, opened on first use (in plan mode only if it exists). */
    function database(): DatabaseSync | null {
      return destination.open();
    }

    function ensureTable(db: DatabaseSync): void {
      const wanted: [string, string][] = [
        ...columns.map((column): [string, string] => [column.name, sqlType(column.type)]),
        ...(config.raw === null ? [] : [[config.raw, "TEXT"] as [string, string]]),
        ["content_hash", "TEXT"],
        ["first_synced_at", "TEXT"],
        ["synced_at", "TEXT"],
      ];
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${table} ("parent_key" TEXT NOT NULL, "child_key" TEXT NOT NULL, ${
          wanted.map(([name, type]) => `${quoteIdent(name)} ${type}`).join(", ")
        }, PRIMARY KEY ("parent_key", "child_key"))`,
      );
      const existing = new Set(tableColumns(db, config.table));
      for (const [name, type] of wanted) {
        if (!existing.has(name.toLowerCase())) {
          db.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(name)} ${type}`);
        }
      }
    }

    function selectRow(
      db: DatabaseSync,
      parent: string,
      child: string,
    ): Record<string, unknown> | undefined {
      if (!destination.has("parent_key") || !destination.has("child_key")) {
        return undefined;
      }
      if (select === null) {
        const wanted = [
          "child_key",
          "content_hash",
          ...columns.map((column) => column.name),
          ...(config.raw === null ? [] : [config.raw]),
        ].filter((name) => destination.has(name));
        select = db.prepare(
          `SELECT ${
            wanted.map(quoteIdent).join(", ")
          } FROM ${table} WHERE "parent_key" = ? AND "child_key" = ?`,
        );
        // An integer beyond 2^53 reads as a bigint instead of throwing.
        select.setReadBigInts(true);
      }
      return select.get(parent, child) as Record<string, unknown> | undefined;
    }

    function upsertStatement(db: DatabaseSync): StatementSync {
      if (upsert !== null) return upsert;
      const names = [
        "parent_key",
        "child_key",
        ...columns.map((column) => column.name),
        ...(config.raw === null ? [] : [config.raw]),
        "content_hash",
        "first_synced_at",
        "synced_at",
      ];
      const updates = names
        .filter((name) => !["parent_key", "child_key", "first_synced_at"].includes(name))
        .map((name) => `${quoteIdent(name)} = excluded.${quoteIdent(name)}`);
      upsert = db.prepare(
        `INSERT INTO ${table} (${names.map(quoteIdent).join(", ")}) VALUES (${
          names.map(() => "?").join(", ")
        }) ON CONFLICT ("parent_key", "child_key") DO UPDATE SET ${updates.join(", ")}`,
      );
      return upsert;
    }

    /**
     * Reads and checks the children of one record. Duplicate child keys keep the
     * last occurrence (one row per key).
     * @throws {ChildError} with a plain reason.
     */
    function readChildren(data: Record<string, unknown>): Child[] {
      const list = getPath(data, config.from);
      if (list === undefined || list === null) return [];
      if (!Array.isArray(list)) {
        throw new ChildError(`"${config.from}" is not a list: got ${describe(list)}`);
      }
      const children = new Map<string, Child>();
      list.forEach((value, index) => {
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new ChildError(`response ${index + 1}: expected an object, got ${describe(value)}`);
        }
        const child = value as Record<string, unknown>;
        const parts = config.key.map((field) => {
          const part = getPath(child, field);
          if (part === undefined || part === null || part === "") {
            throw new ChildError(`response ${index + 1}: missing key field "${field}"`);
          }
          return typeof part === "string" ? part : stableStringify(part);
        });
        // "@" joins the parts; in a key of several parts one inside a part is escaped, so
        // "x@y"+"z" and "x"+"y@z" differ. A one-part key is the part itself, as it always was.
        const key = parts.length === 1
          ? parts[0]
          : parts.map((part) => part.replace(/[\\@]/g, "\\$&")).join("@");
        let values: SqlValue[];
        try {
          values = rowValues(columns, child);
        } catch (error) {
          throw new ChildError(`response "${key}": ${errorMessage(error)}`);
        }
        children.delete(key);
        children.set(key, { key, data: child, hash: contentHash(child), values });
      });
      return [...children.values()];
    }

    /** Compares, and in run mode writes, the children of one parent. */
    function handleParent(result: SyncResult, now: string): void {
      let children: Child[];
      try {
        children = readChildren(result.item.data);
      } catch (error) {
        if (!(error instanceof ChildError)) throw error;
        fail(result, error.message);
        return;
      }
      stats.parents++;
      stats.children += children.length;
      const handle = database();
      const counts = { created: 0, updated: 0, unchanged: 0 };
      const changes: FieldChange[] = [];

      function compareAndWrite(): void {
        for (const child of children) {
          const stored = handle === null
            ? undefined
            : selectRow(handle, result.item.key, child.key);
          const label = `${config.from}["${child.key}"]`;
          if (stored !== undefined && stored.content_hash === child.hash && !ctx.options.full) {
            counts.unchanged++;
            continue;
          }
          if (stored === undefined) {
            counts.created++;
            if (plan) changes.push({ path: label, before: null, after: child.data });
          } else {
            counts.updated++;
            if (plan) changes.push(...childChanges(stored, child, `${label}.`));
          }
          if (plan) continue;
          const raw = config.raw === null ? [] : [stableStringify(child.data)];
          try {
            upsertStatement(handle as DatabaseSync).run(
              result.item.key,
              child.key,
              ...child.values,
              ...raw,
              child.hash,
              now,
              now,
            );
          } catch (error) {
            throw new ChildError(`response "${child.key}": ${errorMessage(error)}`);
          }
        }
      }

      try {
        if (plan) compareAndWrite();
        else savepoint(handle as DatabaseSync, compareAndWrite);
      } catch (error) {
        if (!(error instanceof ChildError)) throw error;
        fail(result, error.message);
        return;
      }
      stats.created += counts.created;
      stats.updated += counts.updated;
      stats.unchanged += counts.unchanged;
      const touched = counts.created + counts.updated > 0;
      result.outcome = mergeOutcome(result.outcome, touched ? "updated" : "unchanged");
      if (changes.length > 0) result.changes = [...(result.changes ?? []), ...changes];
    }

    function childChanges(stored: Record<string, unknown>, child: Child, prefix: string) {
      const changes = columnChanges(columns, stored, child.values, prefix);
      if (changes.length > 0 || config.raw === null) return changes;
      return rawChanges(stored[config.raw], child.data, prefix);
    }

    function fail(result: SyncResult, reason: string): void {
      stats.failedParents++;
      result.outcome = "failed";
      result.reason = reason;
    }

    /** Whether the parent's children need a look at all. */
    const needsWork = (result: SyncResult) => needsChildSync(result, ctx.options);

    function handleBatch(batch: SyncResult[]): void {
      const work = batch.filter(needsWork);
      if (work.length === 0) return;
      const now = ctx.clock.now().toString();
      if (plan) {
        for (const result of work) handleParent(result, now);
        return;
      }
      const handle = database() as DatabaseSync;
      try {
        transaction(handle, function upsertBatch() {
          for (const result of work) handleParent(result, now);
        });
      } catch (error) {
        throw new RemoteError(
          `Cannot write to "${path}": table "${config.table}": ${errorMessage(error)}`,
          undefined,
          { cause: error },
        );
      }
    }

    const runtime: ChildSyncRuntime = {
      async *sync(results: AsyncIterable<SyncResult>): AsyncGenerator<SyncResult> {
        for await (const batch of batches(results, config.batchSize)) {
          handleBatch(batch);
          yield* batch;
        }
      },
      /** Counters of the children handled so far. */
      stats(): ChildStats {
        return { ...stats };
      },
      close() {
        destination.close();
        select = null;
        upsert = null;
      },
    };
    return runtime;
  },
});

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `"${value}"`;
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
