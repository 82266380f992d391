import assert from "node:assert/strict";
import { contentHash, stableStringify } from "./hash.ts";

Deno.test("contentHash() ignores key order but not values or array order", () => {
  assert.equal(contentHash({ a: 1, b: { c: 2, d: 3 } }), contentHash({ b: { d: 3, c: 2 }, a: 1 }));
  assert.notEqual(contentHash({ a: 1 }), contentHash({ a: 2 }));
  assert.notEqual(contentHash({ a: [1, 2] }), contentHash({ a: [2, 1] }));
  assert.equal(stableStringify({ b: undefined, a: null }), '{"a":null}');
  assert.match(contentHash({}), /^[0-9a-f]{32}$/);
});

Deno.test("stableStringify() sorts keys at every level, in arrays too, and writes toJSON values", () => {
  const when = new Date(Date.UTC(2025, 0, 2));
  const value = {
    z: [{ y: 1, b: { d: 1, c: 2 } }, "s", null],
    a: { when, instant: Temporal.Instant.from("2025-01-02T00:00:00Z"), e: undefined },
    m: 1,
  };
  assert.equal(
    stableStringify(value),
    '{"a":{"instant":"2025-01-02T00:00:00Z","when":"2025-01-02T00:00:00.000Z"},"m":1,' +
      '"z":[{"b":{"c":2,"d":1},"y":1},"s",null]}',
  );
  assert.equal(stableStringify([{ b: 1, a: 2 }]), '[{"a":2,"b":1}]');
  assert.equal(stableStringify("text"), '"text"');
  assert.equal(stableStringify(when), '"2025-01-02T00:00:00.000Z"');
  // Flat records in one key order, then another: the cached order is not reused wrongly.
  assert.equal(stableStringify({ b: 1, a: 2 }), '{"a":2,"b":1}');
  assert.equal(stableStringify({ b: 1, a: 2 }), '{"a":2,"b":1}');
  assert.equal(stableStringify({ b: 1, c: 2 }), '{"b":1,"c":2}');
  assert.equal(stableStringify({ a: 1, b: 2, c: 3 }), '{"a":1,"b":2,"c":3}');
});

Deno.test("stableStringify() stays right across many key lists and alternating shapes", () => {
  for (let i = 0; i < 400; i++) {
    const record = { [`k${i}`]: i, b: "x", a: i % 2 ? null : "y" };
    const a = i % 2 ? "null" : '"y"';
    assert.equal(stableStringify(record), `{"a":${a},"b":"x","k${i}":${i}}`);
    assert.equal(stableStringify({ z: 1, y: [i] }), `{"y":[${i}],"z":1}`);
  }
});
