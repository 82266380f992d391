/**
 * `ticketsync systemd`: a oneshot `.service` that runs the pipeline and a
 * `.timer` that starts it, written so that systemd reads back exactly the
 * command line given (quoting, `%` specifiers and `$` variables escaped) and
 * each parameter set gets a unit of its own.
 * @module
 */
import { resolve } from "node:path";
import type { ParsedArgs } from "./args.ts";
import type { LoadedConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { contentHash } from "./hash.ts";

/** `%` starts a systemd specifier in almost every setting: `%%` is a literal one. */
const specifierSafe = (text: string) => text.replaceAll("%", "%%");

/**
 * One ExecStart argument as systemd splits and expands a command line: `%` (specifiers) and
 * `$` (environment variables, also inside quotes) doubled; an argument with whitespace, quotes,
 * a backslash, a `;` (a lone one separates commands) or a control character, or an empty one,
 * in double quotes with `\` and `"` escaped and control characters as C escapes.
 */
function execArgument(argument: string): string {
  const text = specifierSafe(argument).replaceAll("$", () => "$$");
  if (text !== "" && !/[\s"'\\;\p{Cc}]/u.test(text)) return text;
  return `"${
    text.replace(/[\\"\p{Cc}]/gu, (c) =>
      c === "\\" || c === '"'
        ? `\\${c}`
        : c === "\n"
        ? "\\n"
        : c === "\t"
        ? "\\t"
        : c < "\x80"
        ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`
        : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  }"`;
}

/** `--name value`, or `--name=value` when the value starts with `-` (it would read as an option). */
function optionArguments(name: string, value: string | boolean): string[] {
  if (value === true) return [`--${name}`];
  const text = String(value);
  return text.startsWith("-") ? [`--${name}=${text}`] : [`--${name}`, text];
}

/** A one-line setting (User=, WorkingDirectory=, OnCalendar=): a newline would start another. */
function oneLine(option: string, value: string): string {
  // A trailing backslash would join the next line of the unit to this one.
  if (/\p{Cc}/u.test(value) || value.endsWith("\\")) {
    throw new ConfigError(
      `--${option}: expected one line without control characters or a trailing backslash`,
    );
  }
  return specifierSafe(value);
}

/**
 * The unit name: `ticketsync-<pipeline>`, then the value of each parameter given (in the
 * config's order; a boolean one as its name) and of each `--var`, so that two tenants of one
 * pipeline (`--tenant-id acme`, `--tenant-id globex`) get two units instead of overwriting one.
 * Each value keeps only the characters systemd allows in a unit name, `[A-Za-z0-9:_.-]`: every
 * run of others becomes one `-` (`acme corp` → `acme-corp`, `/data/in.json` → `data-in.json`).
 * That keeps the name readable and stable between invocations (systemd-escape's `\x20` is
 * neither in a shell), at the price that values differing only in those characters share a name.
 * A name longer than 200 characters is cut and ends in a hash of the whole (systemd allows 256).
 */
function unitName(pipeline: string, values: string[]): string {
  const name = ["ticketsync", pipeline, ...values]
    .map((part) => part.replace(/[^A-Za-z0-9:_.-]+/g, "-").replace(/^-+|-+$/g, ""))
    .filter(Boolean)
    .join("-");
  if (name.length <= 200) return name;
  return `${name.slice(0, 191)}-${contentHash([pipeline, ...values]).slice(0, 8)}`;
}

/** The `.service` and `.timer` of `ticketsync systemd CONFIG ...`, for `config` as loaded. */
export function systemdUnits(args: ParsedArgs, config: LoadedConfig, configPath: string): string {
  const given = args.systemd.binary ?? "/usr/local/bin/ticketsync";
  // systemd wants an absolute path (or a bare name it looks up): a relative one is made absolute.
  const binary = given.includes("/") ? resolve(given) : given;
  const workdir = oneLine("workdir", resolve(args.systemd.workdir ?? Deno.cwd()));
  const onCalendar = oneLine("on-calendar", args.systemd.onCalendar ?? "hourly");
  const user = args.systemd.user === undefined ? undefined : oneLine("user", args.systemd.user);
  const givenParams = Object.keys(config.params).filter((name) => args.params[name] !== undefined);
  const paramArguments = givenParams.flatMap((name) => optionArguments(name, args.params[name]));
  const command = [
    binary,
    "run",
    resolve(configPath),
    ...paramArguments,
    ...Object.entries(args.vars).flatMap(([name, value]) =>
      optionArguments("var", `${name}=${value}`)
    ),
    // Relative to where `ticketsync systemd` ran, which need not be the unit's WorkingDirectory.
    ...args.envFiles.flatMap((file) => optionArguments("env-file", resolve(file))),
    "--log-format",
    "json",
    "--no-progress",
  ];
  const instance = paramArguments.length ? ` (${paramArguments.join(" ")})` : "";
  // One line whatever the config's description holds, `%` not a specifier, and no trailing
  // backslash (systemd would join the next line to it).
  const description = (text: string) =>
    specifierSafe(text.replace(/\s+/g, " ").trim().replace(/\\+$/, ""));
  const name = unitName(config.name, [
    ...givenParams.map((name) => args.params[name] === true ? name : String(args.params[name])),
    ...Object.values(args.vars),
  ]);
  return `# /etc/systemd/system/${name}.service
[Unit]
Description=${
    description(
      `ticketsync pipeline ${config.name}${instance}${
        config.description ? `: ${config.description}` : ""
      }`,
    )
  }
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
${user !== undefined ? `User=${user}\n` : ""}WorkingDirectory=${workdir}
ExecStart=${command.map(execArgument).join(" ")}
# 4 = finished with dead-lettered records; 75 = another run holds the lock; 143 / 130 = stopped by
# SIGTERM (systemctl stop) / SIGINT after saving state: none of them is a unit failure.
SuccessExitStatus=4 75 130 143
TimeoutStopSec=120
KillSignal=SIGTERM

# /etc/systemd/system/${name}.timer
[Unit]
Description=${description(`Run ticketsync pipeline ${config.name}${instance} on a schedule`)}

[Timer]
OnCalendar=${onCalendar}
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target`;
}
