/**
 * Loading a pipeline config: JSON parse with line numbers, `${env:X}`,
 * `${var:X}` and `${lookup:NAME.COLUMN}` interpolation, declared parameters
 * and lookups, and validation of every stage entry through its own schema.
 * Every problem is reported at once, each with its JSON path, what was
 * expected and the value found; nothing is touched before the whole config is
 * valid (checked with the lookups' example values before any lookup asks its
 * database).
 * @module
 */
import { z } from "zod";
import { resolve } from "node:path";
import { GLOBAL_OPTIONS } from "./args.ts";
import { attachSecrets, ConfigError, MissingError } from "./errors.ts";
import {
  exampleValues,
  isSecretColumn,
  type Lookup,
  lookupsSchema,
  type LookupValues,
  runLookups,
} from "./lookup.ts";
import { closest, type Registry, stageEntryId } from "./registry.ts";
import { collectSecrets, namedLikeSecret, Redactor } from "./secret.ts";
import type { StageDefinition, StageKind } from "./stage.ts";

/** The type a declared parameter takes on the command line. */
export const paramSchema = z.object({
  type: z.enum(["string", "integer", "number", "boolean", "date"]).default("string").describe(
    "Value type; `date` is `yyyy-MM-dd`.",
  ),
  required: z.boolean().default(false).describe("The run refuses to start without it."),
  default: z.union([z.string(), z.number(), z.boolean()]).optional().describe(
    "Value when the option is not given.",
  ),
  description: z.string().default("").describe("Shown by `ticketsync run CONFIG --help`."),
}).strict();

/** A declared parameter. */
export type Param = z.output<typeof paramSchema>;

/** The top level of a config, without its stages (validated entry by entry). */
export const pipelineSchema = z.object({
  $schema: z.string().optional().describe("Path or URL of the JSON Schema (for editors)."),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "expected letters, digits, - or _")
    .describe("Pipeline name: names the state file, the lock and the logs."),
  description: z.string().default("").describe("What this pipeline does, for humans."),
  params: z.record(
    z.string().regex(/^[a-z][a-z0-9-]*$/, "expected a lower-case option name like tenant-id")
      .refine(
        (name) => !GLOBAL_OPTIONS.includes(name),
        `expected a name that is not a global option (${GLOBAL_OPTIONS.join(", ")})`,
      ),
    paramSchema,
  ).default({}).describe(
    "Parameters the run takes as `--name value`; used in the config as `${var:name}`.",
  ),
  lookups: lookupsSchema.default({}).describe(
    "Values taken from a database row before the run, used as `${lookup:NAME.COLUMN}` (e.g. a tenant's base URL and key).",
  ),
  key: z.string().min(1).describe(
    "The record identity at the destination: a field path (`ticket_number`) or a template (`{tenant_id}:{id}`).",
  ),
  noun: z.string().default("records").describe(
    'What progress lines call the records ("Imported 1000/5000 tickets").',
  ),
  progressEvery: z.number().int().positive().default(1000).describe(
    "Log a progress line every N records.",
  ),
  state: z.object({
    path: z.string().optional().describe(
      "SQLite state ledger file (default `.ticketsync/<name>.state.db` in the working directory).",
    ),
  }).strict().default({}).describe("Where the per-record ledger, cursors and dead letters live."),
  stages: z.array(z.record(z.string(), z.unknown())).min(2).describe(
    "The stage chain: read, then filters/transforms, then sinks, then reports.",
  ),
}).strict();

/** One validated stage entry. */
export interface StageEntry {
  /** `stages[2] transform.map` or `stages[2] <id>`: how logs name it. */
  id: string;
  index: number;
  use: string;
  definition: StageDefinition;
  /** The stage's parsed config (without `use` and `id`). */
  config: Record<string, unknown>;
}

