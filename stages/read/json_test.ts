import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { MissingError } from "../../lib/errors.ts";
import {
  collect,
  configProblems,
  createStage,
  readAll,
  testContext,
  withTempDir,
} from "../../tests/harness.ts";
import { BAD_DATE, generateFixtures } from "../../tools/gen_texas811.ts";
import { retainedHeap } from "../../tests/memory.ts";
import { stage } from "./json.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("readJson() streams the Texas811 fixture's tickets array with index origins", async () => {
  const { items, error, deadLetters, runtime } = await readAll(stage, {
    path: "fixtures/texas811/tickets.json",
    at: "tickets",
  }, ROOT);
  assert.equal(error, undefined);
  assert.deepEqual(deadLetters, []);
  assert.equal(items.length, 200);
  items.forEach((item, index) => {
    assert.equal(item.origin.source, "fixtures/texas811/tickets.json");
    assert.match(item.origin.position, new RegExp(`^line \\d+, index ${index}$`));
    assert.equal(item.key, `fixtures/texas811/tickets.json#${item.origin.position}`);
    assert.match(String(item.data.ticketNumber), /^25\d{8}$/);
  });
  assert.equal(items[0].origin.position, "line 5, index 0");
  // The origin's line is where the ticket's object starts.
  const text = await Deno.readTextFile(join(ROOT, "fixtures/texas811/tickets.json"));
  const line = Number(/^line (\d+)/.exec(items[137].origin.position)![1]);
  assert.equal(text.split("\n")[line - 1], "    {");
  assert.equal(
    text.split("\n")[line],
    `      "ticketNumber": "${items[137].data.ticketNumber}",`,
  );
  assert.equal(runtime.expected?.(), undefined);
});

Deno.test("readJson() reads the Texas811 JSON Lines fixture as the first 20 tickets", async () => {
  const document = await readAll(
    stage,
    { path: "fixtures/texas811/tickets.json", at: "tickets" },
    ROOT,
  );
  const jsonl = await readAll(stage, { path: "fixtures/texas811/tickets.jsonl" }, ROOT);
  assert.equal(jsonl.error, undefined);
  assert.deepEqual(
    jsonl.items.map((item) => item.origin.position),
    Array.from({ length: 20 }, (_, i) => `line ${i + 1}`),
  );
  assert.deepEqual(
    jsonl.items.map((item) => item.data),
    document.items.slice(0, 20).map((item) => item.data),
  );
});

Deno.test("the Texas811 fixtures are what tools/gen_texas811.ts generates", async () => {
  for (const [name, content] of Object.entries(generateFixtures())) {
    const committed = await Deno.readTextFile(join(ROOT, "fixtures/texas811", name));
    assert.ok(committed === content, `fixtures/texas811/${name} is stale: regenerate it`);
  }
  const bad = await readAll(
    stage,
    { path: "fixtures/texas811/tickets_bad.json", at: "tickets" },
    ROOT,
  );
  assert.equal(bad.items.length, 20);
  assert.equal(bad.items.filter((item) => JSON.stringify(item.data).includes(BAD_DATE)).length, 2);
  assert.equal(bad.items.filter((item) => item.data.ticketNumber === undefined).length, 1);
});

Deno.test("readJson() reads a top-level array and dead-letters elements that are not objects", async () => {
  await withTempDir("read_json_", async (dir) => {
    await Deno.writeTextFile(join(dir, "list.json"), '[\n  {"id": 1},\n  42,\n  {"id": 3}\n]\n');
    const { items, error, deadLetters } = await readAll(stage, { path: "list.json" }, dir);
    assert.equal(error, undefined);
    assert.deepEqual(items, [
      {
        key: "list.json#line 2, index 0",
        data: { id: 1 },
        origin: { source: "list.json", position: "line 2, index 0" },
      },
      {
        key: "list.json#line 4, index 2",
        data: { id: 3 },
        origin: { source: "list.json", position: "line 4, index 2" },
      },
    ]);
    assert.deepEqual(deadLetters, [{
      item: {
        key: "list.json#line 3, index 1",
        data: { raw: "42" },
        origin: { source: "list.json", position: "line 3, index 1" },
      },
      reason: "expected a JSON object, got a number",
    }]);
  });
});

Deno.test("readJson() dead-letters a bad JSON Line with its line and yields the others", async () => {
  await withTempDir("read_json_", async (dir) => {
    await Deno.writeTextFile(
      join(dir, "t.jsonl"),
      '{"id": "a"}\n{"id": "b"\n\n{"id": "c"}\n"just a string"\n',
    );
    const { items, error, deadLetters } = await readAll(stage, { path: "t.jsonl" }, dir);
    assert.equal(error, undefined);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data.id]), [
      ["line 1", "a"],
      ["line 4", "c"],
    ]);
    assert.equal(deadLetters.length, 2);
    assert.deepEqual(deadLetters[0].item, {
      key: "t.jsonl#line 2",
      data: { raw: '{"id": "b"' },
      origin: { source: "t.jsonl", position: "line 2" },
    });
    assert.match(deadLetters[0].reason, /^invalid JSON: /);
    assert.deepEqual(deadLetters[1], {
      item: {
        key: "t.jsonl#line 5",
        data: { raw: '"just a string"' },
        origin: { source: "t.jsonl", position: "line 5" },
      },
      reason: "expected a JSON object, got a string",
    });
  });
});

