/**
 * `transform.map`: declarative field mapping. Builds each output record from
 * `fields` (in order), either on a fresh object or on a copy of the input
 * (`keep`), then removes `drop` paths. Specs are compiled once at create.
 *
 * Per field: take the source (`from`, coalescing several paths; a constant
 * `value`; a `template`; or by default the target's own path), `trim`, turn
 * `""` into null (`emptyAsNull`), fall back to `default` when missing, null or
 * `""`, then `each`/`pluck` arrays, convert `type`, and set `case`. With
 * `pluck`, trim, type and case apply to each plucked element. A top-level
 * `emptyAsNull` is every field's default and also nulls `""` in top-level
 * values kept from the input. Missing sources without a default are left out.
 *
 * Problems (a failed conversion, a missing required field) are collected per
 * record: with `onError: "dead-letter"` the record is dead-lettered with all
 * of them joined by "; "; with `"null"` the fields become null and a warning
 * naming the record's origin is logged.
 * @module
 */
import { z } from "zod";
import { describeValue } from "../../lib/config.ts";
import {
  dateFormatSchema,
  type EpochMsParser,
  epochMsParser,
  formatEpochMs,
  formatInstant,
  type InstantStyle,
  instantStyleSchema,
  isLocalFormat,
  zoneSchema,
} from "../../lib/datetime.ts";
import { errorMessage } from "../../lib/errors.ts";
import { getPath, renderTemplate, splitPath } from "../../lib/paths.ts";
import { recordCopier } from "../../lib/record_shape.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

const FIELD_TYPES = ["string", "number", "integer", "boolean", "date", "json"] as const;

/** A field spec: a source path, or an object saying where the value comes from and how to convert it. */
type FieldSpec = string | FieldSpecObject;

/** The object form of a {@linkcode FieldSpec}. */
interface FieldSpecObject {
  from?: string | string[];
  value?: unknown;
  template?: string;
  trim?: boolean;
  case?: "lower" | "upper";
  type?: typeof FIELD_TYPES[number];
  format?: string;
  zone?: string;
  output?: InstantStyle;
  default?: unknown;
  emptyAsNull?: boolean;
  pluck?: string;
  each?: Record<string, FieldSpec>;
  required?: boolean;
}

const path = z.string().min(1);

const fieldSpecSchema: z.ZodType<FieldSpec> = z.union([
  path.describe("Shorthand: copy the value at this source path"),
  z.object({
    from: z.union([path, z.array(path).min(1)], { error: "expected a path or a list of paths" })
      .optional()
      .describe("Source path, or paths to coalesce (the first that is not missing, null or empty)"),
    value: z.unknown().optional().describe("A constant value instead of a source"),
    template: z.string().optional().describe(
      'Text with {path} placeholders, e.g. "{subject}\\n\\n{description}"',
    ),
    trim: z.boolean().optional().describe("Trim whitespace from text"),
    case: z.enum(["lower", "upper"]).optional().describe("Lower- or upper-case text"),
    type: z.enum(FIELD_TYPES).optional().describe(
      "Convert to this type; a failure dead-letters the record",
    ),
    format: dateFormatSchema.optional().describe(
      'Input date format for "type": "date" (default "iso"): a pattern like "MM/dd/yyyy hh:mm a", or "iso", "epoch-ms", "epoch-s"',
    ),
    zone: zoneSchema.optional().describe(
      'IANA zone the input is local to, and of "iso-offset" output, e.g. "America/Chicago"',
    ),
    output: instantStyleSchema.optional().describe('How a date is written (default "iso-utc")'),
    default: z.unknown().optional().describe('Used when the source is missing, null or ""'),
    emptyAsNull: z.boolean().optional().describe('Turn "" (after trim) into null'),
    pluck: path.optional().describe(
      "Map an array of objects to an array of this field (tags [{name}] -> names)",
    ),
    get each() {
      return z.record(path, fieldSpecSchema).optional().describe(
        "Map each element of an array with these nested fields",
      );
    },
    required: z.boolean().optional().describe(
      "A missing, null or empty value dead-letters the record",
    ),
  }).strict().superRefine(checkFieldSpec),
], { error: "expected a source path or a field spec object" });

function quoteKeys(keys: string[]): string {
  return keys.map((key) => JSON.stringify(key)).join(" and ");
}

/**
 * The rules between a field spec's keys (a zod refinement, so config
 * validation reports each problem with its path, nested `each` fields too).
 */
