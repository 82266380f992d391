/**
 * Streaming CSV reader on `csv-parse`: quoted fields with delimiters, doubled
 * quotes and newlines, BOM and CRLF. Values stay strings (typing is the map
 * stage's job); a row with the wrong number of columns is reported, not thrown.
 * @module
 */
import { z } from "zod";
import { CsvError, parse } from "csv-parse/stream";
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

interface ParsedRecord {
  record: string[];
  info: { bytes: number };
}

/**
 * Yields one item per CSV row, keyed by column name. Position `line N` is the
 * physical line where the row starts (rows with quoted newlines span lines).
 * Malformed CSV (an unclosed quote) throws `Cannot read "x.csv": line N: ...`.
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
  const newlines = new NewlineIndex();
  const parser = parse({
    delimiter: options.delimiter,
    quote: options.quote,
    trim: options.trim,
    skip_empty_lines: options.skipEmptyLines,
    // Column counts are checked here, so a bad row is dead-lettered, not fatal.
    relax_column_count: true,
    // Explicit: auto-detection can misjudge a CRLF split across two chunks.
    record_delimiter: ["\r\n", "\n"],
    bom: false,
    info: true,
  });
  const writer = parser.writable.getWriter();
  const records = parser.readable.getReader();
  const pumping = pump(stream, writer, newlines, options.bom, signal);

  let names: string[] | undefined = options.header ? undefined : options.columns;
  try {
    while (true) {
      if (signal?.aborted) return;
      let next: ReadableStreamReadResult<ParsedRecord>;
      try {
        next = await records.read();
      } catch (error) {
        throw readError(source, error, newlines);
      }
      if (next.done) break;
      const { record, info } = next.value;
      // info.bytes is just past the row's delimiter; count back over its own newlines.
      const endLine = 1 + newlines.countBefore(info.bytes - 1);
      const line = endLine - record.reduce((sum, field) => sum + countNewlines(field), 0);
      const position = `line ${line}`;
      const origin: Origin = { source, position };
      if (names === undefined) {
        names = options.columns ?? headerNames(source, position, record);
        continue;
      }
      if (record.length !== names.length && !options.relaxColumnCount) {
        const reason = `expected ${names.length} columns, got ${record.length}`;
        onInvalid?.(origin, reason, rawExcerpt(record.join(options.delimiter)));
        continue;
      }
      const data: Record<string, unknown> = {};
      const count = Math.min(names.length, record.length);
      for (let i = 0; i < count; i++) {
        const value = record[i];
        data[names[i]] = value === "" && options.emptyAs === "null" ? null : value;
      }
      yield { key: `${source}#${position}`, data, origin };
    }
  } finally {
    await records.cancel().catch(() => {});
    await pumping;
  }
}

/** Feeds the source into the parser one awaited chunk at a time, so it never reads far ahead. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  newlines: NewlineIndex,
  stripBom: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    // Leaving the loop early (abort, error) cancels the stream, which closes the file.
    for await (const chunk of stripBom ? withoutBom(stream) : stream) {
      if (signal?.aborted) break;
      newlines.add(chunk);
      await writer.write(chunk);
    }
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {});
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

function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) count++;
  return count;
}

const MESSAGES: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: "a quoted field is not closed",
  CSV_INVALID_OPENING_QUOTE: "a quote inside an unquoted field",
  CSV_INVALID_CLOSING_QUOTE: "unexpected character after a closing quote",
};

function readError(source: string, error: unknown, newlines: NewlineIndex): Error {
  if (error instanceof CsvError) {
    const bytes = (error as CsvError & { bytes?: number }).bytes ?? 0;
    const line = 1 + newlines.countBefore(bytes);
    const detail = MESSAGES[error.code] ??
      error.message.replace(/ (at|on) line \d+/g, "");
    return new Error(`Cannot read "${source}": line ${line}: ${detail}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`Cannot read "${source}": ${message}`, { cause: error });
}

/**
 * Byte offsets of the newlines the parser has been given but whose rows were
 * not consumed yet; asked in increasing order, so consumed ones are dropped.
 */
class NewlineIndex {
  #offsets: number[] = [];
  #head = 0;
  #counted = 0;
  #bytes = 0;

  add(chunk: Uint8Array): void {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
      this.#offsets.push(this.#bytes + i);
    }
    this.#bytes += chunk.length;
  }

  /** Newlines at offsets below `offset`. */
  countBefore(offset: number): number {
    while (this.#head < this.#offsets.length && this.#offsets[this.#head] < offset) {
      this.#head++;
      this.#counted++;
    }
    if (this.#head > 4096 && this.#head * 2 > this.#offsets.length) {
      this.#offsets = this.#offsets.slice(this.#head);
      this.#head = 0;
    }
    return this.#counted;
  }
}