/** A loaded, validated config. */
export interface LoadedConfig {
  /** Config file path as given. */
  path: string;
  name: string;
  description: string;
  key: string;
  noun: string;
  progressEvery: number;
  params: Record<string, Param>;
  /** Absolute path of the state ledger. */
  statePath: string;
  stages: StageEntry[];
  /** Values to redact from all output. */
  secrets: Set<string>;
  /** Variables after parameter parsing (`${var:x}`). */
  vars: Record<string, unknown>;
  /** Declared lookups (their queries have run unless `examples` was asked). */
  lookups: Record<string, Lookup>;
}

/** Inputs besides the file itself. */
export interface LoadOptions {
  registry: Registry;
  /** `--var NAME=value` and parsed parameter options. */
  vars?: Record<string, string>;
  /** Raw `--name value` options meant for declared parameters. */
  paramArgs?: Record<string, string | boolean>;
  /**
   * Fill required parameters that were not given with a typed placeholder
   * (for `validate` and `run CONFIG --help`, which check a config without a
   * real tenant or date).
   */
  placeholders?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Run the config's lookups against their databases (`run`, `plan`,
   * `replay`); otherwise `${lookup:...}` takes each column's example value,
   * so `validate`, `state` and `--help` need no database.
   */
  lookups?: boolean;
  /**
   * Only the pipeline's own fields (name, state, parameters): the stages and
   * lookups are neither filled in nor checked, so `state` and `systemd` need
   * none of the environment the stages use (`stages` comes back empty).
   */
  head?: boolean;
}

const PLACEHOLDER = /\$\{(env|var|lookup):([^${}]+)\}/;

/** Reads and validates a config file. Throws ConfigError (exit 1) or MissingError (exit 2). */
export async function loadConfig(path: string, options: LoadOptions): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new MissingError(`Cannot read config "${path}": file does not exist`);
    }
    throw error;
  }
  const raw = parseJson(text, path);
  if (options.head) return validateConfig(raw, path, options);
  // Stages are loaded on first use: those this config names.
  await options.registry.load(usedStages(raw));
  // Checked with the lookups' example values first: a config with any problem
  // stops before a lookup asks its database.
  const checked = validateConfig(raw, path, options);
  if (!options.lookups || Object.keys(checked.lookups).length === 0) return checked;
  let values: LookupValues;
  try {
    values = await runLookups(checked.lookups, options.cwd ?? Deno.cwd());
  } catch (error) {
    // Its message may quote a parameter that is secret (a token): the catcher redacts it.
    throw attachSecrets(error, checked.secrets);
  }
  return validateConfig(raw, path, options, values);
}

/** The `use` values of a config's stages; none when it has no stage list (validation says why). */
function usedStages(raw: unknown): string[] {
  const stages = (raw as { stages?: unknown } | null)?.stages;
  if (!Array.isArray(stages)) return [];
  return stages.map((entry) => entry?.use).filter((use) => typeof use === "string");
}

/** Validates config text (exported for tests and `validate`). */
export function parseConfig(text: string, path: string, options: LoadOptions): LoadedConfig {
  return validateConfig(parseJson(text, path), path, options);
}

/**
 * Validates a parsed config; throws ConfigError naming every problem by its
 * JSON path. `${lookup:...}` takes `lookupValues`, or each column's example.
 */
