/**
 * `sync-tickets.http`: create-or-update records against any REST backend,
 * configured rather than coded.
 *
 * Per record: nothing is sent when its content hash equals the last synced
 * one. With a remote id in the ledger, the record is updated directly (a 404
 * means the remote row was deleted: look it up again, then create). Otherwise
 * the record is looked up by its natural key, then created or updated. The
 * remote id read from the answers is kept in the ledger.
 *
 * A killed run never creates twice: a record whose create was sent but not
 * committed to the ledger is found by the next run's lookup, and every create
 * carries an `Idempotency-Key` derived from the pipeline, key and content hash
 * so a retried POST (dropped connection) is recognised by backends that honour it.
 *
 * Plan mode sends only lookups (GET) and reports created, updated (with the
 * fields that would change) or unchanged.
 * @module
 */
import { z } from "zod";
import { mapConcurrent } from "../../lib/concurrency.ts";
import { errorMessage, RecordError } from "../../lib/errors.ts";
import { contentHash, stableStringify } from "../../lib/hash.ts";
import { type HttpClientOptions, httpOptionsSchema, type HttpResponse } from "../../lib/http.ts";
import { isActionable, isUnchanged, mergeOutcome } from "../../lib/outcome.ts";
import { deletePath, getPath, renderTemplate, templateFields } from "../../lib/paths.ts";
import { defineStage, type FieldChange, type SyncResult } from "../../lib/stage.ts";

// ---- shared by the HTTP sinks (sync-responses.http imports these) ----

/** The shared HTTP client options, with the sinks' default concurrency. */
export const httpSinkOptions = {
  ...httpOptionsSchema.shape,
  // 16: a sync is bound by round trips, not bandwidth; 16 in flight keeps a
  // typical REST backend busy without flooding it (rateLimit caps it further).
  concurrency: z.number().int().positive().default(16).describe(
    "Records handled at once, and requests in flight to the same host (shared by every stage; the smallest wins).",
  ),
};

const pathTemplate = z.string().min(1).describe(
  'Path template, e.g. "/api/tickets/by-number/{ticket_number}"; {field} placeholders are URL-encoded values of the record ({$remoteId} and {$key} too).',
);
const queryTemplates = z.record(z.string(), z.string()).default({}).describe(
  'Query parameter templates, e.g. { "ticket_number": "{ticket_number}" }.',
);

/** A lookup: the answer is one object (404 = absent) or, with `list`, an array of matches. */
export const lookupSchema = z.object({
  path: pathTemplate,
  query: queryTemplates,
  list: z.string().optional().describe(
    'Where the array of matches is in the answer ("" = the body is the array). When omitted, the answer is the object itself and 404 means absent.',
  ),
}).strict();

/** A list request whose answer holds an array. */
export const listSchema = z.object({
  path: pathTemplate,
  query: queryTemplates,
  list: z.string().default("").describe(
    'Where the array is in the answer, e.g. "items" ("" = the body is the array).',
  ),
}).strict();

/** A write request: method, path template and optional body template. */
export function writeSchema<M extends readonly [string, ...string[]]>(
  methods: M,
  defaults: { method: M[number]; path?: string },
) {
  const path = z.string().min(1);
  return z.object({
    method: z.enum(methods).default(defaults.method as never).describe(
      `HTTP method: ${methods.join(" or ")}.`,
    ),
    path: (defaults.path === undefined ? path : path.default(defaults.path)).describe(
      "Path template; {field} placeholders are URL-encoded values of the record.",
    ),
    body: z.unknown().optional().describe(
      'Body template: a JSON value whose strings may hold {field} placeholders ("{field}" alone keeps the value\'s type; "{$data}" is the whole record). Omitted: the record itself.',
    ),
  }).strict();
}

/** Options for the shared HTTP client, picked from a sink's parsed config. */
export function clientOptions(config: {
  baseUrl?: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  retry: HttpClientOptions["retry"];
  rateLimit?: HttpClientOptions["rateLimit"];
  concurrency: number;
  maxWaitMs: number;
}): HttpClientOptions {
  return {
    baseUrl: config.baseUrl,
    headers: config.headers,
    timeoutMs: config.timeoutMs,
    retry: config.retry,
    rateLimit: config.rateLimit,
    concurrency: config.concurrency,
    maxWaitMs: config.maxWaitMs,
  };
}

