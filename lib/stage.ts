/**
 * The stage contract: what a stage module exports and what the engine gives it.
 *
 * A stage is a function of its options (as Lume's plugins are): `create(config,
 * ctx)` returns the runnable part. Its zod schema is the single source of
 * validation, docs and JSON Schema. The engine never names a stage; the
 * registry (`stages/mod.ts`) is the one list of them.
 * @module
 */
import type { z } from "zod";
import type { Logger } from "@logtape/logtape";
import type { HttpPool } from "./http.ts";

/** The six kinds of stage, in pipeline order. */
export const STAGE_KINDS = [
  "read",
  "filter",
  "transform",
  "sync-tickets",
  "sync-responses",
  "report",
] as const;

/** One of {@linkcode STAGE_KINDS}. */
export type StageKind = typeof STAGE_KINDS[number];

/** Where a record came from, so every message can point at it. */
export interface Origin {
  /** File path, object key or URL the record was read from. */
  source: string;
  /** Human position inside the source: `line 12`, `page 3, index 7`, `row 40`. */
  position: string;
}

/** One record flowing through the pipeline. */
export interface Item {
  /**
   * The record's identity at the destination. Readers set a provisional key
   * (`source#position`); the engine sets the final one from the pipeline's
   * `key` before the sinks.
   */
  key: string;
  /** The record's fields. Transforms return new objects rather than mutating. */
  data: Record<string, unknown>;
  /** Where the record came from. */
  origin: Origin;
}

/** What a sink did with one record. */
export type Outcome = "created" | "updated" | "unchanged" | "skipped" | "failed";

/** All outcomes, in report order. */
export const OUTCOMES: readonly Outcome[] = [
  "created",
  "updated",
  "unchanged",
  "skipped",
  "failed",
];

/** One field that differs between the destination and the record (for `plan`). */
export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
}

/** The ledger's memory of one record from earlier runs. */
export interface RecordState {
  key: string;
  hash: string | null;
  remoteId: string | null;
  lastOutcome: Outcome | null;
  attempts: number;
  lastError: string | null;
  syncedAt: string | null;
}

/**
 * A record on its way through the sinks. The engine creates it with
 * `outcome: null`; each sink sets or refines the outcome. The engine commits it
 * to the ledger after the last sink.
 */
export interface SyncResult {
  item: Item;
  /** Content hash of `item.data` (stable key order). */
  hash: string;
  /**
   * The stable JSON of `item.data` that `hash` was computed from, when the
   * engine made it: a sink storing the whole record uses it instead of
   * serializing the record again.
   */
  json?: string;
  /** The ledger's state for this key from earlier runs, if any. */
  previous: RecordState | null;
  outcome: Outcome | null;
  /** Id at the destination (remote id, row id), kept in the ledger. */
  remoteId?: string;
  /** Why the record failed or was skipped. */
  reason?: string;
  /** In plan mode: the fields an update would change. */
  changes?: FieldChange[];
}

/** Options of the run that stages must honour. */
export interface RunOptions {
  /** `run` writes; `plan` only reads and reports what it would do. */
  mode: "run" | "plan";
  /** Ignore content hashes and rewrite every record. */
  full: boolean;
  /**
   * The run handles only part of its input (`--limit`, or a replay of the
   * dead letters): a stage that writes a whole input's worth (a file export)
   * keeps what it did not see, and the reader does not commit its input.
   */
  partial: boolean;
}

/** A clock stages read instead of `Date.now()`, so tests can pin time. */
export interface Clock {
  now(): Temporal.Instant;
}

/** The slice of the state ledger stages may use. */
export interface StageState {
  /** A named cursor of this pipeline (ETag, last resolved time, processed events). */
  getCursor(name: string): string | null;
  /** Writes a cursor at once (it survives a kill right after). */
  setCursor(name: string, value: string): void;
  /** A cached value (geocode results and the like), or `undefined`. */
  cacheGet(namespace: string, key: string): unknown;
  /** Stores a cached value at once. */
  cachePut(namespace: string, key: string, value: unknown): void;
  /**
   * Resolves the open dead letters read from `source` (a file a newer full
   * snapshot has superseded); returns how many.
   */
  resolveDeadLetters?(source: string): number;
}

/** Everything the engine gives a stage. A stage never reads `Deno.env` or argv. */
export interface StageContext {
  /** The pipeline's name (from config). */
  pipeline: string;
  /** This run's id. */
  runId: string;
  /** `stages[2] transform.map`: how messages name this stage. */
  stageId: string;
  /** Logger with this stage's category. */
  log: Logger;
  /** Cursors and caches. */
  state: StageState;
  /** HTTP clients; clients for the same host share rate limit and concurrency. */
  http: HttpPool;
  clock: Clock;
  /** Aborted on SIGINT/SIGTERM: stop reading, finish what is in flight. */
  signal: AbortSignal;
  options: RunOptions;
  /** Directory relative paths in the config resolve against (the working directory). */
  cwd: string;
  /** Counts a record dropped on purpose, with its reason (the filter rule's name). */
  drop(item: Item, reason: string): void;
  /** Stores an invalid record in the dead-letter store with a plain reason. */
  deadLetter(item: Item, reason: string): void;
  /** Secret strings to redact from any output (config secrets are registered already). */
  redact(text: string): string;
}

