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
