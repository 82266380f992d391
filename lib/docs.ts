/**
 * The stage reference, rendered from the stage schemas (the single source of
 * docs): `deno task docs` writes it to `docs/stages.md`.
 * @module
 */
import { z } from "zod";
import { type StageDefinition, stageRef } from "./stage.ts";
import { pipelineSchema } from "./config.ts";
import type { Registry } from "./registry.ts";

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  secret?: boolean;
  additionalProperties?: JsonSchema | boolean;
}

function typeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const options = schema.anyOf ?? schema.oneOf;
  if (options) return options.map(typeOf).join(" | ");
  if (schema.type === "array") return `${schema.items ? typeOf(schema.items) : "any"}[]`;
  if (schema.type === "object" && schema.additionalProperties && !schema.properties) {
    const values = schema.additionalProperties === true
      ? "any"
      : typeOf(schema.additionalProperties);
    return `{ [name]: ${values} }`;
  }
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  return schema.type ?? "any";
}

function escape(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** The JSON Schema of one stage's config (input side: defaults are optional). */
export function stageJsonSchema(stage: StageDefinition): JsonSchema {
  return z.toJSONSchema(stage.config, { io: "input", unrepresentable: "any" }) as JsonSchema;
}

/** Markdown for one stage: summary and a table of its fields. */
export function renderStage(stage: StageDefinition): string {
  const schema = stageJsonSchema(stage);
  const required = new Set(schema.required ?? []);
  const rows = Object.entries(schema.properties ?? {}).map(([name, field]) => {
    const flags = [
      required.has(name) ? "required" : "",
      field.secret ? "secret" : "",
    ].filter(Boolean).join(", ");
    const fallback = field.default === undefined ? "" : `\`${JSON.stringify(field.default)}\``;
    return `| \`${name}\` | ${escape(typeOf(field))} | ${fallback} | ${flags} | ${
      escape(field.description ?? "")
    } |`;
  });
  return [
    `### \`${stageRef(stage)}\``,
    "",
    stage.summary,
    "",
    "| field | type | default | | description |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}

/** The whole reference page. */
export function renderStageDocs(registry: Registry): string {
  const top = z.toJSONSchema(pipelineSchema, { io: "input" }) as JsonSchema;
  const topRows = Object.entries(top.properties ?? {}).map(([name, field]) =>
    `| \`${name}\` | ${escape(typeOf(field))} | ${
      field.default === undefined ? "" : `\`${JSON.stringify(field.default)}\``
    } | ${escape(field.description ?? "")} |`
  );
  const sections = registry.refs().map((ref) => renderStage(registry.get(ref)!));
  return [
    "# Stage reference",
    "",
    "Generated from the stage schemas by `deno task docs`; do not edit by hand.",
    "Every stage entry also takes `use` (the stage name below) and an optional `id`.",
    "",
    "## Pipeline",
    "",
    "| field | type | default | description |",
    "| --- | --- | --- | --- |",
    ...topRows,
    "",
    "## Stages",
    "",
    ...sections,
  ].join("\n");
}

/** The JSON Schema of a whole config file, for editors (`ticketsync schema`). */
export function configJsonSchema(registry: Registry): unknown {
  const schema = pipelineSchema.extend({
    stages: z.array(registry.stageUnion()).min(2).describe(
      "The stage chain: read, then filters/transforms, then sinks, then reports.",
    ),
  });
  return allowPlaceholders(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }));
}

/** A `${env:...}` or `${var:...}` placeholder: filled in before validation, so any field may hold one. */
const PLACEHOLDER_SCHEMA = { type: "string", pattern: "\\$\\{(env|var):" };

/**
 * Lets every number, integer, boolean, enum and patterned string in a JSON
 * Schema also be a placeholder string, as the config loader allows
 * (`"perSecond": "${var:rate}"`), so editors do not flag the examples.
 */
function allowPlaceholders(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowPlaceholders);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = allowPlaceholders(value);
  const type = out.type;
  const constrained =
    (type === "string" && (out.pattern !== undefined || out.format !== undefined)) ||
    out.enum !== undefined;
  if (type === "number" || type === "integer" || type === "boolean" || constrained) {
    return { anyOf: [out, PLACEHOLDER_SCHEMA] };
  }
  return out;
}
