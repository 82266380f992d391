/**
 * `sync-tickets.postgres`: loads records into a PostgreSQL table, keyed by one
 * or more columns, and never deletes a row.
 *
 * Load path: one statement per batch, `INSERT ... SELECT ... FROM
 * string_to_table($1, E'\n') WITH ORDINALITY`: the batch travels as one text
 * parameter of JSON lines, one row per line, each line parsed as `jsonb` and
 * its values cast in SQL. Chosen over COPY because it needs no temporary table,
 * is one round trip, and its `RETURNING (xmax = 0)` tells each row's fate:
 * inserted (created), updated, or not returned (unchanged: the `WHERE ROW(...)
 * IS DISTINCT FROM ROW(EXCLUDED...)` made the update a no-op, so the row is not
 * rewritten). Lines, not one JSON array: a line is parsed in memory the server
 * reuses from row to row, while a whole 500-row array was parsed into several
 * MB of fresh memory per statement (2.5x the server time, mostly page faults;
 * bench/README.md). `string_to_table` needs PostgreSQL 14 or newer.
 *
 * Values are converted and checked in TypeScript first, so a bad value fails
 * its record only; a row the database still rejects (a CHECK or foreign key)
 * makes that batch retry row by row under savepoints.
 *
 * Transactions: `"run"` keeps every batch of the run in one transaction,
 * committed by `close()` and rolled back by `abort()` (all or nothing, for
 * snapshots); `"batch"` commits each batch (for long imports whose progress
 * must survive a kill).
 *
 * Freshness: with `importMeta`, a successful run that saw records upserts one
 * row per source into the meta table (a run with none, such as a skipped
 * unchanged snapshot, leaves it as it was). Its ETag and source name come from
 * the pipeline cursors `source.etag` and `source.name`, which readers (S3,
 * files) set when they start reading a file.
 * @module
 */
import { z } from "zod";
import type postgres from "postgres";
import { batches } from "../../lib/batch.ts";
import {
  ConfigError,
  ExitCode,
  MissingError,
  RemoteError,
  TicketsyncError,
} from "../../lib/errors.ts";
import { isActionable, isUnchanged, mergeOutcome } from "../../lib/outcome.ts";
import { getPath } from "../../lib/paths.ts";
import { diffFields } from "../../lib/diff.ts";
import {
  convertValue,
  isRowError,
  openDatabase,
  parseTableName,
  PG_TYPES,
  pgErrorMessage,
  type PgType,
  qualifiedName,
  quoteIdent,
  requireServerVersion,
  type Sql,
  type TableName,
} from "../../lib/postgres.ts";
import { secret } from "../../lib/secret.ts";
import {
  defineStage,
  type FieldChange,
  type Outcome,
  type StageContext,
  type SyncResult,
  type SyncRuntime,
} from "../../lib/stage.ts";

const columnSchema = z.object({
  from: z.string().min(1).optional().describe(
    "Dotted path of the value in the record's data; defaults to the column name.",
  ),
  type: z.enum(PG_TYPES).describe("PostgreSQL type the value is converted to before it is sent."),
  nullable: z.boolean().default(true).describe(
    "Whether a missing or empty value may be stored as NULL; if false such a record fails.",
  ),
}).strict();

const importMetaSchema = z.object({
  table: z.string().default("tickets.import_meta").describe(
    "Freshness table: source_key (primary key), source_etag, rows_seen, rows_loaded, rows_skipped, loaded_at, metadata.",
  ),
  sourceKey: z.string().min(1).describe('This source\'s row in the freshness table, e.g. "inc".'),
}).strict();

const configBase = z.object({
  url: secret(z.string().min(1)).describe('PostgreSQL URL, e.g. "${env:DATABASE_URL}".'),
  table: z.string().describe('Target table, "table" or "schema.table", e.g. "tickets.inc".'),
  createTable: z.boolean().default(false).describe(
    "Create the schema, table (typed columns, raw jsonb, key as primary key, first_loaded_at, updated_at) and the importMeta table when missing. If false, a missing table stops the run before anything is written.",
  ),
  key: z.array(z.string()).min(1).default(["ticket_id"]).describe(
    'Columns of the unique key rows are matched on, e.g. ["tenant_id", "ticket_id"]. Each must be in "columns"; a key value may never be null.',
  ),
  columns: z.record(z.string(), columnSchema).describe(
    "Typed columns: column name -> where its value comes from and its type.",
  ),
  raw: z.string().nullable().default("raw").describe(
    "jsonb column that holds the whole record (raw-first storage), or null for none.",
  ),
  mode: z.enum(["upsert", "insert-ignore"]).default("upsert").describe(
    'upsert: insert, or update a row whose content differs; insert-ignore: insert, and skip a key that already exists ("already exists").',
  ),
  // 500 measured a little faster than 1,000 on the INC snapshot, with less held in memory.
  batchSize: z.int().min(1).max(100_000).default(500).describe("Rows per statement."),
  transaction: z.enum(["run", "batch"]).default("run").describe(
    "run: the whole run in one transaction, committed only when the run succeeds (snapshots); batch: commit every batch, so progress survives a kill (long imports).",
  ),
  strict: z.boolean().default(false).describe(
    'If true, one record that cannot be loaded stops the run and rolls back its transaction (with transaction "batch", batches already committed stay). Plan mode reports such records as failed instead.',
  ),
  skipUnchanged: z.boolean().default(true).describe(
    "Do not send records whose content hash equals the one the ledger saved at the last successful sync (unless the run is --full).",
  ),
  importMeta: importMetaSchema.nullable().default(null).describe(
    "Freshness row to upsert after a successful run, or null for none.",
  ),
}).strict();

