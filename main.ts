/**
 * ticketsync: sync tickets between systems with a chain of stage plugins
 * described by a JSON config.
 *
 * The entry point: parse argv, dispatch a command, map errors to exit codes.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import { resolve } from "node:path";
import denoJson from "./deno.json" with { type: "json" };
import { parseCommandLine, type ParsedArgs, requestedLogFormat } from "./lib/args.ts";
import { loadConfig, type LoadedConfig, loadEnvironment } from "./lib/config.ts";
import { configJsonSchema, renderStageDocs } from "./lib/docs.ts";
import {
  ConfigError,
  errorMessage,
  ExitCode,
  MissingError,
  secretsOf,
  TicketsyncError,
} from "./lib/errors.ts";
import { setupLogging } from "./lib/log.ts";
import { runPipeline } from "./lib/pipeline.ts";
import { Registry } from "./lib/registry.ts";
import { Redactor } from "./lib/secret.ts";
import type { SyncResult } from "./lib/stage.ts";
import { acquireLock } from "./lib/lock.ts";
import { StateStore } from "./lib/state.ts";
import { systemdUnits } from "./lib/systemd.ts";
import { stageLoaders } from "./stages/mod.ts";

// A command parses each schema once (the config, its stages): zod's compiled
// parsers cost more to build than they save here (about 13 ms of start-up).
z.config({ jitless: true });

/** The version printed by `ticketsync version`. */
export const VERSION: string = denoJson.version;

const USAGE = `ticketsync ${VERSION}: sync tickets between systems with a chain of stage plugins.

Usage:
  ticketsync run CONFIG [--PARAM value ...] [options]   run the pipeline
  ticketsync plan CONFIG [--PARAM value ...]            show what a run would do; writes nothing
  ticketsync validate CONFIG [--PARAM value ...]        check the config; exit 1 naming each problem
  ticketsync replay CONFIG [--PARAM value ...]          retry the records in the dead-letter store
  ticketsync state CONFIG [runs|record KEY|cursors|deadletters|reset-cursor NAME|verify]
  ticketsync schema                                     print the config JSON Schema
  ticketsync docs                                       print the stage reference (Markdown)
  ticketsync systemd CONFIG [--PARAM value ...] [--on-calendar hourly] [--binary PATH] [--user NAME]
                     [--workdir DIR]                    print a .service and a .timer
  ticketsync version | help
  ticketsync run CONFIG --help                          list the config's parameters

Options:
  --var NAME=value        set \${var:NAME} (repeatable)
  --env-file PATH         load variables from a .env file (default: ./.env if present)
  --limit N               read at most N records
  --full                  ignore content hashes: rewrite every record
  --log-format human|json human lines (default) or JSON lines for journald / log shippers
  --log-level LEVEL       debug, info (default), warning, error
  --no-progress           no live progress bar on a terminal
  --json                  machine-readable output for state and plan

Exit codes: 0 ok, 1 invalid arguments or config, 2 something required is missing,
3 the remote refused or failed, 4 finished with failed records (dead-lettered),
75 another run holds the lock (or the server asked to try later), 130/143 interrupted.`;

const out = (line: string) => console.log(line);

