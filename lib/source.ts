/**
 * Opening input files as byte streams, and splitting byte streams into lines,
 * without ever holding a whole file in memory.
 * @module
 */
import { resolve } from "node:path";
import { MissingError } from "./errors.ts";
import type { Item, Origin, ReadRuntime, StageContext } from "./stage.ts";

/** An opened input: the path as the config gave it (for origins) and its bytes. */
export interface Source {
  /** The path as given, so origins and messages read like the config. */
  source: string;
  /** The file's bytes; consume it to the end or cancel it to close the file. */
  stream: ReadableStream<Uint8Array>;
  /** Size in bytes when opened (0 for pipes and devices). */
  size: number;
}

/**
 * Called by the parsers for a record that cannot become an item (invalid JSON,
 * not an object, wrong column count): its origin, a plain reason and the raw
 * text (at most {@linkcode RAW_LIMIT} characters). Readers forward it to
 * `ctx.deadLetter`.
 */
export type InvalidHandler = (origin: Origin, reason: string, raw: string) => void;

/** U+FFFD, what a non-fatal UTF-8 decoder puts in place of invalid bytes. */
export const REPLACEMENT = "\uFFFD";

/**
 * The dead-letter reason of a record whose decoded text holds U+FFFD. The
 * decoders replace invalid UTF-8 with it rather than fail the whole file, and
 * the readers dead-letter each record that holds one, so a bad byte never
 * silently becomes part of a record (a genuine U+FFFD in valid UTF-8 is
 * dead-lettered too: the two cannot be told apart after decoding).
 */
export const INVALID_UTF8_REASON =
  "contains U+FFFD: invalid UTF-8 in the input, or a replacement character";

/** How much of an invalid record's raw text is kept for its dead letter. */
export const RAW_LIMIT = 1000;

/** The first {@linkcode RAW_LIMIT} characters of `text`. */
export function rawExcerpt(text: string): string {
  return text.length > RAW_LIMIT ? text.slice(0, RAW_LIMIT) : text;
}

/** One line of text and its 1-based number. */
export interface Line {
  line: string;
  number: number;
}

/**
 * Opens `path` (relative paths resolve against `cwd`) for streaming.
 * Throws {@linkcode MissingError} when the file does not exist.
 */
export async function openSource(path: string, cwd: string): Promise<Source> {
  const absolute = resolve(cwd, path);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(absolute, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new MissingError(`Cannot read "${path}": file does not exist`, { cause: error });
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new Error(`Cannot read "${path}": permission denied`, { cause: error });
    }
    throw new Error(`Cannot read "${path}": ${(error as Error).message}`, { cause: error });
  }
  try {
    const info = await file.stat();
    // Named pipes and devices (e.g. /dev/stdin) stream fine; a directory cannot be read.
    if (info.isDirectory) throw new MissingError(`Cannot read "${path}": is a directory`);
    return { source: path, stream: file.readable, size: info.size };
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Estimates how many records a file holds from how far into it the reader is:
 * records so far × size ÷ bytes read. Wrap the source's stream with
 * `counted()` and call `yielded()` for each record; `estimate()` feeds the
 * progress line's total and ETA.
 */
export class SizeEstimate {
  #bytes = 0;
  #records = 0;
  constructor(readonly size: number) {}

  /** `stream`, counting its bytes as they are read. */
  counted(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    return stream.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, controller) => {
          this.#bytes += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    );
  }

  /** Counts one record handed on. */
  yielded(): void {
    this.#records++;
  }

  /** The estimated total, or undefined before any record or for pipes (size 0). */
  estimate(): number | undefined {
    if (this.size <= 0 || this.#bytes === 0 || this.#records === 0) return undefined;
    if (this.#bytes >= this.size) return undefined; // read to the end: the count is final
    return Math.max(this.#records, Math.round((this.#records * this.size) / this.#bytes));
  }
}

const BOM = [0xef, 0xbb, 0xbf];

/**
 * The chunks of `stream` with a leading UTF-8 byte order mark removed, even
 * when the mark is split across chunks. Stopping early cancels the stream.
 */
export async function* withoutBom(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let head: Uint8Array | undefined = new Uint8Array(0);
  for await (const chunk of stream) {
    if (head === undefined) {
      yield chunk;
      continue;
    }
    const joined: Uint8Array = head.length === 0 ? chunk : new Uint8Array([...head, ...chunk]);
    if (joined.length < BOM.length && joined.every((byte, i) => byte === BOM[i])) {
      head = joined;
      continue;
    }
    head = undefined;
    const rest = BOM.every((byte, i) => joined[i] === byte) ? joined.subarray(BOM.length) : joined;
    if (rest.length > 0) yield rest;
  }
  if (head !== undefined && head.length > 0) yield head;
}

const NEWLINE = "\n";

/**
 * Splits a UTF-8 byte stream into lines: `\n` or `\r\n` endings, a BOM on the
 * first line removed, a last line without a newline still yielded. Streams:
 * only the current line is held. Invalid UTF-8 becomes U+FFFD (consumers
 * dead-letter such lines; see {@linkcode INVALID_UTF8_REASON}). Linear in the
 * input however long a line is: each chunk is searched once, and the pieces
 * of a line spanning chunks are joined once. Stopping early cancels the stream.
 */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<Line> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  // The start of the current line, from earlier chunks: never holds a newline.
  let pieces: string[] = [];
  let number = 0;
  function finish(text: string): Line {
    number++;
    let line = text.endsWith("\r") ? text.slice(0, -1) : text;
    // TextDecoderStream drops a leading BOM already; this covers a doubled one.
    if (number === 1 && line.startsWith("\uFEFF")) line = line.slice(1);
    return { line, number };
  }
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      let start = 0;
      let end = value.indexOf(NEWLINE);
      while (end !== -1) {
        let text = value.slice(start, end);
        if (pieces.length > 0) {
          pieces.push(text);
          text = pieces.join("");
          pieces = [];
        }
        yield finish(text);
        start = end + 1;
        end = value.indexOf(NEWLINE, start);
      }
      if (start < value.length) pieces.push(start === 0 ? value : value.slice(start));
    }
    if (pieces.length > 0) yield finish(pieces.join(""));
  } finally {
    // Cancels the file stream (and closes the file) when the consumer stopped early.
    await reader.cancel().catch(() => {});
  }
}

/**
 * The read runtime of a file reader: opens `path`, parses its bytes with
 * `parse`, dead-letters what the parser rejects (with its origin and raw
 * text), and estimates the total from the bytes read for progress lines.
 */
export function fileReader(
  path: string,
  ctx: Pick<StageContext, "cwd" | "deadLetter">,
  parse: (
    stream: ReadableStream<Uint8Array>,
    source: string,
    onInvalid: InvalidHandler,
  ) => AsyncIterable<Item>,
): ReadRuntime {
  let estimate: SizeEstimate | undefined;
  function onInvalid(origin: Origin, reason: string, raw: string): void {
    ctx.deadLetter({ key: `${origin.source}#${origin.position}`, data: { raw }, origin }, reason);
  }
  return {
    async *read(): AsyncGenerator<Item> {
      const { source, stream, size } = await openSource(path, ctx.cwd);
      estimate = new SizeEstimate(size);
      for await (const item of parse(estimate.counted(stream), source, onInvalid)) {
        estimate.yielded();
        yield item;
      }
    },
    expected: () => estimate?.estimate(),
    estimated: true,
  };
}
