import assert from "node:assert/strict";
import { z } from "zod";
import { closest, Registry } from "./registry.ts";
import { defineStage } from "./stage.ts";

const read = defineStage({
  kind: "read",
  name: "x",
  summary: "Reads x records.",
  config: z.object({ path: z.string().describe("File.") }).strict(),
  create: () => ({ read: async function* () {} }),
});
const sink = defineStage({
  kind: "sync-tickets",
  name: "y",
  summary: "Writes y records.",
  config: z.object({}).strict(),
  create: () => ({ sync: (results) => results }),
});

Deno.test("Registry looks stages up by use, in kind order, and refuses duplicates", () => {
  const registry = new Registry([sink, read]);
  assert.deepEqual(registry.refs(), ["read.x", "sync-tickets.y"]);
  assert.equal(registry.get("read.x"), read);
  assert.equal(registry.get("read.z"), undefined);
  assert.throws(() => new Registry([read, read]), /"read.x" is registered twice/);
});

Deno.test("Registry.entrySchema() adds use and id and stays strict", () => {
  const schema = new Registry([read]).entrySchema(read);
  assert.ok(schema.safeParse({ use: "read.x", path: "a", id: "source" }).success);
  assert.ok(!schema.safeParse({ use: "read.y", path: "a" }).success);
  assert.ok(!schema.safeParse({ use: "read.x", path: "a", extra: 1 }).success);
});

Deno.test("closest() suggests a likely typo only", () => {
  assert.equal(closest("pth", ["path", "format"]), "path");
  assert.equal(closest("read.jsn", ["read.json", "read.csv"]), "read.json");
  assert.equal(closest("completely-different", ["path"]), undefined);
});
