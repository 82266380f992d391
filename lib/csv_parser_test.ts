import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { CsvParser, type CsvRecord, CsvSyntaxError } from "./csv_parser.ts";

interface Parsed {
  records: CsvRecord[];
  error?: CsvSyntaxError;
}

/** Parses `text` fed in pieces cut at `cuts` (sorted offsets). */
function parseIn(
  text: string,
  cuts: number[],
  dialect: Partial<{ delimiter: string; trim: boolean; skipEmptyLines: boolean }> = {},
): Parsed {
  const parser = new CsvParser({
    delimiter: ",",
    quote: '"',
    trim: false,
    skipEmptyLines: true,
    ...dialect,
  });
  const records: CsvRecord[] = [];
  const bounds = [0, ...cuts, text.length];
  try {
    for (let i = 0; i + 1 < bounds.length; i++) {
      parser.push(text.slice(bounds[i], bounds[i + 1]), i + 2 === bounds.length, records);
    }
  } catch (error) {
    if (!(error instanceof CsvSyntaxError)) throw error;
    return { records, error };
  }
  return { records };
}

/** A deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomText(next: () => number, tokens: string[], length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += tokens[Math.floor(next() * tokens.length)];
  return text;
}

function randomCuts(next: () => number, length: number): number[] {
  const cuts = new Set<number>();
  const count = Math.floor(next() * 6);
  for (let i = 0; i < count; i++) cuts.add(Math.floor(next() * (length + 1)));
  return [...cuts].sort((a, b) => a - b);
}

Deno.test("CsvParser reads quoted fields, doubled quotes, quoted newlines and CRLF with start lines", () => {
  const text = 'id,note\r\n1,"a, b"\r\n2,"say ""hi"""\n3,"two\nlines"\n\n4,x\r\n5,"last"';
  const { records, error } = parseIn(text, []);
  assert.equal(error, undefined);
  assert.deepEqual(records, [
    { fields: ["id", "note"], line: 1 },
    { fields: ["1", "a, b"], line: 2 },
    { fields: ["2", 'say "hi"'], line: 3 },
    { fields: ["3", "two\nlines"], line: 4 },
    { fields: ["4", "x"], line: 7 },
    { fields: ["5", "last"], line: 8 },
  ]);
});

Deno.test("CsvParser names the line of each kind of malformed CSV", () => {
  assert.deepEqual(parseIn('a\n"x\ny', []).error?.message, "line 2: a quoted field is not closed");
  assert.deepEqual(
    parseIn('a\nb\nx"y', []).error?.message,
    "line 3: a quote inside an unquoted field",
  );
  assert.deepEqual(
    parseIn('a\n"multi\nline"z', []).error?.message,
    "line 3: unexpected character after a closing quote",
  );
  // The records before the bad one are complete.
  assert.deepEqual(parseIn('a\n"x\ny', []).records, [{ fields: ["a"], line: 1 }]);
});

Deno.test("CsvParser multi-character delimiters, trim and kept empty lines", () => {
  assert.deepEqual(parseIn("a||b||\n", [2], { delimiter: "||" }).records, [
    { fields: ["a", "b", ""], line: 1 },
  ]);
  assert.deepEqual(parseIn(' a ,\t"b" \n  \n', [], { trim: true }).records, [
    { fields: ["a", "b"], line: 1 },
  ]);
  assert.deepEqual(parseIn("a\n\r\n\nb", [], { skipEmptyLines: false }).records, [
    { fields: ["a"], line: 1 },
    { fields: [""], line: 2 },
    { fields: [""], line: 3 },
    { fields: ["b"], line: 4 },
  ]);
});

Deno.test("CsvParser gives the same records wherever the text is cut", () => {
  const next = random(7);
  const tokens = ["a", "bc", ",", '"', '""', "\n", "\r\n", "\r", " "];
  for (let round = 0; round < 3000; round++) {
    const text = randomText(next, tokens, 1 + Math.floor(next() * 14));
    const whole = parseIn(text, []);
    const cut = parseIn(text, randomCuts(next, text.length));
    assert.deepEqual(cut.records, whole.records, JSON.stringify(text));
    assert.equal(cut.error?.message, whole.error?.message, JSON.stringify(text));
  }
});

Deno.test("CsvParser agrees with csv-parse on random input, with and without trim", () => {
  const next = random(11);
  for (const trim of [false, true]) {
    // csv-parse also trims a lone "\r" after a closing quote; this parser keeps "\r" as data.
    const tokens = trim
      ? ["a", "b c", ",", '"', '""', "\n", "\r\n", " ", "\t"]
      : ["a", "b c", ",", '"', '""', "\n", "\r\n", "\r", " "];
    for (let round = 0; round < 3000; round++) {
      const text = randomText(next, tokens, 1 + Math.floor(next() * 12));
      // csv-parse quirk: with trim it reads `"" ""` as one empty field (`"a" "b"` is an error).
      if (trim && /""[ \t]+"/.test(text)) continue;
      const ours = parseIn(text, randomCuts(next, text.length), { trim });
      let theirs: string[][] | undefined;
      try {
        theirs = parse(text, {
          relax_column_count: true,
          record_delimiter: ["\r\n", "\n"],
          skip_empty_lines: true,
          trim,
          bom: false,
        });
      } catch {
        theirs = undefined;
      }
      const label = `${JSON.stringify(text)} trim=${trim}`;
      if (theirs === undefined) {
        assert.ok(ours.error, `csv-parse rejects ${label}, this parser does not`);
      } else {
        assert.equal(ours.error, undefined, `${label}: ${ours.error?.message}`);
        assert.deepEqual(ours.records.map((r) => r.fields), theirs, label);
      }
    }
  }
});