function validateConfig(
  raw: unknown,
  path: string,
  options: LoadOptions,
  lookupValues?: LookupValues,
): LoadedConfig {
  const problems: string[] = [];
  const env = options.env ?? {};
  const cwd = options.cwd ?? Deno.cwd();

  // Parameters are declared in the config itself, so read them before interpolating.
  const declared = z.record(z.string(), paramSchema).safeParse(
    (raw as { params?: unknown })?.params ?? {},
    { reportInput: true },
  );
  const params: Record<string, Param> = declared.success ? declared.data : {};
  const vars: Record<string, unknown> = {
    ...resolveParams(params, options.paramArgs ?? {}, problems, options.placeholders ?? false),
    ...options.vars,
  };

  const secrets = new Set<string>();
  const head = options.head === true;
  const unresolved = new Set<string>();
  const pieces: string[] = [];
  const ctx: InterpolationContext = { env, vars, problems, secrets, unresolved, pieces };
  let interpolated: unknown = raw;
  let lookups: Record<string, Lookup> | undefined = {};
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    // `params` holds declarations, not values to fill in.
    const { params, lookups: rawLookups, stages: rawStages, ...rest } = raw as Record<
      string,
      unknown
    >;
    // Lookups first (no lookup in them): their values stand for `${lookup:...}` below. A
    // head-only load fills in neither lookups nor stages (their environment may be absent).
    const filledLookups = head || rawLookups === undefined
      ? undefined
      : interpolate(rawLookups, ["lookups"], { ...ctx, inLookups: true });
    const declaredLookups = lookupsSchema.safeParse(filledLookups ?? {});
    lookups = declaredLookups.success ? declaredLookups.data : undefined;
    const withLookups: InterpolationContext = {
      ...ctx,
      lookups: lookups && { declared: lookups, values: lookupValues ?? exampleValues(lookups) },
      realLookups: lookupValues !== undefined,
    };
    interpolated = {
      ...(interpolate(rest, [], withLookups) as Record<string, unknown>),
      ...(params === undefined ? {} : { params }),
      ...(filledLookups === undefined ? {} : { lookups: filledLookups }),
      ...(rawStages === undefined
        ? {}
        : { stages: head ? rawStages : interpolate(rawStages, ["stages"], withLookups) }),
    };
  }

  const top = pipelineSchema.safeParse(interpolated, { reportInput: true });
  // Only when a problem quotes a value: the secrets found so far, URL passwords too.
  const conceal = (text: string) => {
    const redactor = new Redactor();
    redactor.add(secrets);
    return redactor.redact(text);
  };
  if (!top.success) problems.push(...formatIssues(top.error.issues, [], undefined, conceal));
  else collectSecrets(lookupsSchema, top.data.lookups, secrets);

  const stages: StageEntry[] = [];
  const stageEntries = (interpolated as { stages?: unknown })?.stages;
  if (!head && Array.isArray(stageEntries)) {
    stageEntries.forEach((entry, index) => {
      const stage = parseStageEntry(entry, index, options.registry, problems, secrets, conceal);
      if (stage) stages.push(stage);
    });
    if (stages.length === stageEntries.length) checkOrder(stages, problems);
  }
  // A secret built from placeholders ("Bearer ${env:ITALY_API}") keeps its pieces secret too:
  // a server may echo the token alone.
  for (const piece of pieces) {
    if (piece.length >= 6 && [...secrets].some((value) => value.includes(piece))) {
      secrets.add(piece);
    }
  }

  if (problems.length > 0 || !top.success) {
    // A value still holding a lookup (its section is invalid) has nothing more to say.
    const reported = problems.filter((problem) =>
      ![...unresolved].some((at) => problem.startsWith(`${at}:`))
    );
    // The problems may quote values that are secret: the catcher redacts them.
    throw attachSecrets(new ConfigError(`Invalid config "${path}"`, reported), secrets);
  }
  const pipeline = top.data;
  return {
    path,
    name: pipeline.name,
    description: pipeline.description,
    key: pipeline.key,
    noun: pipeline.noun,
    progressEvery: pipeline.progressEvery,
    params,
    statePath: resolve(cwd, pipeline.state.path ?? `.ticketsync/${pipeline.name}.state.db`),
    stages,
    secrets,
    vars,
    lookups: pipeline.lookups,
  };
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const match = /position (\d+)/.exec(message);
    if (match) {
      const offset = Number(match[1]);
      const before = text.slice(0, offset);
      const line = before.split("\n").length;
      const column = offset - before.lastIndexOf("\n");
      const detail = message.replace(/ in JSON at position \d+.*$/, "").replace(/^.*?: /, "");
      throw new ConfigError(
        `Cannot read config "${path}": line ${line}, column ${column}: ${detail}`,
      );
    }
    throw new ConfigError(`Cannot read config "${path}": ${message}`);
  }
}

