/**
 * Test helpers for driving one stage the way the engine does: parse a raw
 * config through the stage's real schema, `create` it with a context whose
 * drops, dead letters, cursors and caches are recorded for assertions.
 * @module
 */
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { z } from "zod";
import { parseConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { HttpPool } from "../lib/http.ts";
import { Registry } from "../lib/registry.ts";
import { renderMessage } from "../lib/log.ts";
import { contentHash } from "../lib/hash.ts";
import {
  type Clock,
  defineStage,
  type Item,
  type Origin,
  type ReadRuntime,
  type RecordState,
  type RunOptions,
  type RuntimeOf,
  type StageContext,
  type StageDefinition,
  type StageKind,
  stageRef,
  type StageState,
  type SyncResult,
} from "../lib/stage.ts";

/** A dropped or dead-lettered item as the harness saw it. */
export interface Recorded {
  item: Item;
  reason: string;
}

/** In-memory {@linkcode StageState} for unit tests. */
export class MemoryState implements StageState {
  readonly cursors = new Map<string, string>();
  readonly cache = new Map<string, unknown>();
  getCursor(name: string): string | null {
    return this.cursors.get(name) ?? null;
  }
  setCursor(name: string, value: string): void {
    this.cursors.set(name, value);
  }
  cacheGet(namespace: string, key: string): unknown {
    return this.cache.get(`${namespace}\u0000${key}`);
  }
  cachePut(namespace: string, key: string, value: unknown): void {
    this.cache.set(`${namespace}\u0000${key}`, value);
  }
}

/** A clock that stands still until moved. */
export class FixedClock implements Clock {
  constructor(public instant: Temporal.Instant = Temporal.Instant.from("2026-01-01T00:00:00Z")) {}
  now(): Temporal.Instant {
    return this.instant;
  }
}

/** A context plus the records of what the stage did through it. */
export interface TestContext {
  ctx: StageContext;
  drops: Recorded[];
  deadLetters: Recorded[];
  state: MemoryState;
  controller: AbortController;
}

/** Options for {@linkcode testContext}. */
export interface TestContextOptions {
  options?: Partial<RunOptions>;
  clock?: Clock;
  state?: MemoryState;
  http?: HttpPool;
  cwd?: string;
}

/** A {@linkcode StageContext} whose effects are recorded in arrays. */
export function testContext(options: TestContextOptions = {}): TestContext {
  const drops: Recorded[] = [];
  const deadLetters: Recorded[] = [];
  const state = options.state ?? new MemoryState();
  const controller = new AbortController();
  const log = getLogger(["ticketsync", "test"]);
  const ctx: StageContext = {
    pipeline: "test",
    runId: "test-run",
    stageId: "stages[0] test",
    log,
    state,
    http: options.http ?? new HttpPool({ log, signal: controller.signal }),
    clock: options.clock ?? new FixedClock(),
    signal: controller.signal,
    options: { mode: "run", full: false, partial: false, ...options.options },
    cwd: options.cwd ?? Deno.cwd(),
    drop: (item, reason) => drops.push({ item, reason }),
    deadLetter: (item, reason) => deadLetters.push({ item, reason }),
    redact: (text) => text,
  };
  return { ctx, drops, deadLetters, state, controller };
}

/**
 * Parses `rawConfig` through the stage's schema (as the config loader does),
 * then creates the runtime.
 */
export async function createStage<K extends StageKind>(
  // deno-lint-ignore no-explicit-any
  definition: StageDefinition<K, any>,
  rawConfig: Record<string, unknown>,
  ctx: StageContext,
): Promise<RuntimeOf[K]> {
  const config = definition.config.parse(rawConfig);
  return await definition.create(config, ctx);
}

/** Stand-ins that complete a pipeline around the stage under test in {@linkcode configProblems}. */
const standIns = {
  read: defineStage({
    kind: "read",
    name: "stand-in",
    summary: "Reads nothing.",
    config: z.object({}).strict(),
    create: () => ({ read: async function* () {} }),
  }),
  sink: defineStage({
    kind: "sync-tickets",
    name: "stand-in",
    summary: "Writes nothing.",
    config: z.object({}).strict(),
    create: () => ({ sync: (results) => results }),
  }),
};

/**
 * The problems config validation (`validate`, and `run` before it touches
 * anything) reports for `rawConfig` as an entry of a minimal pipeline: the
 * stage at `stages[0]` if it is a reader, `stages[1]` if it is a filter,
 * transform or sync-tickets stage, `stages[2]` otherwise. Empty when valid.
 */
export function configProblems(
  // deno-lint-ignore no-explicit-any
  definition: StageDefinition<StageKind, any>,
  rawConfig: Record<string, unknown>,
): string[] {
  const entry = { use: stageRef(definition), ...rawConfig };
  const read = { use: stageRef(standIns.read) };
  const sink = { use: stageRef(standIns.sink) };
  const stages = definition.kind === "read"
    ? [entry, sink]
    : definition.kind === "sync-tickets"
    ? [read, entry]
    : definition.kind === "filter" || definition.kind === "transform"
    ? [read, entry, sink]
    : [read, sink, entry];
  const registry = new Registry([
    definition,
    ...(definition.kind === "read" ? [] : [standIns.read]),
    ...(definition.kind === "sync-tickets" ? [] : [standIns.sink]),
  ]);
  try {
    parseConfig(JSON.stringify({ name: "t", key: "id", stages }), "p.json", { registry, env: {} });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

/** Collects an async iterable into an array. */
export async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of source) out.push(value);
  return out;
}

/** An async iterable over `values`. */
export async function* fromArray<T>(values: Iterable<T>): AsyncGenerator<T> {
  for (const value of values) yield value;
}

/** An item with a made-up origin. */
export function item(
  key: string,
  data: Record<string, unknown>,
  position = "line 1",
): Item {
  return { key, data, origin: { source: "test.json", position } };
}

/** A fresh result (no outcome yet) for driving sinks, with optional ledger state. */
export function result(value: Item, previous: Partial<RecordState> | null = null): SyncResult {
  return {
    item: value,
    hash: contentHash(value.data),
    previous: previous === null ? null : {
      key: value.key,
      hash: null,
      remoteId: null,
      lastOutcome: null,
      attempts: 0,
      lastError: null,
      syncedAt: null,
      ...previous,
    },
    outcome: null,
  };
}

/** Runs `run` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(
  prefix: string,
  run: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Creates a read stage in `cwd` and reads it to the end (or to the error it throws). */
export async function readAll(
  // deno-lint-ignore no-explicit-any
  definition: StageDefinition<"read", any>,
  config: Record<string, unknown>,
  cwd: string,
): Promise<{ items: Item[]; error?: Error; deadLetters: Recorded[]; runtime: ReadRuntime }> {
  const test = testContext({ cwd });
  const runtime = await createStage(definition, config, test.ctx);
  const items: Item[] = [];
  let error: Error | undefined;
  try {
    for await (const item of runtime.read()) items.push(item);
  } catch (caught) {
    error = caught as Error;
  }
  return { items, error, deadLetters: test.deadLetters, runtime };
}

/** A byte stream of `text` cut into chunks of `size` bytes. */
export function streamOf(text: string, size = 65536): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
  return ReadableStream.from(chunks);
}

