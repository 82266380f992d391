import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MissingError, RemoteError } from "../../lib/errors.ts";
import type { ReadRuntime } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  MemoryState,
  testContext,
  withLogs,
} from "../../tests/harness.ts";
import { startS3, type TestS3 } from "../../tests/s3_server.ts";
import { stage } from "./s3.ts";

const FIXTURES = new URL("../../fixtures/inc/", import.meta.url);
const S17 = "2026-06-15T17-00-00.csv";
const S18 = "2026-06-15T18-00-00.csv";
const INC = "automations/inc/";

function fixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, FIXTURES));
}

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

function config(s3: TestS3, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    ...extra,
  };
}

/** Runs `fn` with a fresh S3 server, closing the reader and server afterwards. */
async function withS3(fn: (s3: TestS3, readers: ReadRuntime[]) => Promise<void>): Promise<void> {
  const s3 = await startS3();
  const readers: ReadRuntime[] = [];
  try {
    await fn(s3, readers);
  } finally {
    for (const reader of readers) await reader.close?.();
    await s3.close();
  }
}

Deno.test("readS3() picks the newest snapshot by name across list pages, ignoring processed/", async () => {
  await withS3(async (s3, readers) => {
    await s3.put(`${INC}${S18}`, fixture(S18));
    await s3.put(`${INC}${S17}`, fixture(S17)); // uploaded last, still older by name
    await s3.put(`${INC}latest.json`, "{}");
    await s3.put(`${INC}processed/2026-06-15T19-00-00.csv`, '"ticket_id"\n"OLD"\n');
    await s3.put("automations/crq/2026-06-15T20-00-00.csv", '"ticket_id"\n"CRQ"\n');
    const { ctx } = testContext();
    // One key per page, so the listing must follow continuation tokens.
    const reader = await createStage(stage, config(s3, { pageSize: 1 }), ctx);
    readers.push(reader);
    const items = await collect(reader.read());
    assert.equal(items.length, 9);
    assert.deepEqual(items[1].origin, { source: `${INC}${S18}`, position: "line 3" });
    assert.match(String(items[0].data.ticket_id), /^EXPORT STOPPED/);
    assert.equal(items.find((item) => item.data.ticket_id === "INC000103")!.data.status, "Closed");
  });
});

Deno.test("readS3() commit copies to processed/, deletes the original and saves the ETag", async () => {
  await withS3(async (s3, readers) => {
    await s3.put(`${INC}${S17}`, fixture(S17));
    const etag = await s3.put(`${INC}${S18}`, fixture(S18));
    assert.equal(etag, md5(fixture(S18)));
    const { ctx, state } = testContext();
    const reader = await createStage(stage, config(s3), ctx);
    readers.push(reader);
    await collect(reader.read());
    await reader.commit!();
    assert.deepEqual(await s3.list(), [`${INC}processed/${S17}`, `${INC}processed/${S18}`]);
    assert.equal(await s3.get(`${INC}processed/${S18}`), new TextDecoder().decode(fixture(S18)));
    assert.equal(state.getCursor("snapshot.etag"), etag);
    assert.equal(state.getCursor("source.etag"), etag);
    assert.equal(state.getCursor("source.name"), `${INC}${S18}`);
  });
});

Deno.test("readS3() leaves the object in place when the run does not commit", async () => {
  await withS3(async (s3, readers) => {
    await s3.put(`${INC}${S18}`, fixture(S18));
    const { ctx, state } = testContext();
    const reader = await createStage(stage, config(s3), ctx);
    readers.push(reader);
    assert.equal((await collect(reader.read())).length, 9);
    assert.deepEqual(await s3.list(), [`${INC}${S18}`]);
    assert.equal(state.getCursor("snapshot.etag"), null);
  });
});

Deno.test("readS3() skips a snapshot whose ETag matches the last load and moves it", async () => {
  await withS3(async (s3, readers) => {
    await withLogs(async (lines) => {
      const state = new MemoryState();
      const etag = await s3.put(`${INC}${S18}`, fixture(S18));
      const first = await createStage(stage, config(s3), testContext({ state }).ctx);
      readers.push(first);
      assert.equal((await collect(first.read())).length, 9);
      await first.commit!();

      const next = `${INC}2026-06-15T19-00-00.csv`;
      await s3.put(next, fixture(S18));
      const second = await createStage(stage, config(s3), testContext({ state }).ctx);
      readers.push(second);
      assert.deepEqual(await collect(second.read()), []);
      assert.ok(
        lines.includes(`Skipped "${next}": unchanged since the last load (ETag "${etag}")`),
        lines.join("\n"),
      );
      await second.commit!();
      assert.deepEqual(await s3.list(INC), [
        `${INC}processed/${S18}`,
        `${INC}processed/2026-06-15T19-00-00.csv`,
      ]);
      assert.equal(state.getCursor("snapshot.etag"), etag);
    });
  });
});

