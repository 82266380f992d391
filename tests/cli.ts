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

/**
 * Runs the CLI again and again, killing each run with SIGKILL `step` ms
 * (default 60) later than the one before (the first at 150 ms), until a run
 * ends by itself, which must exit 0; returns how many runs were killed. A
 * sweep like this lands kills in every phase of a run: start-up, reading,
 * between batches, at the commit, the ledger, the reader's commit.
 */
export async function killUntilDone(
  args: string[],
  options: CliOptions = {},
  step = 60,
): Promise<number> {
  let kills = 0;
  for (let delay = 150; delay < 30_000; delay += step) {
    const child = cliCommand(args, options).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // it has just exited by itself
      }
    }, delay);
    const output = await child.output();
    clearTimeout(timer);
    if (output.signal === "SIGKILL") {
      kills++;
      continue;
    }
    if (output.code !== 0) {
      throw new Error(
        `run after ${kills} kill(s) exited ${output.code}: ${
          new TextDecoder().decode(output.stderr)
        }`,
      );
    }
    return kills;
  }
  throw new Error(`no run ended by itself within 30 s (${kills} killed)`);
}
