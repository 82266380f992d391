import assert from "node:assert/strict";
import { contentHash, stableStringify } from "./hash.ts";

Deno.test("contentHash() ignores key order but not values or array order", () => {
  assert.equal(contentHash({ a: 1, b: { c: 2, d: 3 } }), contentHash({ b: { d: 3, c: 2 }, a: 1 }));
  assert.notEqual(contentHash({ a: 1 }), contentHash({ a: 2 }));
  assert.notEqual(contentHash({ a: [1, 2] }), contentHash({ a: [2, 1] }));
  assert.equal(stableStringify({ b: undefined, a: null }), '{"a":null}');
  assert.match(contentHash({}), /^[0-9a-f]{32}$/);
});
