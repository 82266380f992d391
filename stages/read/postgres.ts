/**
 * `read.postgres`: records from a PostgreSQL table or query, streamed through
 * a server-side cursor (`batchSize` rows per round trip; memory holds one
 * batch), in a read-only transaction.
 *
 * Relationship names come from the query itself: `venues v left join cities
 * c on c.id = v.city_id` gives each venue its `city_name`.
 *
 * Values are made JSON-friendly as they are parsed (the session runs with
 * `TimeZone` UTC, `DateStyle` ISO and `IntervalStyle` iso_8601):
 * - timestamptz: ISO 8601 in UTC, microseconds kept: `"2025-03-01T18:30:00Z"`;
 * - timestamp (without time zone): wall-clock ISO 8601, no offset: `"2025-03-01T18:30:00"`;
 * - date: `"2025-03-01"`; time and interval: their ISO text (`"19:30:00"`, `"PT2H"`);
 * - numeric: a number (`numeric: "number"`, the default; more than 15
 *   significant digits are rounded) or its exact text (`numeric: "string"`);
 * - bigint (int8): a string, as it may exceed 2^53; integer, smallint, real,
 *   double: numbers (NaN and Infinity stay strings, JSON has no such number);
 * - boolean, json and jsonb, arrays (element by element): as JSON; bytea: `"\\x0102"`;
 *   anything else (text, uuid, enums, money): its text.
 * @module
 */
import { z } from "zod";
import type postgres from "postgres";
import { ConfigError, MissingError, RemoteError, TicketsyncError } from "../../lib/errors.ts";
import {
  connect,
  connectError,
  parseTableName,
  pgErrorMessage,
  quoteIdent,
  redactUrl,
  type Sql,
  sqlState,
} from "../../lib/postgres.ts";
import { secret } from "../../lib/secret.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

/** How numeric values are written. */
type NumericAs = "number" | "string";

/** PostgreSQL type oids whose postgres.js parsing is replaced. */
const OID = {
  bytea: 17,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
} as const;

const INSTANT_TEXT = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/;
const LOCAL_TEXT = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;

