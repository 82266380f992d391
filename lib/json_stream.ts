/**
 * Streaming JSON readers: the elements of an array (at the top level or at a
 * dotted path inside an object), or JSON Lines. Neither holds the document in
 * memory; a 1 GB file streams.
 * @module
 */
import { JSONParser, TokenType } from "@streamparser/json";
import type { ParsedElementInfo, ParsedTokenInfo } from "@streamparser/json";
import { splitPath } from "./paths.ts";
import { type InvalidHandler, lines, rawExcerpt, withoutBom } from "./source.ts";
import type { Item, Origin } from "./stage.ts";

/** How {@linkcode jsonItems} reads a stream. */
export interface JsonItemsOptions {
  /** The path as the config gave it; origins and messages name it. */
  source: string;
  /**
   * `array`: the elements of a JSON array; `lines`: one object per line;
   * `auto`: `array` when the document starts with `[` (or `{` and `path` is
   * set), JSON Lines otherwise.
   */
  format: "array" | "lines" | "auto";
  /** Dotted path to the array inside an object, e.g. `data.tickets`. */
  path?: string;
  /** Receives records that are not JSON objects (they are not yielded). */
  onInvalid?: InvalidHandler;
  /** Stops reading when aborted. */
  signal?: AbortSignal;
}

/**
 * Yields one item per JSON object in the stream. Positions are `line N` for
 * JSON Lines and `line L, index N` for array elements (0-based index). A
 * syntax error in an array throws after the records before it were yielded:
 * `Cannot read "x.json": line 12: unexpected ","`.
 */
export async function* jsonItems(
  stream: ReadableStream<Uint8Array>,
  opts: JsonItemsOptions,
): AsyncGenerator<Item> {
  const { first, chunks } = await peek(stream);
  const format = opts.format === "auto"
    ? (first === "[" || (first === "{" && opts.path !== undefined) ? "array" : "lines")
    : opts.format;
  if (format === "array") yield* arrayItems(chunks, opts);
  else yield* lineItems(chunks, opts, opts.format === "auto" && first === "{");
}

