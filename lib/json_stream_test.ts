import assert from "node:assert/strict";
import { bytesOf, parseAll, type ParseOutcome, streamOf } from "../tests/harness.ts";
import { jsonItems, type JsonItemsOptions } from "./json_stream.ts";

/** Reads everything; returns the items, the invalid records and the error, if one was thrown. */
function read(
  text: string,
  opts: Omit<JsonItemsOptions, "source" | "onInvalid">,
  size?: number,
): Promise<ParseOutcome> {
  return parseAll((onInvalid) =>
    jsonItems(streamOf(text, size), { source: "in.json", ...opts, onInvalid })
  );
}

const NESTED = `{
  "scraped_at": "2025-09-03T10:00:00Z",
  "data": {
    "tickets": [
      { "id": 1 },
      {
        "id": 2,
        "tags": ["a", "b"]
      },
      "oops",
      { "id": 4, "nested": { "tickets": [9] } }
    ],
    "other": [{ "id": 99 }]
  }
}
`;

Deno.test("jsonItems() streams the array at a dotted path with line and index origins", async () => {
  const { items, invalid, error } = await read(NESTED, { format: "array", path: "data.tickets" });
  assert.equal(error, undefined);
  assert.deepEqual(items, [
    {
      key: "in.json#line 5, index 0",
      data: { id: 1 },
      origin: { source: "in.json", position: "line 5, index 0" },
    },
    {
      key: "in.json#line 6, index 1",
      data: { id: 2, tags: ["a", "b"] },
      origin: { source: "in.json", position: "line 6, index 1" },
    },
    {
      key: "in.json#line 11, index 3",
      data: { id: 4, nested: { tickets: [9] } },
      origin: { source: "in.json", position: "line 11, index 3" },
    },
  ]);
  assert.deepEqual(invalid, [{
    origin: { source: "in.json", position: "line 10, index 2" },
    reason: "expected a JSON object, got a string",
    raw: '"oops"',
  }]);
});

Deno.test("jsonItems() gives the same origins whatever the chunk size", async () => {
  const whole = await read(NESTED, { format: "auto", path: "data.tickets" });
  for (const size of [1, 3, 17]) {
    const chunked = await read(NESTED, { format: "auto", path: "data.tickets" }, size);
    assert.deepEqual(chunked, whole, `chunk size ${size}`);
  }
});

Deno.test("jsonItems() reads a top-level array, with a BOM", async () => {
  const text = '\uFEFF[\n{"a":1},\n{"a":2}, null,\n  {"a":3}]\n';
  const { items, invalid, error } = await read(text, { format: "auto" });
  assert.equal(error, undefined);
  assert.deepEqual(items.map((item) => [item.origin.position, item.data]), [
    ["line 2, index 0", { a: 1 }],
    ["line 3, index 1", { a: 2 }],
    ["line 4, index 3", { a: 3 }],
  ]);
  assert.deepEqual(invalid.map((entry) => [entry.origin.position, entry.reason]), [
    ["line 3, index 2", "expected a JSON object, got null"],
  ]);
});

Deno.test("jsonItems() yields the records before a truncated array, then throws naming the file", async () => {
  const text = '[\n  {"a": 1},\n  {"a": 2},\n  {"a": ';
  const { items, error } = await read(text, { format: "array" });
  assert.deepEqual(items.map((item) => item.data), [{ a: 1 }, { a: 2 }]);
  assert.equal(error?.message, 'Cannot read "in.json": line 4: unexpected end of file');
});

Deno.test("jsonItems() reports the line of a syntax error in the middle of an array", async () => {
  const double = await read('[\n{"a":1},\n,{"a":2}]', { format: "array" });
  assert.deepEqual(double.items.map((item) => item.data), [{ a: 1 }]);
  assert.equal(double.error?.message, 'Cannot read "in.json": line 3: unexpected ","');

  const stray = await read('[{"a":1},\n\n {"a":2} x]', { format: "array" }, 4);
  assert.deepEqual(stray.items.map((item) => item.data), [{ a: 1 }, { a: 2 }]);
  assert.equal(stray.error?.message, 'Cannot read "in.json": line 3: unexpected "x"');

  const trailing = await read('[{"a":1}]\n[', { format: "array" });
  assert.equal(trailing.items.length, 1);
  assert.equal(trailing.error?.message, 'Cannot read "in.json": line 2: unexpected "["');
});