/** Runs the command line; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const redactor = new Redactor();
  let args: ParsedArgs;
  try {
    args = parseCommandLine(argv);
  } catch (error) {
    const message = `${errorMessage(error)}\nRun \`ticketsync help\` for usage.`;
    if (requestedLogFormat(argv) === "json") {
      // Asked for JSON lines: the argument error is one too, like every other log line.
      await setupLogging({
        format: "json",
        level: "info",
        redact: (text) => redactor.redact(text),
      });
      getLogger(["ticketsync"]).error("{message}", { message });
    } else {
      console.error(message);
    }
    return error instanceof TicketsyncError ? error.exitCode : ExitCode.Usage;
  }
  await setupLogging({
    format: args.logFormat,
    level: args.logLevel,
    redact: (text) => redactor.redact(text),
  });
  const log = getLogger(["ticketsync"]);
  const registry = new Registry([], stageLoaders);
  try {
    switch (args.command) {
      case "help":
        out(USAGE);
        return ExitCode.Ok;
      case "version":
        out(`ticketsync ${VERSION} (deno ${Deno.version.deno})`);
        return ExitCode.Ok;
      case "schema":
        await registry.loadAll();
        out(JSON.stringify(configJsonSchema(registry), null, 2));
        return ExitCode.Ok;
      case "docs":
        await registry.loadAll();
        out(renderStageDocs(registry));
        return ExitCode.Ok;
    }
    const configPath = args.positionals[0];
    if (!configPath) throw new ConfigError(`${args.command}: expected a CONFIG path`);
    const env = await loadEnvironment(
      args.envFiles.length ? args.envFiles : [resolve(".env")],
      Deno.env.toObject(),
      args.envFiles.length > 0,
    );
    if (args.help) {
      const config = await loadConfig(configPath, {
        registry,
        env,
        vars: args.vars,
        placeholders: true,
      }).catch(() => null);
      out(parameterHelp(configPath, config));
      return ExitCode.Ok;
    }
    const validating = args.command === "validate";
    const config = await loadConfig(configPath, {
      registry,
      env,
      vars: args.vars,
      paramArgs: args.params,
      placeholders: validating,
      // Only a run asks the lookups' databases; validate and state use their examples.
      lookups: args.command === "run" || args.command === "plan" || args.command === "replay",
      // state and systemd need only the pipeline's name, state path and parameters.
      head: args.command === "state" || args.command === "systemd",
    });
    redactor.add(config.secrets);

    switch (args.command) {
      case "validate":
        out(
          `Config "${configPath}" is valid: pipeline "${config.name}", ${config.stages.length} stages (${
            config.stages.map((s) => s.use).join(" → ")
          })`,
        );
        return ExitCode.Ok;
      case "run":
      case "plan":
      case "replay":
        return await runCommand(args, config, log, redactor);
      case "state":
        return stateCommand(args, config);
      case "systemd":
        out(systemdUnits(args, config, configPath));
        return ExitCode.Ok;
    }
    return ExitCode.Usage;
  } catch (error) {
    redactor.add(secretsOf(error));
    const message = redactor.redact(errorMessage(error));
    if (error instanceof TicketsyncError) {
      log.error("{message}", { message });
      return error.exitCode;
    }
    log.error("Unexpected error: {message}", {
      message: redactor.redact((error as Error)?.stack ?? message),
    });
    return ExitCode.Remote;
  }
}

async function runCommand(
  args: ParsedArgs,
  config: LoadedConfig,
  log: ReturnType<typeof getLogger>,
  redactor: Redactor,
): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
    signals++;
    if (signals > 1) {
      log.error("Second {name}: exiting now; records in flight will be redone by the next run", {
        name,
      });
      Deno.exit(name === "SIGINT" ? 130 : 143);
    }
    log.warn("{name} received: stopping after the records in flight; state is saved", { name });
    controller.abort(name);
  };
  const handlers = {
    SIGINT: onSignal("SIGINT"),
    SIGTERM: onSignal("SIGTERM"),
  } as const;
  for (const [name, handler] of Object.entries(handlers)) {
    Deno.addSignalListener(name as Deno.Signal, handler);
  }
  const plan = args.command === "plan";
  // Plan lines stream to stdout as records are planned: a million-record plan holds none of them.
  const onResult = plan
    ? (result: SyncResult) => {
      for (const line of planLine(result, args.json)) out(redactor.redact(line));
    }
    : undefined;
  try {
    for (let run = 1;; run++) {
      const report = await runPipeline({
        config,
        mode: plan ? "plan" : "run",
        full: args.full,
        limit: args.limit,
        replay: args.command === "replay",
        progressBar: args.progress && args.logFormat === "human" && Deno.stderr.isTerminal(),
        signal: controller.signal,
        onResult,
        command: ["ticketsync", args.command, ...args.positionals].join(" "),
      });
      if (plan && args.json) {
        out(JSON.stringify({ outcomes: report.outcomes, read: report.read }));
      }
      // An incremental feed's next file is a run of its own, straight after a clean one.
      if (!report.moreInput || report.exitCode !== ExitCode.Ok || controller.signal.aborted) {
        return report.exitCode;
      }
      log.info("More input waits (run {run} done): running again", { run });
    }
  } finally {
    for (const [name, handler] of Object.entries(handlers)) {
      Deno.removeSignalListener(name as Deno.Signal, handler);
    }
  }
}

const PLAN_VERB = {
  created: "create",
  updated: "update",
  unchanged: "unchanged",
  skipped: "skip",
  failed: "fail",
} as const;

/** JSON of a plan value; a 64-bit integer from a database (a bigint) as its digits. */
function planJson(value: unknown): string {
  return JSON.stringify(value, (_, v) => typeof v === "bigint" ? v.toString() : v);
}

function planLine(result: SyncResult, json: boolean): string[] {
  if (result.outcome === "unchanged") return [];
  if (json) {
    return [planJson({
      key: result.item.key,
      action: PLAN_VERB[result.outcome ?? "failed"],
      changes: result.changes,
      reason: result.reason,
    })];
  }
  const verb = PLAN_VERB[result.outcome ?? "failed"].padEnd(7);
  const lines = [`${verb} ${result.item.key}${result.reason ? `: ${result.reason}` : ""}`];
  for (const change of result.changes ?? []) {
    lines.push(
      `          ${change.path}: ${planJson(change.before)} → ${planJson(change.after)}`,
    );
  }
  return lines;
}

