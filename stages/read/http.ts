/**
 * `read.http`: records from a paginated JSON API, configured rather than coded.
 *
 * Each page is one GET of `path` with `query` (and `jsonQuery`: a JSON
 * template sent as one JSON-encoded query parameter, as ServiceDesk Plus
 * wants `input_data={"list_info":{...}}`). Templates may hold `{$name}`
 * placeholders, filled per page: `{$start}` (item offset), `{$size}` (page
 * size), `{$page}` (page number), `{$cursor}`, and from `window` the date range
 * `{$from}`/`{$to}` (epoch ms) and `{$fromIso}`/`{$toIso}`; `{$now}` and
 * `{$nowIso}` are the run's start. A string that is exactly one placeholder
 * keeps the value's type (a number stays a number in the JSON).
 *
 * Pagination styles: `offset` (start index + page size, e.g. SDP
 * `start_index`/`row_count` or Vivenu `skip`/`top`), `page` (page number +
 * size), `cursor` (the next cursor read from each answer) and `none`. Reading
 * stops when `hasMore` (a path to a boolean) is not true, when a page is empty,
 * or, without `hasMore`, when a page is short or `total` records were read.
 *
 * Failures: 401/403 stop the run (exit 3, "Authentication failed"); 429, 5xx
 * and network errors are retried by the shared HTTP client (Retry-After
 * obeyed); a page still failing after its retries, or an answer without the
 * item array, stops the run (exit 3) after the records before it were synced.
 * A record that is not an object is dead-lettered with its page and index.
 *
 * No resume cursor is kept: pages are re-read from the start on the next run,
 * and the ledger makes re-reading idempotent (unchanged records are not sent).
 * @module
 */
import { z } from "zod";
import { describeValue } from "../../lib/config.ts";
import { zoneSchema } from "../../lib/datetime.ts";
import { RecordError, RemoteError } from "../../lib/errors.ts";
import {
  buildUrl,
  clientOptions,
  displayUrl,
  httpOptionsSchema,
  type HttpResponse,
} from "../../lib/http.ts";
import { getPath, renderJsonTemplate } from "../../lib/paths.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

const param = z.string().min(1);
const size = z.int().min(1).max(100_000).default(100).describe("Records asked for per page.");

const offsetSchema = z.object({
  style: z.literal("offset").describe("Start index + page size; the index grows by `size`."),
  startParam: param.optional().describe(
    'Query parameter of the start index, e.g. "skip"; omit when a template uses {$start}.',
  ),
  sizeParam: param.optional().describe(
    'Query parameter of the page size, e.g. "top"; omit when a template uses {$size}.',
  ),
  start: z.int().min(0).default(0).describe("Index of the first record: 0 or 1 (SDP)."),
  size,
}).strict();

const pageSchema = z.object({
  style: z.literal("page").describe("Page number + page size."),
  pageParam: param.optional().describe(
    'Query parameter of the page number, e.g. "page"; omit when a template uses {$page}.',
  ),
  sizeParam: param.optional().describe('Query parameter of the page size, e.g. "per_page".'),
  start: z.int().min(0).default(1).describe("Number of the first page: 1 or 0."),
  size,
}).strict();

const cursorSchema = z.object({
  style: z.literal("cursor").describe("Each answer names the cursor of the next page."),
  cursorParam: param.optional().describe(
    'Query parameter of the cursor (left out on the first page), e.g. "after"; omit when a template uses {$cursor}.',
  ),
  next: z.string().min(1).describe(
    'Path of the next cursor in the answer, e.g. "paging.next"; missing or empty = last page.',
  ),
  sizeParam: param.optional().describe("Query parameter of the page size."),
  size,
}).strict();

const noneSchema = z.object({
  style: z.literal("none").describe("One request; the answer holds every record."),
}).strict();

const paginationSchema = z.discriminatedUnion("style", [
  offsetSchema,
  pageSchema,
  cursorSchema,
  noneSchema,
]);

/** A `yyyy-MM-dd` date, or `""` for "not given" (what `${var:x:-}` gives for an unset parameter). */
const optionalDate = z.string().regex(/^(\d{4}-\d{2}-\d{2})?$/, "expected a date like 2026-01-31")
  .optional();

