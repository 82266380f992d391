import assert from "node:assert/strict";
import { KeySet } from "./key_set.ts";

Deno.test("KeySet.add() tells new keys from repeated ones, across growth", () => {
  const set = new KeySet(4);
  const keys = Array.from({ length: 50_000 }, (_, i) => `2500${i}`);
  for (const key of keys) assert.equal(set.add(key), true, key);
  assert.equal(set.size, 50_000);
  for (const key of keys) assert.equal(set.add(key), false, key);
  assert.equal(set.add(""), true);
  assert.equal(set.add(""), false);
  assert.equal(set.add("tenant:1"), true);
  assert.equal(set.add("tenant:1 "), true, "keys differing by a space are different");
  assert.equal(set.size, 50_003);
});
