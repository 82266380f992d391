import assert from "node:assert/strict";
import {
  deletePath,
  getPath,
  hasPath,
  renderJsonTemplate,
  renderTemplate,
  setPath,
  templateFields,
} from "./paths.ts";

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

Deno.test("renderJsonTemplate() renders every string, leaving out keys rendered as undefined", () => {
  const rendered = renderJsonTemplate(
    { a: "x", b: ["y", "skip", 3], c: { d: "skip", e: null, f: true } },
    (text) => text === "skip" ? undefined : text.toUpperCase(),
  );
  assert.deepEqual(rendered, { a: "X", b: ["Y", null, 3], c: { e: null, f: true } });
  assert.equal(renderJsonTemplate("skip", () => undefined), undefined);
});
