/**
 * An incremental RFC 4180 parser over decoded text: quoted fields with
 * delimiters, doubled quotes and newlines; `\r\n` or `\n` between records (a
 * lone `\r` is data); optional trimming of spaces and tabs around fields.
 *
 * Written for speed on exports that quote every value: a quoted field is
 * found with `indexOf` and sliced out whole, so the per-character work of a
 * general state machine is left for unquoted fields. Each record carries the
 * line it starts on, counting `\n` (quoted newlines included).
 *
 * A malformed record (a quote inside an unquoted field, a character other
 * than a delimiter or a line end after a closing quote) does not stop the
 * parse: it comes out as a {@linkcode CsvInvalid} with its raw text, and
 * parsing resumes on the line after the one with the error. Only a quoted
 * field still open at the end of the text throws {@linkcode CsvSyntaxError}:
 * it has swallowed everything after its opening quote, so there is no line
 * to resume on that is known to be right.
 * @module
 */

/** The dialect of {@linkcode CsvParser}. */
export interface CsvDialect {
  delimiter: string;
  /** One character. */
  quote: string;
  trim: boolean;
  skipEmptyLines: boolean;
}

/** One parsed record and the 1-based line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * A malformed record: the 1-based line it starts on, a plain description of
 * the problem (naming the line of the problem when that is a later one), and
 * its raw text from its start to the end of the line with the problem (no
 * line ending). `fields` is null, which tells it from a {@linkcode CsvRecord}.
 */
export interface CsvInvalid {
  fields: null;
  line: number;
  reason: string;
  raw: string;
}

/** What {@linkcode CsvParser.push} hands out, in file order. */
export type CsvEntry = CsvRecord | CsvInvalid;

/** Malformed CSV: the 1-based line where the problem is and a plain description. */
export class CsvSyntaxError extends Error {
  constructor(readonly line: number, readonly detail: string) {
    super(`line ${line}: ${detail}`);
    this.name = "CsvSyntaxError";
  }
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;

/** Returned by the record parser when the buffer ends inside a record. */
const INCOMPLETE = -1;

/** Parses chunks of text as they arrive; see the module doc. */
export class CsvParser {
  readonly #delimiter: string;
  readonly #delimiterCode: number;
  readonly #quote: string;
  readonly #quoteCode: number;
  readonly #trim: boolean;
  readonly #skipEmptyLines: boolean;
  #buffer = "";
  /** Line of the first character of the buffer. */
  #line = 1;
  /**
   * Length the buffer must reach before an incomplete record is parsed
   * again: doubling keeps a huge field spread over many chunks linear.
   */
  #retryAt = 0;
  // Set by #record for the record it returns.
  #fields: string[] = [];
  #newlines = 0;
  #quoted = false;
  /** Set by #record (with #raw) when the record it consumed is malformed. */
  #reason: string | undefined = undefined;
  #raw = "";

  constructor(dialect: CsvDialect) {
    if (dialect.quote.length !== 1) throw new Error("The quote must be one character");
    if (dialect.delimiter.length === 0) throw new Error("The delimiter must not be empty");
    this.#delimiter = dialect.delimiter;
    this.#delimiterCode = dialect.delimiter.charCodeAt(0);
    this.#quote = dialect.quote;
    this.#quoteCode = dialect.quote.charCodeAt(0);
    this.#trim = dialect.trim;
    this.#skipEmptyLines = dialect.skipEmptyLines;
  }