const configSchema = configBase.superRefine(checkConfig);

/**
 * The checks across fields and of every name (config validation reports them
 * with their paths, before anything connects); `buildLayout` relies on them.
 */
function checkConfig(config: z.output<typeof configBase>, ctx: z.RefinementCtx): void {
  const problem = (path: PropertyKey[], message: string, input?: unknown) =>
    ctx.addIssue({ code: "custom", path, message, input });
  const name = (path: PropertyKey[], check: () => unknown) => {
    try {
      check();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problem(path, error.message.replace(/^Invalid /, "invalid "));
    }
  };
  name(["table"], () => parseTableName(config.table));
  for (const column of Object.keys(config.columns)) {
    name(["columns", column], () => quoteIdent(column));
  }
  if (config.raw !== null) name(["raw"], () => quoteIdent(config.raw!));
  if (config.importMeta) {
    name(["importMeta", "table"], () => parseTableName(config.importMeta!.table));
  }
  config.key.forEach((key, index) => {
    if (!(key in config.columns)) {
      problem(["key", index], `expected a column of "columns", got ${JSON.stringify(key)}`);
    } else if (config.key.indexOf(key) !== index) {
      problem(["key", index], `${JSON.stringify(key)} is listed twice`);
    }
  });
  if (config.raw !== null && config.raw in config.columns) {
    problem(
      ["raw"],
      `expected a name other than the typed columns', got ${JSON.stringify(config.raw)}`,
    );
  }
}

/** The parsed config of this stage. */
export type PostgresSinkConfig = z.output<typeof configSchema>;

/** One column of the target table as the sink writes it. */
interface Column {
  name: string;
  quoted: string;
  /** Path in `item.data` (`""` for the raw column: the whole record). */
  from: string;
  type: PgType;
  nullable: boolean;
  key: boolean;
  raw: boolean;
}

/** The target table and the statements for it, checked once at `create`. */
interface Layout {
  /** The table as the config names it, for messages. */
  display: string;
  name: TableName;
  target: string;
  /** Key columns first, then the others in config order, then raw. */
  columns: Column[];
  keys: Column[];
  /** Where each column's value sits in a line of {@linkcode batchLines}. */
  slots: JsonSlots;
}

/**
 * A batch row's layout: the text columns' values first (in column order),
 * then the jsonb columns'. `text` and `jsonb` list column indexes, `slot[i]`
 * is column i's position in the row.
 */
interface JsonSlots {
  text: number[];
  jsonb: number[];
  slot: number[];
}

/** Builds the column list and statements' names. */
function buildLayout(config: PostgresSinkConfig): Layout {
  // Names, key columns and raw were checked by the config schema (checkConfig).
  const name = parseTableName(config.table);
  const target = qualifiedName(config.table);

  function column(columnName: string, key: boolean): Column {
    const spec = config.columns[columnName];
    return {
      name: columnName,
      quoted: quoteIdent(columnName),
      from: spec.from ?? columnName,
      type: spec.type,
      nullable: key ? false : spec.nullable,
      key,
      raw: false,
    };
  }
  const keys = config.key.map((k) => column(k, true));
  const others = Object.keys(config.columns).filter((c) => !config.key.includes(c)).map((c) =>
    column(c, false)
  );
  const columns = [...keys, ...others];
  if (config.raw !== null) {
    columns.push({
      name: config.raw,
      quoted: quoteIdent(config.raw),
      from: "",
      type: "jsonb",
      nullable: true,
      key: false,
      raw: true,
    });
  }
  return { display: config.table, name, target, columns, keys, slots: jsonSlots(columns) };
}

/** What the database says about the target table. */
interface TableInfo {
  exists: boolean;
  columns: Set<string>;
  /**
   * Columns that store a text exactly as sent and compare it byte for byte:
   * `text` or `varchar` with a deterministic collation (not `char(n)`, which
   * pads, nor `citext` or a case-insensitive collation).
   */
  exactText: Set<string>;
  uniqueKeys: string[][];
}

