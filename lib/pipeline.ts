/**
 * The pipeline runner: streams records from the reader through filters and
 * transforms into the sinks, commits each final result to the ledger as it
 * completes, and ends with one summary and an exit code. It knows stages only
 * through the contract in `stage.ts`.
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import type { LoadedConfig, StageEntry } from "./config.ts";
import { batches } from "./batch.ts";
import { errorMessage, ExitCode, TicketsyncError } from "./errors.ts";
import { hashJson, stableStringify } from "./hash.ts";
import { HttpPool } from "./http.ts";
import { KeySet } from "./key_set.ts";
import { acquireLock, type PipelineLock } from "./lock.ts";
import { keyOf, type KeySpec, keySpecOf } from "./record_key.ts";
import { Progress } from "./progress.ts";
import { buildReport, formatSummary, RunCounters, type StageCounter } from "./report.ts";
import { Redactor } from "./secret.ts";
import type {
  Clock,
  Item,
  ProcessRuntime,
  ReadRuntime,
  ReportRuntime,
  RunOptions,
  RunReport,
  StageContext,
  SyncResult,
  SyncRuntime,
} from "./stage.ts";
import { type RecordCommit, StateStore } from "./state.ts";

/** How to run a loaded config. */
export interface RunInput {
  config: LoadedConfig;
  mode: "run" | "plan";
  /** Ignore content hashes and rewrite every record. */
  full?: boolean;
  /** Read at most this many records. */
  limit?: number;
  /** Only records with open dead letters (by key or origin). */
  replay?: boolean;
  /** Draw a live progress bar. */
  progressBar?: boolean;
  clock?: Clock;
  /** Aborting it stops the run gracefully (main wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /** Working directory relative config paths resolve against. */
  cwd?: string;
  /** `fetch` for the HTTP pool (tests). */
  fetch?: typeof fetch;
  /** Receives every final result (plan output). */
  onResult?: (result: SyncResult) => void;
  /** The command line, stored with the run. */
  command?: string;
}

/** Commits are grouped into one ledger transaction per this many results, or per second. */
const COMMIT_BATCH = 500;
const COMMIT_INTERVAL_MS = 1000;
/**
 * Failures after a stop was asked for that are logged one by one; the rest are
 * counted in one line. A sink that cannot finish (an export not written) fails
 * every record it holds, and a line each would hold up the stop and flood the
 * journal.
 */
const STOPPED_FAILURES_LOGGED = 5;
/** Records whose ledger state is read in one query. */
const LOOKUP_BATCH = 100;

/** A run id that sorts by time: `20261123T152001Z-3fa9c01e`. */
export function newRunId(now: Temporal.Instant): string {
  const stamp = now.toString({ smallestUnit: "second" }).replace(/[-:]/g, "");
  // 8 hex digits: an incremental feed may start many runs in one second.
  return `${stamp}-${crypto.randomUUID().slice(0, 8)}`;
}

const systemClock: Clock = { now: () => Temporal.Now.instant() };

