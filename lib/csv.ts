/**
 * Streaming CSV reader on {@linkcode CsvParser}: quoted fields with delimiters,
 * doubled quotes and newlines, BOM and CRLF. Values stay strings (typing is the map
 * stage's job); a row with the wrong number of columns is reported, not thrown.
 * @module
 */
import { z } from "zod";
import { CsvParser, type CsvRecord, CsvSyntaxError } from "./csv_parser.ts";
import { recordBuilder } from "./record_shape.ts";
import { type InvalidHandler, rawExcerpt, withoutBom } from "./source.ts";
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
}).strict();

/** Parsed {@linkcode csvOptionsSchema}. */
export type CsvOptions = z.output<typeof csvOptionsSchema>;

/** Options of {@linkcode csvItems}: dialect (defaults as in the schema) plus the source. */
export interface CsvItemsOptions extends Partial<CsvOptions> {
  /** The path as the config gave it; origins and messages name it. */
  source: string;
  /** Receives rows with the wrong number of columns. */
  onInvalid?: InvalidHandler;
  /** Stops reading when aborted. */
  signal?: AbortSignal;
}

/**
 * Yields one item per CSV row, keyed by column name. Position `line N` is the
 * physical line where the row starts (rows with quoted newlines span lines).
 * Malformed CSV (an unclosed quote) throws `Cannot read "x.csv": line N: ...`
 * after the rows before it. Reads one chunk at a time, so it never reads far
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
  let build = names === undefined ? undefined : recordBuilder(names, emptyAsNull);
  const records: CsvRecord[] = [];
  let failure: CsvSyntaxError | undefined;

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
      records.length = 0;
      try {
        parser.push(text, done, records);
      } catch (error) {
        if (!(error instanceof CsvSyntaxError)) throw error;
        failure = error;
      }
      for (const { fields, line } of records) {
        if (signal?.aborted) return;
        const position = `line ${line}`;
        const origin: Origin = { source, position };
        if (names === undefined) {
          names = options.columns ?? headerNames(source, position, fields);
          build = recordBuilder(names, emptyAsNull);
          continue;
        }
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