async function inspectTable(sql: Sql, name: TableName): Promise<TableInfo> {
  const [table] = await sql<{ oid: number }[]>`
    select c.oid::int as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${name.schema} and c.relname = ${name.table} and c.relkind in ('r', 'p')`;
  if (!table) return { exists: false, columns: new Set(), exactText: new Set(), uniqueKeys: [] };
  const columns = await sql<{ name: string; exact: boolean }[]>`
    select a.attname as name,
      a.atttypid in ('text'::regtype, 'varchar'::regtype)
        and coalesce(co.collisdeterministic, true) as exact
    from pg_attribute a left join pg_collation co on co.oid = a.attcollation
    where a.attrelid = ${table.oid} and a.attnum > 0 and not a.attisdropped`;
  const indexes = await sql<{ cols: string[] }[]>`
    select array_to_json(array(
      select a.attname::text from unnest(i.indkey::int2[]) as k(n)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n
    )) as cols
    from pg_index i
    where i.indrelid = ${table.oid} and i.indisunique and i.indpred is null and i.indexprs is null`;
  return {
    exists: true,
    columns: new Set(columns.map((c) => c.name)),
    exactText: new Set(columns.filter((c) => c.exact).map((c) => c.name)),
    uniqueKeys: indexes.map((i) => i.cols),
  };
}

function createTableSql(layout: Layout): string[] {
  const defs = layout.columns.map((c) => `${c.quoted} ${c.type}${c.nullable ? "" : " not null"}`);
  const names = new Set(layout.columns.map((c) => c.name));
  if (!names.has("first_loaded_at")) {
    defs.push(`"first_loaded_at" timestamptz not null default now()`);
  }
  if (!names.has("updated_at")) defs.push(`"updated_at" timestamptz`);
  defs.push(`primary key (${layout.keys.map((k) => k.quoted).join(", ")})`);
  return [
    `create schema if not exists ${quoteIdent(layout.name.schema)}`,
    `create table if not exists ${layout.target} (\n  ${defs.join(",\n  ")}\n)`,
  ];
}

function createMetaSql(table: string): string[] {
  const name = parseTableName(table);
  return [
    `create schema if not exists ${quoteIdent(name.schema)}`,
    `create table if not exists ${qualifiedName(table)} (
  "source_key" text primary key,
  "source_etag" text,
  "rows_seen" integer not null,
  "rows_loaded" integer not null,
  "rows_skipped" integer not null,
  "loaded_at" timestamptz not null,
  "metadata" jsonb not null default '{}'
)`,
  ];
}

function jsonSlots(columns: Column[]): JsonSlots {
  const text: number[] = [];
  const jsonb: number[] = [];
  columns.forEach((c, i) => (c.type === "jsonb" ? jsonb : text).push(i));
  const slot: number[] = [];
  text.forEach((column, position) => slot[column] = position);
  jsonb.forEach((column, position) => slot[column] = text.length + position);
  return { text, jsonb, slot };
}

/**
 * `WITH src AS (...)`: the batch as typed rows with their 1-based position
 * `"#ord"`, from one text parameter holding a JSON array per line (see
 * {@linkcode batchLines}). `OFFSET 0` keeps the lateral subquery from being
 * inlined, so each line is parsed once, not once per column.
 */
function sourceCte(layout: Layout): string {
  const { slot } = layout.slots;
  const casts = layout.columns.map((c, i) =>
    c.type === "jsonb"
      ? `nullif(u.r -> ${slot[i]}, 'null'::jsonb) as ${c.quoted}`
      : `(u.r ->> ${slot[i]})::${c.type} as ${c.quoted}`
  ).join(", ");
  return `src as (select s."#ord"::int as "#ord", ${casts}
  from string_to_table($1::text, E'\\n') with ordinality as s(line, "#ord"),
    lateral (select s.line::jsonb as r offset 0) as u)`;
}

function keyJoin(left: string, right: string, layout: Layout): string {
  return layout.keys.map((k) => `${left}.${k.quoted} = ${right}.${k.quoted}`).join(" and ");
}

/**
 * The load statement. Returns `inserted` for each row it inserted or updated,
 * with the row's key as `"#k0"`, `"#k1"`... when every key column is `text`
 * (the stored key is then the text sent, see {@linkcode rowKey}), else with
 * `ord`, its position in the batch, found by joining back to the batch (which
 * makes the database keep the whole batch for the join: about a tenth slower).
 * Rows not returned were unchanged (upsert) or already existed (insert-ignore).
 */
