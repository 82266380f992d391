import assert from "node:assert/strict";
import { z } from "zod";
import { configJsonSchema, renderStage, renderStageDocs } from "./docs.ts";
import { Registry } from "./registry.ts";
import { secret } from "./secret.ts";
import { defineStage } from "./stage.ts";

const stage = defineStage({
  kind: "sync-tickets",
  name: "demo",
  summary: "Writes demo records.",
  config: z.object({
    url: secret().describe("Where | to write."),
    batchSize: z.number().int().positive().default(500).describe("Rows per batch."),
    mode: z.enum(["upsert", "insert-ignore"]).default("upsert").describe("How to write."),
  }).strict(),
  create: () => ({ sync: (results) => results }),
});

Deno.test("renderStage() lists every field with type, default, flags and description", () => {
  const text = renderStage(stage);
  assert.match(text, /^### `sync-tickets.demo`\n\nWrites demo records\./);
  assert.match(text, /\| `url` \| string \| +\| required, secret \| Where \\\| to write\. \|/);
  assert.match(text, /\| `batchSize` \| integer \| `500` \| +\| Rows per batch\. \|/);
  assert.match(text, /\| `mode` \| "upsert" \\\| "insert-ignore" \| `"upsert"` \|/);
});

Deno.test("renderStageDocs() and configJsonSchema() cover the pipeline and every stage", () => {
  const registry = new Registry([stage]);
  const docs = renderStageDocs(registry);
  assert.match(docs, /## Pipeline/);
  assert.match(docs, /\| `key` \| string \|/);
  assert.match(docs, /### `sync-tickets.demo`/);
  const schema = configJsonSchema(registry) as {
    properties: { stages: { items: { properties: { use: { const: string } } } } };
  };
  assert.equal(schema.properties.stages.items.properties.use.const, "sync-tickets.demo");
});

Deno.test("configJsonSchema() lets numbers, booleans and enums hold a placeholder, not free text", () => {
  const schema = configJsonSchema(new Registry([stage])) as {
    properties: {
      stages: { items: { properties: Record<string, { anyOf?: Record<string, unknown>[] }> } };
    };
  };
  const fields = schema.properties.stages.items.properties;
  for (const name of ["batchSize", "mode"]) {
    const options = fields[name].anyOf ?? [];
    const placeholder = options.find((option) => option.pattern !== undefined);
    assert.ok(placeholder, `${name} accepts a placeholder`);
    const pattern = new RegExp(String(placeholder.pattern));
    assert.ok(pattern.test("${var:batch}") && pattern.test("${env:MODE}"));
    assert.ok(!pattern.test("fast"), `${name} still rejects plain text`);
  }
  // Plain strings need no alternative.
  assert.equal(fields.url.anyOf, undefined);
});
