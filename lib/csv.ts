/**
 * Streaming CSV reader on {@linkcode CsvParser}: quoted fields with delimiters,
 * doubled quotes and newlines, BOM and CRLF. Values stay strings (typing is the map
 * stage's job); a malformed row, a row with the wrong number of columns and a row
 * holding U+FFFD (invalid UTF-8) are reported, not thrown.
 * @module
 */
import { z } from "zod";
import { MissingError } from "./errors.ts";
import { type CsvEntry, CsvParser, CsvSyntaxError } from "./csv_parser.ts";
import { recordBuilder } from "./record_shape.ts";
import {
  INVALID_UTF8_REASON,
  type InvalidHandler,
  rawExcerpt,
  REPLACEMENT,
  withoutBom,
} from "./source.ts";
import type { Item, Origin } from "./stage.ts";

/** CSV dialect and header options; read.csv spreads its shape into its config. */
export const csvOptionsSchema = z.object({
  delimiter: z.string().min(1).default(",").describe(
    'Field separator, e.g. ",", ";" or "\\t".',
  ),
  header: z.boolean().default(true).describe(
    "Whether the first row names the columns. When false, `columns` is required.",
  ),
  columns: z.array(z.string().min(1)).min(1).optional().describe(
    "Column names in file order. With `header` true they replace the names in the first row.",
  ),
  bom: z.boolean().default(true).describe("Strip a UTF-8 byte order mark at the start."),
  trim: z.boolean().default(false).describe("Trim whitespace around unquoted and quoted fields."),
  skipEmptyLines: z.boolean().default(true).describe("Skip lines with no characters."),
  relaxColumnCount: z.boolean().default(false).describe(
    "Accept rows with fewer or more fields than columns (missing ones are left out, extra ones " +
      "ignored). When false such rows go to the dead-letter store.",
  ),
  quote: z.string().length(1).default('"').describe("Quote character around fields."),
  emptyAs: z.enum(["empty", "null"]).default("empty").describe(
    'What an empty field becomes: "empty" keeps "", "null" makes it null.',
  ),
  requireColumns: z.array(z.string().min(1)).optional().describe(
    "Columns the header row must name (the export's contract). A file lacking one stops the run " +
      "before any row is read, naming what is missing (exit 2); a filter on a missing column would " +
      "otherwise match nothing without a word.",
  ),
}).strict();

/**
 * The CSV options' cross-field rule, for the schemas that spread
 * {@linkcode csvOptionsSchema}'s shape (zod refinement): without a header row
 * the names must come from `columns`.
 */
export function checkCsvOptions(
  config: { header: boolean; columns?: string[]; requireColumns?: string[] },
  ctx: z.RefinementCtx,
): void {
  if (!config.header && config.columns === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["columns"],
      message: 'required when "header" is false: expected the column names in file order',
      input: undefined,
    });
  }
  // With `columns` the names come from the config, not the file: check the contract here.
  const missing = config.columns === undefined
    ? []
    : (config.requireColumns ?? []).filter((name) => !config.columns!.includes(name));
  if (missing.length > 0) {
    ctx.addIssue({
      code: "custom",
      path: ["requireColumns"],
      message: `expected names that "columns" has, got ${missing.join(", ")}`,
      input: undefined,
    });
  }
}

/** Parsed {@linkcode csvOptionsSchema}. */
export type CsvOptions = z.output<typeof csvOptionsSchema>;

/** Options of {@linkcode csvItems}: dialect (defaults as in the schema) plus the source. */
export interface CsvItemsOptions extends Partial<CsvOptions> {
  /** The path as the config gave it; origins and messages name it. */
  source: string;
  /**
   * Receives the rows that cannot become items: malformed CSV, U+FFFD in the
   * text, the wrong number of columns.
   */
  onInvalid?: InvalidHandler;
  /** Stops reading when aborted. */
  signal?: AbortSignal;
}

/**
 * Yields one item per CSV row, keyed by column name. Position `line N` is the
 * physical line where the row starts (rows with quoted newlines span lines).
 *
 * A row that cannot become an item goes to `onInvalid` with its position, a
 * reason and its raw text, and reading goes on with the next row:
 * - `invalid CSV: a quote inside an unquoted field` or `invalid CSV: unexpected
 *   character after a closing quote` (with ` (line M)` when the problem is on a
 *   later line of a multi-line row); reading resumes after the line with the
 *   problem;
 * - {@linkcode INVALID_UTF8_REASON}: the decoded row holds U+FFFD, which is what
 *   invalid UTF-8 decodes to;
 * - `expected N columns, got M`, unless `relaxColumnCount`.
 *
 * Only what leaves no row to resume on throws `Cannot read "x.csv": line N:
 * ...`, after the rows before it: a quoted field not closed by the end of the
 * file, and a header row (when it names the columns) that is malformed, holds
 * U+FFFD or repeats a name. Reads one chunk at a time, so it never reads far
 * ahead of its consumer; stopping early cancels the stream.
 */