function loadSql(
  layout: Layout,
  mode: PostgresSinkConfig["mode"],
  setUpdatedAt: boolean,
  byKey: boolean,
): string {
  const names = layout.columns.map((c) => c.quoted);
  const insertNames = setUpdatedAt ? [...names, `"updated_at"`] : names;
  const selectList = setUpdatedAt ? [...names, "now()"] : names;
  const keys = layout.keys.map((k) => k.quoted).join(", ");
  const others = layout.columns.filter((c) => !c.key);
  let conflict: string;
  if (mode === "insert-ignore" || others.length === 0) {
    conflict = `on conflict (${keys}) do nothing`;
  } else {
    const sets = others.map((c) => `${c.quoted} = excluded.${c.quoted}`);
    if (setUpdatedAt) sets.push(`"updated_at" = now()`);
    conflict = `on conflict (${keys}) do update set ${sets.join(", ")}
    where row(${others.map((c) => `t.${c.quoted}`).join(", ")})
      is distinct from row(${others.map((c) => `excluded.${c.quoted}`).join(", ")})`;
  }
  const insert = `insert into ${layout.target} as t (${insertNames.join(", ")})
  select ${selectList.join(", ")} from src
  ${conflict}`;
  if (byKey) {
    return `with ${sourceCte(layout)}
${insert}
  returning ${
      layout.keys.map((k, i) => `t.${k.quoted} as "#k${i}"`).join(", ")
    }, (t.xmax = 0) as inserted`;
  }
  return `with ${sourceCte(layout)},
ins as (
  ${insert}
  returning ${layout.keys.map((k) => `t.${k.quoted}`).join(", ")}, (t.xmax = 0) as "#inserted"
)
select src."#ord" as ord, ins."#inserted" as inserted from ins join src on ${
    keyJoin("ins", "src", layout)
  }`;
}

/**
 * True when the load statement may return keys rather than batch positions
 * (see {@linkcode loadSql}): every key column is text sent as is and stored as
 * is (a table about to be created gets the config's types).
 */
function returnsKeys(layout: Layout, table: TableInfo): boolean {
  return layout.keys.every((k) =>
    k.type === "text" && (!table.exists || table.exactText.has(k.name))
  );
}

/** The plan lookup: for each batch row that exists, which columns differ and their stored values. */
function planSql(layout: Layout): string {
  const others = layout.columns.filter((c) => !c.key);
  const outputs = others.flatMap((c, i) => [
    `(t.${c.quoted} is distinct from src.${c.quoted}) as "#d${i}"`,
    c.raw ? `t.${c.quoted} as "#b${i}"` : `to_jsonb(t.${c.quoted}) as "#b${i}"`,
  ]);
  return `with ${sourceCte(layout)}
select ${['src."#ord" as ord', ...outputs].join(", ")}
from src join ${layout.target} as t on ${keyJoin("t", "src", layout)}`;
}

/** A record ready to send: its result and one text value per column. */
interface Row {
  result: SyncResult;
  values: (string | null)[];
}

/** Converts a record's values for every column, or says which column failed and why. */
function convertRow(layout: Layout, result: SyncResult): Row | string {
  const values: (string | null)[] = [];
  const data = result.item.data;
  for (const column of layout.columns) {
    // The whole record: the engine's stable JSON of it, when it made one.
    if (column.raw && result.json !== undefined) {
      values.push(result.json);
      continue;
    }
    const converted = convertValue(getPath(data, column.from), column.type);
    if (!converted.ok) return `column "${column.name}": ${converted.reason}`;
    if (converted.value === null && !column.nullable) {
      return column.key
        ? `column "${column.name}": key value is missing`
        : `column "${column.name}": value is missing and the column is not nullable`;
    }
    values.push(converted.value);
  }
  return { result, values };
}

/**
 * The batch for {@linkcode sourceCte}: one JSON array per row, one row per
 * line. A row holds the text values as JSON strings (one native
 * `JSON.stringify` of them), then the jsonb values spliced in as the JSON text
 * they already are. No value is escaped by hand, and the record JSON is not
 * parsed or written again. JSON text has no raw line break (one in a string is
 * written `\n`), so a line break can only separate rows.
 */
function batchLines(layout: Layout, rows: Row[]): string {
  const { text, jsonb } = layout.slots;
  const parts = new Array<string>(rows.length);
  const texts = new Array<string | null>(text.length);
  for (let r = 0; r < rows.length; r++) {
    const values = rows[r].values;
    for (let i = 0; i < text.length; i++) texts[i] = values[text[i]];
    let row = JSON.stringify(texts);
    if (jsonb.length > 0) {
      row = text.length > 0 ? row.slice(0, -1) : "[";
      for (let j = 0; j < jsonb.length; j++) {
        if (j > 0 || text.length > 0) row += ",";
        row += values[jsonb[j]] ?? "null";
      }
      row += "]";
    }
    parts[r] = row;
  }
  return parts.join("\n");
}

/**
 * A row's key as one string (keys are the first values of a row; never null,
 * `convertRow` rejects that): the value itself for a one-column key.
 */
function rowKey(layout: Layout, values: readonly (string | null)[]): string {
  return layout.keys.length === 1
    ? values[0] as string
    : JSON.stringify(values.slice(0, layout.keys.length));
}