function parseStageEntry(
  entry: unknown,
  index: number,
  registry: Registry,
  problems: string[],
  secrets: Set<string>,
  conceal: (text: string) => string,
): StageEntry | undefined {
  const at = `stages[${index}]`;
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
    problems.push(`${at}: expected an object with "use", got ${describeValue(entry)}`);
    return undefined;
  }
  const use = (entry as Record<string, unknown>).use;
  if (typeof use !== "string") {
    problems.push(`${at}.use: expected a stage name like "read.json", got ${describeValue(use)}`);
    return undefined;
  }
  const definition = registry.get(use);
  if (!definition) {
    const guess = closest(use, registry.refs());
    problems.push(
      `${at}.use: unknown stage ${JSON.stringify(use)}` +
        (guess ? ` (did you mean ${JSON.stringify(guess)}?)` : "") +
        `; expected one of ${registry.refs().map((ref) => JSON.stringify(ref)).join(", ")}`,
    );
    return undefined;
  }
  // The stage's own (strict) schema checks everything but `use` and `id`:
  // the same as its entry schema, without building one (zod's extend clones).
  const { use: _use, id, ...rest } = entry as Record<string, unknown>;
  const checkedId = stageEntryId.safeParse(id, { reportInput: true });
  if (!checkedId.success) {
    problems.push(
      ...formatIssues(checkedId.error.issues, ["stages", index, "id"], undefined, conceal),
    );
  }
  const parsed = definition.config.safeParse(rest, { reportInput: true });
  if (!parsed.success) {
    problems.push(...formatIssues(parsed.error.issues, ["stages", index], definition, conceal));
  }
  if (!parsed.success || !checkedId.success) return undefined;
  const config = parsed.data as Record<string, unknown>;
  collectSecrets(definition.config, config, secrets);
  return {
    id: `${at} ${typeof id === "string" ? id : use}`,
    index,
    use,
    definition,
    config,
  };
}

const ORDER: Record<StageKind, number> = {
  "read": 0,
  "filter": 1,
  "transform": 1,
  "sync-tickets": 2,
  "sync-responses": 3,
  "report": 4,
};

function checkOrder(stages: StageEntry[], problems: string[]): void {
  if (stages[0]?.definition.kind !== "read") {
    problems.push(`stages[0]: expected a read stage first, got "${stages[0]?.use}"`);
  }
  let rank = 0;
  for (const stage of stages) {
    const kind = stage.definition.kind;
    if (kind === "read" && stage.index > 0) {
      problems.push(`stages[${stage.index}]: only one read stage is allowed, got "${stage.use}"`);
    }
    if (ORDER[kind] < rank) {
      problems.push(
        `stages[${stage.index}]: a ${kind} stage cannot come after a later kind; ` +
          `expected order read, filter/transform, sync-tickets, sync-responses, report`,
      );
    }
    rank = Math.max(rank, ORDER[kind]);
  }
  if (!stages.some((stage) => stage.definition.kind === "sync-tickets")) {
    problems.push(`stages: expected at least one sync-tickets stage`);
  }
}

interface InterpolationContext {
  env: Record<string, string>;
  vars: Record<string, unknown>;
  problems: string[];
  secrets: Set<string>;
  /** Declared lookups and their values; absent inside `lookups` or when it is invalid. */
  lookups?: { declared: Record<string, Lookup>; values: LookupValues };
  /** The values came from the databases (not examples): secret ones are redacted. */
  realLookups?: boolean;
  /** Interpolating the `lookups` section itself, where no lookup may be used. */
  inLookups?: boolean;
  /** Paths of values left holding a lookup because `lookups` is invalid. */
  unresolved?: Set<string>;
  /** Env and lookup values substituted into longer strings (a token inside "Bearer ..."). */
  pieces?: string[];
}