/** A reader: streams records; never loads a whole file or API into memory. */
export interface ReadRuntime {
  read(): AsyncIterable<Item>;
  /**
   * Asked before the sinks are created: false when this run has nothing to
   * read (an unchanged snapshot), so no destination is opened for it.
   * `read()` is still called (and logs why it yields nothing).
   */
  hasInput?(): Promise<boolean>;
  /** Total records expected, when the source knows it (for progress percentages). */
  expected?(): number | undefined;
  /** True when `expected()` is an estimate (from bytes read) rather than a count. */
  readonly estimated?: boolean;
  /** Called after a run in which every record was handled (move file, save ETag). */
  commit?(): Promise<void>;
  /**
   * After `commit`: true when more input waits that this run left for the
   * next one (the next file of an incremental feed); `run` runs again.
   */
  moreInput?(): boolean;
  close?(): Promise<void> | void;
}

/** A filter or transform: items in, items out; drops and dead letters through ctx. */
export interface ProcessRuntime {
  process(items: AsyncIterable<Item>): AsyncIterable<Item>;
  close?(): Promise<void> | void;
}

/**
 * A sink: refines each result's outcome and passes every result on, in any
 * order. Results already `failed` or `skipped` pass through untouched.
 */
export interface SyncRuntime {
  sync(results: AsyncIterable<SyncResult>): AsyncIterable<SyncResult>;
  /**
   * True when the destination commits only in `close()` (one transaction per
   * run): the engine then holds ledger writes until `close()` succeeds, so the
   * ledger never claims a record the destination rolled back.
   */
  readonly commitsAtClose?: boolean;
  close?(): Promise<void> | void;
  /** Called instead of close() when the run failed: roll back what is not committed. */
  abort?(): Promise<void> | void;
}

/** Counters of a sync-responses sink: the children of the records it handled. */
export interface ChildStats {
  /** Parents whose children were looked at. */
  parents: number;
  /** Children seen in those parents. */
  children: number;
  created: number;
  updated: number;
  unchanged: number;
  /** Parents that failed because of a child. */
  failedParents: number;
}

/** A sync-responses sink that also reports its child counters. */
export interface ChildSyncRuntime extends SyncRuntime {
  stats(): ChildStats;
}

/** The finished run as report stages see it. */
export interface RunReport {
  pipeline: string;
  runId: string;
  mode: "run" | "plan";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  exitCode: number;
  /** Records the readers produced. */
  read: number;
  /** Dropped on purpose by filters, by reason. */
  filtered: Record<string, number>;
  /** Invalid records stored by filters/transforms, by reason. */
  deadLettered: Record<string, number>;
  /** Final outcome counts. */
  outcomes: Record<Outcome, number>;
  /** Per stage: records in and out. */
  stages: { id: string; in: number; out: number }[];
  /** Where dead letters are kept (state file). */
  deadLetterStore: string;
  /** The error that stopped the run, if one did. */
  error?: string;
  /** The reader left more input for another run (see `ReadRuntime.moreInput`). */
  moreInput?: boolean;
}

/** A report stage: sees every final result, then the finished run. */
export interface ReportRuntime {
  observe?(result: SyncResult): void;
  report(run: RunReport): Promise<void> | void;
}

/** Maps each kind to the runtime its `create` returns. */
export interface RuntimeOf {
  "read": ReadRuntime;
  "filter": ProcessRuntime;
  "transform": ProcessRuntime;
  "sync-tickets": SyncRuntime;
  "sync-responses": SyncRuntime;
  "report": ReportRuntime;
}

/** A stage module's one export. */
export interface StageDefinition<
  K extends StageKind = StageKind,
  // deno-lint-ignore no-explicit-any
  S extends z.ZodObject<any> = z.ZodObject<any>,
> {
  kind: K;
  /** Name within its kind; configs say `"use": "<kind>.<name>"`. */
  name: string;
  /** One line for docs and `help`. */
  summary: string;
  /** Strict zod object: validation, docs and JSON Schema. */
  config: S;
  create(config: z.output<S>, ctx: StageContext): RuntimeOf[K] | Promise<RuntimeOf[K]>;
}

/** Declares a stage; only gives the definition its types. */
export function defineStage<
  K extends StageKind,
  // deno-lint-ignore no-explicit-any
  S extends z.ZodObject<any>,
>(definition: StageDefinition<K, S>): StageDefinition<K, S> {
  return definition;
}

/** `"sync-tickets.http"`: how a config's `use` names a stage. */
export function stageRef(definition: Pick<StageDefinition, "kind" | "name">): string {
  return `${definition.kind}.${definition.name}`;
}