function checkFieldSpec(spec: FieldSpecObject, ctx: z.RefinementCtx): void {
  const issue = (path: PropertyKey[], message: string) =>
    ctx.addIssue({ code: "custom", path, message, input: undefined });
  const sources = (["from", "value", "template"] as const).filter((key) => spec[key] !== undefined);
  if (sources.length > 1) {
    issue([], `expected one of "from", "value" or "template", got ${quoteKeys(sources)}`);
  }
  const type = spec.type === undefined ? `no "type"` : `"type": ${JSON.stringify(spec.type)}`;
  if (spec.type !== "date") {
    for (const key of ["format", "zone", "output"] as const) {
      if (spec[key] !== undefined) issue([key], `expected "type": "date" with it, got ${type}`);
    }
  }
  if (spec.pluck !== undefined && spec.each !== undefined) {
    issue(["each"], `expected "pluck" or "each", not both`);
  }
  if (spec.each !== undefined) {
    for (const key of ["type", "case", "trim", "emptyAsNull"] as const) {
      if (spec[key] !== undefined) {
        issue([key], `cannot be used with "each": expected it on the nested fields instead`);
      }
    }
  }
  if (spec.case !== undefined && spec.type !== undefined && spec.type !== "string") {
    issue(["case"], `expected text ("type": "string" or no "type"), got ${type}`);
  }
  if (spec.required && spec.default !== undefined) {
    issue(["default"], `expected "required" or "default", not both`);
  }
  if (spec.type === "date") {
    const format = spec.format ?? "iso";
    const zone = 'expected an IANA time zone like "America/Chicago"';
    if (isLocalFormat(format) && spec.zone === undefined) {
      issue(["zone"], `required: "format" ${JSON.stringify(format)} is a local time: ${zone}`);
    } else if (spec.output === "iso-offset" && spec.zone === undefined) {
      issue(["zone"], `required: "output": "iso-offset" writes a local time: ${zone}`);
    } else {
      try {
        epochMsParser({ format, zone: spec.zone });
      } catch (error) {
        issue(["format"], errorMessage(error));
      }
    }
  }
}

/** Marks a field to leave out of the output (its source is missing). */
const OMIT: unique symbol = Symbol("omit");

/** Thrown by a conversion; the caller prefixes the field's label. */
class ConvertError extends Error {}

/** Where a record's problems are collected while mapping it. */
type Problems = string[];

/** A compiled field: writes its value (or nothing) into the output. */
interface CompiledField {
  target: string;
  segments: string[];
  /** The field's value, `OMIT`, or null after pushing a problem. */
  run(data: unknown, label: string, problems: Problems): unknown;
}

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE = new Set(["true", "1", "yes"]);
const FALSE = new Set(["false", "0", "no"]);

function toNumber(value: unknown, integer: boolean): number {
  let number: number | undefined;
  if (typeof value === "number" && !Number.isNaN(value)) number = value;
  else if (typeof value === "string" && NUMERIC.test(value.trim())) number = Number(value);
  if (number === undefined) {
    throw new ConvertError(`expected a number, got ${describeValue(value)}`);
  }
  // "1e999" parses as Infinity, which JSON cannot hold (it would be written as null).
  if (!Number.isFinite(number)) {
    throw new ConvertError(
      `expected a number, got ${describeValue(value)}, which is too large to represent`,
    );
  }
  if (integer && !Number.isInteger(number)) {
    throw new ConvertError(`expected an integer, got ${describeValue(value)}`);
  }
  // Beyond 2^53 - 1 an integer is silently rounded ("9007199254740993" reads as ...992).
  if (integer && !Number.isSafeInteger(number)) {
    throw new ConvertError(
      `expected an integer between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}, got ${
        describeValue(value)
      }, which cannot be held exactly`,
    );
  }
  return number;
}

function toBoolean(value: unknown): boolean {
  if (typeof value === "boolean") return value;
  const text = typeof value === "string"
    ? value.trim().toLowerCase()
    : typeof value === "number"
    ? String(value)
    : "";
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  throw new ConvertError(`expected true or false (or yes/no, 1/0), got ${describeValue(value)}`);
}

function toText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Temporal.Instant) return value.toString();
  throw new ConvertError(`expected text, got ${describeValue(value)}`);
}

function toJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new ConvertError(
      `expected JSON text, got ${describeValue(value)}: ${errorMessage(error)}`,
    );
  }
}

/** A date conversion: accepts text, numbers, Date and Temporal instants; writes `output`. */
function dateConverter(parse: EpochMsParser, style: InstantStyle, zone: string | undefined) {
  const options = { style, zone };
  return function toDate(value: unknown): unknown {
    let ms: number;
    if (typeof value === "string" || typeof value === "number") {
      try {
        ms = parse(value);
      } catch (error) {
        throw new ConvertError(errorMessage(error));
      }
    } else if (value instanceof Temporal.Instant) {
      return formatInstant(value, options);
    } else if (value instanceof Temporal.ZonedDateTime) {
      return formatInstant(value.toInstant(), options);
    } else if (value instanceof Date && !Number.isNaN(value.getTime())) {
      ms = value.getTime();
    } else {
      throw new ConvertError(`expected a date, got ${describeValue(value)}`);
    }
    return formatEpochMs(ms, options);
  };
}

