/**
 * Logging with LogTape: human lines by default, JSON lines with
 * `--log-format json` (for journald and log shippers). Every line passes
 * through the run's redactor, so a secret never reaches the output.
 * @module
 */
import { configure, type LogLevel, type LogRecord, reset } from "@logtape/logtape";

/** How log lines look. */
export type LogFormat = "human" | "json";

/** Logging setup for one process. */
export interface LogOptions {
  format: LogFormat;
  level: LogLevel;
  /** Applied to every rendered line. */
  redact: (text: string) => string;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** The live progress bar, which a log line must clear before printing. */
let liveLine: { clear(): void; redraw(): void } | null = null;

/** Registers (or removes) the live progress line. */
export function setLiveLine(line: { clear(): void; redraw(): void } | null): void {
  liveLine = line;
}

/** Renders a record's message parts: values inline, strings as they are. */
export function renderMessage(record: Pick<LogRecord, "message">): string {
  return record.message.map((part, i) => {
    if (i % 2 === 0) return String(part);
    if (typeof part === "string") return part;
    if (part instanceof Error) return part.message;
    try {
      return JSON.stringify(part);
    } catch {
      return String(part);
    }
  }).join("");
}

/** A human line: `15:20:01 INFO  [stages[3] sync-tickets.sqlite] message`. */
export function formatHuman(record: LogRecord): string {
  const time = new Date(record.timestamp).toISOString().slice(11, 19);
  const level = record.level.toUpperCase().padEnd(7);
  const scope = record.category.length > 1 ? `[${record.category.slice(1).join(" ")}] ` : "";
  return `${time} ${level} ${scope}${renderMessage(record)}`;
}

/** A JSON line with the record's properties flattened in. */
export function formatJson(record: LogRecord): string {
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    message: renderMessage(record),
    ...record.properties,
  });
}

/** Configures LogTape for the process. Call once before any logging. */
export async function setupLogging(options: LogOptions): Promise<void> {
  const write = options.write ?? writeStderr;
  const format = options.format === "json" ? formatJson : formatHuman;
  function sink(record: LogRecord): void {
    const line = options.redact(format(record));
    if (liveLine) liveLine.clear();
    write(line);
    if (liveLine) liveLine.redraw();
  }
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["ticketsync"], lowestLevel: options.level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** Removes the configuration (tests). */
export async function teardownLogging(): Promise<void> {
  await reset();
}
