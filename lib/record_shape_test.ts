import assert from "node:assert/strict";
import { recordBuilder, recordCopier, recordPicker, ShapeCache } from "./record_shape.ts";

Deno.test("recordBuilder() builds records with any key text, in key order", () => {
  const keys = ["id", 'quote " and \\ backslash', "line\nbreak", "${x}", "constructor", ""];
  const build = recordBuilder(keys);
  const record = build([1, "a", "", null, "c", "e"]);
  assert.deepEqual(Object.keys(record), keys);
  assert.deepEqual(Object.values(record), [1, "a", "", null, "c", "e"]);
  assert.equal(Object.getPrototypeOf(record), Object.prototype);
  assert.deepEqual(recordBuilder(["a", "b"], true)(["", "x"]), { a: null, b: "x" });
});

Deno.test("recordBuilder() and recordPicker() make __proto__ an own key, never the prototype", () => {
  const built = recordBuilder(["__proto__", "a"])([{ polluted: true }, 1]);
  assert.equal(Object.getPrototypeOf(built), Object.prototype);
  assert.deepEqual(Object.keys(built), ["__proto__", "a"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const source = JSON.parse('{"__proto__": {"polluted": true}, "a": ""}');
  const picked = recordPicker(["__proto__", "a"], true)(source);
  assert.equal(Object.getPrototypeOf(picked), Object.prototype);
  assert.deepEqual(picked.__proto__, { polluted: true });
  assert.equal(picked.a, null);
});

Deno.test("recordCopier() leaves out excluded keys, follows changing key lists, then loops", () => {
  const copy = recordCopier(new Set(["drop"]), true);
  const first = { a: "1", drop: "x", b: "" };
  const out = copy(first);
  assert.deepEqual(out, { a: "1", b: null });
  assert.notEqual(out, first);
  assert.deepEqual(first, { a: "1", drop: "x", b: "" });
  assert.deepEqual(copy({ b: "2", a: "3" }), { b: "2", a: "3" });
  // More distinct key lists than it compiles for: still right.
  for (let i = 0; i < 40; i++) {
    assert.deepEqual(copy({ [`k${i}`]: i, drop: 1, a: "" }), { [`k${i}`]: i, a: null });
  }
});

Deno.test("ShapeCache derives once per key list and stops deriving for new lists past its budget", () => {
  const derived: string[] = [];
  const cache = new ShapeCache((keys) => {
    derived.push(keys.join());
    return keys.length;
  }, { budget: 2 });
  assert.equal(cache.get(["a", "b"]), 2);
  assert.equal(cache.get(["a", "b"]), 2);
  assert.equal(cache.get(["c"]), 1);
  assert.equal(cache.get(["a", "b"]), 2, "a known list is still answered");
  assert.equal(cache.get(["d", "e", "f"]), undefined, "past the budget a new list gets nothing");
  assert.deepEqual(derived, ["a,b", "c"]);
});
