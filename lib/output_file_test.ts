import assert from "node:assert/strict";
import { join } from "node:path";
import {
  outputTemplateProblems,
  removeTemporaries,
  renderOutputPath,
  writeFileAtomic,
  writeTextAtomic,
} from "./output_file.ts";

async function names(dir: string): Promise<string[]> {
  const out = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

Deno.test("writeTextAtomic() creates the directory and replaces the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "a/b/out.txt");
    await writeTextAtomic(path, "first");
    await writeTextAtomic(path, "second");
    assert.equal(await Deno.readTextFile(path), "second");
    assert.deepEqual(await names(join(dir, "a/b")), ["out.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic() streams chunks and leaves the target alone on failure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "out.json");
    await writeFileAtomic(path, async (write) => {
      for (let i = 0; i < 3; i++) await write(`${i}|`);
    });
    assert.equal(await Deno.readTextFile(path), "0|1|2|");
    await assert.rejects(
      writeFileAtomic(path, async (write) => {
        await write("partial");
        throw new Error("producer failed");
      }),
      /producer failed/,
    );
    await assert.rejects(
      writeFileAtomic(path, (write) => write("complete"), {
        beforeRename: () => Promise.reject(new Error("backup failed")),
      }),
      /backup failed/,
    );
    assert.equal(await Deno.readTextFile(path), "0|1|2|");
    assert.deepEqual(await names(dir), ["out.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderOutputPath() fills runId, pipeline and the UTC date; outputTemplateProblems() names unknown ones", () => {
  assert.equal(
    renderOutputPath("reports/{pipeline}/{date}/{runId}.json", {
      runId: "r1",
      pipeline: "inc",
      startedAt: "2026-06-15T23:30:00-05:00",
    }),
    "reports/inc/2026-06-16/r1.json",
  );
  assert.deepEqual(outputTemplateProblems("plain.json"), []);
  assert.deepEqual(outputTemplateProblems("{pipeline}/{date}/{runId}.json"), []);
  assert.deepEqual(outputTemplateProblems("{runid}-{day}.json"), [
    'unknown placeholder "{runid}": expected {runId}, {date} or {pipeline}',
    'unknown placeholder "{day}": expected {runId}, {date} or {pipeline}',
  ]);
});

Deno.test("removeTemporaries() removes the temporary files of one name or of a set of names, no others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const name of [
        ".a.json.0badf00d.tmp",
        ".a.json.12345678.tmp",
        ".b.json.cafe0001.tmp",
        ".c.json.cafe0002.tmp",
        ".a.json.tmp",
        "a.json",
      ]
    ) {
      await Deno.writeTextFile(join(dir, name), "{");
    }
    assert.equal(await removeTemporaries(dir, "a.json"), 2);
    assert.equal(await removeTemporaries(dir, new Set(["b.json", "d.json"])), 1);
    assert.equal(await removeTemporaries(dir, new Set()), 0);
    assert.deepEqual(await names(dir), [".a.json.tmp", ".c.json.cafe0002.tmp", "a.json"]);
    assert.equal(await removeTemporaries(join(dir, "missing"), new Set(["a.json"])), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
