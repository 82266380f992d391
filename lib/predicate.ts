/**
 * A declarative predicate language for record filters, validated by zod and
 * compiled once into a plain function.
 *
 * A leaf tests one field with exactly one operator:
 * `{ "field": "status", "in": ["VALID", "DETAILSREQUIRED"] }`. Combinators:
 * `{ "all": [...] }`, `{ "any": [...] }`, `{ "not": {...} }`.
 *
 * Semantics, chosen for CSV and JSON alike:
 * - `eq`/`ne`/`in`/`notIn`/`contains` compare strings with numbers and
 *   booleans by their text, so `"true"` equals `true` and `"42"` equals `42`;
 *   `eq: null` matches null and a missing field.
 * - `contains` is a substring test on strings and a membership test on arrays.
 * - `ne` and `notIn` are true for a missing field.
 * - `exists` is whether the path is present (a `null` value is present).
 * - `empty` is true for null, `""`, a missing field and `[]`.
 * - `gt`/`gte`/`lt`/`lte` compare numbers (numeric strings count) when the
 *   bound is a number, and instants when it is an ISO 8601 date; a value that
 *   is neither never matches. Dates without an offset are read as UTC.
 * - `caseInsensitive` applies to the string operators (and `regex`).
 * @module
 */
import { z } from "zod";
import { getPath, hasPath } from "./paths.ts";
import { parseDateTime } from "./datetime.ts";

/** A value a leaf compares with. */
export type Scalar = string | number | boolean | null;

/** A predicate as written in config (one shape for leaves and combinators). */
export interface Predicate {
  field?: string;
  eq?: Scalar;
  ne?: Scalar;
  in?: Scalar[];
  notIn?: Scalar[];
  contains?: Scalar;
  startsWith?: string;
  endsWith?: string;
  regex?: string;
  flags?: string;
  exists?: boolean;
  gt?: number | string;
  gte?: number | string;
  lt?: number | string;
  lte?: number | string;
  empty?: boolean;
  caseInsensitive?: boolean;
  all?: Predicate[];
  any?: Predicate[];
  not?: Predicate;
}

/** A compiled predicate. */
export type PredicateFn = (data: Record<string, unknown>) => boolean;

/** The leaf operators, in documentation order. */
export const OPERATORS = [
  "eq",
  "ne",
  "in",
  "notIn",
  "contains",
  "startsWith",
  "endsWith",
  "regex",
  "exists",
  "gt",
  "gte",
  "lt",
  "lte",
  "empty",
] as const;

type Operator = typeof OPERATORS[number];

const COMBINATORS = ["all", "any", "not"] as const;

const scalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: "expected a string, a number, true, false or null",
});
const boundSchema = z.union([z.number(), z.string()], {
  error: "expected a number or an ISO 8601 date",
});

/** The instant of an ISO 8601 string (UTC when it has no offset), or `undefined`. */
function isoInstant(value: string): Temporal.Instant | undefined {
  try {
    return parseDateTime(value, { format: "iso", zone: "UTC" });
  } catch {
    return undefined;
  }
}

/** Which operators and combinators a node uses. */
function keysOf(node: Predicate): { operators: Operator[]; combinators: string[] } {
  const operators = OPERATORS.filter((op) => node[op] !== undefined);
  const combinators = COMBINATORS.filter((key) => node[key] !== undefined);
  return { operators, combinators };
}

function quoted(keys: readonly string[]): string {
  return keys.map((key) => JSON.stringify(key)).join(" and ");
}

