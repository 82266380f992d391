import assert from "node:assert/strict";
import { bytesOf, parseAll, type ParseOutcome, streamOf } from "../tests/harness.ts";
import { checkCsvOptions, csvItems, type CsvItemsOptions, csvOptionsSchema } from "./csv.ts";
import { MissingError } from "./errors.ts";
import type { Item } from "./stage.ts";

function read(
  text: string,
  opts: Omit<CsvItemsOptions, "source" | "onInvalid"> = {},
  size?: number,
): Promise<ParseOutcome> {
  return readStream(streamOf(text, size), opts);
}

function readStream(
  stream: ReadableStream<Uint8Array>,
  opts: Omit<CsvItemsOptions, "source" | "onInvalid"> = {},
): Promise<ParseOutcome> {
  return parseAll((onInvalid) => csvItems(stream, { source: "in.csv", ...opts, onInvalid }));
}

function rows(items: Item[]): [string, Record<string, unknown>][] {
  return items.map((item) => [item.origin.position, item.data]);
}

Deno.test("csvItems() names fields from the header row and keeps values as strings", async () => {
  const { items, invalid, error } = await read("id,name,qty\n1,Alpha,10\n2,Beta,\n");
  assert.equal(error, undefined);
  assert.deepEqual(invalid, []);
  assert.deepEqual(items, [
    {
      key: "in.csv#line 2",
      data: { id: "1", name: "Alpha", qty: "10" },
      origin: { source: "in.csv", position: "line 2" },
    },
    {
      key: "in.csv#line 3",
      data: { id: "2", name: "Beta", qty: "" },
      origin: { source: "in.csv", position: "line 3" },
    },
  ]);
});

const TRICKY = "\uFEFFid,comment,n\r\n" +
  '1,"Smith, John",a\r\n' +
  '2,"He said ""dig here""",b\r\n' +
  "\r\n" +
  '3,"line one\r\nline two\nline three",c\r\n' +
  "4,plain,d\n" +
  '5,"",e';

Deno.test("csvItems() handles BOM, CRLF, quoted commas, doubled quotes and quoted newlines", async () => {
  const { items, invalid, error } = await read(TRICKY);
  assert.equal(error, undefined);
  assert.deepEqual(invalid, []);
  assert.deepEqual(rows(items), [
    ["line 2", { id: "1", comment: "Smith, John", n: "a" }],
    ["line 3", { id: "2", comment: 'He said "dig here"', n: "b" }],
    ["line 5", { id: "3", comment: "line one\r\nline two\nline three", n: "c" }],
    ["line 8", { id: "4", comment: "plain", n: "d" }],
    ["line 9", { id: "5", comment: "", n: "e" }],
  ]);
});

Deno.test("csvItems() gives the same records and lines whatever the chunk size", async () => {
  const whole = await read(TRICKY);
  for (const size of [1, 2, 3, 5, 11]) {
    assert.deepEqual(await read(TRICKY, {}, size), whole, `chunk size ${size}`);
  }
});

Deno.test("csvItems() reports a row with the wrong column count with its line and goes on", async () => {
  const text = 'a,b,c\n1,2,3\n"multi\nline",5\n7,8,9,10\n11,12,13\n';
  const { items, invalid, error } = await read(text);
  assert.equal(error, undefined);
  assert.deepEqual(rows(items), [
    ["line 2", { a: "1", b: "2", c: "3" }],
    ["line 6", { a: "11", b: "12", c: "13" }],
  ]);
  assert.deepEqual(invalid, [
    {
      origin: { source: "in.csv", position: "line 3" },
      reason: "expected 3 columns, got 2",
      raw: "multi\nline,5",
    },
    {
      origin: { source: "in.csv", position: "line 5" },
      reason: "expected 3 columns, got 4",
      raw: "7,8,9,10",
    },
  ]);
});

Deno.test("csvItems() with relaxColumnCount leaves missing columns out and ignores extra ones", async () => {
  const { items, invalid } = await read("a,b,c\n1,2\n3,4,5,6\n", { relaxColumnCount: true });
  assert.deepEqual(invalid, []);
  assert.deepEqual(rows(items), [
    ["line 2", { a: "1", b: "2" }],
    ["line 3", { a: "3", b: "4", c: "5" }],
  ]);
});

Deno.test("csvItems() turns empty fields into null with emptyAs null", async () => {
  const { items } = await read('a,b,c\n1,,""\n', { emptyAs: "null" });
  assert.deepEqual(rows(items), [["line 2", { a: "1", b: null, c: null }]]);
});

