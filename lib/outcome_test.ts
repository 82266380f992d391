import assert from "node:assert/strict";
import { isActionable, isUnchanged, mergeOutcome, needsChildSync } from "./outcome.ts";
import { item, result } from "../tests/harness.ts";

const run = { mode: "run", full: false, partial: false } as const;

Deno.test("isUnchanged() needs the same hash from a successful earlier sync, and no --full", () => {
  const fresh = result(item("A", { x: 1 }));
  assert.equal(isUnchanged(fresh, run), false);
  const same = result(item("A", { x: 1 }), { hash: fresh.hash, lastOutcome: "created" });
  assert.equal(isUnchanged(same, run), true);
  assert.equal(isUnchanged(same, { ...run, full: true }), false);
  const failedBefore = result(item("A", { x: 1 }), { hash: fresh.hash, lastOutcome: "failed" });
  assert.equal(isUnchanged(failedBefore, run), false);
  const changed = result(item("A", { x: 2 }), { hash: fresh.hash, lastOutcome: "updated" });
  assert.equal(isUnchanged(changed, run), false);
});

Deno.test("mergeOutcome() lets failure win and upgrades unchanged to updated", () => {
  assert.equal(mergeOutcome(null, "created"), "created");
  assert.equal(mergeOutcome("unchanged", "updated"), "updated");
  assert.equal(mergeOutcome("created", "updated"), "created");
  assert.equal(mergeOutcome("created", "failed"), "failed");
  assert.equal(mergeOutcome("failed", "created"), "failed");
  const r = result(item("A", {}));
  assert.ok(isActionable(r));
  assert.ok(!isActionable({ ...r, outcome: "skipped" }));
});

Deno.test("needsChildSync() skips failed and ledger-unchanged parents, marking the latter unchanged", () => {
  const fresh = result(item("A", { x: 1 }));
  assert.equal(needsChildSync(fresh, run), true);
  assert.equal(fresh.outcome, null);
  const same = result(item("A", { x: 1 }), { hash: fresh.hash, lastOutcome: "created" });
  assert.equal(needsChildSync(same, run), false);
  assert.equal(same.outcome, "unchanged");
  const failed = result(item("B", { x: 1 }));
  failed.outcome = "failed";
  assert.equal(needsChildSync(failed, run), false);
  assert.equal(failed.outcome, "failed");
});