function clone(value: unknown): unknown {
  return value !== null && typeof value === "object" ? structuredClone(value) : value;
}

function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/** Compiles a field map (its specs are valid: the config schema checked them). */
function compileFields(
  fields: Record<string, FieldSpec>,
  emptyAsNullDefault: boolean,
): CompiledField[] {
  return Object.entries(fields).map(([target, spec]) =>
    compileField(target, typeof spec === "string" ? { from: spec } : spec, emptyAsNullDefault)
  );
}

function compileField(
  target: string,
  spec: FieldSpecObject,
  emptyAsNullDefault: boolean,
): CompiledField {
  let convert: (value: unknown) => unknown = (value) => value;
  switch (spec.type) {
    case "string":
      convert = toText;
      break;
    case "number":
      convert = (value) => toNumber(value, false);
      break;
    case "integer":
      convert = (value) => toNumber(value, true);
      break;
    case "boolean":
      convert = toBoolean;
      break;
    case "json":
      convert = toJson;
      break;
    case "date": {
      const format = spec.format ?? "iso";
      const style = spec.output ?? "iso-utc";
      convert = dateConverter(epochMsParser({ format, zone: spec.zone }), style, spec.zone);
      break;
    }
  }

  const each = spec.each && compileFields(spec.each, emptyAsNullDefault);
  const pluck = spec.pluck;
  const { trim, required } = spec;
  const emptyAsNull = spec.emptyAsNull ?? (emptyAsNullDefault && spec.each === undefined);
  /** trim and emptyAsNull: what counts as missing is judged after them. */
  const normalize = (value: unknown): unknown => {
    if (trim && typeof value === "string") value = value.trim();
    return emptyAsNull && value === "" ? null : value;
  };
  const source = compileSource(target, spec, normalize);
  const hasDefault = spec.default !== undefined;
  const fallback = spec.default;
  const textCase = spec.case;

  /** trim, emptyAsNull, type and case for one scalar (or one array element). */
  function scalar(value: unknown): unknown {
    if (trim && typeof value === "string") value = value.trim();
    if (emptyAsNull && value === "") return null;
    if (value === null || value === undefined) return null;
    value = convert(value);
    if (textCase && typeof value === "string") {
      return textCase === "lower" ? value.toLowerCase() : value.toUpperCase();
    }
    return value;
  }

  function run(data: unknown, label: string, problems: Problems): unknown {
    const value = normalize(source(data));
    if (isMissing(value)) {
      if (hasDefault) return clone(fallback);
      if (required) {
        problems.push(`missing required field ${JSON.stringify(label)}`);
        return null;
      }
      if (value === undefined) return OMIT;
      if (value === null) return null;
    }
    try {
      if (each) {
        if (!Array.isArray(value)) {
          throw new ConvertError(`expected an array, got ${describeValue(value)}`);
        }
        return value.map((element, index) =>
          mapRecord(each, element, `${label}[${index}].`, problems)
        );
      }
      if (pluck !== undefined) {
        if (!Array.isArray(value)) {
          throw new ConvertError(`expected an array, got ${describeValue(value)}`);
        }
        return value.map((element) => scalar(getPath(element, pluck)));
      }
      return scalar(value);
    } catch (error) {
      if (!(error instanceof ConvertError)) throw error;
      problems.push(`${label}: ${error.message}`);
      return null;
    }
  }

  return { target, segments: splitPath(target), run };
}

/** Where a field's raw value comes from. */
function compileSource(
  target: string,
  spec: FieldSpecObject,
  normalize: (value: unknown) => unknown,
): (data: unknown) => unknown {
  if (spec.value !== undefined) {
    const constant = spec.value;
    return () => clone(constant);
  }
  if (spec.template !== undefined) {
    const template = spec.template;
    return (data) => renderTemplate(template, data);
  }
  const from = spec.from ?? target;
  if (typeof from === "string") return (data) => getPath(data, from);
  return function coalesce(data) {
    let fallback: unknown = undefined;
    for (const path of from) {
      // A value that trims to nothing is as missing as none: the next path is tried.
      const value = normalize(getPath(data, path));
      if (!isMissing(value)) return value;
      if (fallback === undefined) fallback = value;
    }
    return fallback;
  };
}

/**
 * Sets `segments` in `root` to `value`, copying any object on the way that
 * this output does not own yet, so the input record is never mutated.
 */
