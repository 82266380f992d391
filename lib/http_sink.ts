/**
 * What the HTTP sinks share (sync-tickets.http, sync-responses.http,
 * sync-tickets.webhook, and transform.envelope's templates): their client
 * options, URL/query/body templates, answer parsing, and the concurrency
 * helpers that make sure no write starts after a run-stopping error.
 * @module
 */
import { z } from "zod";
import { mapConcurrent } from "./concurrency.ts";
import { RecordError } from "./errors.ts";
import { stableStringify } from "./hash.ts";
import { excerpt, httpOptionsSchema, type HttpResponse } from "./http.ts";
import { getPath, renderJsonTemplate, renderTemplate, templateFields } from "./paths.ts";
import type { FieldChange, SyncResult } from "./stage.ts";

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
  return renderJsonTemplate(template, function renderText(text) {
    const whole = WHOLE.exec(text);
    return whole ? getPath(scope, whole[1].trim()) : renderTemplate(text, scope);
  });
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

/**
 * A sink's `sync()`: runs `handle` over the results with at most
 * `concurrency` in flight and yields what it returns (`null`: the record was
 * interrupted and is left for the next run). If upstream fails or the
 * consumer stops, `halt` is stopped so no write starts afterwards.
 */
export async function* syncConcurrently(
  results: AsyncIterable<SyncResult>,
  concurrency: number,
  handle: (result: SyncResult) => Promise<SyncResult | null>,
  halt: Halt,
): AsyncGenerator<SyncResult> {
  let finished = false;
  try {
    for await (const result of mapConcurrent(results, concurrency, handle)) {
      if (result !== null) yield result;
    }
    finished = true;
  } finally {
    if (!finished) halt.stop(new Error("the run stopped"));
  }
}
