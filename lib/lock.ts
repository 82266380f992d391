/**
 * One run per pipeline: an exclusive advisory lock (flock) on a file next to
 * the state. The kernel drops the lock when the process dies, so a run killed
 * with SIGKILL never blocks the next one.
 * @module
 */
import { dirname } from "node:path";
import { LockedError } from "./errors.ts";

/** A held lock; release it when the run ends. */
export interface PipelineLock extends Disposable {
  readonly path: string;
  release(): void;
}

/**
 * Takes the lock at `path` or throws {@linkcode LockedError} at once (exit 75)
 * naming the holder. Never waits.
 */
export function acquireLock(path: string, pipeline: string): PipelineLock {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  let locked: boolean;
  try {
    locked = file.tryLockSync(true);
  } catch (error) {
    file.close();
    throw error;
  }
  if (!locked) {
    let holder = "";
    try {
      holder = new TextDecoder().decode(Deno.readFileSync(path)).trim();
    } catch {
      // The holder's note is only for the message.
    }
    file.close();
    throw new LockedError(
      `Cannot start "${pipeline}": another run holds the lock "${path}"${
        holder ? ` (${holder})` : ""
      }`,
    );
  }
  file.truncateSync(0);
  file.writeSync(
    new TextEncoder().encode(`pid ${Deno.pid} since ${new Date().toISOString()}\n`),
  );
  let released = false;
  function release(): void {
    if (released) return;
    released = true;
    try {
      file.truncateSync(0);
      file.unlockSync();
    } finally {
      file.close();
    }
  }
  return { path, release, [Symbol.dispose]: release };
}