/** Replaces `${env:X}` / `${var:X}` in every string, innermost first, so `${env:${var:region}_API}` works. */
function interpolate(
  value: unknown,
  path: (string | number)[],
  ctx: InterpolationContext,
): unknown {
  if (typeof value === "string") return interpolateString(value, path, ctx);
  if (Array.isArray(value)) return value.map((child, i) => interpolate(child, [...path, i], ctx));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      out[key] = interpolate(child, [...path, key], ctx);
    }
    return out;
  }
  return value;
}

/**
 * Stands in for `$` in substituted values until the string is done, so a value
 * is never read as a placeholder (`lit-${env:HOME}` stays as it is) while a
 * placeholder built from others (`${env:${var:region}_API}`) still resolves.
 */
const DOLLAR = "\uE000";
/** The two private-use characters as they really occur are written as an escape meanwhile. */
const escapeMarks = (text: string) =>
  text.replace(/[\uE000\uE001]/g, (c) => c === DOLLAR ? "\uE001a" : "\uE001b");
const MARKS = /\uE000|\uE001[ab]/g;
const unescapeMarks = (text: string) =>
  text.replace(MARKS, (mark) => mark === DOLLAR ? "$" : mark === "\uE001a" ? DOLLAR : "\uE001");

function interpolateString(
  text: string,
  path: (string | number)[],
  ctx: InterpolationContext,
): unknown {
  if (!text.includes("${")) return text;
  let current = escapeMarks(text);
  const done = () => unescapeMarks(current);
  for (let guard = 0; guard < 20; guard++) {
    const match = PLACEHOLDER.exec(current);
    if (!match) return done();
    const [whole, source, rawName] = match;
    const [name, fallback] = splitDefault(rawName);
    let replacement: unknown;
    if (source === "env") {
      replacement = ctx.env[name] ?? fallback;
      if (replacement === undefined) {
        ctx.problems.push(
          `${formatPath(path)}: environment variable ${
            JSON.stringify(name)
          } is not set (used as ${whole})`,
        );
        return done();
      }
      if (namedLikeSecret(name)) ctx.secrets.add(String(replacement));
    } else if (source === "lookup") {
      const found = lookupValue(name, path, ctx);
      if (found === undefined) return done();
      replacement = found;
    } else {
      replacement = ctx.vars[name] ?? fallback;
      if (replacement === undefined) {
        ctx.problems.push(
          `${formatPath(path)}: variable ${
            JSON.stringify(name)
          } is not set (pass --var ${name}=VALUE or declare it in "params")`,
        );
        return done();
      }
    }
    // A string that is exactly one placeholder takes the value's own type (a number stays a number).
    if (whole === current) return replacement;
    const value = String(replacement);
    // A piece of a longer string: if that string is secret, the piece is too (see collectPieces).
    if (source === "env" || (source === "lookup" && ctx.realLookups)) ctx.pieces?.push(value);
    current = current.slice(0, match.index) + escapeMarks(value).replaceAll("$", DOLLAR) +
      current.slice(match.index + whole.length);
  }
  ctx.problems.push(`${formatPath(path)}: placeholders nest too deeply in ${JSON.stringify(text)}`);
  return done();
}

/** A `${lookup:NAME.COLUMN}` value, or undefined after noting why there is none. */
function lookupValue(
  reference: string,
  path: (string | number)[],
  ctx: InterpolationContext,
): unknown {
  const at = formatPath(path);
  if (ctx.inLookups) {
    ctx.problems.push(`${at}: a lookup cannot use \${lookup:${reference}}`);
    return undefined;
  }
  // An invalid `lookups` section has its own problems reported.
  if (!ctx.lookups) {
    ctx.unresolved?.add(at);
    return undefined;
  }
  const dot = reference.indexOf(".");
  const name = dot === -1 ? reference : reference.slice(0, dot);
  const column = dot === -1 ? "" : reference.slice(dot + 1);
  const lookup = ctx.lookups.declared[name];
  if (!lookup) {
    const known = Object.keys(ctx.lookups.declared);
    ctx.problems.push(
      `${at}: lookup ${JSON.stringify(name)} is not declared in "lookups"` +
        (known.length ? `; declared: ${known.join(", ")}` : ""),
    );
    return undefined;
  }
  if (!(column in lookup.columns)) {
    ctx.problems.push(
      `${at}: expected \${lookup:${name}.COLUMN} with COLUMN one of ${
        Object.keys(lookup.columns).join(", ")
      }, got ${JSON.stringify(reference)}`,
    );
    return undefined;
  }
  const value = ctx.lookups.values[name][column];
  if (ctx.realLookups && isSecretColumn(column, lookup.columns[column])) {
    ctx.secrets.add(String(value));
  }
  return value;
}