/** A record problem found before any request was sent (a missing template field). */
export class TemplateError extends RecordError {}

/** Fills a path template; every placeholder must have a value. */
export function renderPath(template: string, scope: Record<string, unknown>): string {
  checkFields(template, scope);
  return renderTemplate(template, scope, encodeURIComponent);
}

/** Fills query templates; every placeholder must have a value. */
export function renderQuery(
  query: Record<string, string>,
  scope: Record<string, unknown>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, template] of Object.entries(query)) {
    checkFields(template, scope);
    out[name] = renderTemplate(template, scope);
  }
  return out;
}

function checkFields(template: string, scope: Record<string, unknown>): void {
  for (const field of templateFields(template)) {
    const value = getPath(scope, field);
    if (value === undefined || value === null || value === "") {
      throw new TemplateError(`Cannot fill "${template}": field "${field}" is missing`);
    }
  }
}

const WHOLE = /^\{([^{}]+)\}$/;

/**
 * Renders a body template against `scope`: a string that is one placeholder
 * keeps the value's type (a missing value leaves the key out), other strings
 * are filled as text, objects and arrays are rendered element by element.
 */
export function renderBody(template: unknown, scope: Record<string, unknown>): unknown {
  if (typeof template === "string") {
    const whole = WHOLE.exec(template);
    if (whole) return getPath(scope, whole[1].trim());
    return renderTemplate(template, scope);
  }
  if (Array.isArray(template)) {
    return template.map((element) => renderBody(element, scope) ?? null);
  }
  if (template !== null && typeof template === "object") {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(template)) {
      const rendered = renderBody(value, scope);
      if (rendered !== undefined) out[name] = rendered;
    }
    return out;
  }
  return template;
}

/**
 * The fields that differ between the remote object and the body to send:
 * `fields` (dotted paths), or every top-level field of the body.
 */
export function fieldChanges(
  remote: unknown,
  body: unknown,
  fields: readonly string[] | undefined,
  prefix = "",
): FieldChange[] {
  const paths = fields ??
    (body !== null && typeof body === "object" && !Array.isArray(body) ? Object.keys(body) : []);
  const changes: FieldChange[] = [];
  for (const path of paths) {
    const before = getPath(remote, path) ?? null;
    const after = getPath(body, path) ?? null;
    if (stableStringify(before) !== stableStringify(after)) {
      changes.push({ path: `${prefix}${path}`, before, after });
    }
  }
  return changes;
}

/** The id at `idPath` of a remote object, as a string; `undefined` when missing. */
export function remoteIdOf(object: unknown, idPath: string): string | undefined {
  const id = getPath(object, idPath);
  if (id === undefined || id === null || id === "") return undefined;
  return typeof id === "string" ? id : String(id);
}

/** The array at `list` in an answer ("" = the body). */
export function listOf(response: HttpResponse, list: string, what: string): unknown[] {
  const body = response.json();
  const found = list === "" ? body : getPath(body, list);
  if (!Array.isArray(found)) {
    throw new RecordError(
      `${what} answered ${response.status} without a list at "${list}": ${excerpt(response.text)}`,
      response.status,
    );
  }
  return found;
}

/** The JSON of a write's answer, or `undefined` when it has no JSON body. */
export function maybeJson(response: HttpResponse): unknown {
  if (response.text.trim() === "") return undefined;
  try {
    return JSON.parse(response.text);
  } catch {
    return undefined;
  }
}

/** A body excerpt for messages. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  if (line === "") return "(empty body)";
  return line.length <= max ? line : `${line.slice(0, max - 3)}...`;
}

/**
 * Stops a sink's work after a run-stopping error: aborts the sink's requests
 * in flight (they reject with the same error) so no write starts after it.
 */
export class Halt {
  readonly #controller = new AbortController();
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  /** Records a run-stopping error and aborts the requests in flight; returns it. */
  stop(error: unknown): unknown {
    if (!this.#controller.signal.aborted) this.#controller.abort(error);
    return this.#controller.signal.reason;
  }
  /** Throws the stopping error, if there was one (before starting a write). */
  check(): void {
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }
}

/**
 * Runs tasks with the same name one after another (two records that look up
 * the same remote row must not both create it); different names run freely.
 */
export class NamedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(name: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => release = resolve);
    const tail = before.then(() => mine);
    this.#tails.set(name, tail);
    await before;
    try {
      return await task();
    } finally {
      release();
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    }
  }
}

