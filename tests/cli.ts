/**
 * Runs the real CLI in a child process, as an operator or systemd would, for
 * integration tests: exit code, stdout and stderr.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";

/** The repository root. */
export const ROOT: string = fromFileUrl(new URL("..", import.meta.url));

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode runCli}. */
export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
}

/** `deno run -A main.ts ...args` with cwd at the repository root unless given. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const output = await cliCommand(args, options).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** The command for a CLI run, to spawn and kill it (kill tests). */
export function cliCommand(args: string[], options: CliOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}main.ts`, ...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** A signal {@linkcode killUntilDone} stops runs with. */
export type StopSignal = "SIGKILL" | "SIGTERM";

/** How long a run may take to exit after SIGTERM before a sweep calls it hung. */
export const SIGTERM_BOUND_MS = 10_000;

/** How the runs of a SIGTERM sweep ended (see {@linkcode killUntilDone}). */
export interface TermSweep {
  /** Runs that caught SIGTERM, stopped gracefully and exited 143. */
  interrupted: number;
  /**
   * Runs that died of SIGTERM's default action (a shell or systemd sees 143 as
   * well): the signal came before the CLI listened for it (Deno starting, the
   * config loading), or after its run had ended.
   */
  unhandled: number;
  /** The run that ended the sweep (exit 0) had been sent SIGTERM: it finished first. */
  finishedAfterSignal: boolean;
  /** The longest time from SIGTERM to a run's exit, in ms. */
  slowestStopMs: number;
}

/**
 * Runs the CLI again and again, stopping each run with `signal` (SIGKILL
 * unless given) `step` ms (default 60) later than the one before (the first
 * at 150 ms), until a run ends by itself, which must exit 0. A sweep like
 * this lands the signal in every phase of a run: start-up, reading, between
 * batches, at the commit, the ledger, the reader's commit.
 *
 * With SIGKILL it returns how many runs were killed. With SIGTERM (systemd's
 * stop, the graceful path) every run sent the signal must exit 143 within
 * {@linkcode SIGTERM_BOUND_MS} (a hang is SIGKILLed and fails the sweep), or
 * 0 when it finished before the signal took effect, which ends the sweep; or
 * die of SIGTERM's default action, but only when no run of the pipeline was
 * under way (stderr has no "Running " line, or the run's closing summary
 * follows it). Any other exit fails the sweep; it returns how the runs ended.
 */
export function killUntilDone(
  args: string[],
  options?: CliOptions,
  step?: number,
  signal?: "SIGKILL",
): Promise<number>;
export function killUntilDone(
  args: string[],
  options: CliOptions,
  step: number,
  signal: "SIGTERM",
): Promise<TermSweep>;
export async function killUntilDone(
  args: string[],
  options: CliOptions = {},
  step = 60,
  signal: StopSignal = "SIGKILL",
): Promise<number | TermSweep> {
  let kills = 0;
  const sweep: TermSweep = {
    interrupted: 0,
    unhandled: 0,
    finishedAfterSignal: false,
    slowestStopMs: 0,
  };
  for (let delay = 150; delay < 30_000; delay += step) {
    const child = cliCommand(args, options).spawn();
    let sentAt: number | undefined;
    let hung = false;
    let bound: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      try {
        child.kill(signal);
      } catch {
        return; // it has just exited by itself
      }
      sentAt = performance.now();
      if (signal !== "SIGTERM") return;
      bound = setTimeout(() => {
        hung = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // it exited at the last moment
        }
      }, SIGTERM_BOUND_MS);
    }, delay);
    const output = await child.output();
    clearTimeout(timer);
    clearTimeout(bound);
    const stderr = new TextDecoder().decode(output.stderr);
    const runs = `run ${
      kills + sweep.interrupted + sweep.unhandled + 1
    } (${signal} at ${delay} ms)`;
    if (hung) throw new Error(`${runs} did not exit within ${SIGTERM_BOUND_MS} ms: ${stderr}`);
    if (signal === "SIGKILL" && output.signal === "SIGKILL") {
      kills++;
      continue;
    }
    if (signal === "SIGTERM" && sentAt !== undefined) {
      sweep.slowestStopMs = Math.max(sweep.slowestStopMs, performance.now() - sentAt);
      if (output.signal === "SIGTERM") {
        const started = stderr.lastIndexOf("Running ");
        if (started >= 0 && stderr.indexOf(" finished in ", started) < 0) {
          throw new Error(`${runs} died of SIGTERM in the middle of its run: ${stderr}`);
        }
        sweep.unhandled++;
        continue;
      }
      if (output.code === 143 && output.signal === null) {
        sweep.interrupted++;
        continue;
      }
      sweep.finishedAfterSignal = true;
    }
    if (output.code !== 0) {
      throw new Error(
        `${runs} exited ${output.code}${output.signal ? ` (${output.signal})` : ""}: ${stderr}`,
      );
    }
    return signal === "SIGKILL" ? kills : sweep;
  }
  throw new Error(
    signal === "SIGKILL"
      ? `no run ended by itself within 30 s (${kills} killed)`
      : `no run ended by itself within 30 s (${sweep.interrupted} interrupted, ${sweep.unhandled} unhandled)`,
  );
}