/** The reader. */
export const stage = defineStage({
  kind: "read",
  name: "postgres",
  summary:
    "Stream rows of a PostgreSQL table or query (JOINs for related names) through a read-only cursor.",
  config: z.object({
    url: secret(z.string().min(1)).describe(
      'PostgreSQL URL, e.g. "${env:DATABASE_URL}"; its password never appears in messages.',
    ),
    table: z.string().min(1).optional().describe(
      'Table to read whole, "table" or "schema.table" (an unqualified name follows the search_path). Give this or "query".',
    ),
    query: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional().describe(
      'One SELECT whose rows are the records, as a string or an array of lines; JOIN related tables for their names (e.g. cities for city_name). Give this or "table".',
    ),
    params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).default([])
      .describe('Values of $1, $2, ... in "query".'),
    name: z.string().min(1).optional().describe(
      'What origins and messages call the rows ("postgres:<name>", row N); default: the table, or "query".',
    ),
    batchSize: z.int().min(1).max(100_000).default(500).describe(
      "Rows fetched per round trip through the server-side cursor; memory holds one batch.",
    ),
    numeric: z.enum(["number", "string"]).default("number").describe(
      'numeric columns as JSON numbers ("number": more than 15 significant digits are rounded) or as their exact text ("string").',
    ),
  }).strict().superRefine(function checkSource(config, ctx) {
    const issue = (path: PropertyKey[], message: string) =>
      ctx.addIssue({ code: "custom", path, message, input: undefined });
    if (config.table === undefined && config.query === undefined) {
      issue([], `expected "table" or "query", got neither`);
    }
    if (config.table !== undefined && config.query !== undefined) {
      issue(["query"], `expected "table" or "query", not both`);
    }
    if (config.table !== undefined && config.params.length > 0) {
      issue(["params"], `only apply to "query": expected no "params" with "table"`);
    }
    // An empty name has its problem reported already.
    if (config.table) {
      try {
        parseTableName(config.table);
      } catch (error) {
        issue(["table"], (error as Error).message.replace(/^Invalid/, "invalid"));
      }
    }
  }),
  create(config, ctx) {
    // Unqualified names keep the search_path.
    const table = config.table === undefined
      ? undefined
      : config.table.split(".").map(quoteIdent).join(".");
    const text = table === undefined
      ? Array.isArray(config.query) ? config.query.join("\n") : config.query!
      : `select * from ${table}`;
    const name = config.name ?? config.table ?? "query";
    const source = `postgres:${name}`;
    let sql: Sql | undefined;
    let estimate: number | undefined;

    /** Connects (failing early with a plain error), then opens the read-only transaction. */
    async function open(): Promise<postgres.ReservedSql> {
      const client = await connect(config.url, { max: 1 });
      sql = client;
      jsonFriendlyParsers(client, config.numeric);
      try {
        await client`select 1`;
      } catch (error) {
        throw connectError(config.url, error);
      }
      nullAwareArrays(client);
      ctx.log.debug("Reading {name} from {url}", { name, url: redactUrl(config.url) });
      const tx = await client.reserve();
      try {
        await tx.unsafe("begin transaction read only");
        await tx.unsafe(
          "set local timezone to 'UTC'; set local datestyle to 'ISO, YMD'; " +
            "set local intervalstyle to 'iso_8601'",
        );
        if (table !== undefined) estimate = await tableEstimate(tx, table);
      } catch (error) {
        tx.release();
        throw error;
      }
      return tx;
    }

    /** Rolls back (nothing was written), releases and ends the client; never throws. */
    async function finish(tx: postgres.ReservedSql | undefined): Promise<void> {
      if (tx) {
        await tx.unsafe("rollback").catch(() => {});
        tx.release();
      }
      const client = sql;
      sql = undefined;
      await client?.end({ timeout: 5 }).catch(() => {});
    }

    /** The error to stop the run with when reading failed after `row` rows. */
    function readError(error: unknown, row: number): Error {
      if (error instanceof TicketsyncError) return error;
      const code = sqlState(error);
      const message = pgErrorMessage(error);
      const at = row > 0 ? `after row ${row}: ` : "";
      if (code === "42P01") {
        const relation = /relation "([^"]+)" does not exist/.exec(message)?.[1];
        const what = relation === undefined || relation === name
          ? "table does not exist"
          : `table "${relation}" does not exist`;
        return new MissingError(`Cannot read "${name}": ${what}`, { cause: error });
      }
      if (code === "3F000") {
        return new MissingError(`Cannot read "${name}": ${message}`, { cause: error });
      }
      // A wrong query (syntax, unknown column) or one that writes is a config mistake.
      if ((code?.startsWith("42") && code !== "42501") || code === "25006") {
        return new ConfigError(`Cannot read "${name}": ${at}${message}`);
      }
      return new RemoteError(`Cannot read "${name}": ${at}${message}`, undefined, {
        cause: error,
      });
    }

    return {
      async *read(): AsyncGenerator<Item> {
        let tx: postgres.ReservedSql | undefined;
        let row = 0;
        try {
          try {
            tx = await open();
          } catch (error) {
            throw readError(error, 0);
          }
          const cursor = tx.unsafe(text, config.params).cursor(config.batchSize);
          try {
            for await (const rows of cursor) {
              for (const data of rows) {
                row++;
                const position = `row ${row}`;
                yield { key: `${source}#${position}`, data, origin: { source, position } };
              }
              if (ctx.signal.aborted) break;
            }
          } catch (error) {
            throw readError(error, row);
          }
        } finally {
          await finish(tx);
        }
      },
      expected: () => estimate,
      estimated: true,
      async close() {
        await finish(undefined);
      },
    };
  },
});