/** Splits rows into runs without a repeated key (one statement may not touch a row twice). */
function uniqueRuns(layout: Layout, rows: Row[]): Row[][] {
  const runs: Row[][] = [];
  let current: Row[] = [];
  let seen = new Set<string>();
  for (const row of rows) {
    const key = rowKey(layout, row.values);
    if (seen.has(key)) {
      runs.push(current);
      current = [];
      seen = new Set();
    }
    seen.add(key);
    current.push(row);
  }
  if (current.length) runs.push(current);
  return runs;
}

type Counts = Record<Outcome, number> & { seen: number };

/**
 * Notices that the sink's one connection closed. postgres.js would leave a
 * query on a reserved connection that the server cut pending forever, so the
 * sink checks this before and races it during every query.
 */
class ConnectionWatch {
  lost = false;
  readonly #waiters = new Set<() => void>();

  /** For the client's `onclose` option. */
  readonly onclose = (): void => {
    this.lost = true;
    for (const wake of this.#waiters) wake();
  };

  /** Settles `query`, or rejects with `message` if the connection closes first. */
  async race<T>(query: Promise<T>, message: string): Promise<T> {
    let wake = () => {};
    const closed = new Promise<never>((_, reject) => {
      wake = () => reject(new Error(message));
    });
    this.#waiters.add(wake);
    try {
      return await Promise.race([query, closed]);
    } finally {
      this.#waiters.delete(wake);
    }
  }
}

/** The runtime: one reserved connection, one transaction per run or per batch. */
class PostgresSink implements SyncRuntime {
  readonly #sql: Sql;
  readonly #config: PostgresSinkConfig;
  readonly #ctx: StageContext;
  readonly #layout: Layout;
  readonly #tableExists: boolean;
  readonly #loadSql: string;
  readonly #planSql: string;
  readonly #plan: boolean;
  readonly #watch: ConnectionWatch;
  #conn: postgres.ReservedSql | null = null;
  #inTransaction = false;
  /** With one transaction per run, the ledger must wait for close(). */
  readonly commitsAtClose: boolean;
  #finished = false;
  /** The load statement returns keys, not batch positions (see {@linkcode returnsKeys}). */
  readonly #byKey: boolean;
  readonly #counts: Counts = {
    seen: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
  };

  constructor(
    sql: Sql,
    config: PostgresSinkConfig,
    ctx: StageContext,
    layout: Layout,
    table: TableInfo,
    watch: ConnectionWatch,
  ) {
    this.commitsAtClose = config.transaction === "run";
    this.#watch = watch;
    this.#sql = sql;
    this.#config = config;
    this.#ctx = ctx;
    this.#layout = layout;
    this.#tableExists = table.exists;
    this.#plan = ctx.options.mode === "plan";
    const setUpdatedAt = table.columns.has("updated_at") &&
      !layout.columns.some((c) => c.name === "updated_at");
    this.#byKey = returnsKeys(layout, table);
    this.#loadSql = loadSql(layout, config.mode, setUpdatedAt, this.#byKey);
    this.#planSql = planSql(layout);
  }

