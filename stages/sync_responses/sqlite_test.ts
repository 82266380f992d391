import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Outcome, RunOptions, SyncResult } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  FixedClock,
  fromArray,
  item,
  result,
  testContext,
} from "../../tests/harness.ts";
import type { ChildSyncRuntime } from "../../lib/stage.ts";
import { stage } from "./sqlite.ts";

const CONFIG = {
  path: "texas811.db",
  columns: {
    member_code: { type: "text" },
    status: { from: "response.status", type: "text" },
  },
};

const ATMOS = {
  member_code: "ATMOS",
  responded_at: "2025-09-03T14:15:00-05:00",
  response: { status: "Clear" },
};
const ONCOR = {
  member_code: "ONCOR",
  responded_at: "2025-09-03T15:00:00-05:00",
  response: { status: "Marked" },
};

function ticket(key: string, responses: unknown, outcome: Outcome | null = null): SyncResult {
  return { ...result(item(key, { ticket: key, responses })), outcome };
}

interface Harness {
  dir: string;
  clock: FixedClock;
  sync(
    results: SyncResult[],
    options?: Partial<RunOptions>,
    config?: Record<string, unknown>,
  ): Promise<{ out: SyncResult[]; runtime: ChildSyncRuntime }>;
  rows(): Record<string, unknown>[];
}

async function harness(): Promise<Harness> {
  const dir = await Deno.makeTempDir();
  const clock = new FixedClock();
  return {
    dir,
    clock,
    async sync(results, options = {}, config = CONFIG) {
      const { ctx } = testContext({ cwd: dir, clock, options });
      const runtime = await createStage(stage, config, ctx) as ChildSyncRuntime;
      try {
        return { out: await collect(runtime.sync(fromArray(results))), runtime };
      } finally {
        await runtime.close?.();
      }
    },
    rows() {
      const db = new DatabaseSync(join(dir, "texas811.db"));
      try {
        return db.prepare(
          `SELECT parent_key, child_key, member_code, status, synced_at FROM responses ORDER BY parent_key, child_key`,
        ).all().map((row) => ({ ...row }));
      } finally {
        db.close();
      }
    },
  };
}

