import assert from "node:assert/strict";
import { deletePath, getPath, hasPath, renderTemplate, setPath, templateFields } from "./paths.ts";

Deno.test("getPath()/setPath()/deletePath() walk nested objects and arrays", () => {
  const data: Record<string, unknown> = { a: { b: [{ c: 1 }] }, n: null };
  assert.equal(getPath(data, "a.b.0.c"), 1);
  assert.equal(getPath(data, "a.x.y"), undefined);
  assert.equal(getPath(data, "n.x"), undefined);
  assert.ok(hasPath(data, "n"));
  assert.ok(!hasPath(data, "a.z"));
  setPath(data, "x.y.z", 2);
  assert.deepEqual(data.x, { y: { z: 2 } });
  assert.ok(deletePath(data, "x.y.z"));
  assert.ok(!deletePath(data, "x.y.z"));
  assert.throws(() => setPath(data, "", 1), /path is empty/);
});

Deno.test("renderTemplate() fills fields and encodes values", () => {
  const data = { id: "a/b", n: 3, nested: { k: "v" } };
  assert.equal(
    renderTemplate("/t/{id}/{ nested.k }/{missing}", data, encodeURIComponent),
    "/t/a%2Fb/v/",
  );
  assert.equal(renderTemplate("{n}-{id}", data), "3-a/b");
  assert.deepEqual(templateFields("{a}:{b.c}"), ["a", "b.c"]);
});