Deno.test("jsonItems() dead-letters an array element that does not parse with its line and index, and reads on", async () => {
  const text = '[{"id":1},{"id":2,"x":tru},{"id":4},\n  tru, {"id":6,}, "s\\"]", {"id":8}\n]';
  for (const size of [1, 4, 65536]) {
    const { items, invalid, error } = await read(text, { format: "auto" }, size);
    assert.equal(error, undefined, `chunk size ${size}`);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data]), [
      ["line 1, index 0", { id: 1 }],
      ["line 1, index 2", { id: 4 }],
      ["line 2, index 6", { id: 8 }],
    ], `chunk size ${size}`);
    assert.deepEqual(
      invalid.map(({ origin, reason, raw }) => [origin.position, reason.slice(0, 14), raw]),
      [
        ["line 1, index 1", "invalid JSON: ", '{"id":2,"x":tru}'],
        ["line 2, index 3", "invalid JSON: ", "tru"],
        ["line 2, index 4", "invalid JSON: ", '{"id":6,}'],
        ["line 2, index 5", "expected a JSO", '"s\\"]"'],
      ],
      `chunk size ${size}`,
    );
  }
  // Also inside an object, at a path.
  const nested = await read('{"t": [{"id":1},\n{"id":2,"x":tru},\n{"id":3}]}', {
    format: "auto",
    path: "t",
  });
  assert.equal(nested.error, undefined);
  assert.deepEqual(nested.items.map((item) => item.data), [{ id: 1 }, { id: 3 }]);
  assert.deepEqual(nested.invalid.map((entry) => entry.origin.position), ["line 2, index 1"]);
  assert.match(nested.invalid[0].reason, /^invalid JSON: /);
});

Deno.test("jsonItems() accepts whitespace after the array", async () => {
  const { items, error } = await read('[{"a":1}]\n\n  \n', { format: "array" });
  assert.equal(error, undefined);
  assert.equal(items.length, 1);
});

Deno.test("jsonItems() rejects a document whose path is missing or not an array", async () => {
  const missing = await read(NESTED, { format: "array", path: "data.nope" });
  assert.equal(missing.error?.message, 'Cannot read "in.json": found no array at "data.nope"');

  const object = await read('{\n"data": {"tickets": {"a": 1}}}', {
    format: "array",
    path: "data.tickets",
  });
  assert.equal(
    object.error?.message,
    'Cannot read "in.json": line 2: expected an array at "data.tickets", got an object',
  );
  assert.equal(object.items.length, 0);

  const topLevel = await read('{"tickets": []}', { format: "array" });
  assert.equal(
    topLevel.error?.message,
    'Cannot read "in.json": line 1: expected an array at the top level, got an object',
  );

  const empty = await read("  \n", { format: "array" });
  assert.equal(empty.error?.message, 'Cannot read "in.json": the file is empty');
});

Deno.test("jsonItems() reads an empty array as no records", async () => {
  const { items, invalid, error } = await read('{"tickets": []}', {
    format: "auto",
    path: "tickets",
  });
  assert.deepEqual([items, invalid, error], [[], [], undefined]);
});

Deno.test("jsonItems() streams JSON Lines: blank lines skipped, bad lines reported with their line", async () => {
  const text = [
    '{"id": 1}',
    "",
    "{not json",
    '{"id": 2, "s": "x"}',
    "[1, 2]",
    "   ",
    '{"id": 3}',
  ].join("\n");
  const { items, invalid, error } = await read(text, { format: "auto" });
  assert.equal(error, undefined);
  assert.deepEqual(items, [
    { key: "in.json#line 1", data: { id: 1 }, origin: { source: "in.json", position: "line 1" } },
    {
      key: "in.json#line 4",
      data: { id: 2, s: "x" },
      origin: { source: "in.json", position: "line 4" },
    },
    { key: "in.json#line 7", data: { id: 3 }, origin: { source: "in.json", position: "line 7" } },
  ]);
  assert.equal(invalid.length, 2);
  assert.deepEqual(invalid[0].origin, { source: "in.json", position: "line 3" });
  assert.match(invalid[0].reason, /^invalid JSON: /);
  assert.equal(invalid[0].raw, "{not json");
  assert.deepEqual(invalid[1], {
    origin: { source: "in.json", position: "line 5" },
    reason: "expected a JSON object, got an array",
    raw: "[1, 2]",
  });
});

Deno.test("jsonItems() reads CRLF JSON Lines with a BOM", async () => {
  const text = '\uFEFF{"id": "a"}\r\n{"id": "b"}\r\n\r\n{"id": "c"}\r\n';
  for (const size of [1, 5, 1000]) {
    const { items, invalid } = await read(text, { format: "lines" }, size);
    assert.deepEqual(invalid, []);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data.id]), [
      ["line 1", "a"],
      ["line 2", "b"],
      ["line 4", "c"],
    ]);
  }
});

Deno.test("jsonItems() keeps at most 1000 characters of a bad line", async () => {
  const { invalid } = await read(`{"x": "${"y".repeat(3000)}"`, { format: "lines" });
  assert.equal(invalid.length, 1);
  assert.equal(invalid[0].raw.length, 1000);
});

Deno.test("jsonItems() in auto mode refuses a pretty-printed document without a path", async () => {
  const { items, invalid, error } = await read(NESTED, { format: "auto" });
  assert.deepEqual([items, invalid], [[], []]);
  assert.match(
    error?.message ?? "",
    /^Cannot read "in\.json": line 1: not a JSON object on one line/,
  );
});