/** A stream of `parts` (text, or raw bytes such as invalid UTF-8), `size` bytes a chunk. */
export function bytesOf(parts: (string | number[])[], size = 65536): ReadableStream<Uint8Array> {
  const bytes = parts.flatMap((part) =>
    typeof part === "string" ? [...new TextEncoder().encode(part)] : part
  );
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    chunks.push(new Uint8Array(bytes.slice(i, i + size)));
  }
  return ReadableStream.from(chunks);
}

/** A record a parser could not turn into an item, as its `onInvalid` received it. */
export interface InvalidRecord {
  origin: Origin;
  reason: string;
  raw: string;
}

/** What a parser yielded and reported, and the error that stopped it, if one did. */
export interface ParseOutcome {
  items: Item[];
  invalid: InvalidRecord[];
  error?: Error;
}

/** Runs a parser to its end, collecting its items, its invalid records and its error. */
export async function parseAll(
  parse: (onInvalid: (origin: Origin, reason: string, raw: string) => void) => AsyncIterable<Item>,
): Promise<ParseOutcome> {
  const items: Item[] = [];
  const invalid: InvalidRecord[] = [];
  try {
    for await (
      const item of parse((origin, reason, raw) => invalid.push({ origin, reason, raw }))
    ) {
      items.push(item);
    }
  } catch (error) {
    return { items, invalid, error: error as Error };
  }
  return { items, invalid };
}

/** Captures the rendered `ticketsync` log lines while `fn` runs. */
export async function withLogs(fn: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { capture: (record: LogRecord) => lines.push(renderMessage(record)) },
    loggers: [
      { category: ["ticketsync"], sinks: ["capture"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  try {
    await fn(lines);
  } finally {
    await reset();
  }
}

/** What {@linkcode watchWhile} saw. */
export interface Watch {
  /** How many times it looked. */
  looks: number;
  /** The distinct states the looks returned, in the order first seen. */
  states: string[];
  /** The first look that threw (its message), or null. */
  problem: string | null;
}

/**
 * Calls `look` every `intervalMs` until the returned function is called,
 * which resolves with what was seen; stops early at the first look that
 * throws. For watching files while runs are killed (a look asserts a rule
 * and names the state it found).
 */
export function watchWhile(look: () => Promise<string>, intervalMs: number): () => Promise<Watch> {
  const watched: Watch = { looks: 0, states: [], problem: null };
  let watching = true;
  const loop = (async () => {
    while (watching && watched.problem === null) {
      watched.looks++;
      try {
        const state = await look();
        if (!watched.states.includes(state)) watched.states.push(state);
      } catch (error) {
        watched.problem = error instanceof Error ? error.message : String(error);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return async () => {
    watching = false;
    await loop;
    return watched;
  };
}
