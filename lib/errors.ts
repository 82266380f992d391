/**
 * Exit codes and the error classes that carry them.
 *
 * Every failure that ends a run is one of these classes; `main.ts` maps them to
 * the process exit code, so a systemd unit or a wrapper script can act on it.
 * @module
 */

/** The process exit codes ticketsync promises (see README "Exit codes"). */
export const ExitCode = {
  /** Every record synced, skipped on purpose, or unchanged. */
  Ok: 0,
  /** Invalid arguments or config; nothing was touched. */
  Usage: 1,
  /** A required thing is missing: input file, tenant, bucket, table. */
  Missing: 2,
  /** The remote refused or failed: auth error, retries exhausted on a fatal error. */
  Remote: 3,
  /** Finished, but some records failed and were dead-lettered. */
  Partial: 4,
  /** Another run holds the lock, or the server asked to try much later (EX_TEMPFAIL). */
  TryLater: 75,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

const SECRETS = Symbol("secrets");

/**
 * Notes on `error` the secret values its message may quote (config problems
 * quote config values), for whoever reports it to redact; returns it.
 */
export function attachSecrets<E>(error: E, secrets: Iterable<string>): E {
  if (error instanceof Error) {
    const known = (error as Error & { [SECRETS]?: string[] })[SECRETS] ?? [];
    Object.defineProperty(error, SECRETS, { value: [...known, ...secrets], configurable: true });
  }
  return error;
}

/** The secrets {@linkcode attachSecrets} noted on an error (none for others). */
export function secretsOf(error: unknown): string[] {
  return (error as { [SECRETS]?: string[] } | null)?.[SECRETS] ?? [];
}

/** Base class: an error that ends the run with a known exit code. */
export class TicketsyncError extends Error {
  /** The exit code the process ends with. */
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Invalid arguments or config. Carries every problem found, not only the first. */
export class ConfigError extends TicketsyncError {
  /** One line per problem: `path: expected ..., got ...`. */
  readonly problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(
      problems.length ? `${message}:\n  ${problems.join("\n  ")}` : message,
      ExitCode.Usage,
    );
    this.problems = problems;
  }
}

/** A required thing does not exist: file, bucket, table, tenant. */
export class MissingError extends TicketsyncError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Missing, options);
  }
}

/** The remote refused (401/403) or kept failing; the run stops. */
export class RemoteError extends TicketsyncError {
  /** HTTP status when there was one. */
  readonly status?: number;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, ExitCode.Remote, options);
    this.status = status;
  }
}

/** Another run of the same pipeline holds the lock. */
export class LockedError extends TicketsyncError {
  constructor(message: string) {
    super(message, ExitCode.TryLater);
  }
}

/** The server asked us to wait longer than the run may take: state is saved, try later. */
export class TryLaterError extends TicketsyncError {
  /** How long the server asked to wait, in milliseconds. */
  readonly waitMs: number;
  constructor(message: string, waitMs: number) {
    super(message, ExitCode.TryLater);
    this.waitMs = waitMs;
  }
}

/**
 * A failure of one record only (a 4xx, a constraint violation): the record is
 * dead-lettered with this message and the run goes on.
 */
export class RecordError extends Error {
  /** HTTP status when there was one. */
  readonly status?: number;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "RecordError";
    this.status = status;
  }
}

/** The message of any thrown value, for logs and dead letters. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