function splitDefault(name: string): [string, string | undefined] {
  const at = name.indexOf(":-");
  return at === -1 ? [name, undefined] : [name.slice(0, at), name.slice(at + 2)];
}

/** A valid value of each parameter type, for checking a config without real parameters. */
const PLACEHOLDER_VALUES: Record<Param["type"], unknown> = {
  string: "example",
  integer: 1,
  number: 1,
  boolean: true,
  date: "2026-01-01",
};

/**
 * Checks `--name value` options against the declared parameters; returns
 * typed values by name (placeholders for missing required ones when asked).
 */
function resolveParams(
  params: Record<string, Param>,
  args: Record<string, string | boolean>,
  problems: string[],
  placeholders: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(args)) {
    if (!(name in params)) {
      const known = Object.keys(params).map((p) => `--${p}`);
      problems.push(
        `--${name}: unknown option` +
          (known.length
            ? `; this pipeline's parameters are ${known.join(", ")}`
            : "; this pipeline declares no parameters"),
      );
    }
  }
  for (const [name, param] of Object.entries(params)) {
    const given = args[name];
    if (given === undefined) {
      if (param.default !== undefined) out[name] = param.default;
      else if (param.required && placeholders) out[name] = PLACEHOLDER_VALUES[param.type];
      else if (param.required) {
        problems.push(
          `--${name}: required parameter is missing${
            param.description ? ` (${param.description})` : ""
          }`,
        );
      }
      continue;
    }
    const value = convertParam(given, param);
    if (value.ok) out[name] = value.value;
    else problems.push(`--${name}: expected ${value.expected}, got ${JSON.stringify(given)}`);
  }
  return out;
}

function convertParam(
  given: string | boolean,
  param: Param,
): { ok: true; value: unknown } | { ok: false; expected: string } {
  const text = String(given);
  switch (param.type) {
    case "string":
      return typeof given === "string" && given !== ""
        ? { ok: true, value: given }
        : { ok: false, expected: "a value" };
    case "integer":
      return /^-?\d+$/.test(text)
        ? { ok: true, value: Number(text) }
        : { ok: false, expected: "an integer" };
    case "number":
      return text.trim() !== "" && Number.isFinite(Number(text))
        ? { ok: true, value: Number(text) }
        : { ok: false, expected: "a number" };
    case "boolean":
      if (given === true || text === "true") return { ok: true, value: true };
      if (text === "false") return { ok: true, value: false };
      return { ok: false, expected: "true or false" };
    case "date":
      try {
        return {
          ok: true,
          value: Temporal.PlainDate.from(text, { overflow: "reject" }).toString(),
        };
      } catch {
        return { ok: false, expected: "a date like 2026-01-31" };
      }
  }
}

/** `stages[3].rateLimit.perMinute` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(segment))) {
      out += out ? `.${String(segment)}` : String(segment);
    } else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out || "(top level)";
}

/** A short rendering of a value for error messages. */
export function describeValue(value: unknown, conceal?: (text: string) => string): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") {
    // Secrets go before the cut: a cut secret would no longer match the redactor.
    const text = conceal ? conceal(value) : value;
    return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
  }
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value);
}