Deno.test("readJson() reads CRLF JSON Lines with a BOM", async () => {
  await withTempDir("read_json_", async (dir) => {
    await Deno.writeTextFile(join(dir, "w.jsonl"), '\uFEFF{"n": 1}\r\n{"n": 2}\r\n{"n": 3}');
    const { items, deadLetters } = await readAll(stage, { path: "w.jsonl", format: "lines" }, dir);
    assert.deepEqual(deadLetters, []);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data.n]), [
      ["line 1", 1],
      ["line 2", 2],
      ["line 3", 3],
    ]);
  });
});

Deno.test("readJson() yields the records before a truncated array, then fails naming the file", async () => {
  await withTempDir("read_json_", async (dir) => {
    await Deno.writeTextFile(
      join(dir, "cut.json"),
      '{"tickets": [\n  {"id": 1},\n  {"id": 2},\n  {"id": 3, "name": "tru',
    );
    const { items, error } = await readAll(stage, { path: "cut.json", at: "tickets" }, dir);
    assert.deepEqual(items.map((item) => item.data.id), [1, 2]);
    assert.equal(error?.message, 'Cannot read "cut.json": line 4: unexpected end of file');
  });
});

Deno.test("readJson() throws MissingError for a missing file", async () => {
  await withTempDir("read_json_", async (dir) => {
    const { items, error } = await readAll(stage, { path: "nope.json" }, dir);
    assert.deepEqual(items, []);
    assert.ok(error instanceof MissingError);
    assert.equal(error.message, 'Cannot read "nope.json": file does not exist');
  });
});

Deno.test("readJson() config: path required, strict keys, at only for arrays", () => {
  assert.throws(() => stage.config.parse({}));
  assert.throws(() => stage.config.parse({ path: "a.json", unknown: 1 }));
  assert.deepEqual(stage.config.parse({ path: "a.json" }), { path: "a.json", format: "auto" });
  assert.deepEqual(configProblems(stage, { path: "a.json", format: "lines", at: "tickets" }), [
    'stages[0].at: only applies to a JSON array: expected no "at" when "format" is "lines"',
  ]);
  assert.deepEqual(configProblems(stage, { path: "a.json", format: "array", at: "tickets" }), []);
});

Deno.test("readJson() stops reading when the run is aborted", async () => {
  await withTempDir("read_json_", async (dir) => {
    const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i })).join("\n");
    await Deno.writeTextFile(join(dir, "many.jsonl"), lines);
    const test = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "many.jsonl" }, test.ctx);
    const seen: unknown[] = [];
    for await (const item of runtime.read()) {
      seen.push(item.data.i);
      if (seen.length === 10) test.controller.abort();
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

/** Writes about `megabytes` MB of ticket-like records without holding them in memory. */
async function writeBigFile(path: string, megabytes: number, array: boolean): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let written = 0;
  let count = 0;
  try {
    if (array) await file.write(encoder.encode('{"tickets": [\n'));
    while (written < megabytes * 1024 * 1024) {
      const batch: string[] = [];
      for (let i = 0; i < 1000; i++, count++) {
        const record = JSON.stringify({
          ticketNumber: String(2500000000 + count),
          remarks: `record ${count} `.padEnd(400, "x"),
          responses: [{ memberCode: "ATMOS", responseCode: "001" }],
        });
        batch.push(array && count > 0 ? `,${record}` : record);
      }
      const bytes = encoder.encode(batch.join("\n") + "\n");
      await file.write(bytes);
      written += bytes.length;
    }
    if (array) await file.write(encoder.encode("]}\n"));
  } finally {
    file.close();
  }
  return count;
}

for (const array of [false, true]) {
  const shape = array ? "an array at a path" : "JSON Lines";
  Deno.test(`readJson() streams a 50 MB file of ${shape} in bounded memory`, async () => {
    await withTempDir("read_json_", async (dir) => {
      const name = array ? "big.json" : "big.jsonl";
      const count = await writeBigFile(join(dir, name), 50, array);
      const test = testContext({ cwd: dir });
      const runtime = await createStage(
        stage,
        array ? { path: name, at: "tickets" } : { path: name },
        test.ctx,
      );
      // Holding the file or its records would retain more than 100 MB.
      const before = retainedHeap();
      let peak = before;
      let read = 0;
      for await (const item of runtime.read()) {
        if (item.data.ticketNumber !== String(2500000000 + read)) {
          assert.fail(`record ${read} out of order`);
        }
        read++;
        if (read % 20000 === 0) peak = Math.max(peak, retainedHeap());
      }
      assert.equal(read, count);
      const growth = (peak - before) / 1024 / 1024;
      assert.ok(growth < 30, `retained heap grew by ${growth.toFixed(1)} MB reading a 50 MB file`);
    });
  });
}

Deno.test("readJson() collects nothing from an empty JSON Lines file", async () => {
  await withTempDir("read_json_", async (dir) => {
    await Deno.writeTextFile(join(dir, "empty.jsonl"), "");
    const test = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "empty.jsonl" }, test.ctx);
    assert.deepEqual(await collect(runtime.read()), []);
  });
});