export async function* csvItems(
  stream: ReadableStream<Uint8Array>,
  opts: CsvItemsOptions,
): AsyncGenerator<Item> {
  const { source, onInvalid, signal, ...dialect } = opts;
  const options = csvOptionsSchema.parse(dialect);
  if (!options.header && options.columns === undefined) {
    throw new Error(`Cannot read "${source}": "columns" is required when "header" is false`);
  }
  const parser = new CsvParser(options);
  // The BOM is withoutBom()'s to strip (or keep, with bom: false), not the decoder's.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const emptyAsNull = options.emptyAs === "null";
  let names: string[] | undefined = options.header ? undefined : options.columns;
  let sawLine = false;
  let build = names === undefined ? undefined : recordBuilder(names, emptyAsNull);
  const records: CsvEntry[] = [];
  let failure: CsvSyntaxError | undefined;
  // Set once a decoded chunk holds U+FFFD; only then are rows searched for it.
  let replaced = false;

  // Leaving the loop early (abort, error, a consumer that stops) cancels the
  // stream, which closes the file.
  const chunks = options.bom ? withoutBom(stream) : stream;
  const iterator = chunks[Symbol.asyncIterator]();
  try {
    let done = false;
    while (!done && failure === undefined) {
      if (signal?.aborted) return;
      const next = await iterator.next();
      done = next.done === true;
      const text = done ? decoder.decode() : decoder.decode(next.value, { stream: true });
      if (!replaced && text.includes(REPLACEMENT)) replaced = true;
      records.length = 0;
      try {
        parser.push(text, done, records);
      } catch (error) {
        if (!(error instanceof CsvSyntaxError)) throw error;
        failure = error;
      }
      if (records.length > 0) sawLine = true;
      for (const record of records) {
        if (signal?.aborted) return;
        const position = `line ${record.line}`;
        const origin: Origin = { source, position };
        // Why the row cannot become an item, if it cannot.
        let invalid: string | undefined;
        if (record.fields === null) invalid = `invalid CSV: ${record.reason}`;
        else if (replaced && record.fields.some((value) => value.includes(REPLACEMENT))) {
          invalid = INVALID_UTF8_REASON;
        }
        if (names === undefined) {
          // The header row is read for its names only: with `columns` it is skipped, whatever it holds.
          if (options.columns !== undefined) names = options.columns;
          else if (invalid !== undefined) {
            throw new Error(`Cannot read "${source}": ${position}: the header row: ${invalid}`);
          } else names = headerNames(source, position, record.fields!);
          const missing = (options.requireColumns ?? []).filter((name) => !names!.includes(name));
          if (missing.length > 0) {
            throw new MissingError(
              `Cannot read "${source}": the header lacks ${
                missing.length === 1 ? "a required column" : `${missing.length} required columns`
              }: ${missing.join(", ")}`,
            );
          }
          build = recordBuilder(names, emptyAsNull);
          continue;
        }
        if (invalid !== undefined) {
          const raw = record.fields === null ? record.raw : record.fields.join(options.delimiter);
          onInvalid?.(origin, invalid, rawExcerpt(raw));
          continue;
        }
        const fields = record.fields!;
        if (fields.length !== names.length && !options.relaxColumnCount) {
          const reason = `expected ${names.length} columns, got ${fields.length}`;
          onInvalid?.(origin, reason, rawExcerpt(fields.join(options.delimiter)));
          continue;
        }
        let data: Record<string, unknown>;
        if (fields.length === names.length) data = build!(fields);
        else {
          data = {};
          const count = Math.min(names.length, fields.length);
          for (let i = 0; i < count; i++) {
            const value = fields[i];
            data[names[i]] = value === "" && emptyAsNull ? null : value;
          }
        }
        yield { key: `${source}#${position}`, data, origin };
      }
    }
  } finally {
    await iterator.return?.();
  }
  if (failure) {
    throw new Error(`Cannot read "${source}": ${failure.message}`, { cause: failure });
  }
  // A contract and not one line: an empty (truncated) export is not a clean, empty load.
  if (!sawLine && options.requireColumns !== undefined) {
    throw new MissingError(`Cannot read "${source}": the file is empty (no header row)`);
  }
}

function headerNames(source: string, position: string, record: string[]): string[] {
  const seen = new Set<string>();
  for (const name of record) {
    if (seen.has(name)) {
      throw new Error(`Cannot read "${source}": ${position}: duplicate column name "${name}"`);
    }
    seen.add(name);
  }
  return record;
}