/** The planner's row count of a table (cheap); `undefined` before its first ANALYZE. */
async function tableEstimate(tx: postgres.ReservedSql, table: string): Promise<number | undefined> {
  const [found] = await tx<{ rows: number | null }[]>`
    select (select reltuples::float8 from pg_class where oid = to_regclass(${table})) as rows`;
  const rows = found?.rows;
  return typeof rows === "number" && rows >= 0 ? Math.round(rows) : undefined;
}

/**
 * Replaces this client's parsers of dates, times and numbers with JSON-friendly
 * ones (see the module doc). Done before the first query, so the array parsers
 * postgres.js derives when it connects use them too.
 */
function jsonFriendlyParsers(sql: Sql, numeric: NumericAs): void {
  const parsers = sql.options.parsers as Record<number, (text: string) => unknown>;
  parsers[OID.timestamptz] = function instant(text) {
    const match = INSTANT_TEXT.exec(text);
    return match ? `${match[1]}T${match[2]}Z` : text;
  };
  parsers[OID.timestamp] = function wallClock(text) {
    const match = LOCAL_TEXT.exec(text);
    return match ? `${match[1]}T${match[2]}` : text;
  };
  parsers[OID.date] = function date(text) {
    return text;
  };
  parsers[OID.bytea] = function bytes(text) {
    return text;
  };
  parsers[OID.float4] = parsers[OID.float8] = finiteNumber;
  parsers[OID.numeric] = numeric === "number" ? finiteNumber : function exact(text) {
    return text;
  };
}

/**
 * Replaces the array parsers postgres.js derived when it connected (they read
 * an unquoted NULL element as the text "NULL": a NULL in a text[] looked like
 * the string 'NULL', in a bool[] like false, and one in a jsonb[] failed the
 * read) with {@linkcode parseArray}, around the same element parsers.
 */
function nullAwareArrays(sql: Sql): void {
  const options = sql.options as unknown as {
    parsers: Record<number, (text: string) => unknown>;
    shared?: { typeArrayMap?: Record<number, number> };
  };
  for (const [oid, typarray] of Object.entries(options.shared?.typeArrayMap ?? {})) {
    const element = options.parsers[Number(oid)] ?? ((text: string) => text);
    // Only box[] separates its elements with ';'.
    const delimiter = typarray === 1020 ? ";" : ",";
    options.parsers[typarray] = (text) => parseArray(text, element, delimiter);
  }
}

/**
 * A PostgreSQL array literal (`{a,"b c",NULL,{1,2}}`, optionally after a
 * `[1:2]=` bounds prefix) as nested arrays: quoted elements unescaped,
 * unquoted `NULL` as null, every other element through `element`.
 */
export function parseArray(
  text: string,
  element: (text: string) => unknown,
  delimiter = ",",
): unknown[] {
  let i = text.startsWith("[") ? text.indexOf("=") + 1 : 0;
  function list(): unknown[] {
    const out: unknown[] = [];
    i++; // "{"
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === "{") out.push(list());
      else if (text[i] === '"') {
        let value = "";
        for (i++; i < text.length && text[i] !== '"'; i++) {
          if (text[i] === "\\") i++;
          value += text[i];
        }
        i++;
        out.push(element(value));
      } else {
        let end = i;
        while (end < text.length && text[end] !== delimiter && text[end] !== "}") end++;
        const raw = text.slice(i, end);
        out.push(raw.toUpperCase() === "NULL" ? null : element(raw));
        i = end;
      }
      if (text[i] === delimiter) i++;
      else if (text[i] === "}") {
        i++;
        return out;
      } else throw new Error(`malformed array literal: ${text.slice(0, 60)}`);
    }
  }
  return list();
}

/** The number, or the text when JSON cannot hold it (NaN, Infinity). */
function finiteNumber(text: string): number | string {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}