  /**
   * Batches run one at a time on the run's connection, but while one is in
   * the database the next is read, transformed and converted, and the one
   * before is passed downstream: the statement's round trip overlaps the
   * engine's work instead of adding to it. So a batch is sent before the
   * results of the one before it are passed on; a consumer that stops early
   * still gets that batch finished (and, with transaction "batch", committed).
   */
  async *sync(results: AsyncIterable<SyncResult>): AsyncGenerator<SyncResult> {
    let inFlight: { batch: SyncResult[]; done: Promise<void> } | null = null;
    try {
      for await (const batch of batches(results, this.#config.batchSize)) {
        const rows: Row[] = [];
        for (const result of batch) this.#prepare(result, rows);
        const finished = inFlight;
        if (finished) await finished.done;
        const done = rows.length
          ? (this.#plan ? this.#planBatch(rows) : this.#loadBatch(rows))
          : Promise.resolve();
        // Awaited later; until then a failure must not count as unhandled.
        done.catch(() => {});
        inFlight = { batch, done };
        // The finished batch goes downstream (ledger, reports) while this one
        // is in the database, not before it is sent.
        if (finished) yield* this.#passOn(finished.batch);
      }
      if (inFlight) {
        const last: { batch: SyncResult[]; done: Promise<void> } = inFlight;
        inFlight = null;
        await last.done;
        yield* this.#passOn(last.batch);
      }
    } catch (error) {
      // Let the statement in flight settle before rolling back on its connection.
      await inFlight?.done.catch(() => {});
      await this.#rollback();
      throw error;
    } finally {
      await inFlight?.done.catch(() => {});
    }
  }

  *#passOn(batch: SyncResult[]): Generator<SyncResult> {
    for (const result of batch) {
      this.#counts.seen++;
      if (result.outcome !== null) this.#counts[result.outcome]++;
      yield result;
    }
  }

  /** Commits the run (and writes the freshness row), then disconnects. */
  async close(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    try {
      if (this.#plan) {
        await this.#rollback();
        return;
      }
      // A sink exists only when the reader has something new (an unchanged
      // snapshot opens no destination), so even a snapshot whose every row was
      // filtered out is a load the freshness row must name.
      if (this.#config.importMeta) {
        await this.#begin();
        await this.#writeImportMeta(this.#config.importMeta);
      }
      if (this.#inTransaction) {
        await this.#query("commit");
        this.#inTransaction = false;
      }
    } catch (error) {
      await this.#rollback();
      if (error instanceof TicketsyncError) throw error;
      // A deferred constraint can still fail at commit: the whole run is rolled back.
      throw new RemoteError(
        `Cannot commit into "${this.#layout.display}": ${pgErrorMessage(error)}`,
        undefined,
        { cause: error },
      );
    } finally {
      await this.#disconnect();
    }
  }

  /** Rolls back what is not committed, then disconnects. */
  async abort(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    try {
      await this.#rollback();
    } finally {
      await this.#disconnect();
    }
  }

  /** Decides what needs no database work; queues the rest as converted rows. */
  #prepare(result: SyncResult, rows: Row[]): void {
    if (!isActionable(result)) return;
    if (this.#config.skipUnchanged && isUnchanged(result, this.#ctx.options)) {
      result.outcome = mergeOutcome(result.outcome, "unchanged");
      return;
    }
    const row = convertRow(this.#layout, result);
    if (typeof row === "string") {
      this.#fail(result, row);
      return;
    }
    rows.push(row);
  }

  /** Marks a result failed; in strict mode (outside plan) stops the run. */
  #fail(result: SyncResult, reason: string): void {
    if (this.#config.strict && !this.#plan) {
      const { source, position } = result.item.origin;
      // A known stop, not a crash: logged as one line, exit 3, the transaction rolled back.
      throw new TicketsyncError(
        `Cannot load into "${this.#layout.display}": ${source} ${position}: ${reason} (strict: the run's transaction is rolled back)`,
        ExitCode.Remote,
      );
    }
    result.outcome = "failed";
    result.reason = reason;
  }

  async #loadBatch(rows: Row[]): Promise<void> {
    await this.#begin();
    for (const run of uniqueRuns(this.#layout, rows)) {
      // Sent together (postgres.js pipelines them): one round trip per batch,
      // so the load reaches the server while this process prepares the next.
      const [savepoint, load, release] = await Promise.allSettled([
        this.#query("savepoint ts_batch"),
        this.#execute(run),
        this.#query("release savepoint ts_batch"),
      ]);
      if (savepoint.status === "rejected") throw savepoint.reason;
      if (load.status === "fulfilled" && release.status === "fulfilled") {
        this.#apply(run, load.value);
        continue;
      }
      // After a failed load the release fails too (the transaction is aborted).
      const error = load.status === "rejected"
        ? load.reason
        : (release as PromiseRejectedResult).reason;
      if (!isRowError(error)) throw error;
      // A row the database rejects (CHECK, foreign key): find it row by row.
      await this.#query("rollback to savepoint ts_batch");
      for (const row of run) await this.#loadOne(row);
    }
    if (this.#config.transaction === "batch") {
      await this.#query("commit");
      this.#inTransaction = false;
    }
  }