Deno.test("syncResponsesSqlite() stores every response of a ticket", async () => {
  const h = await harness();
  try {
    const { out, runtime } = await h.sync([
      ticket("T1", [ATMOS, ONCOR], "created"),
      ticket("T2", [ATMOS]),
      ticket("T3", undefined),
    ]);
    assert.deepEqual(out.map((r) => r.outcome), ["created", "updated", "unchanged"]);
    assert.deepEqual(h.rows(), [
      {
        parent_key: "T1",
        child_key: "ATMOS@2025-09-03T14:15:00-05:00",
        member_code: "ATMOS",
        status: "Clear",
        synced_at: "2026-01-01T00:00:00Z",
      },
      {
        parent_key: "T1",
        child_key: "ONCOR@2025-09-03T15:00:00-05:00",
        member_code: "ONCOR",
        status: "Marked",
        synced_at: "2026-01-01T00:00:00Z",
      },
      {
        parent_key: "T2",
        child_key: "ATMOS@2025-09-03T14:15:00-05:00",
        member_code: "ATMOS",
        status: "Clear",
        synced_at: "2026-01-01T00:00:00Z",
      },
    ]);
    assert.deepEqual(runtime.stats(), {
      parents: 3,
      children: 3,
      created: 3,
      updated: 0,
      unchanged: 0,
      failedParents: 0,
    });
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() keeps the history of a response no longer listed", async () => {
  const h = await harness();
  try {
    await h.sync([ticket("T1", [ATMOS, ONCOR])]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const { out } = await h.sync([ticket("T1", [ONCOR])]);
    assert.equal(out[0].outcome, "unchanged");
    const rows = h.rows();
    assert.deepEqual(rows.map((row) => row.member_code), ["ATMOS", "ONCOR"]);
    assert.ok(rows.every((row) => row.synced_at === "2026-01-01T00:00:00Z"));
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() marks a ticket updated when a response changed", async () => {
  const h = await harness();
  try {
    await h.sync([ticket("T1", [ATMOS, ONCOR])]);
    h.clock.instant = Temporal.Instant.from("2026-01-02T00:00:00Z");
    const changed = { ...ONCOR, response: { status: "Conflict" } };
    const { out, runtime } = await h.sync([ticket("T1", [ATMOS, changed])]);
    assert.equal(out[0].outcome, "updated");
    const rows = h.rows();
    assert.deepEqual(rows.map((row) => [row.status, row.synced_at]), [
      ["Clear", "2026-01-01T00:00:00Z"],
      ["Conflict", "2026-01-02T00:00:00Z"],
    ]);
    assert.equal(runtime.stats().updated, 1);
    assert.equal(runtime.stats().unchanged, 1);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() skips tickets the ledger knows unchanged and passes failures through", async () => {
  const h = await harness();
  try {
    const unchangedByLedger = ticket("T2", [ATMOS]);
    unchangedByLedger.previous = {
      key: "T2",
      hash: unchangedByLedger.hash,
      remoteId: null,
      lastOutcome: "updated",
      attempts: 1,
      lastError: null,
      syncedAt: null,
    };
    const failed = { ...ticket("T3", [ATMOS], "failed"), reason: "HTTP 500" };
    const { out } = await h.sync([unchangedByLedger, failed]);
    assert.deepEqual(out.map((r) => [r.outcome, r.reason]), [
      ["unchanged", undefined],
      ["failed", "HTTP 500"],
    ]);
    await assert.rejects(Deno.stat(join(h.dir, "texas811.db")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() still writes the responses of a ticket unchanged only in the ticket table", async () => {
  // A run killed between the ticket sink and this one: the ticket row is there,
  // the ledger does not know it, and its responses were never written.
  const h = await harness();
  try {
    const { out } = await h.sync([ticket("T1", [ATMOS], "unchanged")]);
    assert.deepEqual(out.map((r) => r.outcome), ["updated"]);
    assert.deepEqual(h.rows().map((row) => row.parent_key), ["T1"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() fails a ticket whose response lacks a key field", async () => {
  const h = await harness();
  try {
    const { out, runtime } = await h.sync([
      ticket("T1", [ATMOS, { member_code: "ONCOR" }]),
      ticket("T2", "not a list"),
      ticket("T3", [ONCOR]),
    ]);
    assert.deepEqual(out.map((r) => [r.outcome, r.reason]), [
      ["failed", 'response 2: missing key field "responded_at"'],
      ["failed", '"responses" is not a list: got "not a list"'],
      ["updated", undefined],
    ]);
    assert.deepEqual(h.rows().map((row) => row.parent_key), ["T3"]);
    assert.equal(runtime.stats().failedParents, 2);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() fails the ticket and writes none of its responses when one fails", async () => {
  const h = await harness();
  try {
    const db = new DatabaseSync(join(h.dir, "texas811.db"));
    db.exec(`CREATE TABLE responses (parent_key TEXT NOT NULL, child_key TEXT NOT NULL,
      member_code TEXT, status TEXT CHECK (status <> 'Bogus'), PRIMARY KEY (parent_key, child_key))`);
    db.close();
    const bogus = { ...ATMOS, response: { status: "Bogus" } };
    const { out } = await h.sync([ticket("T1", [ONCOR, bogus]), ticket("T2", [ONCOR])]);
    assert.equal(out[0].outcome, "failed");
    assert.match(
      out[0].reason ?? "",
      /^response "ATMOS@2025-09-03T14:15:00-05:00": CHECK constraint failed/,
    );
    assert.equal(out[1].outcome, "updated");
    assert.deepEqual(h.rows().map((row) => row.parent_key), ["T2"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() plan mode writes nothing and lists response changes", async () => {
  const h = await harness();
  try {
    await h.sync([ticket("T1", [ATMOS])]);
    const file = join(h.dir, "texas811.db");
    const before = await Deno.stat(file);
    const changed = { ...ATMOS, response: { status: "Marked" } };
    const { out } = await h.sync([ticket("T1", [changed, ONCOR])], { mode: "plan" });
    assert.equal(out[0].outcome, "updated");
    assert.deepEqual(out[0].changes, [
      {
        path: 'responses["ATMOS@2025-09-03T14:15:00-05:00"].status',
        before: "Clear",
        after: "Marked",
      },
      { path: 'responses["ONCOR@2025-09-03T15:00:00-05:00"]', before: null, after: ONCOR },
    ]);
    assert.equal(h.rows().length, 1);
    assert.equal(h.rows()[0].status, "Clear");
    assert.equal((await Deno.stat(file)).mtime?.getTime(), before.mtime?.getTime());
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() config: unsafe or reserved names are reported at validation", () => {
  assert.deepEqual(
    configProblems(stage, { table: "1responses", columns: { Parent_Key: {} }, raw: "member" }),
    [
      'stages[2].table: invalid table name: expected letters, digits and underscores, not starting with a digit, got "1responses"',
      'stages[2].columns.Parent_Key: the column is managed by the sink: expected a name other than "parent_key", "child_key", "content_hash", "first_synced_at", "synced_at"',
    ],
  );
  assert.deepEqual(configProblems(stage, { columns: { member: {} }, raw: "MEMBER" }), [
    'stages[2].raw: expected a name no other column of the table has, got "MEMBER"',
  ]);
  assert.deepEqual(configProblems(stage, { columns: { member: { from: "member_code" } } }), []);
});

Deno.test("syncResponsesSqlite() keeps two responses apart whose key parts would join alike", async () => {
  const h = await harness();
  try {
    const a = { member_code: "x@y", responded_at: "z", response: { status: "A" } };
    const b = { member_code: "x", responded_at: "y@z", response: { status: "B" } };
    await h.sync([ticket("T1", [a, b], "created")]);
    assert.deepEqual(h.rows().map((row) => [row.child_key, row.status]), [
      ["x@y\\@z", "B"],
      ["x\\@y@z", "A"],
    ]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("syncResponsesSqlite() keeps a one-part key as it is, @ included", async () => {
  const h = await harness();
  try {
    const email = { member_code: "ann@example.com", response: { status: "open" } };
    await h.sync([ticket("T1", [email], "created")], {}, { ...CONFIG, key: ["member_code"] });
    assert.deepEqual(h.rows().map((row) => row.child_key), ["ann@example.com"]);
  } finally {
    await Deno.remove(h.dir, { recursive: true });
  }
});