Deno.test("csvItems() reads headerless files with explicit columns, and columns override a header", async () => {
  const headerless = await read("1;x\n2;y\n", {
    header: false,
    columns: ["id", "v"],
    delimiter: ";",
  });
  assert.deepEqual(rows(headerless.items), [
    ["line 1", { id: "1", v: "x" }],
    ["line 2", { id: "2", v: "y" }],
  ]);
  const renamed = await read("ID\tValue\n1\tx\n", { columns: ["id", "v"], delimiter: "\t" });
  assert.deepEqual(rows(renamed.items), [["line 2", { id: "1", v: "x" }]]);
});

Deno.test("csvItems() trims fields when asked and can keep empty lines", async () => {
  const trimmed = await read("a , b\n  1 ,  two  \n", { trim: true });
  assert.deepEqual(rows(trimmed.items), [["line 2", { a: "1", b: "two" }]]);

  const kept = await read("a\n1\n\n2\n", { skipEmptyLines: false });
  assert.deepEqual(rows(kept.items), [
    ["line 2", { a: "1" }],
    ["line 3", { a: "" }],
    ["line 4", { a: "2" }],
  ]);
});

Deno.test("csvItems() with bom false keeps the BOM in the first column name", async () => {
  const { items } = await read("\uFEFFa,b\n1,2\n", { bom: false });
  assert.deepEqual(Object.keys(items[0].data), ["\uFEFFa", "b"]);
});

Deno.test("csvItems() throws naming the file and line for an unclosed quote, after the rows before it", async () => {
  const { items, error } = await read('a,b\n1,2\n3,"open\n4,5\n');
  assert.deepEqual(rows(items), [["line 2", { a: "1", b: "2" }]]);
  assert.equal(error?.message, 'Cannot read "in.csv": line 3: a quoted field is not closed');
});

Deno.test("csvItems() dead-letters a malformed row with its line, reason and raw text, and reads on", async () => {
  const text = 'id,v\n1,a\n2,b"x\n3,c\r\n4,"d"x\r\n5,"multi\nline"e\n6,f\n';
  for (const size of [1, 3, 7, 65536]) {
    const { items, invalid, error } = await read(text, {}, size);
    assert.equal(error, undefined, `chunk size ${size}`);
    assert.deepEqual(rows(items), [
      ["line 2", { id: "1", v: "a" }],
      ["line 4", { id: "3", v: "c" }],
      ["line 8", { id: "6", v: "f" }],
    ], `chunk size ${size}`);
    assert.deepEqual(invalid, [
      {
        origin: { source: "in.csv", position: "line 3" },
        reason: "invalid CSV: a quote inside an unquoted field",
        raw: '2,b"x',
      },
      {
        origin: { source: "in.csv", position: "line 5" },
        reason: "invalid CSV: unexpected character after a closing quote",
        raw: '4,"d"x',
      },
      {
        origin: { source: "in.csv", position: "line 6" },
        reason: "invalid CSV: unexpected character after a closing quote (line 7)",
        raw: '5,"multi\nline"e',
      },
    ], `chunk size ${size}`);
  }
});

Deno.test("csvItems() keeps at most 1000 characters of a malformed row", async () => {
  const { invalid } = await read(`a\nx"${"y".repeat(3000)}\n`);
  assert.equal(invalid.length, 1);
  assert.equal(invalid[0].raw.length, 1000);
});

Deno.test("csvItems() stops at a malformed header row that names the columns, skips one replaced by columns", async () => {
  const named = await read('id,na"me\n1,a\n');
  assert.deepEqual([named.items, named.invalid], [[], []]);
  assert.equal(
    named.error?.message,
    'Cannot read "in.csv": line 1: the header row: invalid CSV: a quote inside an unquoted field',
  );
  const replaced = await read('id,na"me\n1,a\n', { columns: ["id", "name"] });
  assert.equal(replaced.error, undefined);
  assert.deepEqual(rows(replaced.items), [["line 2", { id: "1", name: "a" }]]);
});

const FFFD_REASON = "contains U+FFFD: invalid UTF-8 in the input, or a replacement character";