  async #loadOne(row: Row): Promise<void> {
    await this.#query("savepoint ts_row");
    try {
      this.#apply([row], await this.#execute([row]));
      await this.#query("release savepoint ts_row");
    } catch (error) {
      if (!isRowError(error)) throw error;
      await this.#query("rollback to savepoint ts_row");
      this.#fail(row.result, `database rejected the row: ${pgErrorMessage(error)}`);
    }
  }

  /** Runs the load statement; returns `inserted` by 1-based position in `rows`. */
  async #execute(rows: Row[]): Promise<Map<number, boolean>> {
    const returned = await this.#query<Record<string, unknown> & { inserted: boolean }>(
      this.#loadSql,
      this.#params(rows),
    );
    const layout = this.#layout;
    if (!this.#byKey) return new Map(returned.map((r) => [r.ord as number, r.inserted]));
    // Rows of one statement have distinct keys (uniqueRuns), so a key names one position.
    const positions = new Map<string, number>();
    rows.forEach((row, index) => positions.set(rowKey(layout, row.values), index + 1));
    const byPosition = new Map<number, boolean>();
    for (const r of returned) {
      const values = layout.keys.map((_, i) => r[`#k${i}`] as string);
      const position = positions.get(rowKey(layout, values));
      if (position === undefined) {
        throw new Error(`The load statement returned a key not in the batch: ${values.join(", ")}`);
      }
      byPosition.set(position, r.inserted);
    }
    return byPosition;
  }

  /** Sets outcomes from what the load statement returned. */
  #apply(rows: Row[], returned: Map<number, boolean>): void {
    rows.forEach((row, index) => {
      const inserted = returned.get(index + 1);
      const result = row.result;
      if (inserted === true) result.outcome = mergeOutcome(result.outcome, "created");
      else if (inserted === false) result.outcome = mergeOutcome(result.outcome, "updated");
      else if (this.#config.mode === "insert-ignore") {
        result.outcome = "skipped";
        result.reason = "already exists";
      } else result.outcome = mergeOutcome(result.outcome, "unchanged");
    });
  }

  async #planBatch(rows: Row[]): Promise<void> {
    if (!this.#tableExists) {
      for (const row of rows) row.result.outcome = mergeOutcome(row.result.outcome, "created");
      return;
    }
    await this.#begin();
    const found = await this.#query<Record<string, unknown> & { ord: number }>(
      this.#planSql,
      this.#params(rows),
    );
    const byOrd = new Map(found.map((r) => [r.ord, r]));
    const others = this.#layout.columns.filter((c) => !c.key);
    const seen = new Set<string>();
    rows.forEach((row, index) => {
      const result = row.result;
      const existing = byOrd.get(index + 1);
      const key = rowKey(this.#layout, row.values);
      if (seen.has(key) || !existing) {
        // A key repeated within the batch: the first occurrence creates or updates it.
        result.outcome = mergeOutcome(result.outcome, seen.has(key) ? "updated" : "created");
        seen.add(key);
        return;
      }
      seen.add(key);
      if (this.#config.mode === "insert-ignore") {
        result.outcome = "skipped";
        result.reason = "already exists";
        return;
      }
      const changes: FieldChange[] = [];
      others.forEach((column, i) => {
        if (existing[`#d${i}`] !== true) return;
        const before = existing[`#b${i}`];
        if (column.raw) {
          changes.push(...this.#rawChanges(column, before, result.item.data, changes));
        } else {
          changes.push({
            path: column.name,
            before,
            after: getPath(result.item.data, column.from) ?? null,
          });
        }
      });
      if (changes.length) {
        result.outcome = mergeOutcome(result.outcome, "updated");
        result.changes = changes;
      } else result.outcome = mergeOutcome(result.outcome, "unchanged");
    });
  }

  /**
   * Changed top-level fields of the raw record, leaving out those a typed
   * column already reported (unless nothing else differs).
   */
  #rawChanges(
    column: Column,
    before: unknown,
    after: Record<string, unknown>,
    reported: FieldChange[],
  ): FieldChange[] {
    const reportedPaths = new Set(reported.map((change) => change.path));
    const typed = new Set(
      this.#layout.columns.filter((c) => !c.raw && reportedPaths.has(c.name)).map((c) =>
        c.from.split(".")[0]
      ),
    );
    const old = before !== null && typeof before === "object"
      ? before as Record<string, unknown>
      : {};
    const prefix = `${column.name}.`;
    const changes = diffFields(old, after, prefix).filter((change) =>
      !typed.has(change.path.slice(prefix.length))
    );
    // Differs only in representation (e.g. a number stored as text): show the whole record.
    return changes.length || reported.length ? changes : [{ path: column.name, before, after }];
  }

  /** The batch as one text parameter (the driver passes strings through). */
  #params(rows: Row[]): string[] {
    return [batchLines(this.#layout, rows)];
  }

  async #writeImportMeta(meta: NonNullable<PostgresSinkConfig["importMeta"]>): Promise<void> {
    const c = this.#counts;
    const etag = this.#ctx.state.getCursor("source.etag");
    const sourceName = this.#ctx.state.getCursor("source.name");
    const metadata = {
      source_etag: etag,
      source_name: sourceName,
      table: this.#layout.display,
      pipeline: this.#ctx.pipeline,
      run_id: this.#ctx.runId,
      created: c.created,
      updated: c.updated,
      unchanged: c.unchanged,
      skipped: c.skipped,
      failed: c.failed,
    };
    await this.#query(
      `insert into ${qualifiedName(meta.table)}
  ("source_key", "source_etag", "rows_seen", "rows_loaded", "rows_skipped", "loaded_at", "metadata")
values ($1::text, $2::text, $3::text::int, $4::text::int, $5::text::int, $6::text::timestamptz,
  $7::text::jsonb)
on conflict ("source_key") do update set "source_etag" = excluded."source_etag",
  "rows_seen" = excluded."rows_seen", "rows_loaded" = excluded."rows_loaded",
  "rows_skipped" = excluded."rows_skipped", "loaded_at" = excluded."loaded_at",
  "metadata" = excluded."metadata"
-- The same file loaded again with nothing to write (a run killed after its commit,
-- resumed): the row keeps describing the load that wrote it.
where ${qualifiedName(meta.table)}."source_etag" is distinct from excluded."source_etag"
  or $8::text::boolean`,
      [
        meta.sourceKey,
        etag,
        String(c.seen),
        String(c.created + c.updated),
        String(c.unchanged + c.skipped),
        this.#ctx.clock.now().toString(),
        JSON.stringify(metadata),
        String(c.created + c.updated > 0),
      ],
    );
  }

  async #begin(): Promise<void> {
    if (this.#inTransaction) return;
    await this.#query(this.#plan ? "begin read only" : "begin");
    this.#inTransaction = true;
  }

  async #rollback(): Promise<void> {
    if (!this.#inTransaction || this.#conn === null) return;
    this.#inTransaction = false;
    // A closed connection: the server has rolled the transaction back.
    if (this.#watch.lost) return;
    try {
      await this.#watch.race(this.#conn.unsafe("rollback"), "connection closed");
    } catch {
      // The connection is gone: the server has rolled the transaction back.
    }
  }

  async #disconnect(): Promise<void> {
    const lost = this.#watch.lost;
    this.#conn?.release();
    this.#conn = null;
    await this.#sql.end({ timeout: lost ? 0 : 5 });
  }

  /**
   * Runs a statement on the run's reserved connection. Row errors are thrown
   * as they are (the caller isolates the row); others become a RemoteError.
   */
  async #query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
    try {
      if (this.#watch.lost) throw new Error("the connection was closed");
      this.#conn ??= await this.#sql.reserve();
      return await this.#watch.race(
        // Prepared once per connection when it has parameters: postgres.js
        // otherwise describes the statement first, a round trip per batch.
        // deno-lint-ignore no-explicit-any
        this.#conn.unsafe<T[]>(text, params as any[], { prepare: params.length > 0 }),
        "the connection was closed",
      );
    } catch (error) {
      if (isRowError(error)) throw error;
      throw new RemoteError(
        `Cannot load into "${this.#layout.display}": ${pgErrorMessage(error)}`,
        undefined,
        { cause: error },
      );
    }
  }
}