/** Reads until the first significant byte (after a BOM); replays what it read. */
async function peek(
  stream: ReadableStream<Uint8Array>,
): Promise<{ first: string | undefined; chunks: AsyncGenerator<Uint8Array> }> {
  const source = withoutBom(stream);
  const head: Uint8Array[] = [];
  let first: string | undefined;
  while (first === undefined) {
    const next = await source.next();
    if (next.done) break;
    head.push(next.value);
    const index = next.value.findIndex((byte) => !WHITESPACE.has(byte));
    if (index !== -1) first = String.fromCharCode(next.value[index]);
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    try {
      yield* head;
      head.length = 0;
      while (true) {
        const next = await source.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Closes the file when the consumer stopped early.
      await source.return(undefined);
    }
  }
  return { first, chunks: replay() };
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

async function* lineItems(
  chunks: AsyncGenerator<Uint8Array>,
  opts: JsonItemsOptions,
  maybeDocument: boolean,
): AsyncGenerator<Item> {
  const { source } = opts;
  let firstLine = true;
  for await (const { line, number } of lines(ReadableStream.from(chunks))) {
    if (opts.signal?.aborted) return;
    if (line.trim() === "") continue;
    const position = `line ${number}`;
    const origin: Origin = { source, position };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      // A pretty-printed object read as JSON Lines would dead-letter every line.
      if (maybeDocument && firstLine) {
        throw new Error(
          `Cannot read "${source}": ${position}: not a JSON object on one line; for a JSON document ` +
            `(not JSON Lines) set "at" to the path of its array, e.g. "tickets"`,
        );
      }
      opts.onInvalid?.(origin, `invalid JSON: ${(error as Error).message}`, rawExcerpt(line));
      continue;
    } finally {
      firstLine = false;
    }
    if (!isObject(value)) {
      opts.onInvalid?.(origin, `expected a JSON object, got ${describe(value)}`, rawExcerpt(line));
      continue;
    }
    yield { key: `${source}#${position}`, data: value, origin };
  }
}

/** A container the tokenizer is inside, tracked to find element starts and the target array. */
interface Frame {
  array: boolean;
  /** Current key (objects). */
  key: string;
  /** Whether the next string is a key (objects). */
  expectKey: boolean;
  /** Index of the current element (arrays). */
  index: number;
  /** Whether this is the array whose elements are read. */
  target: boolean;
}

/** A problem with the document's shape (not a syntax error), already worded. */
class ShapeError extends Error {}

type Event = { item: Item } | { invalid: [Origin, string, string] };

async function* arrayItems(
  chunks: AsyncGenerator<Uint8Array>,
  opts: JsonItemsOptions,
): AsyncGenerator<Item> {
  const { source } = opts;
  const segments = opts.path === undefined ? [] : splitPath(opts.path);
  const where = opts.path === undefined ? "the top level" : `"${opts.path}"`;
  const parser = new JSONParser({ paths: [["$", ...segments, "*"].join(".")], keepStack: false });
  const counter = new LineCounter();
  const frames: Frame[] = [];
  const events: Event[] = [];
  let found = false;
  let sawToken = false;
  let lastOffset = 0;
  let elementIndex = 0;
  let elementLine = 1;

  function atTarget(): boolean {
    return frames.every((frame, i) =>
      (frame.array ? String(frame.index) : frame.key) === segments[i]
    );
  }

  /** Notes where an element of the target array starts; returns whether the value is that array. */
  function valueStart(info: ParsedTokenInfo): boolean {
    const top = frames[frames.length - 1];
    if (top?.target) {
      elementIndex = top.index;
      elementLine = counter.lineAt(info.offset);
      return false;
    }
    if (frames.length !== segments.length || !atTarget()) return false;
    if (info.token !== TokenType.LEFT_BRACKET) {
      throw new ShapeError(
        `line ${counter.lineAt(info.offset)}: expected an array at ${where}, got ${
          tokenKind(info.token)
        }`,
      );
    }
    found = true;
    return true;
  }

  parser.onToken = function track(info: ParsedTokenInfo): void {
    sawToken = true;
    lastOffset = info.offset;
    const top = frames[frames.length - 1];
    switch (info.token) {
      case TokenType.STRING:
        if (top && !top.array && top.expectKey) {
          top.key = String(info.value);
          top.expectKey = false;
        } else {
          valueStart(info);
        }
        return;
      case TokenType.LEFT_BRACE:
        valueStart(info);
        frames.push({ array: false, key: "", expectKey: true, index: 0, target: false });
        return;
      case TokenType.LEFT_BRACKET: {
        const target = valueStart(info);
        frames.push({ array: true, key: "", expectKey: false, index: 0, target });
        return;
      }
      case TokenType.RIGHT_BRACE:
      case TokenType.RIGHT_BRACKET:
        frames.pop();
        return;
      case TokenType.COMMA:
        if (top?.array) top.index++;
        else if (top) top.expectKey = true;
        return;
      case TokenType.COLON:
      case TokenType.SEPARATOR:
        return;
      default:
        valueStart(info);
    }
  };

  parser.onValue = function collect({ value }: ParsedElementInfo): void {
    const position = `line ${elementLine}, index ${elementIndex}`;
    const origin: Origin = { source, position };
    if (isObject(value)) {
      events.push({ item: { key: `${source}#${position}`, data: value, origin } });
    } else {
      const reason = `expected a JSON object, got ${describe(value)}`;
      events.push({ invalid: [origin, reason, rawExcerpt(JSON.stringify(value))] });
    }
  };

  /** Hands over what the last write produced, in document order. */
  function* flush(): Generator<Item> {
    while (events.length > 0) {
      const event = events.shift()!;
      if ("item" in event) yield event.item;
      else opts.onInvalid?.(...event.invalid);
    }
  }

  function readError(error: unknown): Error {
    const detail = error instanceof ShapeError ? error.message : syntaxDetail(error);
    return new Error(`Cannot read "${source}": ${detail}`, { cause: error });
  }

  function syntaxDetail(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    const tokenizer =
      /^Unexpected "([\s\S]*)" at chunk position "\d+" \(absolute position "(\d+)"\)/
        .exec(message);
    if (tokenizer) {
      return `line ${counter.lineAt(Number(tokenizer[2]))}: unexpected ${
        JSON.stringify(tokenizer[1])
      }`;
    }
    const tokenParser = /^Unexpected [A-Z_]+ \(([\s\S]*)\) in state/.exec(message);
    if (tokenParser) return `line ${counter.lineAt(lastOffset)}: unexpected ${tokenParser[1]}`;
    if (/ended in (the middle of a token|mid-parsing)/.test(message)) {
      return `line ${counter.lineAt(Infinity)}: unexpected end of file`;
    }
    return `line ${counter.lineAt(lastOffset)}: ${message}`;
  }

  for await (const chunk of chunks) {
    if (opts.signal?.aborted) return;
    counter.push(chunk);
    try {
      parser.write(chunk);
    } catch (error) {
      yield* flush();
      throw readError(error);
    }
    yield* flush();
  }
  try {
    if (!parser.isEnded) parser.end();
  } catch (error) {
    yield* flush();
    throw readError(error);
  }
  yield* flush();
  if (!found) {
    throw new Error(
      sawToken
        ? `Cannot read "${source}": found no array at ${where}`
        : `Cannot read "${source}": the file is empty`,
    );
  }
}

/**
 * Line numbers of byte offsets in a stream seen chunk by chunk. Offsets are
 * asked in increasing order, so each byte is scanned once.
 */
class LineCounter {
  #chunk: Uint8Array = new Uint8Array(0);
  #chunkStart = 0;
  #scanned = 0;
  #line = 1;

  push(chunk: Uint8Array): void {
    this.lineAt(Infinity);
    this.#chunkStart += this.#chunk.length;
    this.#chunk = chunk;
  }

  /** The 1-based line of `offset` (the current line for offsets already passed). */
  lineAt(offset: number): number {
    const end = Math.min(offset, this.#chunkStart + this.#chunk.length);
    const stop = end - this.#chunkStart;
    let i = this.#scanned - this.#chunkStart;
    while (i < stop) {
      const newline = this.#chunk.indexOf(0x0a, i);
      if (newline === -1 || newline >= stop) break;
      this.#line++;
      i = newline + 1;
    }
    if (end > this.#scanned) this.#scanned = end;
    return this.#line;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

function tokenKind(token: TokenType): string {
  switch (token) {
    case TokenType.LEFT_BRACE:
      return "an object";
    case TokenType.STRING:
      return "a string";
    case TokenType.NUMBER:
      return "a number";
    case TokenType.TRUE:
    case TokenType.FALSE:
      return "a boolean";
    case TokenType.NULL:
      return "null";
    default:
      return JSON.stringify(TokenType[token]);
  }
}