const windowSchema = z.object({
  days: z.int().positive().optional().describe(
    "Look back this many days from the run's start (used when `start` is empty).",
  ),
  start: optionalDate.describe(
    'First day included (yyyy-MM-dd, from 00:00 in `zone`); "" = use `days`.',
  ),
  end: optionalDate.describe(
    'Last day included (yyyy-MM-dd, up to 24:00 in `zone`); "" = up to the run\'s start.',
  ),
  zone: zoneSchema.default("UTC").describe("Time zone the days are counted in."),
}).strict();

const configSchema = z.object({
  ...httpOptionsSchema.shape,
  path: z.string().min(1).describe(
    'Path of the list endpoint (relative to baseUrl) or an absolute URL, e.g. "/api/v3/requests".',
  ),
  query: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({})
    .describe(
      'Query parameters sent with every page; values may hold {$name} placeholders, e.g. { "event": "${var:event-id}" }.',
    ),
  jsonQuery: z.record(z.string(), z.unknown()).default({}).describe(
    'Query parameters whose value is a JSON template, sent JSON-encoded, e.g. { "input_data": { "list_info": { "start_index": "{$start}", "row_count": "{$size}" } } }.',
  ),
  pagination: paginationSchema.default({ style: "none" }).describe(
    'How pages are asked for: { "style": "offset", startParam, sizeParam, start (0), size (100) }, { "style": "page", pageParam, sizeParam, start (1), size }, { "style": "cursor", cursorParam, next (path of the next cursor), sizeParam, size } or { "style": "none" } (one request). Params left out are for templates using {$start}, {$size}, {$page}, {$cursor}.',
  ),
  items: z.string().default("").describe(
    'Path of the record array in each answer, e.g. "requests" ("" = the answer is the array).',
  ),
  hasMore: z.string().min(1).optional().describe(
    'Path of a boolean saying more pages follow, e.g. "list_info.has_more_rows"; without it, a short or empty page ends the reading.',
  ),
  total: z.string().min(1).optional().describe(
    'Path of the total record count, e.g. "list_info.total_count" (for progress percentages).',
  ),
  window: windowSchema.optional().describe(
    'A date range for {$from}/{$to} (epoch ms) and {$fromIso}/{$toIso}: { "days": 90, "start": "yyyy-MM-dd", "end": "yyyy-MM-dd", "zone": "UTC" }; start (00:00) wins over days; end is included (to 24:00), default the run\'s start; "" means not given.',
  ),
}).strict().superRefine((config, ctx) => checkConfig(config, ctx));

/** The parsed config of `read.http`. */
export type HttpReaderConfig = z.output<typeof configSchema>;

/** The values `{$name}` placeholders take on one page. */
type Scope = Record<string, string | number | undefined>;

const PLACEHOLDER = /\{\$([A-Za-z]+)\}/g;
const WHOLE = /^\{\$([A-Za-z]+)\}$/;
const PAGE_NAMES = ["start", "size", "page", "cursor"];
const RUN_NAMES = ["now", "nowIso"];
const WINDOW_NAMES = ["from", "to", "fromIso", "toIso"];
const DAY_MS = 86_400_000;

/**
 * Fills `{$name}` placeholders in a template: a string that is exactly one
 * placeholder takes the value itself (an unset value leaves an object key
 * out), other strings get the text; objects and arrays are filled throughout.
 */
export function fillTemplate(template: unknown, scope: Scope): unknown {
  return renderJsonTemplate(template, function fillText(text) {
    const whole = WHOLE.exec(text);
    if (whole) return scope[whole[1]];
    return text.replace(PLACEHOLDER, (_, name: string) => String(scope[name] ?? ""));
  });
}

/** Every `{$name}` used in a template, with the path of the string holding it. */
function placeholders(
  template: unknown,
  at: PropertyKey[],
  out: { name: string; at: PropertyKey[] }[] = [],
): { name: string; at: PropertyKey[] }[] {
  if (typeof template === "string") {
    for (const match of template.matchAll(PLACEHOLDER)) out.push({ name: match[1], at });
  } else if (Array.isArray(template)) {
    template.forEach((value, index) => placeholders(value, [...at, index], out));
  } else if (template !== null && typeof template === "object") {
    for (const [key, value] of Object.entries(template)) placeholders(value, [...at, key], out);
  }
  return out;
}

/**
 * The date range of `window` as epoch milliseconds, both ends included: from
 * 00:00 of `start` (or `days` before `to`) to the last millisecond of `end`
 * (or the run's start).
 */