const ARTICLE: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "an object",
  array: "an array",
  record: "an object",
  bigint: "an integer",
};

/** Turns zod issues into `path: expected ..., got ...` lines. */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: PropertyKey[],
  definition?: StageDefinition,
  conceal?: (text: string) => string,
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case "invalid_type": {
        const expected = ARTICLE[issue.expected] ?? issue.expected;
        lines.push(
          input === undefined
            ? `${formatPath(path)}: required: expected ${expected}`
            : `${formatPath(path)}: expected ${expected}, got ${describeValue(input, conceal)}`,
        );
        break;
      }
      case "unrecognized_keys": {
        const known = definition && path.length <= 2 ? Object.keys(definition.config.shape) : [];
        for (const key of issue.keys) {
          const guess = closest(key, known);
          lines.push(
            `${formatPath([...path, key])}: unknown key` +
              (guess ? ` (did you mean ${JSON.stringify(guess)}?)` : "") +
              (known.length ? `; expected one of ${known.join(", ")}` : ""),
          );
        }
        break;
      }
      case "too_small":
      case "too_big": {
        const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
        const op = issue.code === "too_small"
          ? (issue.inclusive ? ">=" : ">")
          : (issue.inclusive ? "<=" : "<");
        const what =
          issue.origin === "number" || issue.origin === "int" || issue.origin === "bigint"
            ? `a number ${op} ${bound}`
            : issue.origin === "array" || issue.origin === "set"
            ? `${op} ${bound} items`
            : `${op} ${bound} characters`;
        const shown = issue.origin === "number" && issue.code === "too_small" && bound === 0 &&
            !issue.inclusive
          ? "a positive number"
          : what;
        lines.push(`${formatPath(path)}: expected ${shown}, got ${describeValue(input, conceal)}`);
        break;
      }
      case "invalid_key":
        // A record key that fails its own schema: its issues, at the key's path.
        lines.push(...formatIssues(issue.issues, path, definition, conceal));
        break;
      case "invalid_value":
        lines.push(
          `${formatPath(path)}: expected ${issue.values.length === 1 ? "" : "one of "}${
            issue.values.map((v) => JSON.stringify(v)).join(", ")
          }, got ${describeValue(input, conceal)}`,
        );
        break;
      case "invalid_union": {
        // Options the value was not even the type of say nothing useful; if one option
        // is left, its issues are the real problem (e.g. a bad field inside an object spec).
        const relevant = issue.errors.filter((option) =>
          !(option.length === 1 && option[0].code === "invalid_type" && option[0].path.length === 0)
        );
        if (relevant.length === 1) {
          lines.push(...formatIssues(relevant[0], path, definition, conceal));
        } else {
          lines.push(`${formatPath(path)}: ${issue.message}, got ${describeValue(input, conceal)}`);
        }
        break;
      }
      default:
        lines.push(
          `${formatPath(path)}: ${issue.message}${
            input !== undefined ? `, got ${describeValue(input, conceal)}` : ""
          }`,
        );
    }
  }
  return lines;
}

/** Parses a `.env` file: `KEY=value`, `export KEY=value`, quotes, `#` comments. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2];
    if (/^"(.*)"$/.test(value)) {
      value = value.slice(1, -1).replace(/\\n/g, "\n").replace(/\\"/g, '"');
    } else if (/^'(.*)'$/.test(value)) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[match[1]] = value;
  }
  return out;
}

/**
 * The environment a config sees: `.env` files (in order) under the process
 * environment, which wins, as dotenv does.
 */
export async function loadEnvironment(
  envFiles: string[],
  processEnv: Record<string, string>,
  required: boolean,
): Promise<Record<string, string>> {
  const merged: Record<string, string> = {};
  for (const file of envFiles) {
    try {
      Object.assign(merged, parseDotenv(await Deno.readTextFile(file)));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || required) {
        throw new MissingError(`Cannot read env file "${file}": ${(error as Error).message}`);
      }
    }
  }
  return { ...merged, ...processEnv };
}
