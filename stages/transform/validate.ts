/**
 * `transform.validate`: checks records before the sinks. A record with any
 * problem goes to the dead-letter store with every problem joined by "; ";
 * passing records go on unchanged. `types` and `patterns` check present values
 * only (not missing or null); `required` demands presence.
 * @module
 */
import { z } from "zod";
import { describeValue } from "../../lib/config.ts";
import { getPath } from "../../lib/paths.ts";
import { isEmptyValue } from "../../lib/predicate.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

const VALUE_TYPES = [
  "string",
  "number",
  "integer",
  "boolean",
  "array",
  "object",
  "date-iso",
] as const;
type ValueType = typeof VALUE_TYPES[number];

/** ISO 8601 date-times need an offset or Z; plain dates (`2025-09-03`) pass too. */
function isIsoDate(value: string): boolean {
  try {
    Temporal.Instant.from(value);
    return true;
  } catch {
    // Not an instant; maybe a calendar date.
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  try {
    Temporal.PlainDate.from(value, { overflow: "reject" });
    return true;
  } catch {
    return false;
  }
}

const TYPE_CHECKS: Record<ValueType, { expected: string; test: (value: unknown) => boolean }> = {
  "string": { expected: "a string", test: (value) => typeof value === "string" },
  "number": {
    expected: "a number",
    test: (value) => typeof value === "number" && Number.isFinite(value),
  },
  "integer": { expected: "an integer", test: (value) => Number.isInteger(value) },
  "boolean": { expected: "true or false", test: (value) => typeof value === "boolean" },
  "array": { expected: "an array", test: Array.isArray },
  "object": {
    expected: "an object",
    test: (value) => value !== null && typeof value === "object" && !Array.isArray(value),
  },
  "date-iso": {
    expected: 'an ISO 8601 date like "2025-09-03T14:15:00-05:00"',
    test: (value) => typeof value === "string" && isIsoDate(value),
  },
};

/** One compiled check; returns a problem or undefined. */
type Check = (data: Record<string, unknown>) => string | undefined;

/** The `transform.validate` stage. */
export const stage = defineStage({
  kind: "transform",
  name: "validate",
  summary: "Dead-letter records with missing fields, wrong types or values not matching a pattern.",
  config: z.object({
    required: z.array(z.string().min(1)).default([]).describe(
      "Paths that must be present and not null",
    ),
    types: z.record(z.string().min(1), z.enum(VALUE_TYPES)).default({}).describe(
      'Expected type per path: "string", "number", "integer", "boolean", "array", "object" or "date-iso" (checked when present)',
    ),
    patterns: z.record(
      z.string().min(1),
      z.string().superRefine(function checkRegex(source, ctx) {
        try {
          new RegExp(source);
        } catch (error) {
          ctx.addIssue({
            code: "custom",
            message: `invalid regular expression: ${(error as Error).message}`,
          });
        }
      }),
    ).default({}).describe(
      "Regular expression per path that text (or numbers) must match (checked when present)",
    ),
    nonEmpty: z.array(z.string().min(1)).default([]).describe(
      'Paths whose value must not be null, "", [] or missing',
    ),
  }).strict().superRefine(function checkSomething(config, ctx) {
    const configured = config.required.length + config.nonEmpty.length +
      Object.keys(config.types).length +
      Object.keys(config.patterns).length;
    if (configured === 0) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message: `expected at least one check in "required", "types", "patterns" or "nonEmpty"`,
        input: undefined,
      });
    }
  }),
  create(config, ctx) {
    const checks: Check[] = [];
    for (const path of config.required) {
      checks.push(function required(data) {
        const value = getPath(data, path);
        return value === undefined || value === null
          ? `missing required field ${JSON.stringify(path)}`
          : undefined;
      });
    }
    for (const path of config.nonEmpty) {
      checks.push(function nonEmpty(data) {
        const value = getPath(data, path);
        return isEmptyValue(value)
          ? `${JSON.stringify(path)}: expected a non-empty value, got ${describeValue(value)}`
          : undefined;
      });
    }
    for (const [path, type] of Object.entries(config.types)) {
      const { expected, test } = TYPE_CHECKS[type];
      checks.push(function typed(data) {
        const value = getPath(data, path);
        if (value === undefined || value === null || test(value)) return undefined;
        return `${JSON.stringify(path)}: expected ${expected}, got ${describeValue(value)}`;
      });
    }
    for (const [path, source] of Object.entries(config.patterns)) {
      const regex = new RegExp(source);
      checks.push(function matches(data) {
        const value = getPath(data, path);
        if (value === undefined || value === null) return undefined;
        const text = typeof value === "string"
          ? value
          : typeof value === "number"
          ? String(value)
          : undefined;
        if (text !== undefined && regex.test(text)) return undefined;
        return `${JSON.stringify(path)}: expected to match /${source}/, got ${
          describeValue(value)
        }`;
      });
    }

    return {
      async *process(items: AsyncIterable<Item>): AsyncIterable<Item> {
        for await (const item of items) {
          const problems: string[] = [];
          for (const check of checks) {
            const problem = check(item.data);
            if (problem !== undefined) problems.push(problem);
          }
          if (problems.length > 0) ctx.deadLetter(item, problems.join("; "));
          else yield item;
        }
      },
    };
  },
});
