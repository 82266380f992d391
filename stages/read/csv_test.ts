import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { MissingError } from "../../lib/errors.ts";
import {
  configProblems,
  createStage,
  readAll,
  testContext,
  withTempDir,
} from "../../tests/harness.ts";
import { retainedHeap } from "../../tests/memory.ts";
import { stage } from "./csv.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("readCsv() reads the header, quoted fields across lines and dead-letters a short row", async () => {
  const { items, error, deadLetters } = await readAll(
    stage,
    { path: "fixtures/read/locates.csv" },
    ROOT,
  );
  assert.equal(error, undefined);
  assert.deepEqual(
    items.map((item) => [item.origin.position, item.data["Member Code"]]),
    [["line 2", "ATMOS"], ["line 3", "ONCOR"], ["line 4", "CPE"], ["line 8", "CHARTER"]],
  );
  assert.deepEqual(items[1], {
    key: "fixtures/read/locates.csv#line 3",
    data: {
      "Ticket Number": "2506812345",
      "Member Code": "ONCOR",
      "Response": "002 Marked",
      "Response Date": "03/09/2025 03:18 AM",
      "Comments": "Marked red, both sides of street",
    },
    origin: { source: "fixtures/read/locates.csv", position: "line 3" },
  });
  assert.equal(
    items[2].data.Comments,
    'Partial: service line\nmarked to meter only,\nlocator returns "Tuesday"',
  );
  assert.equal(items[0].data.Comments, "");
  assert.deepEqual(deadLetters, [{
    item: {
      key: "fixtures/read/locates.csv#line 7",
      data: { raw: "2506812347,ATTTX,001 Clear - No conflict,03/10/2025 10:40 AM" },
      origin: { source: "fixtures/read/locates.csv", position: "line 7" },
    },
    reason: "expected 5 columns, got 4",
  }]);
});

Deno.test("readCsv() reads CRLF with a BOM, multi-line quoted records keeping their start line", async () => {
  await withTempDir("read_csv_", async (dir) => {
    await Deno.writeTextFile(
      join(dir, "r.csv"),
      '\uFEFFid,note\r\n1,"a\r\nb"\r\n2,"x, ""y"""\r\n\r\n3,\r\n',
    );
    const { items, deadLetters } = await readAll(stage, { path: "r.csv" }, dir);
    assert.deepEqual(deadLetters, []);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data]), [
      ["line 2", { id: "1", note: "a\r\nb" }],
      ["line 4", { id: "2", note: 'x, "y"' }],
      ["line 6", { id: "3", note: "" }],
    ]);
  });
});

Deno.test("readCsv() applies dialect options from the config", async () => {
  await withTempDir("read_csv_", async (dir) => {
    await Deno.writeTextFile(join(dir, "s.csv"), "1; 'a;b' ;\n2;c;d\n");
    const { items } = await readAll(stage, {
      path: "s.csv",
      delimiter: ";",
      quote: "'",
      header: false,
      columns: ["id", "x", "y"],
      trim: true,
      emptyAs: "null",
    }, dir);
    assert.deepEqual(items.map((item) => [item.origin.position, item.data]), [
      ["line 1", { id: "1", x: "a;b", y: null }],
      ["line 2", { id: "2", x: "c", y: "d" }],
    ]);
  });
});

Deno.test("readCsv() fails naming the file and line for an unclosed quote", async () => {
  await withTempDir("read_csv_", async (dir) => {
    await Deno.writeTextFile(join(dir, "q.csv"), 'a,b\n1,2\n3,"never closed\n4,5\n');
    const { items, error } = await readAll(stage, { path: "q.csv" }, dir);
    assert.equal(items.length, 1);
    assert.equal(error?.message, 'Cannot read "q.csv": line 3: a quoted field is not closed');
  });
});

Deno.test("readCsv() throws MissingError for a missing file", async () => {
  await withTempDir("read_csv_", async (dir) => {
    const { error } = await readAll(stage, { path: "gone.csv" }, dir);
    assert.ok(error instanceof MissingError);
    assert.equal(error.message, 'Cannot read "gone.csv": file does not exist');
  });
});

Deno.test("readCsv() config: defaults, strict keys, columns required without a header", () => {
  assert.deepEqual(stage.config.parse({ path: "a.csv" }), {
    path: "a.csv",
    delimiter: ",",
    header: true,
    bom: true,
    trim: false,
    skipEmptyLines: true,
    relaxColumnCount: false,
    quote: '"',
    emptyAs: "empty",
  });
  assert.throws(() => stage.config.parse({ path: "a.csv", sep: ";" }));
  assert.throws(() => stage.config.parse({ delimiter: ";" }));
  // Reported by config validation (validate), with the other problems of the config.
  assert.deepEqual(configProblems(stage, { path: "a.csv", header: false, delimiter: "" }), [
    'stages[0].delimiter: expected >= 1 characters, got ""',
    'stages[0].columns: required when "header" is false: expected the column names in file order',
  ]);
  assert.deepEqual(configProblems(stage, { path: "a.csv", header: false, columns: ["a"] }), []);
});

Deno.test("readCsv() stops reading when the run is aborted", async () => {
  await withTempDir("read_csv_", async (dir) => {
    const rows = ["n", ...Array.from({ length: 1000 }, (_, i) => String(i))].join("\n");
    await Deno.writeTextFile(join(dir, "many.csv"), rows);
    const test = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "many.csv" }, test.ctx);
    const seen: unknown[] = [];
    for await (const item of runtime.read()) {
      seen.push(item.data.n);
      if (seen.length === 5) test.controller.abort();
    }
    assert.deepEqual(seen, ["0", "1", "2", "3", "4"]);
  });
});

Deno.test("readCsv() streams a 50 MB file in bounded memory", async () => {
  await withTempDir("read_csv_", async (dir) => {
    const path = join(dir, "big.csv");
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    const encoder = new TextEncoder();
    let written = 0;
    let count = 0;
    try {
      await file.write(encoder.encode("ticket,member,comments\r\n"));
      while (written < 50 * 1024 * 1024) {
        const batch: string[] = [];
        for (let i = 0; i < 1000; i++, count++) {
          batch.push(`${2500000000 + count},ATMOS,"note ${count}, ${"x".repeat(300)}"\r\n`);
        }
        const bytes = encoder.encode(batch.join(""));
        await file.write(bytes);
        written += bytes.length;
      }
    } finally {
      file.close();
    }
    const test = testContext({ cwd: dir });
    const runtime = await createStage(stage, { path: "big.csv" }, test.ctx);
    const before = retainedHeap();
    let peak = before;
    let read = 0;
    for await (const item of runtime.read()) {
      if (item.data.ticket !== String(2500000000 + read)) assert.fail(`row ${read} out of order`);
      if (item.origin.position !== `line ${read + 2}`) {
        assert.fail(`row ${read} has the wrong line`);
      }
      read++;
      if (read % 20000 === 0) peak = Math.max(peak, retainedHeap());
    }
    assert.equal(read, count);
    const growth = (peak - before) / 1024 / 1024;
    assert.ok(growth < 30, `retained heap grew by ${growth.toFixed(1)} MB reading a 50 MB file`);
  });
});
