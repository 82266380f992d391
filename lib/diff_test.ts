import assert from "node:assert/strict";
import { diffFields } from "./diff.ts";

Deno.test("diffFields() lists changed, added and removed fields by name", () => {
  assert.deepEqual(
    diffFields(
      { a: 1, b: { x: 1, y: 2 }, c: "gone", d: [1, 2] },
      { a: 2, b: { y: 2, x: 1 }, d: [2, 1], e: null },
      "raw.",
    ),
    [
      { path: "raw.a", before: 1, after: 2 },
      { path: "raw.c", before: "gone", after: null },
      { path: "raw.d", before: [1, 2], after: [2, 1] },
    ],
  );
  assert.deepEqual(diffFields({ a: 1 }, { a: 1 }), []);
});