/** Shape rules zod cannot say per key: one operator per leaf, combinators alone. */
function checkNode(node: Predicate, ctx: z.RefinementCtx): void {
  const { operators, combinators } = keysOf(node);
  const issue = (message: string, path: PropertyKey[] = []) =>
    ctx.addIssue({ code: "custom", message, path, input: undefined });
  if (combinators.length > 0) {
    const extra = [
      ...combinators.slice(1),
      ...(node.field !== undefined ? ["field"] : []),
      ...operators,
      ...(node.caseInsensitive !== undefined ? ["caseInsensitive"] : []),
      ...(node.flags !== undefined ? ["flags"] : []),
    ];
    if (extra.length > 0) {
      issue(`expected ${JSON.stringify(combinators[0])} alone, got it with ${quoted(extra)}`);
    }
    return;
  }
  if (operators.length !== 1) {
    issue(
      `expected exactly one operator of ${OPERATORS.join(", ")} (or "all", "any", "not"), got ${
        operators.length === 0 ? "none" : quoted(operators)
      }`,
    );
  }
  if (node.field === undefined) {
    issue(`expected "field" with ${operators.length ? quoted(operators) : "an operator"}`);
  }
  if (node.flags !== undefined && node.regex === undefined) {
    issue(`"flags" goes with "regex"`, ["flags"]);
  }
  if (node.regex !== undefined) {
    if (node.flags && /[gy]/.test(node.flags)) {
      issue(
        `expected flags of "dimsuv" ("g" and "y" make matching stateful), got ${
          JSON.stringify(node.flags)
        }`,
        [
          "flags",
        ],
      );
    } else {
      try {
        new RegExp(node.regex, node.flags);
      } catch (error) {
        issue(
          `invalid regular expression ${JSON.stringify(node.regex)}: ${(error as Error).message}`,
          ["regex"],
        );
      }
    }
  }
  for (const op of ["gt", "gte", "lt", "lte"] as const) {
    const bound = node[op];
    if (typeof bound === "string" && isoInstant(bound) === undefined) {
      issue(`expected a number or an ISO 8601 date, got ${JSON.stringify(bound)}`, [op]);
    }
  }
}

/**
 * A predicate: a leaf `{ field, <one operator>, caseInsensitive? }` or one of
 * `{ all: [...] }`, `{ any: [...] }`, `{ not: {...} }`.
 */
export const predicateSchema: z.ZodType<Predicate> = z.object({
  field: z.string().min(1).optional().describe(
    'Dotted path of the field to test, e.g. "customer.region"',
  ),
  eq: scalarSchema.optional().describe(
    "Equal to this value (text of numbers and booleans compares)",
  ),
  ne: scalarSchema.optional().describe("Not equal to this value (true when the field is missing)"),
  in: z.array(scalarSchema).optional().describe("Equal to one of these values"),
  notIn: z.array(scalarSchema).optional().describe("Equal to none of these values"),
  contains: scalarSchema.optional().describe(
    "String contains this text, or array contains this value",
  ),
  startsWith: z.string().optional().describe("String starts with this text"),
  endsWith: z.string().optional().describe("String ends with this text"),
  regex: z.string().optional().describe("String matches this regular expression"),
  flags: z.string().optional().describe('Regular expression flags, e.g. "m" (not "g" or "y")'),
  exists: z.boolean().optional().describe(
    "true: the field is present (null counts); false: it is absent",
  ),
  gt: boundSchema.optional().describe("Greater than this number or ISO 8601 date"),
  gte: boundSchema.optional().describe("Greater than or equal to this number or ISO 8601 date"),
  lt: boundSchema.optional().describe("Less than this number or ISO 8601 date"),
  lte: boundSchema.optional().describe("Less than or equal to this number or ISO 8601 date"),
  empty: z.boolean().optional().describe(
    'true: the field is null, "", missing or []; false: it is not',
  ),
  caseInsensitive: z.boolean().optional().describe("Compare strings ignoring case"),
  get all() {
    return z.array(predicateSchema).min(1).optional().describe("True when every predicate is true");
  },
  get any() {
    return z.array(predicateSchema).min(1).optional().describe(
      "True when at least one predicate is true",
    );
  },
  get not() {
    return predicateSchema.optional().describe("True when the predicate is false");
  },
}).strict().superRefine(checkNode);

const NULL_KEY = "\u0000null";

/** The comparable text of a value, or `undefined` for objects and arrays. */
function textOf(value: unknown, caseInsensitive: boolean): string | undefined {
  if (value === null || value === undefined) return NULL_KEY;
  if (typeof value === "string") return caseInsensitive ? value.toLowerCase() : value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return undefined;
}

/** A string view of a value for string operators (numbers count), or `undefined`. */
function stringOf(value: unknown, caseInsensitive: boolean): string | undefined {
  if (typeof value === "string") return caseInsensitive ? value.toLowerCase() : value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return undefined;
}

const NUMERIC = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && NUMERIC.test(value)) return Number(value);
  return undefined;
}

function epochNsOf(value: unknown): bigint | undefined {
  if (value instanceof Temporal.Instant) return value.epochNanoseconds;
  if (value instanceof Temporal.ZonedDateTime) return value.epochNanoseconds;
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? undefined : BigInt(value.getTime()) * 1_000_000n;
  }
  if (typeof value === "string") return isoInstant(value)?.epochNanoseconds;
  return undefined;
}