const STATE_SUBCOMMANDS = ["runs", "record", "cursors", "deadletters", "reset-cursor", "verify"];

function stateCommand(args: ParsedArgs, config: LoadedConfig): number {
  const [, sub = "runs", argument] = args.positionals;
  if (!STATE_SUBCOMMANDS.includes(sub)) {
    throw new ConfigError(
      `state: unknown subcommand ${
        JSON.stringify(sub)
      }; expected runs, record KEY, cursors, deadletters, reset-cursor NAME or verify`,
    );
  }
  if (sub === "record" && !argument) throw new ConfigError("state record: expected a KEY");
  if (sub === "reset-cursor" && !argument) {
    throw new ConfigError("state reset-cursor: expected a cursor NAME");
  }
  // No ledger yet: say so, rather than report an empty one ("0 records", "no runs") or, for
  // reset-cursor, create one (and its lock). Most often the working directory is the wrong one.
  if (!exists(config.statePath)) {
    throw new MissingError(
      `No state at "${config.statePath}": no run has used it yet (or the working directory is not the pipeline's)`,
    );
  }
  const writes = sub === "reset-cursor";
  // A write does not slip under a running run: it takes the pipeline's lock (or exits 75).
  const lock = writes ? acquireLock(`${config.statePath}.lock`, config.name) : undefined;
  const store = StateStore.open(config.statePath, { readOnly: !writes });
  const print = (value: unknown, human: () => string[]) =>
    args.json ? out(JSON.stringify(value, null, 2)) : human().forEach(out);
  try {
    switch (sub) {
      case "runs": {
        const runs = store.listRuns(20);
        print(
          runs,
          () =>
            runs.length === 0 ? [`No runs yet in "${config.statePath}"`] : runs.map((run) => {
              const r = run.report as { outcomes?: Record<string, number>; read?: number } | null;
              const o = r?.outcomes;
              return `${run.id}  ${run.status.padEnd(11)} exit ${
                String(run.exitCode ?? "-").padEnd(3)
              } ${run.startedAt}  ${
                o
                  ? `read ${r?.read} created ${o.created} updated ${o.updated} unchanged ${o.unchanged} skipped ${o.skipped} failed ${o.failed}`
                  : ""
              }`;
            }),
        );
        return ExitCode.Ok;
      }
      case "record": {
        const record = store.getRecord(argument!);
        if (!record) throw new MissingError(`No record "${argument}" in "${config.statePath}"`);
        print(record, () => Object.entries(record).map(([k, v]) => `${k}: ${v ?? ""}`));
        return ExitCode.Ok;
      }
      case "cursors": {
        const cursors = store.listCursors();
        print(
          cursors,
          () =>
            cursors.length === 0
              ? ["No cursors"]
              : cursors.map((c) => `${c.name} = ${c.value}  (${c.updatedAt})`),
        );
        return ExitCode.Ok;
      }
      case "deadletters": {
        const letters = store.listDeadLetters();
        print(
          letters,
          () =>
            letters.length === 0
              ? ["No open dead letters"]
              : letters.map((d) =>
                `${d.key}  ${d.source} ${d.position}  [${d.stage}] ${d.reason}  (attempts ${d.attempts}, ${d.updatedAt})`
              ),
        );
        return ExitCode.Ok;
      }
      case "reset-cursor": {
        if (!store.deleteCursor(argument!)) {
          throw new MissingError(`No cursor "${argument}" in "${config.statePath}"`);
        }
        out(`Cursor "${argument}" reset`);
        return ExitCode.Ok;
      }
      case "verify": {
        const problems = store.verify();
        if (problems.length > 0) {
          problems.forEach((p) => console.error(p));
          return ExitCode.Remote;
        }
        out(
          `State "${config.statePath}" is sound: ${store.countRecords()} records, ${store.countOpenDeadLetters()} open dead letters`,
        );
        return ExitCode.Ok;
      }
    }
    return ExitCode.Usage; // not reached: the subcommand was checked above
  } finally {
    store.close();
    lock?.release();
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function parameterHelp(configPath: string, config: LoadedConfig | null): string {
  if (!config) {
    return `Cannot list the parameters of "${configPath}": run \`ticketsync validate ${configPath}\``;
  }
  const entries = Object.entries(config.params);
  const lines = [
    `ticketsync run ${configPath}${
      entries.map(([n, p]) => p.required ? ` --${n} VALUE` : "").join("")
    } [options]`,
  ];
  if (config.description) lines.push("", config.description);
  lines.push("", entries.length ? "Parameters:" : "This pipeline declares no parameters.");
  for (const [name, param] of entries) {
    const extra = [
      param.type,
      param.required ? "required" : "",
      param.default !== undefined ? `default ${param.default}` : "",
    ]
      .filter(Boolean).join(", ");
    lines.push(`  --${name.padEnd(20)} ${param.description} (${extra})`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