// ---- the sink ----

/** What a lookup found. */
interface Found {
  id: string;
  object: unknown;
}

/** The sink. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "http",
  summary:
    "Create or update each record through a REST API: lookup by natural key, POST, PUT or PATCH; remote ids kept.",
  config: z.object({
    ...httpSinkOptions,
    lookup: lookupSchema.describe(
      'How to find the remote record by its natural key: { "path": "/api/tickets/by-number/{ticket_number}" } (404 = absent) or { "path": "/api/tickets", "query": { "ticket_number": "{ticket_number}" }, "list": "items" } (empty list = absent; more than one match fails the record).',
    ),
    create: writeSchema(["POST", "PUT"], { method: "POST" }).describe(
      'How to create: { "method": "POST", "path": "/api/tickets" } and an optional body template.',
    ),
    update: writeSchema(["PUT", "PATCH"], { method: "PUT" }).describe(
      'How to update: { "method": "PUT", "path": "/api/tickets/{$remoteId}" } (PUT overwrites in full; PATCH sends the same body). The body defaults to the create body.',
    ),
    idPath: z.string().min(1).default("id").describe(
      "Dotted path of the remote id in lookup and create answers.",
    ),
    exclude: z.array(z.string().min(1)).default([]).describe(
      'Fields of the record left out of the default body, e.g. ["responses"] when sync-responses.http sends them.',
    ),
    compare: z.array(z.string().min(1)).optional().describe(
      "Fields compared for plan diffs (dotted paths); default: every top-level field of the body.",
    ),
    idempotencyHeader: z.string().min(1).nullable().default("Idempotency-Key").describe(
      "Header carrying a key derived from pipeline, record key and content hash on creates, so a retried POST does not create twice; null to send none.",
    ),
  }).strict(),
  create(config, ctx) {
    const client = ctx.http.client(clientOptions(config));
    const plan = ctx.options.mode === "plan";
    const halt = new Halt();
    const queue = new NamedQueue();

    function scopeOf(result: SyncResult, remoteId?: string): Record<string, unknown> {
      return { ...result.item.data, $key: result.item.key, $remoteId: remoteId };
    }

    function bodyOf(template: unknown, result: SyncResult, remoteId?: string): unknown {
      if (template === undefined) {
        if (config.exclude.length === 0) return result.item.data;
        const copy = structuredClone(result.item.data);
        for (const path of config.exclude) deletePath(copy, path);
        return copy;
      }
      const scope = scopeOf(result, remoteId);
      return renderBody(template, { ...scope, $data: result.item.data });
    }

    /** Finds the remote record by its natural key; `null` when absent. */
    async function lookup(result: SyncResult): Promise<Found | null> {
      const scope = scopeOf(result);
      const path = renderPath(config.lookup.path, scope);
      const query = renderQuery(config.lookup.query, scope);
      const listed = config.lookup.list !== undefined;
      const response = await client.request({
        method: "GET",
        path,
        query,
        accept: listed ? [] : [404],
        signal: halt.signal,
      });
      const what = `Lookup GET ${path}`;
      if (!listed) {
        if (response.status === 404) return null;
        const object = response.json();
        if (object === null) return null;
        return { id: requireId(object, what, response), object };
      }
      const matches = listOf(response, config.lookup.list!, what);
      if (matches.length === 0) return null;
      if (matches.length > 1) {
        const ids = matches.map((match) => `"${remoteIdOf(match, config.idPath) ?? "?"}"`);
        throw new RecordError(
          `${what} found ${matches.length} remote records for key "${result.item.key}": ids ${
            ids.join(", ")
          }; resolve the duplicates`,
        );
      }
      return { id: requireId(matches[0], what, response), object: matches[0] };
    }

    function requireId(object: unknown, what: string, response: HttpResponse): string {
      const id = remoteIdOf(object, config.idPath);
      if (id === undefined) {
        throw new RecordError(
          `${what} answered ${response.status} without an id at "${config.idPath}": ${
            excerpt(response.text)
          }`,
          response.status,
        );
      }
      return id;
    }

    async function create(result: SyncResult): Promise<string> {
      const path = renderPath(config.create.path, scopeOf(result));
      const json = bodyOf(config.create.body, result);
      const headers: Record<string, string> = {};
      if (config.idempotencyHeader !== null) {
        headers[config.idempotencyHeader] = contentHash([
          ctx.pipeline,
          result.item.key,
          result.hash,
        ]);
      }
      halt.check();
      const response = await client.request({
        method: config.create.method,
        path,
        json,
        headers,
        signal: halt.signal,
      });
      return requireId(maybeJson(response), `${config.create.method} ${path}`, response);
    }

    /** Updates the remote record; `false` when it answered 404 (deleted remotely). */
    async function update(result: SyncResult, remoteId: string): Promise<boolean> {
      const path = renderPath(config.update.path, scopeOf(result, remoteId));
      const json = bodyOf(config.update.body ?? config.create.body, result, remoteId);
      halt.check();
      const response = await client.request({
        method: config.update.method,
        path,
        json,
        accept: [404],
        signal: halt.signal,
      });
      return response.status !== 404;
    }

    async function lookupAndWrite(result: SyncResult): Promise<void> {
      const found = await lookup(result);
      if (found === null) {
        result.remoteId = await create(result);
        result.outcome = mergeOutcome(result.outcome, "created");
        return;
      }
      if (!await update(result, found.id)) {
        throw new RecordError(
          `${config.update.method} of remote id "${found.id}" answered 404 right after the lookup found it`,
          404,
        );
      }
      result.remoteId = found.id;
      result.outcome = mergeOutcome(result.outcome, "updated");
    }

    async function write(result: SyncResult): Promise<void> {
      const known = result.previous?.remoteId ?? undefined;
      if (known !== undefined) {
        if (await update(result, known)) {
          result.remoteId = known;
          result.outcome = mergeOutcome(result.outcome, "updated");
          return;
        }
        ctx.log.info("Remote id {remoteId} of {key} is gone (404): looking it up again", {
          remoteId: known,
          key: result.item.key,
        });
      }
      await lookupAndWrite(result);
    }

    async function planOne(result: SyncResult): Promise<void> {
      const found = await lookup(result);
      if (found === null) {
        result.outcome = mergeOutcome(result.outcome, "created");
        return;
      }
      result.remoteId = found.id;
      result.outcome = mergeOutcome(result.outcome, "updated");
      const body = bodyOf(config.update.body ?? config.create.body, result, found.id);
      result.changes = [
        ...(result.changes ?? []),
        ...fieldChanges(found.object, body, config.compare),
      ];
    }

    /** The name two records share when they would look up the same remote row. */
    function lookupName(result: SyncResult): string {
      try {
        const scope = scopeOf(result);
        return stableStringify([
          renderPath(config.lookup.path, scope),
          renderQuery(config.lookup.query, scope),
        ]);
      } catch {
        return `key:${result.item.key}`;
      }
    }

    /** The result with its outcome; `null` when the run was interrupted while it was in flight. */
    async function handle(result: SyncResult): Promise<SyncResult | null> {
      if (!isActionable(result)) return result;
      if (isUnchanged(result, ctx.options)) {
        result.outcome = mergeOutcome(result.outcome, "unchanged");
        if (result.previous?.remoteId) result.remoteId = result.previous.remoteId;
        return result;
      }
      try {
        await queue.run(lookupName(result), () => plan ? planOne(result) : write(result));
      } catch (error) {
        // Interrupted (SIGINT/SIGTERM): not committed, so the next run redoes it.
        if (ctx.signal.aborted && !halt.signal.aborted) return null;
        if (!(error instanceof RecordError) || halt.signal.aborted) throw halt.stop(error);
        result.outcome = "failed";
        result.reason = errorMessage(error);
      }
      return result;
    }

    return {
      async *sync(results) {
        let finished = false;
        try {
          for await (const result of mapConcurrent(results, config.concurrency, handle)) {
            if (result !== null) yield result;
          }
          finished = true;
        } finally {
          // Upstream failed or the consumer stopped: no write may start after that.
          if (!finished) halt.stop(new Error("the run stopped"));
        }
      },
    };
  },
});
