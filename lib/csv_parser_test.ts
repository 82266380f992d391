import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { type CsvEntry, CsvParser, CsvSyntaxError } from "./csv_parser.ts";

interface Parsed {
  /** Records and malformed records, in order. */
  records: CsvEntry[];
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
  const records: CsvEntry[] = [];
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

Deno.test("CsvParser throws naming the line of a quoted field not closed by the end", () => {
  assert.deepEqual(parseIn('a\n"x\ny', []).error?.message, "line 2: a quoted field is not closed");
  // The records before the bad one are complete.
  assert.deepEqual(parseIn('a\n"x\ny', []).records, [{ fields: ["a"], line: 1 }]);
  assert.deepEqual(parseIn('a\n2,x"y\n"x\ny', []), {
    records: [
      { fields: ["a"], line: 1 },
      { fields: null, line: 2, reason: "a quote inside an unquoted field", raw: '2,x"y' },
    ],
    error: new CsvSyntaxError(3, "a quoted field is not closed"),
  });
});

Deno.test("CsvParser hands out a malformed record with its line and raw text and goes on at the next line", () => {
  const text = 'id,v\n1,a\n2,b"x\n3,c\r\n4,"d"x,"more"\r\n5,"e"\n6,f"';
  for (const cuts of [[], [11], [12, 13, 14, 15, 16], [28, 29], [35]]) {
    const { records, error } = parseIn(text, cuts);
    assert.equal(error, undefined);
    assert.deepEqual(records, [
      { fields: ["id", "v"], line: 1 },
      { fields: ["1", "a"], line: 2 },
      { fields: null, line: 3, reason: "a quote inside an unquoted field", raw: '2,b"x' },
      { fields: ["3", "c"], line: 4 },
      {
        fields: null,
        line: 5,
        reason: "unexpected character after a closing quote",
        raw: '4,"d"x,"more"',
      },
      { fields: ["5", "e"], line: 6 },
      // At the end of the text, without a newline.
      { fields: null, line: 7, reason: "a quote inside an unquoted field", raw: '6,f"' },
    ], `cuts ${cuts}`);
  }
});

Deno.test("CsvParser names the line of the error inside a multi-line record and keeps counting lines", () => {
  const { records, error } = parseIn('a\n"multi\nline"z,"x\ny"\n"two\nlines",b"\nlast', []);
  assert.equal(error, undefined);
  assert.deepEqual(records, [
    { fields: ["a"], line: 1 },
    {
      fields: null,
      line: 2,
      reason: "unexpected character after a closing quote (line 3)",
      raw: '"multi\nline"z,"x',
    },
    // Resynchronised at the end of line 3: what follows is read as a new record.
    { fields: null, line: 4, reason: "a quote inside an unquoted field", raw: 'y"' },
    {
      fields: null,
      line: 5,
      reason: "a quote inside an unquoted field (line 6)",
      raw: '"two\nlines",b"',
    },
    { fields: ["last"], line: 7 },
  ]);
  // With trim, blanks between a closing quote and the next character are allowed, others are not.
  assert.deepEqual(parseIn('"a" ,"b" x\n"c"\t\n', [], { trim: true }).records, [
    {
      fields: null,
      line: 1,
      reason: "unexpected character after a closing quote",
      raw: '"a" ,"b" x',
    },
    { fields: ["c"], line: 2 },
  ]);
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
      const invalid = ours.records.filter((r) => r.fields === null);
      if (theirs === undefined) {
        assert.ok(
          ours.error !== undefined || invalid.length > 0,
          `csv-parse rejects ${label}, this parser does not`,
        );
      } else {
        assert.equal(ours.error, undefined, `${label}: ${ours.error?.message}`);
        assert.deepEqual(invalid, [], label);
        assert.deepEqual(ours.records.map((r) => r.fields), theirs, label);
      }
    }
  }
});

Deno.test("CsvParser reads the rows around malformed lines as csv-parse reads them without those lines", () => {
  const next = random(5);
  const fieldTokens = ["a", "b c", '"x,y"', '""', '"q""q"', "", '"two\nlines"'];
  const badTokens = ['b"x', '"b"x', '"b" x', 'x"', '"b""c"d'];
  const field = (tokens: string[]) => tokens[Math.floor(next() * tokens.length)];
  for (let round = 0; round < 500; round++) {
    const good: string[] = [];
    const all: string[] = [];
    const bad: number[] = [];
    const count = 1 + Math.floor(next() * 8);
    for (let row = 0; row < count; row++) {
      const isBad = next() < 0.3;
      // A malformed line ends its record, so a bad row has no quoted newline (the one field that
      // could hold one goes into good rows only).
      const tokens = isBad ? fieldTokens.slice(0, -1) : fieldTokens;
      const fields = Array.from({ length: 1 + Math.floor(next() * 3) }, () => field(tokens));
      if (isBad) {
        fields.splice(Math.floor(next() * (fields.length + 1)), 0, field(badTokens));
        bad.push(all.length);
        all.push(fields.join(","));
      } else {
        good.push(fields.join(","));
        all.push(fields.join(","));
      }
    }
    const eol = next() < 0.5 ? "\n" : "\r\n";
    const text = all.join(eol);
    const label = JSON.stringify(text);
    const ours = parseIn(text, randomCuts(next, text.length));
    assert.equal(ours.error, undefined, label);
    const theirs = parse(good.join(eol), {
      relax_column_count: true,
      record_delimiter: ["\r\n", "\n"],
      skip_empty_lines: true,
      bom: false,
    });
    assert.deepEqual(
      ours.records.filter((r) => r.fields !== null).map((r) => r.fields),
      theirs,
      label,
    );
    assert.deepEqual(
      ours.records.filter((r) => r.fields === null).map((r) => r.fields === null && r.raw),
      bad.map((i) => all[i]),
      label,
    );
  }
});
