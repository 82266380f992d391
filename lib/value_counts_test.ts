import assert from "node:assert/strict";
import { OTHER, ValueCounts } from "./value_counts.ts";

Deno.test("ValueCounts counts values per field, most frequent first", () => {
  const counts = new ValueCounts(["type", "venue.city", "tags"]);
  counts.add({ type: "bar", venue: { city: "Baltimore" }, tags: ["live", "music"] });
  counts.add({ type: "club", venue: { city: "Baltimore" }, tags: ["music"] });
  counts.add({ type: "bar", venue: null, tags: [] });
  counts.add({ type: "", venue: { city: 21201 } });
  assert.deepEqual(counts.top("type"), [["bar", 2], ["club", 1]]);
  assert.deepEqual(counts.top("venue.city", 1), [["Baltimore", 2]]);
  assert.deepEqual(counts.toJSON(), {
    type: { bar: 2, club: 1 },
    "venue.city": { Baltimore: 2, "21201": 1 },
    tags: { music: 2, live: 1 },
  });
  assert.deepEqual(counts.top("unknown"), []);
});

Deno.test("ValueCounts stops adding distinct values at the cap", () => {
  const counts = new ValueCounts(["n"], 3);
  for (let i = 0; i < 100; i++) counts.add({ n: i % 10 });
  const top = counts.top("n");
  assert.equal(top.length, 4);
  assert.deepEqual(top[0], [OTHER, 70]);
  assert.equal(top.reduce((sum, [, n]) => sum + n, 0), 100);
});