function writePath(
  root: Record<string, unknown>,
  segments: string[],
  value: unknown,
  owned: Set<object>,
): void {
  let current = root;
  for (const segment of segments.slice(0, -1)) {
    let next = current[segment];
    if (next === null || typeof next !== "object") next = {};
    else if (!owned.has(next)) next = Array.isArray(next) ? next.slice() : { ...next };
    owned.add(next as object);
    current[segment] = next;
    current = next as Record<string, unknown>;
  }
  current[segments[segments.length - 1]] = value;
}

/** Removes `segments` from `root` (copy-on-write like {@linkcode writePath}). */
function removePath(
  root: Record<string, unknown>,
  segments: string[],
  owned: Set<object>,
): void {
  let current = root;
  for (const segment of segments.slice(0, -1)) {
    let next = current[segment];
    if (next === null || typeof next !== "object") return;
    if (!owned.has(next)) {
      next = Array.isArray(next) ? next.slice() : { ...next };
      owned.add(next as object);
      current[segment] = next;
    }
    current = next as Record<string, unknown>;
  }
  delete current[segments[segments.length - 1]];
}

/** Maps one object with `fields`; labels of problems start with `prefix`. */
function mapRecord(
  fields: CompiledField[],
  data: unknown,
  prefix: string,
  problems: Problems,
  base?: Record<string, unknown>,
  owned: Set<object> = new Set(),
): Record<string, unknown> {
  // A base this output already owns (a fresh copy) is written into directly.
  const out: Record<string, unknown> = base ? (owned.has(base) ? base : { ...base }) : {};
  owned.add(out);
  for (const field of fields) {
    const value = field.run(data, `${prefix}${field.target}`, problems);
    if (value !== OMIT) writePath(out, field.segments, value, owned);
  }
  return out;
}

/** The `transform.map` stage. */
export const stage = defineStage({
  kind: "transform",
  name: "map",
  summary: "Rename, drop, set and convert fields (dates, numbers, booleans, arrays).",
  config: z.object({
    fields: z.record(path, fieldSpecSchema).default({}).describe(
      "Output fields, in order: target path -> source path or field spec",
    ),
    keep: z.boolean().default(false).describe(
      "true: start from a copy of the input and apply fields on top; false: output only the mapped fields",
    ),
    drop: z.array(path).default([]).describe(
      "Paths removed from the output (useful with keep: true)",
    ),
    emptyAsNull: z.boolean().default(false).describe(
      'Turn "" into null in every field (unless a field says otherwise) and in top-level values kept from the input',
    ),
    onError: z.enum(["dead-letter", "null"]).default("dead-letter").describe(
      'A conversion failure or missing required field: "dead-letter" the record, or set the field to null and go on',
    ),
  }).strict().superRefine(function checkFields(config, ctx) {
    if (!config.keep && Object.keys(config.fields).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["fields"],
        message: `expected at least one field when "keep" is false`,
        input: undefined,
      });
    }
  }),
  create(config, ctx) {
    const fields = compileFields(config.fields, config.emptyAsNull);
    const drops = config.drop.map(splitPath);
    // Top-level drops are left out of the copy of the input instead of deleted.
    const topDrops = new Set(drops.filter((segments) => segments.length === 1).map(([key]) => key));
    const keep = config.keep;
    const emptyAsNull = config.emptyAsNull;
    // Keeping dropped keys out of the copy (rather than deleting them after)
    // keeps the record a fast, non-dictionary object for every later stage.
    const keptCopy = recordCopier(topDrops, emptyAsNull);
    const deadLetter = config.onError === "dead-letter";

    return {
      async *process(items: AsyncIterable<Item>): AsyncIterable<Item> {
        for await (const item of items) {
          const problems: Problems = [];
          const owned = new Set<object>();
          let base: Record<string, unknown> | undefined;
          if (keep && (emptyAsNull || topDrops.size > 0)) {
            base = keptCopy(item.data);
            owned.add(base);
          } else if (keep) base = item.data;
          const data = mapRecord(fields, item.data, "", problems, base, owned);
          if (problems.length > 0) {
            if (deadLetter) {
              ctx.deadLetter(item, problems.join("; "));
              continue;
            }
            ctx.log.warn("{source} {position}: {problems}; set to null", {
              source: item.origin.source,
              position: item.origin.position,
              problems: problems.join("; "),
            });
          }
          for (const segments of drops) {
            // A top-level key is only here if a field wrote it.
            if (segments.length > 1 || Object.hasOwn(data, segments[0])) {
              removePath(data, segments, owned);
            }
          }
          yield { ...item, data };
        }
      },
    };
  },
});