Deno.test("csvItems() dead-letters a row with invalid UTF-8 (U+FFFD) and reads on", async () => {
  // 0xff never occurs in UTF-8; 0xc3 starts a two-byte sequence that "," does not continue.
  const parts = ["id,v\n1,café\n2,", [0xff], "x\n3,ok\n4,", [0xc3], ",\n5,\uFFFD\n6,ü"];
  for (const size of [1, 2, 5, 65536]) {
    const { items, invalid, error } = await readStream(bytesOf(parts, size), {
      relaxColumnCount: true,
    });
    assert.equal(error, undefined, `chunk size ${size}`);
    assert.deepEqual(rows(items), [
      ["line 2", { id: "1", v: "café" }],
      ["line 4", { id: "3", v: "ok" }],
      ["line 7", { id: "6", v: "ü" }],
    ], `chunk size ${size}`);
    assert.deepEqual(invalid, [
      { origin: { source: "in.csv", position: "line 3" }, reason: FFFD_REASON, raw: "2,\uFFFDx" },
      { origin: { source: "in.csv", position: "line 5" }, reason: FFFD_REASON, raw: "4,\uFFFD," },
      // A replacement character in valid UTF-8 cannot be told apart after decoding.
      { origin: { source: "in.csv", position: "line 6" }, reason: FFFD_REASON, raw: "5,\uFFFD" },
    ], `chunk size ${size}`);
  }
});

Deno.test("csvItems() stops at a header row with invalid UTF-8 when it names the columns", async () => {
  const { items, error } = await readStream(bytesOf(["id,n", [0xff], "\n1,2\n"]));
  assert.deepEqual(items, []);
  assert.equal(error?.message, `Cannot read "in.csv": line 1: the header row: ${FFFD_REASON}`);
});

Deno.test("csvItems() rejects duplicate header names and a missing columns list", async () => {
  const duplicate = await read("a,b,a\n1,2,3\n");
  assert.equal(duplicate.error?.message, 'Cannot read "in.csv": line 1: duplicate column name "a"');
  const headerless = await read("1,2\n", { header: false });
  assert.equal(
    headerless.error?.message,
    'Cannot read "in.csv": "columns" is required when "header" is false',
  );
});

Deno.test("csvItems() yields nothing for an empty file or a header alone", async () => {
  assert.deepEqual((await read("")).items, []);
  assert.deepEqual((await read("a,b\n")).items, []);
});

Deno.test("csvItems() cancels the source when the consumer stops early", async () => {
  let cancelled = false;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("n\n"));
    },
    pull(controller) {
      controller.enqueue(new TextEncoder().encode(`${i++}\n`));
    },
    cancel() {
      cancelled = true;
    },
  });
  const seen: unknown[] = [];
  for await (const item of csvItems(stream, { source: "in.csv" })) {
    seen.push(item.data.n);
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, ["0", "1", "2"]);
  assert.equal(cancelled, true);
});

Deno.test("csvOptionsSchema has the documented defaults and is strict", () => {
  assert.deepEqual(csvOptionsSchema.parse({}), {
    delimiter: ",",
    header: true,
    bom: true,
    trim: false,
    skipEmptyLines: true,
    relaxColumnCount: false,
    quote: '"',
    emptyAs: "empty",
  });
  assert.throws(() => csvOptionsSchema.parse({ separator: ";" }));
  assert.throws(() => csvOptionsSchema.parse({ quote: "''" }));
});

Deno.test("csvItems() with requireColumns stops before any row when the header lacks one", async () => {
  const text = "ticket_id,status\nINC1,open\n";
  const ok = await read(text, { requireColumns: ["status", "ticket_id"] });
  assert.equal(ok.error, undefined);
  assert.equal(ok.items.length, 1);
  const missing = await read(text, { requireColumns: ["ticket_id", "is_alarm", "region"] });
  assert.deepEqual(missing.items, []);
  assert.ok(missing.error instanceof MissingError, String(missing.error));
  assert.equal(missing.error.exitCode, 2);
  assert.equal(
    missing.error.message,
    'Cannot read "in.csv": the header lacks 2 required columns: is_alarm, region',
  );
});

Deno.test("csvItems() with requireColumns refuses an empty file: no header to check", async () => {
  const empty = await read("", { requireColumns: ["ticket_id"] });
  assert.ok(empty.error instanceof MissingError, String(empty.error));
  assert.equal(empty.error.message, 'Cannot read "in.csv": the file is empty (no header row)');
  assert.equal((await read("")).error, undefined, "without a contract an empty file is no rows");
});

Deno.test("csvItems() with requireColumns and no header row refuses an empty file too", async () => {
  const empty = await read("", { header: false, columns: ["a", "b"], requireColumns: ["a"] });
  assert.ok(empty.error instanceof MissingError, String(empty.error));
});

Deno.test("checkCsvOptions: requireColumns must be among the configured columns", () => {
  const schema = csvOptionsSchema.superRefine(checkCsvOptions);
  const parsed = schema.safeParse({
    header: false,
    columns: ["a", "b"],
    requireColumns: ["a", "c"],
  });
  assert.deepEqual(parsed.error?.issues.map((issue) => [issue.path, issue.message]), [
    [["requireColumns"], 'expected names that "columns" has, got c'],
  ]);
});
