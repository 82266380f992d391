import assert from "node:assert/strict";
import { batches } from "./batch.ts";
import { collect, fromArray } from "../tests/harness.ts";

Deno.test("batches() groups in order and keeps a short last batch", async () => {
  assert.deepEqual(await collect(batches(fromArray([1, 2, 3, 4, 5]), 2)), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(await collect(batches(fromArray([]), 3)), []);
  await assert.rejects(
    () => collect(batches(fromArray([1]), 0)),
    /size must be a positive integer, got 0/,
  );
});