/** Runs (or plans) a pipeline and returns its report; never throws for run failures. */
export async function runPipeline(input: RunInput): Promise<RunReport> {
  const { config } = input;
  const clock = input.clock ?? systemClock;
  const log = getLogger(["ticketsync"]);
  const redactor = new Redactor();
  redactor.add(config.secrets);
  const started = clock.now();
  const startedMs = performance.now();
  const runId = newRunId(started);
  const counters = new RunCounters();
  const options: RunOptions = {
    mode: input.mode,
    full: input.full ?? false,
    partial: input.limit !== undefined || input.replay === true,
  };

  let lock: PipelineLock | undefined;
  let state: StateStore | undefined;
  let failure: unknown;
  const controller = new AbortController();
  const onExternalAbort = () => controller.abort(input.signal?.reason);
  if (input.signal?.aborted) onExternalAbort();
  else input.signal?.addEventListener("abort", onExternalAbort, { once: true });

  const created: { entry: StageEntry; runtime: unknown }[] = [];
  const closed = new Set<unknown>();
  let holdLedger = false;
  let reader: ReadRuntime | undefined;
  const sinks: SyncRuntime[] = [];
  const reports: ReportRuntime[] = [];
  let completed = false;
  let moreInput = false;

  try {
    if (input.mode === "run") lock = acquireLock(`${config.statePath}.lock`, config.name);
    state = StateStore.open(config.statePath, { readOnly: input.mode === "plan" });
    if (input.mode === "run") {
      const abandoned = state.markAbandonedRuns();
      if (abandoned > 0) {
        log.warn("Resuming after {abandoned} run(s) that did not finish (killed or crashed)", {
          abandoned,
        });
      }
      state.startRun(runId, input.command ?? "run");
    }
    const store = state;
    const http = new HttpPool({
      log: getLogger(["ticketsync", "http"]),
      signal: controller.signal,
      fetch: input.fetch,
    });

    // Create every stage before reading anything: config mistakes found in
    // `create` stop the run while nothing is touched. Sinks come last (in
    // their order), because a sink's create may prepare its destination
    // (e.g. create a table); every other stage has accepted its config by then.
    const isSink = (entry: StageEntry) => entry.definition.kind.startsWith("sync-");
    const creationOrder = [
      ...config.stages.filter((entry) => !isSink(entry)),
      ...config.stages.filter(isSink),
    ];
    let idle: boolean | undefined;
    for (const entry of creationOrder) {
      if (isSink(entry)) {
        // Asked once, before the first sink: with nothing to read (an
        // unchanged snapshot) no destination is opened at all.
        if (idle === undefined) {
          idle = reader?.hasInput ? !(await reader.hasInput()) : false;
          if (idle) log.info("Nothing new to read: no destination is opened this run");
        }
        if (idle) continue;
      }
      const ctx = stageContext(
        entry,
        store,
        http,
        clock,
        controller.signal,
        options,
        input,
        counters,
        runId,
        redactor,
      );
      const runtime = await entry.definition.create(entry.config, ctx);
      created.push({ entry, runtime });
      switch (entry.definition.kind) {
        case "read":
          reader = runtime as ReadRuntime;
          break;
        case "sync-tickets":
        case "sync-responses":
          sinks.push(runtime as SyncRuntime);
          break;
        case "report":
          reports.push(runtime as ReportRuntime);
          break;
      }
    }
    if (!reader) throw new Error("Cannot run: no read stage");

    log.info("{verb} {pipeline} ({runId}): {stages}", {
      verb: input.mode === "plan" ? "Planning" : input.replay ? "Replaying" : "Running",
      pipeline: config.name,
      runId,
      stages: config.stages.map((s) => s.use).join(" → "),
    });

    const progress = new Progress({
      verb: input.mode === "plan" ? "Planned" : "Imported",
      noun: config.noun,
      every: config.progressEvery,
      log: getLogger(["ticketsync", "progress"]),
      bar: input.progressBar ?? false,
    });

    // Counters in pipeline order, so the report lists the reader first.
    counters.stage(config.stages[0].id);
    let items: AsyncIterable<Item> = readItems(
      reader,
      config.stages[0],
      counters,
      controller.signal,
      input.limit,
    );
    // One counting wrapper between two stages: what one yields, the next takes in.
    const chain = created.filter(({ entry }) =>
      entry.definition.kind === "filter" || entry.definition.kind === "transform"
    );
    const stageCounter = (index: number) =>
      chain[index] ? counters.stage(chain[index].entry.id) : undefined;
    if (chain.length > 0) items = counted(items, { into: stageCounter(0) });
    chain.forEach(({ runtime }, index) => {
      const process = (runtime as ProcessRuntime).process(items);
      items = counted(process, { from: stageCounter(index), into: stageCounter(index + 1) });
    });
    const selection = input.replay ? replaySelection(store) : null;
    store.replaying = input.replay === true;
    if (selection && selection.keys.size === 0 && selection.origins.size === 0) {
      log.info("Nothing to replay: no open dead letters");
    }
    items = assignKeys(
      items,
      config.key,
      counters,
      store,
      runId,
      input.mode,
      selection,
      log,
      redactor,
    );
    let results: AsyncIterable<SyncResult> = toResults(items, store);
    for (const sink of sinks) results = sink.sync(results);

    const pending: RecordCommit[] = [];
    // A sink that commits only at close() makes the ledger hold its writes in
    // one transaction until then (see StateStore.holdWrites).
    holdLedger = input.mode === "run" && sinks.some((sink) => sink.commitsAtClose === true);
    if (holdLedger) store.holdWrites();
    let lastFlush = performance.now();
    let stoppedFailures = 0;
    const flush = () => {
      if (input.mode === "run") store.commitResults(pending);
      pending.length = 0;
      lastFlush = performance.now();
    };
    progress.setTotal(reader.expected?.(), reader.estimated);
    try {
      for await (const result of results) {
        if (result.outcome === null) {
          result.outcome = "failed";
          result.reason = "no sink handled the record";
        }
        counters.outcomes[result.outcome]++;
        const unlisted = result.outcome === "failed" && controller.signal.aborted &&
          ++stoppedFailures > STOPPED_FAILURES_LOGGED;
        if (result.outcome === "failed" && !unlisted) {
          log.warn("Failed {key} ({origin}): {reason}", {
            key: result.item.key,
            origin: `${result.item.origin.source} ${result.item.origin.position}`,
            reason: redactor.redact(result.reason ?? "failed"),
          });
        }
        for (const report of reports) report.observe?.(result);
        input.onResult?.(result);
        pending.push({
          key: result.item.key,
          hash: result.hash,
          outcome: result.outcome,
          remoteId: result.remoteId,
          error: result.reason ? redactor.redact(result.reason) : undefined,
          runId,
          origin: result.item.origin,
        });
        const due = pending.length >= COMMIT_BATCH ||
          performance.now() - lastFlush > COMMIT_INTERVAL_MS;
        if (due) flush();
        progress.setTotal(reader.expected?.(), reader.estimated);
        progress.tick();
      }
    } finally {
      flush();
      progress.finish();
      if (stoppedFailures > STOPPED_FAILURES_LOGGED) {
        log.warn(
          "{count} more records failed after the stop, not listed one by one (the ledger holds each with its reason; the next run retries them)",
          { count: stoppedFailures - STOPPED_FAILURES_LOGGED },
        );
      }
    }
    completed = !controller.signal.aborted;
    if (completed) {
      const imbalance = counters.checkBalance();
      if (imbalance) throw new Error(`Accounting check failed: ${imbalance}`);
      // Order matters for a kill at any point: destinations commit first, then
      // the ledger, and only then may the reader move its file or save its ETag.
      await closeAll(created, "close", closed);
      if (holdLedger) store.commitHeld();
      // A file with failed or invalid records stays where it is, so the dead
      // letters keep pointing at it and the next run (or a replay) retries them.
      // Nor does a run that read only part of it (--limit, replay): what it did
      // not read must still be there for the next run.
      const clean = counters.outcomes.failed === 0 && counters.total(counters.deadLettered) === 0;
      if (input.mode === "run" && clean && !options.partial) {
        await reader.commit?.();
        moreInput = reader.moreInput?.() ?? false;
      } else if (input.mode === "run" && reader.commit) {
        log.warn(
          options.partial
            ? "The input is left in place: this run read only part of it ({why})"
            : "The input is left in place: some records failed or were dead-lettered",
          { why: input.replay ? "replay" : "--limit" },
        );
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    input.signal?.removeEventListener("abort", onExternalAbort);
    try {
      await closeAll(created, failure || !completed ? "abort" : "close", closed);
    } catch (error) {
      failure ??= error;
    }
    if (holdLedger && (failure || !completed)) {
      state?.rollbackHeld();
      log.warn(
        "Rolled back: the destination commits a run as a whole, so nothing of this run was kept",
      );
    }
  }

  // A stage that rethrew the stop itself (a wait cut short by SIGTERM) was interrupted, not failing.
  if (controller.signal.aborted && failure !== undefined && failure === controller.signal.reason) {
    failure = undefined;
  }
  const exitCode = exitCodeFor(failure, counters, controller.signal);
  const report = buildReport(counters, {
    pipeline: config.name,
    runId,
    mode: input.mode,
    startedAt: started.toString(),
    finishedAt: clock.now().toString(),
    durationMs: Math.round(performance.now() - startedMs),
    exitCode,
    deadLetterStore: config.statePath,
    error: failure
      ? redactor.redact(errorMessage(failure))
      : controller.signal.aborted
      ? `interrupted (${
        String(controller.signal.reason ?? "signal")
      }); state is saved, the next run resumes`
      : undefined,
    ...(moreInput ? { moreInput } : {}),
  });
  if (failure && !(failure instanceof TicketsyncError)) {
    log.error("Unexpected error: {stack}", {
      stack: redactor.redact((failure as Error)?.stack ?? String(failure)),
    });
  }
  for (const reporter of reports) {
    try {
      await reporter.report(report);
    } catch (error) {
      log.error("Report failed: {error}", { error: redactor.redact(errorMessage(error)) });
    }
  }
  const openDeadLetters = state?.countOpenDeadLetters() ?? 0;
  for (
    const line of formatSummary(report, config.noun, input.mode === "run" ? openDeadLetters : 0)
  ) {
    // Dynamic text goes in as a property: LogTape reads `{...}` in a message as a placeholder.
    if (exitCode === ExitCode.Ok) log.info("{line}", { line });
    else log.warn("{line}", { line });
  }
  if (input.mode === "run" && state) {
    state.finishRun(
      runId,
      failure ? "failed" : controller.signal.aborted ? "interrupted" : "finished",
      exitCode,
      report,
    );
  }
  state?.close();
  lock?.release();
  return report;
}

/**
 * Closes (or aborts) every created stage not closed yet, last first. Every
 * stage gets its turn; the first error is re-thrown after all of them.
 */
async function closeAll(
  created: { runtime: unknown }[],
  how: "close" | "abort",
  closed: Set<unknown>,
): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const { runtime } of created.toReversed()) {
    if (closed.has(runtime)) continue;
    closed.add(runtime);
    const closable = runtime as { close?(): unknown; abort?(): unknown };
    try {
      if (how === "abort" && closable.abort) await closable.abort();
      else await closable.close?.();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}

function exitCodeFor(failure: unknown, counters: RunCounters, signal: AbortSignal): number {
  if (failure instanceof TicketsyncError) return failure.exitCode;
  if (failure) return ExitCode.Remote;
  if (signal.aborted) return signal.reason === "SIGINT" ? 130 : 143;
  const dead = counters.total(counters.deadLettered);
  return dead > 0 || counters.outcomes.failed > 0 ? ExitCode.Partial : ExitCode.Ok;
}

function stageContext(
  entry: StageEntry,
  store: StateStore,
  http: HttpPool,
  clock: Clock,
  signal: AbortSignal,
  options: RunOptions,
  input: RunInput,
  counters: RunCounters,
  runId: string,
  redactor: Redactor,
): StageContext {
  const log = getLogger(["ticketsync", entry.id]);
  // A reader's records have no key yet; a later stage's dead letters carry theirs.
  const keySpec = entry.definition.kind === "read" ? null : keySpecOf(input.config.key);
  return {
    pipeline: input.config.name,
    runId,
    stageId: entry.id,
    log,
    state: store,
    http,
    clock,
    signal,
    options,
    cwd: input.cwd ?? Deno.cwd(),
    drop(_item, reason) {
      counters.drop(reason);
    },
    deadLetter(item, reason) {
      // A record a reader could not even parse was still read: count it, or the books would not balance.
      if (entry.definition.kind === "read") counters.read++;
      counters.deadLetter(reason);
      log.warn("Dead-lettered {source} {position}: {reason}", {
        source: item.origin.source,
        position: item.origin.position,
        reason: redactor.redact(reason),
      });
      if (input.mode === "run") {
        // With the key the record had when it failed (a filter or transform
        // found it invalid), so that another record taking its place in the
        // input does not resolve it (see StateStore's #resolve).
        const key = keySpec === null ? null : recordKey(keySpec, item.data);
        store.addDeadLetter(item, entry.id, redactor.redact(reason), runId, key);
      }
    },
    redact: (text) => redactor.redact(text),
  };
}

async function* readItems(
  reader: ReadRuntime,
  entry: StageEntry,
  counters: RunCounters,
  signal: AbortSignal,
  limit: number | undefined,
): AsyncGenerator<Item> {
  const counter = counters.stage(entry.id);
  if (limit !== undefined && limit <= 0) return;
  for await (const item of reader.read()) {
    if (signal.aborted) return;
    counters.read++;
    counter.out++;
    yield item;
    if (limit !== undefined && counters.read >= limit) return;
  }
}

/**
 * Counts the items passing from one stage to the next: `out` of `from`, `in`
 * of `into` (either may be absent at the ends of the chain).
 *
 * A plain async iterator rather than an async generator: it sits between
 * every two stages, and a generator costs extra promise turns per item.
 */
function counted(
  source: AsyncIterable<Item>,
  { from, into }: { from?: StageCounter; into?: StageCounter },
): AsyncIterable<Item> {
  const count = (result: IteratorResult<Item>): IteratorResult<Item> => {
    if (!result.done) {
      if (from) from.out++;
      if (into) into.in++;
    }
    return result;
  };
  return {
    [Symbol.asyncIterator](): AsyncIterator<Item> {
      const iterator = source[Symbol.asyncIterator]();
      return {
        next: () => iterator.next().then(count),
        // A consumer that stops early stops the source too (closing its file).
        return: (value?: unknown) =>
          iterator.return
            ? iterator.return(value)
            : Promise.resolve({ done: true, value } as IteratorResult<Item>),
      };
    },
  };
}

interface ReplaySelection {
  keys: Set<string>;
  origins: Set<string>;
}

function replaySelection(store: StateStore): ReplaySelection {
  const keys = new Set<string>();
  const origins = new Set<string>();
  for (const letter of store.listDeadLetters()) {
    keys.add(letter.key);
    origins.add(`${letter.source}\u0000${letter.position}`);
  }
  return { keys, origins };
}

/** A record's key, or null when it has no usable one. */
function recordKey(keySpec: KeySpec, data: unknown): string | null {
  const found = keyOf(keySpec, data);
  return "key" in found ? found.key : null;
}

/** Sets each item's final key from the pipeline's `key`; a record without one is dead-lettered. */
async function* assignKeys(
  items: AsyncIterable<Item>,
  keySpec: string,
  counters: RunCounters,
  store: StateStore,
  runId: string,
  mode: "run" | "plan",
  selection: ReplaySelection | null,
  log: Logger,
  redactor: Redactor,
): AsyncGenerator<Item> {
  const spec = keySpecOf(keySpec);
  const seen = new KeySet();
  const reject = (item: Item, reason: string, counted = reason) => {
    counters.deadLetter(counted);
    log.warn("Dead-lettered {source} {position}: {reason}", {
      source: item.origin.source,
      position: item.origin.position,
      reason: redactor.redact(reason),
    });
    if (mode === "run") store.addDeadLetter(item, "key", reason, runId);
  };
  for await (const item of items) {
    const found = keyOf(spec, item.data);
    const key = "key" in found ? found.key : "";
    if (
      selection && !selection.keys.has(key) && !selection.keys.has(item.key) &&
      !selection.origins.has(`${item.origin.source}\u0000${item.origin.position}`)
    ) {
      counters.drop("not selected for replay");
      continue;
    }
    if ("reason" in found) {
      reject(item, found.reason);
      continue;
    }
    if (!seen.add(key)) {
      const reason = `duplicate key ${
        JSON.stringify(key)
      } in this input: the first occurrence is synced`;
      reject(
        { ...item, key: `${key}@${item.origin.source}#${item.origin.position}` },
        reason,
        reason.replace(/"[^"]*"/, "…"),
      );
      continue;
    }
    yield { ...item, key };
  }
}

async function* toResults(
  items: AsyncIterable<Item>,
  store: StateStore,
): AsyncGenerator<SyncResult> {
  // The ledger is asked once per batch, not once per record.
  for await (const batch of batches(items, LOOKUP_BATCH)) {
    const previous = store.getRecords(batch.map((item) => item.key));
    for (const item of batch) {
      const json = stableStringify(item.data);
      yield {
        item,
        hash: hashJson(json),
        json,
        previous: previous.get(item.key) ?? null,
        outcome: null,
      };
    }
  }
}