Deno.test("jsonItems() in auto mode dead-letters a bad first JSON Line followed by good ones", async () => {
  for (const first of ['{"id":1,"name":"a', '{"id":1,}', "{not json"]) {
    for (const size of [1, 5, 65536]) {
      const text = `\n${first}\n{"id":2}\n\n{"id":3}\n`;
      const { items, invalid, error } = await read(text, { format: "auto" }, size);
      const label = `${first} chunk size ${size}`;
      assert.equal(error, undefined, label);
      assert.deepEqual(items.map((item) => [item.origin.position, item.data]), [
        ["line 3", { id: 2 }],
        ["line 5", { id: 3 }],
      ], label);
      assert.equal(invalid.length, 1, label);
      assert.deepEqual(invalid[0].origin, { source: "in.json", position: "line 2" }, label);
      assert.match(invalid[0].reason, /^invalid JSON: /, label);
      assert.equal(invalid[0].raw, first, label);
    }
  }
  // A file of one bad line is one dead letter.
  const alone = await read('{"id":1,', { format: "auto" });
  assert.equal(alone.error, undefined);
  assert.deepEqual(alone.items, []);
  assert.deepEqual(alone.invalid.map((entry) => entry.origin.position), ["line 1"]);
});

Deno.test("jsonItems() in auto mode refuses a document whose first two lines are no JSON objects", async () => {
  for (const text of ['{"a": 1,\n  "b": [\n1]}\n', '{ "data":\n  [{"id": 1}]\n}\n', "{\n}\n"]) {
    const { items, invalid, error } = await read(text, { format: "auto" }, 3);
    assert.deepEqual([items, invalid], [[], []], text);
    assert.match(
      error?.message ?? "",
      /^Cannot read "in\.json": line 1: not a JSON object on one line/,
      text,
    );
  }
  // With format "lines" a bad first line is just a bad line.
  const lines = await read('{"a": 1,\n  "b": 2}\n', { format: "lines" });
  assert.equal(lines.error, undefined);
  assert.deepEqual(lines.invalid.map((entry) => entry.origin.position), ["line 1", "line 2"]);
});

const FFFD_REASON = "contains U+FFFD: invalid UTF-8 in the input, or a replacement character";

function readBytes(
  parts: (string | number[])[],
  opts: Omit<JsonItemsOptions, "source" | "onInvalid">,
  size?: number,
): Promise<ParseOutcome> {
  return parseAll((onInvalid) =>
    jsonItems(bytesOf(parts, size), { source: "in.json", ...opts, onInvalid })
  );
}

Deno.test("jsonItems() dead-letters JSON Lines and array elements holding invalid UTF-8 (U+FFFD)", async () => {
  for (const size of [1, 2, 65536]) {
    const lines = await readBytes(
      ['{"n":"café"}\n{"n":"a', [0xff], '"}\n{"n":"', [0xe2, 0x82], '"}\n{"n":"ü"}'],
      { format: "lines" },
      size,
    );
    assert.deepEqual(lines.items.map((item) => [item.origin.position, item.data]), [
      ["line 1", { n: "café" }],
      ["line 4", { n: "ü" }],
    ], `chunk size ${size}`);
    assert.deepEqual(lines.invalid, [
      {
        origin: { source: "in.json", position: "line 2" },
        reason: FFFD_REASON,
        raw: '{"n":"a\uFFFD"}',
      },
      {
        origin: { source: "in.json", position: "line 3" },
        reason: FFFD_REASON,
        raw: '{"n":"\uFFFD"}',
      },
    ], `chunk size ${size}`);

    const array = await readBytes(
      ['[{"n":"café"},\n{"n":"', [0xc3], '"},{"n":"\uFFFD"},{"n":"ü"}]'],
      { format: "auto" },
      size,
    );
    assert.deepEqual(array.items.map((item) => [item.origin.position, item.data]), [
      ["line 1, index 0", { n: "café" }],
      ["line 2, index 3", { n: "ü" }],
    ], `chunk size ${size}`);
    assert.deepEqual(array.invalid.map((entry) => [entry.origin.position, entry.reason]), [
      ["line 2, index 1", FFFD_REASON],
      // A replacement character in valid UTF-8 cannot be told apart after decoding.
      ["line 2, index 2", FFFD_REASON],
    ], `chunk size ${size}`);
  }
});

Deno.test("jsonItems() stops reading when the signal is aborted", async () => {
  const controller = new AbortController();
  const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ i })).join("\n");
  const seen: unknown[] = [];
  for await (
    const item of jsonItems(streamOf(lines, 16), {
      source: "in.json",
      format: "lines",
      signal: controller.signal,
    })
  ) {
    seen.push(item.data.i);
    if (seen.length === 3) controller.abort();
  }
  assert.deepEqual(seen, [0, 1, 2]);
});

Deno.test("jsonItems() cancels the source when the consumer stops early", async () => {
  for (const format of ["array", "lines"] as const) {
    let cancelled = false;
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (format === "array") controller.enqueue(new TextEncoder().encode("["));
      },
      pull(controller) {
        const sep = format === "array" ? (i === 0 ? "" : ",") : "\n";
        controller.enqueue(new TextEncoder().encode(`${sep}{"i":${i++}}`));
      },
      cancel() {
        cancelled = true;
      },
    });
    let count = 0;
    for await (const _ of jsonItems(stream, { source: "in.json", format })) {
      if (++count === 5) break;
    }
    assert.equal(cancelled, true, format);
  }
});