/** Whether a value counts as empty: null, undefined, `""` or `[]`. */
export function isEmptyValue(value: unknown): boolean {
  return value === null || value === undefined || value === "" ||
    (Array.isArray(value) && value.length === 0);
}

/**
 * Compiles a predicate (already validated by {@linkcode predicateSchema}) into
 * a function; regular expressions, sets and date bounds are built once here.
 */
export function compilePredicate(predicate: Predicate): PredicateFn {
  if (predicate.all) {
    const parts = predicate.all.map(compilePredicate);
    return function all(data) {
      return parts.every((part) => part(data));
    };
  }
  if (predicate.any) {
    const parts = predicate.any.map(compilePredicate);
    return function any(data) {
      return parts.some((part) => part(data));
    };
  }
  if (predicate.not) {
    const inner = compilePredicate(predicate.not);
    return function not(data) {
      return !inner(data);
    };
  }
  const { operators } = keysOf(predicate);
  if (operators.length !== 1 || predicate.field === undefined) {
    throw new Error(
      `Cannot compile predicate ${
        JSON.stringify(predicate)
      }: expected "field" and exactly one operator`,
    );
  }
  const field = predicate.field;
  const test = compileLeaf(operators[0], predicate);
  if (operators[0] === "exists") return test;
  return function leaf(data) {
    return test(getPath(data, field));
  };
}

/** The test of one operator; takes the field's value (or the record, for `exists`). */
// deno-lint-ignore no-explicit-any
function compileLeaf(op: Operator, node: Predicate): (value: any) => boolean {
  const ci = node.caseInsensitive === true;
  const field = node.field!;
  switch (op) {
    case "eq":
    case "ne": {
      const expected = textOf(node[op], ci);
      const negate = op === "ne";
      return function equals(value) {
        return (textOf(value, ci) === expected) !== negate;
      };
    }
    case "in":
    case "notIn": {
      const set = new Set(node[op]!.map((v) => textOf(v, ci)));
      const negate = op === "notIn";
      return function oneOf(value) {
        const text = textOf(value, ci);
        return (text !== undefined && set.has(text)) !== negate;
      };
    }
    case "contains": {
      const needle = textOf(node.contains, ci);
      return function contains(value) {
        if (Array.isArray(value)) return value.some((element) => textOf(element, ci) === needle);
        const text = stringOf(value, ci);
        return text !== undefined && needle !== NULL_KEY && text.includes(needle!);
      };
    }
    case "startsWith":
    case "endsWith": {
      const affix = ci ? node[op]!.toLowerCase() : node[op]!;
      const atStart = op === "startsWith";
      return function affixed(value) {
        const text = stringOf(value, ci);
        return text !== undefined && (atStart ? text.startsWith(affix) : text.endsWith(affix));
      };
    }
    case "regex": {
      const flags = (node.flags ?? "") + (ci && !node.flags?.includes("i") ? "i" : "");
      const regex = new RegExp(node.regex!, flags);
      return function matches(value) {
        const text = stringOf(value, false);
        return text !== undefined && regex.test(text);
      };
    }
    case "exists": {
      const wanted = node.exists === true;
      return function exists(data) {
        return (hasPath(data, field) && getPath(data, field) !== undefined) === wanted;
      };
    }
    case "empty": {
      const wanted = node.empty === true;
      return function empty(value) {
        return isEmptyValue(value) === wanted;
      };
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return compileComparison(op, node[op]!);
  }
}

function compileComparison(
  op: "gt" | "gte" | "lt" | "lte",
  bound: number | string,
): (value: unknown) => boolean {
  const accept = (sign: number): boolean =>
    op === "gt" ? sign > 0 : op === "gte" ? sign >= 0 : op === "lt" ? sign < 0 : sign <= 0;
  if (typeof bound === "number") {
    return function compareNumber(value) {
      const number = numberOf(value);
      return number !== undefined && accept(Math.sign(number - bound));
    };
  }
  const instant = isoInstant(bound);
  if (instant === undefined) {
    throw new Error(`Cannot compile predicate: ${JSON.stringify(bound)} is not an ISO 8601 date`);
  }
  const boundNs = instant.epochNanoseconds;
  return function compareDate(value) {
    const ns = epochNsOf(value);
    return ns !== undefined && accept(ns > boundNs ? 1 : ns < boundNs ? -1 : 0);
  };
}