/** The stage definition. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "postgres",
  summary:
    "Upsert or insert records into a PostgreSQL (14 or newer) table (raw jsonb + typed columns); never deletes.",
  config: configSchema,
  async create(config, ctx) {
    const layout = buildLayout(config);
    const metaTable = config.importMeta ? parseTableName(config.importMeta.table) : null;
    // One connection (reserved for the run's transaction), never closed for idling.
    const watch = new ConnectionWatch();
    // It reads no array from the server (inspectTable sends its one as JSON).
    const sql = await openDatabase(config.url, {
      max: 1,
      idleTimeout: 0,
      onclose: watch.onclose,
      fetchTypes: false,
    });
    try {
      // The load statement splits its batch with string_to_table (PostgreSQL 14).
      requireServerVersion(sql, 14, `Cannot load into "${layout.display}"`);
      let table = await inspectTable(sql, layout.name);
      const plan = ctx.options.mode === "plan";
      if (!table.exists && !config.createTable) {
        throw new MissingError(`Cannot load into "${layout.display}": table does not exist`);
      }
      let metaExists = metaTable === null || (await inspectTable(sql, metaTable)).exists;
      if (!metaExists && !config.createTable) {
        throw new MissingError(
          `Cannot record freshness in "${config.importMeta!.table}": table does not exist`,
        );
      }
      if (!plan && config.createTable && (!table.exists || !metaExists)) {
        await sql.begin(async function createTables(tx) {
          if (!table.exists) { for (const text of createTableSql(layout)) await tx.unsafe(text); }
          if (!metaExists) {
            for (const text of createMetaSql(config.importMeta!.table)) await tx.unsafe(text);
          }
        });
        table = await inspectTable(sql, layout.name);
        metaExists = true;
      }
      if (table.exists) checkTable(layout, table);
      return new PostgresSink(sql, config, ctx, layout, table, watch);
    } catch (error) {
      await sql.end({ timeout: 1 });
      if (error instanceof TicketsyncError) throw error;
      throw new RemoteError(
        `Cannot load into "${layout.display}": ${pgErrorMessage(error)}`,
        undefined,
        { cause: error },
      );
    }
  },
});

/** Every configured column must exist and the key must be a unique constraint. */
function checkTable(layout: Layout, table: TableInfo): void {
  const missing = layout.columns.filter((c) => !table.columns.has(c.name)).map((c) =>
    `"${c.name}"`
  );
  if (missing.length) {
    throw new MissingError(
      `Cannot load into "${layout.display}": column${missing.length > 1 ? "s" : ""} ${
        missing.join(", ")
      } do${missing.length > 1 ? "" : "es"} not exist`,
    );
  }
  const key = [...layout.keys.map((k) => k.name)].sort().join(",");
  if (!table.uniqueKeys.some((cols) => [...cols].sort().join(",") === key)) {
    throw new MissingError(
      `Cannot load into "${layout.display}": no unique constraint on (${
        layout.keys.map((k) => k.quoted).join(", ")
      })`,
    );
  }
}