export function windowRange(
  window: NonNullable<HttpReaderConfig["window"]>,
  now: Temporal.Instant,
): { from: number; to: number } {
  const startOfDay = (date: Temporal.PlainDate) =>
    date.toZonedDateTime({ timeZone: window.zone }).epochMilliseconds;
  const to = window.end
    ? startOfDay(Temporal.PlainDate.from(window.end).add({ days: 1 })) - 1
    : now.epochMilliseconds;
  let from: number;
  if (window.start) from = startOfDay(Temporal.PlainDate.from(window.start));
  else if (window.days !== undefined) from = to - window.days * DAY_MS;
  else throw new Error("window needs start or days"); // checked by the config schema
  return { from, to };
}

const ABSOLUTE_URL = /^[a-z][a-z0-9+.-]*:\/\//i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The cross-field rules of the config (a zod refinement, so config validation
 * reports them with their paths): known placeholders, a window for the
 * window's placeholders, a usable window, an absolute path without baseUrl.
 */
function checkConfig(config: HttpReaderConfig, ctx: z.RefinementCtx): void {
  const issue = (path: PropertyKey[], message: string, input?: unknown) =>
    ctx.addIssue({ code: "custom", path, message, input });
  if (config.baseUrl === undefined && !ABSOLUTE_URL.test(config.path)) {
    issue(
      ["path"],
      'expected an absolute URL like "https://api.example.com/v2/items" when "baseUrl" is not set',
      config.path,
    );
  }
  const used = placeholders(config.path, ["path"]);
  placeholders(config.query, ["query"], used);
  placeholders(config.jsonQuery, ["jsonQuery"], used);
  const style = config.pagination.style;
  const known = [...RUN_NAMES, ...WINDOW_NAMES, ...(style === "none" ? [] : PAGE_NAMES)];
  for (const { name, at } of used) {
    if (!known.includes(name)) {
      issue(
        at,
        `unknown placeholder {$${name}}${
          style === "none" && PAGE_NAMES.includes(name) ? ` (pagination "none" has no pages)` : ""
        }; expected one of ${known.map((n) => `{$${n}}`).join(", ")}`,
      );
    } else if (WINDOW_NAMES.includes(name) && config.window === undefined) {
      issue(at, `{$${name}} needs a date range: expected "window" in this stage's config`);
    }
  }
  const window = config.window;
  if (!window) return;
  if (!window.start && window.days === undefined) {
    issue(["window"], `expected "start" or "days"`);
  }
  let real = true;
  for (const field of ["start", "end"] as const) {
    const value = window[field];
    // A value that is not even yyyy-MM-dd has its problem reported already.
    if (!value || !DATE.test(value)) continue;
    try {
      Temporal.PlainDate.from(value, { overflow: "reject" });
    } catch {
      real = false;
      issue(["window", field], "expected a real date like 2026-01-31", value);
    }
  }
  if (
    real && window.start && window.end && DATE.test(window.start) && DATE.test(window.end) &&
    window.start > window.end
  ) {
    issue(
      ["window", "end"],
      `expected a day on or after start "${window.start}"`,
      window.end,
    );
  }
}