Deno.test("readS3() with all-oldest-first reads the changes/ feed one file a run, in time order", async () => {
  await withS3(async (s3, readers) => {
    const prefix = `${INC}changes/`;
    await s3.put(`${prefix}2026-06-15T18-00-00.csv`, '"ticket_id","status"\n"INC2","closed"\n');
    await s3.put(`${prefix}2026-06-15T09-30-00.csv`, '"ticket_id","status"\n"INC1","open"\n');
    await s3.put(`${prefix}2026-06-15T17-00-00.csv`, '"ticket_id","status"\n"INC1","closed"\n');
    const { state } = testContext();
    const seen: string[][] = [];
    for (let run = 0; run < 3; run++) {
      const reader = await createStage(
        stage,
        config(s3, { prefix, select: "all-oldest-first" }),
        testContext({ state }).ctx,
      );
      readers.push(reader);
      const items = await collect(reader.read());
      seen.push(items.map((item) => `${item.data.ticket_id} ${item.data.status}`));
      await reader.commit!();
      assert.equal(reader.moreInput!(), run < 2);
    }
    assert.deepEqual(seen, [["INC1 open"], ["INC1 closed"], ["INC2 closed"]]);
    assert.deepEqual(await s3.list(), [
      `${prefix}processed/2026-06-15T09-30-00.csv`,
      `${prefix}processed/2026-06-15T17-00-00.csv`,
      `${prefix}processed/2026-06-15T18-00-00.csv`,
    ]);
  });
});

Deno.test("readS3() reports a missing bucket as MissingError", async () => {
  await withS3(async (s3, readers) => {
    const { ctx } = testContext();
    const reader = await createStage(stage, { ...config(s3), bucket: "no-such-bucket" }, ctx);
    readers.push(reader);
    await assert.rejects(() => collect(reader.read()), (error: unknown) => {
      assert.ok(error instanceof MissingError);
      assert.equal(error.exitCode, 2);
      assert.equal(
        error.message,
        'Cannot list "s3://no-such-bucket/automations/inc/": bucket does not exist',
      );
      return true;
    });
  });
});

Deno.test("readS3() reports refused credentials as RemoteError", async () => {
  await withS3(async (s3, readers) => {
    const { ctx } = testContext();
    const reader = await createStage(stage, { ...config(s3), accessKeyId: "WRONGKEY" }, ctx);
    readers.push(reader);
    await assert.rejects(() => collect(reader.read()), (error: unknown) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.exitCode, 3);
      assert.equal(error.status, 403);
      assert.match(
        error.message,
        /^Cannot list "s3:\/\/inc-exports\/automations\/inc\/": access denied \(InvalidAccessKeyId: /,
      );
      return true;
    });
  });
});

Deno.test("read.s3 config requires credentials and rejects unknown keys", () => {
  const base = { bucket: "b", accessKeyId: "AKIA1234", secretAccessKey: "s3cr3t-value" };
  const parsed = stage.config.parse(base);
  assert.equal(parsed.region, "us-east-1");
  assert.equal(parsed.prefix, "automations/inc/");
  assert.equal(stage.config.safeParse({ bucket: "b" }).success, false);
  assert.equal(stage.config.safeParse({ ...base, dir: "x" }).success, false);
  assert.equal(stage.config.safeParse({ ...base, endpoint: "not a url" }).success, false);
  assert.deepEqual(configProblems(stage, { ...base, header: false }), [
    'stages[0].columns: required when "header" is false: expected the column names in file order',
  ]);
  assert.deepEqual(configProblems(stage, { ...base, header: false, columns: ["a"] }), []);
});

Deno.test("readS3() leaves an object re-uploaded while it was loaded where it is", async () => {
  await withS3(async (s3, readers) => {
    await s3.put(`${INC}${S17}`, '"ticket_id","status"\n"OLD","Open"\n');
    const { ctx, state } = testContext();
    const reader = await createStage(stage, config(s3), ctx);
    readers.push(reader);
    const items = await collect(reader.read());
    assert.deepEqual(items.map((item) => item.data.ticket_id), ["OLD"]);
    await s3.put(`${INC}${S17}`, '"ticket_id","status"\n"NEW","Open"\n');
    await reader.commit!();
    assert.deepEqual(await s3.list(INC), [`${INC}${S17}`], "not archived unread");
    // The next run loads what it holds now.
    const next = await createStage(stage, config(s3), testContext({ state }).ctx);
    readers.push(next);
    assert.deepEqual((await collect(next.read())).map((item) => item.data.ticket_id), ["NEW"]);
  });
});