  /**
   * Adds `text` and appends the records it completes to `out`, malformed ones
   * as {@linkcode CsvInvalid}; `final` says no more text follows, so a last
   * record without a newline ends there. Throws {@linkcode CsvSyntaxError}
   * for a quoted field not closed by the end of the text; the records before
   * it are in `out` by then.
   */
  push(text: string, final: boolean, out: CsvEntry[]): void {
    const buffer = this.#buffer.length === 0 ? text : this.#buffer + text;
    this.#buffer = buffer;
    if (!final && buffer.length < this.#retryAt) return;
    const length = buffer.length;
    let position = 0;
    while (position < length) {
      const code = buffer.charCodeAt(position);
      // An empty line: no record when skipping them, else one empty field.
      if (code === LF || (code === CR && buffer.charCodeAt(position + 1) === LF)) {
        position += code === LF ? 1 : 2;
        if (!this.#skipEmptyLines) out.push({ fields: [""], line: this.#line });
        this.#line++;
        continue;
      }
      if (code === CR && position + 1 === length && !final) break;
      const end = this.#record(buffer, position, final);
      if (end === INCOMPLETE) break;
      position = end;
      const ended = buffer.charCodeAt(end - 1) === LF;
      const reason = this.#reason;
      if (reason !== undefined) {
        out.push({ fields: null, line: this.#line, reason, raw: this.#raw });
        this.#reason = undefined;
        this.#raw = "";
      } else {
        const fields = this.#fields;
        // With trim, a line of blanks is an empty line too.
        const blank = this.#trim && !this.#quoted && fields.length === 1 && fields[0] === "";
        if (!(this.#skipEmptyLines && blank)) {
          out.push({ fields, line: this.#line });
        }
      }
      this.#line += this.#newlines + (ended ? 1 : 0);
    }
    // With `final` every record ends at the end of the text: nothing is left.
    this.#buffer = buffer.slice(position);
    this.#retryAt = this.#buffer.length * 2;
  }

  /**
   * Parses the record starting at `start` into #fields (and its quoted
   * newlines into #newlines); returns the position after its terminator, or
   * INCOMPLETE when the buffer ends first and more text may follow. A
   * malformed record sets #reason instead (see #malformed).
   */
  #record(text: string, start: number, final: boolean): number {
    const length = text.length;
    const fields: string[] = [];
    let newlines = 0;
    let quoted = false;
    let i = start;
    while (true) {
      if (this.#trim) i = skipBlanks(text, i);
      let value: string;
      if (i < length && text.charCodeAt(i) === this.#quoteCode) {
        const openLine = this.#line + newlines;
        quoted = true;
        let from = i + 1;
        value = "";
        while (true) {
          const close = text.indexOf(this.#quote, from);
          if (close === -1 || (close + 1 === length && !final)) {
            if (final) throw new CsvSyntaxError(openLine, "a quoted field is not closed");
            return INCOMPLETE;
          }
          if (text.charCodeAt(close + 1) === this.#quoteCode) {
            value += text.slice(from, close + 1);
            from = close + 2;
            continue;
          }
          value += text.slice(from, close);
          i = close + 1;
          break;
        }
        newlines += countNewlines(value);
        if (this.#trim) i = skipBlanks(text, i);
        if (i >= length) {
          if (!final) return INCOMPLETE;
          fields.push(value);
          break;
        }
        const code = text.charCodeAt(i);
        if (code === this.#delimiterCode && text.startsWith(this.#delimiter, i)) {
          fields.push(value);
          i += this.#delimiter.length;
          continue;
        }
        if (code === LF) {
          fields.push(value);
          i++;
          break;
        }
        if (code === CR) {
          if (i + 1 === length && !final) return INCOMPLETE;
          if (text.charCodeAt(i + 1) === LF) {
            fields.push(value);
            i += 2;
            break;
          }
        }
        return this.#malformed(
          text,
          start,
          i,
          final,
          newlines,
          "unexpected character after a closing quote",
        );
      }
      // Unquoted: up to the delimiter or the end of the line.
      let j = i;
      let terminator = 0; // 0: end of text, 1: delimiter, 2: \n, 3: \r\n
      while (j < length) {
        const code = text.charCodeAt(j);
        if (code === LF) {
          terminator = 2;
          break;
        }
        if (code === CR) {
          if (j + 1 === length && !final) return INCOMPLETE;
          if (text.charCodeAt(j + 1) === LF) {
            terminator = 3;
            break;
          }
        } else if (code === this.#delimiterCode && text.startsWith(this.#delimiter, j)) {
          terminator = 1;
          break;
        } else if (code === this.#quoteCode) {
          return this.#malformed(
            text,
            start,
            j,
            final,
            newlines,
            "a quote inside an unquoted field",
          );
        }
        j++;
      }
      if (terminator === 0 && !final) return INCOMPLETE;
      value = text.slice(i, j);
      fields.push(this.#trim ? trimBlanks(value) : value);
      if (terminator === 1) {
        i = j + this.#delimiter.length;
        continue;
      }
      i = terminator === 0 ? j : j + terminator - 1;
      break;
    }
    this.#fields = fields;
    this.#newlines = newlines;
    this.#quoted = quoted;
    return i;
  }

  /**
   * Ends the malformed record starting at `start` at the end of the line
   * holding its error (at `at`, after `newlines` quoted newlines): sets
   * #reason, #raw and #newlines and returns the position after that line's
   * `\n`, or INCOMPLETE when the line may continue in text not yet pushed.
   */
  #malformed(
    text: string,
    start: number,
    at: number,
    final: boolean,
    newlines: number,
    detail: string,
  ): number {
    const newline = text.indexOf("\n", at);
    if (newline === -1 && !final) return INCOMPLETE;
    let end = newline === -1 ? text.length : newline;
    const next = newline === -1 ? end : newline + 1;
    if (newline !== -1 && end > start && text.charCodeAt(end - 1) === CR) end--;
    this.#reason = newlines === 0 ? detail : `${detail} (line ${this.#line + newlines})`;
    this.#raw = text.slice(start, end);
    this.#newlines = newlines;
    return next;
  }
}

function skipBlanks(text: string, i: number): number {
  while (true) {
    const code = text.charCodeAt(i);
    if (code !== SPACE && code !== TAB) return i;
    i++;
  }
}

function trimBlanks(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === SPACE || value.charCodeAt(start) === TAB)) {
    start++;
  }
  while (
    end > start && (value.charCodeAt(end - 1) === SPACE || value.charCodeAt(end - 1) === TAB)
  ) {
    end--;
  }
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) count++;
  return count;
}
