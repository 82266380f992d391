import assert from "node:assert/strict";
import { streamOf } from "../tests/harness.ts";
import { join } from "node:path";
import { ExitCode, MissingError } from "./errors.ts";
import { lines, openSource, rawExcerpt, SizeEstimate, withoutBom } from "./source.ts";

async function allLines(stream: ReadableStream<Uint8Array>) {
  const out: [number, string][] = [];
  for await (const { line, number } of lines(stream)) out.push([number, line]);
  return out;
}

Deno.test("openSource() resolves relative paths against cwd and streams the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "in"));
    await Deno.writeTextFile(join(dir, "in", "a.txt"), "hello\nworld\n");
    const opened = await openSource("in/a.txt", dir);
    assert.equal(opened.source, "in/a.txt");
    assert.equal(opened.size, 12);
    assert.equal(await new Response(opened.stream).text(), "hello\nworld\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openSource() throws MissingError naming the path when the file does not exist", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const error = await openSource("nope/x.json", dir).then(
      () => assert.fail("expected an error"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof MissingError);
    assert.equal(error.message, 'Cannot read "nope/x.json": file does not exist');
    assert.equal(error.exitCode, ExitCode.Missing);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openSource() refuses a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(openSource(".", dir), {
      name: "MissingError",
      message: 'Cannot read ".": is a directory',
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lines() splits LF and CRLF, strips a BOM and keeps a last line without newline", async () => {
  const text = "\uFEFFfirst\r\nsecond\n\r\nfourth\r\nlast";
  assert.deepEqual(await allLines(streamOf(text)), [
    [1, "first"],
    [2, "second"],
    [3, ""],
    [4, "fourth"],
    [5, "last"],
  ]);
});

Deno.test("lines() gives the same lines whatever the chunk size (multi-byte characters split)", async () => {
  const text = "\uFEFFcafé;Zürich\r\nnaïve ✓ 🚧\r\n\nend\n";
  const expected = [[1, "café;Zürich"], [2, "naïve ✓ 🚧"], [3, ""], [4, "end"]];
  for (const size of [1, 2, 3, 7, 1000]) {
    assert.deepEqual(await allLines(streamOf(text, size)), expected, `chunk size ${size}`);
  }
});

Deno.test("lines() returns a line spanning many chunks intact, CRLF and multi-byte characters split", async () => {
  const long = "é✓".repeat(2000) + "x".repeat(5001);
  const text = `short\r\n${long}\r\n${long}\n\n${long}`;
  const expected = [[1, "short"], [2, long], [3, long], [4, ""], [5, long]];
  for (const size of [1, 2, 3, 1000, 4097]) {
    const got = await allLines(streamOf(text, size));
    assert.equal(got.length, expected.length, `chunk size ${size}`);
    got.forEach(([number, line], i) => {
      assert.equal(number, expected[i][0], `chunk size ${size}, line ${i + 1}`);
      // assert.equal would print two 9,000-character strings on failure.
      assert.ok(line === expected[i][1], `chunk size ${size}, line ${i + 1} differs`);
    });
  }
});

Deno.test("lines() yields nothing for an empty stream and one line for a bare CR-less line", async () => {
  assert.deepEqual(await allLines(streamOf("")), []);
  assert.deepEqual(await allLines(streamOf("only")), [[1, "only"]]);
  assert.deepEqual(await allLines(streamOf("a\n")), [[1, "a"]]);
});

Deno.test("lines() cancels the stream when the consumer stops early", async () => {
  let cancelled = false;
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new TextEncoder().encode(`line ${pulled}\n`));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const { number } of lines(stream)) {
    if (number === 3) break;
  }
  assert.equal(cancelled, true);
  assert.ok(pulled < 10, `read ${pulled} chunks of an endless stream`);
});

Deno.test("rawExcerpt() keeps at most 1000 characters", () => {
  assert.equal(rawExcerpt("abc"), "abc");
  assert.equal(rawExcerpt("x".repeat(5000)).length, 1000);
});

Deno.test("withoutBom() removes a leading BOM even when split across chunks, and nothing else", async () => {
  async function text(input: string, size: number): Promise<string> {
    const parts: Uint8Array[] = [];
    for await (const chunk of withoutBom(streamOf(input, size))) parts.push(chunk);
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(
      new Uint8Array(parts.flatMap((part) => [...part])),
    );
  }
  for (const size of [1, 2, 3, 4, 100]) {
    assert.equal(await text("\uFEFFab\uFEFFc", size), "ab\uFEFFc", `chunk size ${size}`);
    assert.equal(await text("abc", size), "abc", `chunk size ${size}`);
    assert.equal(await text("\uFEFF", size), "", `chunk size ${size}`);
  }
  assert.equal(await text("\u00EF", 1), "\u00EF");
});

Deno.test("SizeEstimate projects the record count from the bytes read", async () => {
  const bytes = new TextEncoder().encode("a\n".repeat(1000));
  const estimate = new SizeEstimate(bytes.byteLength * 4);
  assert.equal(estimate.estimate(), undefined);
  const reader = estimate.counted(new Blob([bytes]).stream()).getReader();
  while (!(await reader.read()).done) {
    // drain
  }
  for (let i = 0; i < 1000; i++) estimate.yielded();
  assert.equal(estimate.estimate(), 4000);
  assert.equal(new SizeEstimate(0).estimate(), undefined, "pipes have no size");
});
