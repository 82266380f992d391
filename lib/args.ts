/**
 * Command-line parsing: the command, its config path, the global options
 * (through `node:util` parseArgs, strict), and the remaining `--name value`
 * options, which are checked later against the config's declared parameters.
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "./errors.ts";

/** Every command. */
export const COMMANDS = [
  "run",
  "plan",
  "validate",
  "schema",
  "state",
  "replay",
  "systemd",
  "docs",
  "version",
  "help",
] as const;

/** One of {@linkcode COMMANDS}. */
export type Command = typeof COMMANDS[number];

const OPTIONS = {
  "var": { type: "string", multiple: true },
  "env-file": { type: "string", multiple: true },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  "limit": { type: "string" },
  "full": { type: "boolean" },
  "no-progress": { type: "boolean" },
  "json": { type: "boolean" },
  "help": { type: "boolean", short: "h" },
  "on-calendar": { type: "string" },
  "binary": { type: "string" },
  "user": { type: "string" },
  "workdir": { type: "string" },
} as const;

/** The options ticketsync itself takes; a pipeline parameter may not reuse their names. */
export const GLOBAL_OPTIONS: readonly string[] = Object.keys(OPTIONS);

/** Parsed command line. */
export interface ParsedArgs {
  command: Command;
  /** Positionals after the command (config path, subcommand, its argument). */
  positionals: string[];
  vars: Record<string, string>;
  envFiles: string[];
  logFormat: "human" | "json";
  logLevel: "debug" | "info" | "warning" | "error";
  limit?: number;
  full: boolean;
  progress: boolean;
  json: boolean;
  help: boolean;
  /** `--name value` options that are not global: the config's parameters. */
  params: Record<string, string | boolean>;
  systemd: { onCalendar?: string; binary?: string; user?: string; workdir?: string };
}

/** Parses argv; throws ConfigError (exit 1) naming the bad option. */
export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") {
    return defaults("help", []);
  }
  if (first === "--version" || first === "-V") return defaults("version", []);
  if (!(COMMANDS as readonly string[]).includes(first)) {
    throw new ConfigError(
      `Unknown command ${JSON.stringify(first)}: expected one of ${COMMANDS.join(", ")}`,
    );
  }
  const { known, params } = splitParams(rest);
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: known,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError(`Invalid arguments: ${(error as Error).message}`);
  }
  const parsed = defaults(first as Command, positionals);
  const problems: string[] = [];
  for (const pair of (values.var as string[] | undefined) ?? []) {
    const at = pair.indexOf("=");
    if (at < 1) problems.push(`--var: expected NAME=value, got ${JSON.stringify(pair)}`);
    else parsed.vars[pair.slice(0, at)] = pair.slice(at + 1);
  }
  parsed.envFiles = (values["env-file"] as string[] | undefined) ?? [];
  const format = values["log-format"];
  if (format !== undefined) {
    if (format === "human" || format === "json") parsed.logFormat = format;
    else problems.push(`--log-format: expected "human" or "json", got ${JSON.stringify(format)}`);
  }
  const level = values["log-level"];
  if (level !== undefined) {
    if (level === "debug" || level === "info" || level === "warning" || level === "error") {
      parsed.logLevel = level;
    } else {
      problems.push(
        `--log-level: expected "debug", "info", "warning" or "error", got ${JSON.stringify(level)}`,
      );
    }
  }
  const limit = values.limit;
  if (limit !== undefined) {
    if (/^\d+$/.test(String(limit))) parsed.limit = Number(limit);
    else problems.push(`--limit: expected a whole number, got ${JSON.stringify(limit)}`);
  }
  parsed.full = values.full === true;
  parsed.progress = values["no-progress"] !== true;
  parsed.json = values.json === true;
  parsed.help = values.help === true;
  parsed.params = params;
  parsed.systemd = {
    onCalendar: values["on-calendar"] as string | undefined,
    binary: values.binary as string | undefined,
    user: values.user as string | undefined,
    workdir: values.workdir as string | undefined,
  };
  const allowed = MAX_POSITIONALS[parsed.command];
  if (positionals.length > allowed) {
    problems.push(
      `${parsed.command}: unexpected argument ${JSON.stringify(positionals[allowed])}; it takes ${
        allowed === 0 ? "no argument" : allowed === 1 ? "one: CONFIG" : "CONFIG, then what to show"
      }`,
    );
  }
  if (problems.length > 0) throw new ConfigError("Invalid arguments", problems);
  return parsed;
}

/** How many positional arguments each command takes (a stray one is a mistake, not ignored). */
const MAX_POSITIONALS: Record<Command, number> = {
  run: 1,
  plan: 1,
  validate: 1,
  replay: 1,
  state: 3,
  systemd: 1,
  schema: 0,
  docs: 0,
  version: 0,
  help: 0,
};

function defaults(command: Command, positionals: string[]): ParsedArgs {
  return {
    command,
    positionals,
    vars: {},
    envFiles: [],
    logFormat: "human",
    logLevel: "info",
    full: false,
    progress: true,
    json: false,
    help: false,
    params: {},
    systemd: {},
  };
}

/** Separates global options from parameter options (`--tenant-id acme`, `--days=90`). */
function splitParams(args: readonly string[]): {
  known: string[];
  params: Record<string, string | boolean>;
} {
  const known: string[] = [];
  const params: Record<string, string | boolean> = {};
  const booleans = new Set(
    Object.entries(OPTIONS).filter(([, o]) => o.type === "boolean").map(([name]) => name),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      known.push(...args.slice(i));
      break;
    }
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!match || match[1] in OPTIONS || arg.startsWith("-") && !arg.startsWith("--")) {
      known.push(arg);
      if (match && match[1] in OPTIONS && match[2] === undefined && !booleans.has(match[1])) {
        if (i + 1 < args.length) known.push(args[++i]);
      }
      continue;
    }
    const [, name, inline] = match;
    if (inline !== undefined) params[name] = inline;
    else if (i + 1 < args.length && !args[i + 1].startsWith("--")) params[name] = args[++i];
    else params[name] = true;
  }
  return { known, params };
}

/**
 * The log format argv asks for, read before (and whatever the outcome of)
 * parsing, so that an argument error is itself printed as a JSON line when
 * `--log-format json` (or `--log-format=json`) was given. The last one wins, as
 * in parsing; nothing after `--` counts.
 */
export function requestedLogFormat(argv: readonly string[]): "human" | "json" {
  let format: "human" | "json" = "human";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") break;
    let value: string | undefined;
    if (arg === "--log-format") value = argv[++i];
    else if (arg.startsWith("--log-format=")) value = arg.slice("--log-format=".length);
    else continue;
    if (value === "json" || value === "human") format = value;
  }
  return format;
}