/** The stage definition. */
export const stage = defineStage({
  kind: "read",
  name: "http",
  summary:
    "Read records from a paginated JSON API (offset, page or cursor pages; has-more flag or short page ends it).",
  config: configSchema,
  create(config, ctx) {
    const client = ctx.http.client(clientOptions(config));
    const now = ctx.clock.now();
    const runScope: Scope = { now: now.epochMilliseconds, nowIso: now.toString() };
    if (config.window) {
      const { from, to } = windowRange(config.window, now);
      Object.assign(runScope, {
        from,
        to,
        fromIso: Temporal.Instant.fromEpochMilliseconds(from).toString(),
        toIso: Temporal.Instant.fromEpochMilliseconds(to).toString(),
      });
      ctx.log.info("Reading records from {from} to {to}", {
        from: runScope.fromIso,
        to: runScope.toIso,
      });
    }
    // The origin names the endpoint without its query: positions stay comparable across runs.
    const endpoint = buildUrl(config.baseUrl, fillTemplate(config.path, runScope) as string);
    const source = displayUrl(endpoint);
    const pagination = config.pagination;
    let total: number | undefined;

    /** The query of the page whose placeholders are `scope`. */
    function pageQuery(scope: Scope): Record<string, string | number | boolean | undefined> {
      const query: Record<string, string | number | boolean | undefined> = {};
      for (const [name, template] of Object.entries(config.query)) {
        const value = fillTemplate(template, scope);
        query[name] = value === undefined ? undefined : value as string | number | boolean;
      }
      for (const [name, template] of Object.entries(config.jsonQuery)) {
        query[name] = JSON.stringify(fillTemplate(template, scope));
      }
      switch (pagination.style) {
        case "offset":
          if (pagination.startParam) query[pagination.startParam] = scope.start;
          if (pagination.sizeParam) query[pagination.sizeParam] = scope.size;
          break;
        case "page":
          if (pagination.pageParam) query[pagination.pageParam] = scope.page;
          if (pagination.sizeParam) query[pagination.sizeParam] = scope.size;
          break;
        case "cursor":
          if (pagination.cursorParam) query[pagination.cursorParam] = scope.cursor;
          if (pagination.sizeParam) query[pagination.sizeParam] = scope.size;
          break;
      }
      return query;
    }

    /** One page's answer, parsed; any failure stops the run (exit 3). */
    async function fetchPage(number: number, scope: Scope): Promise<unknown> {
      const started = performance.now();
      let response: HttpResponse;
      let body: unknown;
      try {
        response = await client.request({
          method: "GET",
          path: fillTemplate(config.path, scope) as string,
          query: pageQuery(scope),
          signal: ctx.signal,
        });
        body = response.json();
      } catch (error) {
        if (error instanceof RecordError) {
          throw new RemoteError(
            `Cannot read page ${number} of ${source}: ${error.message}`,
            error.status,
            {
              cause: error,
            },
          );
        }
        throw error;
      }
      ctx.log.debug("Page {page} of {source} answered {status} in {ms} ms", {
        page: number,
        source,
        status: response.status,
        ms: Math.round(performance.now() - started),
      });
      return body;
    }

    async function* read(): AsyncGenerator<Item> {
      const pageSize = pagination.style === "none" ? undefined : pagination.size;
      let number = 1;
      let start = pagination.style === "offset" ? pagination.start : 0;
      let cursor: string | undefined;
      const cursors = new Set<string>();
      let fetched = 0;
      while (!ctx.signal.aborted) {
        const scope: Scope = {
          ...runScope,
          page: pagination.style === "page" ? pagination.start + number - 1 : number,
          start,
          size: pageSize,
          cursor,
        };
        let body: unknown;
        try {
          body = await fetchPage(number, scope);
        } catch (error) {
          if (ctx.signal.aborted) return; // interrupted: the records before this page are synced
          throw error;
        }
        const list = config.items === "" ? body : getPath(body, config.items);
        if (!Array.isArray(list)) {
          throw new RemoteError(
            `Cannot read page ${number} of ${source}: expected an array at ${
              config.items === "" ? "the top level" : `"${config.items}"`
            }, got ${describeValue(list)}`,
          );
        }
        if (config.total) {
          const value = Number(getPath(body, config.total));
          if (Number.isFinite(value) && value >= 0) total = value;
        }
        for (const [index, data] of list.entries()) {
          const origin = { source, position: `page ${number}, index ${index}` };
          const key = `${source}#${origin.position}`;
          if (data === null || typeof data !== "object" || Array.isArray(data)) {
            ctx.deadLetter(
              { key, data: { value: data }, origin },
              `expected an object, got ${describeValue(data)}`,
            );
            continue;
          }
          yield { key, data: data as Record<string, unknown>, origin };
        }
        fetched += list.length;

        if (list.length === 0 || pagination.style === "none") return;
        if (config.hasMore) {
          const more = getPath(body, config.hasMore);
          if (more !== true && more !== "true") return;
        }
        if (pagination.style === "cursor") {
          const next = getPath(body, pagination.next);
          if (next === undefined || next === null || next === "") return;
          cursor = String(next);
          if (cursors.has(cursor)) {
            throw new RemoteError(
              `Cannot read page ${
                number + 1
              } of ${source}: the API returned cursor "${cursor}" again (it would loop)`,
            );
          }
          cursors.add(cursor);
        } else if (!config.hasMore) {
          // A known total decides: a server may cap its pages below `size`.
          if (total !== undefined) {
            if (fetched >= total) return;
          } else if (pageSize !== undefined && list.length < pageSize) return;
        }
        number++;
        // The next offset follows what came back (a capped page is shorter than `size`).
        start += pagination.style === "offset" ? list.length : pageSize ?? 0;
      }
    }

    return {
      read,
      expected: () => total,
    };
  },
});
