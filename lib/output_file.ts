/**
 * Output files of reports and exports: path templates (`{runId}`, `{date}`,
 * `{pipeline}`) and atomic writes (a temporary file next to the target,
 * flushed, then renamed over it: a reader or a crash sees the old file or the
 * new one, never half of one), and the removal of the temporary files that
 * writes killed before their rename leave behind.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { renderTemplate, templateFields } from "./paths.ts";

/** Placeholders an output path template may use. */
export const OUTPUT_PLACEHOLDERS = ["runId", "date", "pipeline"] as const;

/** Values for the placeholders of an output path (a `RunReport` has them). */
export interface OutputPathValues {
  runId: string;
  pipeline: string;
  /** ISO instant the run started; `{date}` is its UTC day, `YYYY-MM-DD`. */
  startedAt: string;
}

/**
 * What is wrong with a path template: one problem per placeholder other than
 * {@linkcode OUTPUT_PLACEHOLDERS}, e.g.
 * `unknown placeholder "{day}": expected {runId}, {date} or {pipeline}`.
 * Stages check their templates in their config schema with it.
 */
export function outputTemplateProblems(template: string): string[] {
  const known = OUTPUT_PLACEHOLDERS.map((name) => `{${name}}`);
  const expected = `${known.slice(0, -1).join(", ")} or ${known.at(-1)}`;
  return templateFields(template)
    .filter((name) => !(OUTPUT_PLACEHOLDERS as readonly string[]).includes(name))
    .map((name) => `unknown placeholder "{${name}}": expected ${expected}`);
}

/** Fills `{runId}`, `{date}` and `{pipeline}` in an output path template. */
export function renderOutputPath(template: string, values: OutputPathValues): string {
  const date = Temporal.Instant.from(values.startedAt).toZonedDateTimeISO("UTC").toPlainDate()
    .toString();
  return renderTemplate(template, { runId: values.runId, date, pipeline: values.pipeline });
}

/** Writes chunks to the temporary file; `write` may be called any number of times. */
export type ChunkWriter = (write: (chunk: string) => Promise<void>) => Promise<void>;

/** Options for {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Called after the temporary file is complete and before the rename (a backup, say). */
  beforeRename?: () => Promise<void>;
  /**
   * First remove the temporary files that writes of this file killed before
   * their rename left ({@linkcode removeTemporaries}): for a path that stays
   * the same from run to run, which would otherwise gather one per kill. Only
   * for the file's one writer.
   */
  removeTemporaries?: boolean;
}

/**
 * Streams `produce`'s chunks into a temporary file in the target's directory
 * (created when missing), syncs it to disk and renames it over `path`. On any
 * failure the temporary file is removed, the target is left as it was, and
 * the error is re-thrown.
 */
export async function writeFileAtomic(
  path: string,
  produce: ChunkWriter,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  if (options.removeTemporaries) await removeTemporaries(dir, basename(path));
  await Deno.mkdir(dir, { recursive: true });
  const temp = join(dir, temporaryName(basename(path)));
  const encoder = new TextEncoder();
  const file = await Deno.open(temp, { write: true, createNew: true });
  let closed = false;
  try {
    await produce(async function writeChunk(chunk) {
      let bytes = encoder.encode(chunk);
      while (bytes.length > 0) bytes = bytes.subarray(await file.write(bytes));
    });
    await file.sync();
    file.close();
    closed = true;
    await options.beforeRename?.();
    await Deno.rename(temp, path);
  } catch (error) {
    if (!closed) file.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** Writes `text` to `path` atomically (see {@linkcode writeFileAtomic}). */
export async function writeTextAtomic(
  path: string,
  text: string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, (write) => write(text), options);
}

/**
 * A new temporary name for a file called `name`: `.<name>.<8 hex digits>.tmp`.
 * Made complete under it, the file is then renamed (or linked) to `name`.
 */
export function temporaryName(name: string): string {
  return `.${name}.${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/**
 * Removes from `dir` the temporary files ({@linkcode temporaryName}) of a file
 * called `name` (or of any file named in a set: one listing for many files)
 * that writes killed before their rename left behind: SIGKILL gives a write
 * no chance to remove its temporary file, and a copy would otherwise stay for
 * each such kill. Temporary files of other names are left alone. Only for the
 * files' one writer (a run holding its pipeline's lock): a write of the same
 * file in progress elsewhere would lose its temporary file. Best effort: what
 * cannot be listed or removed is left. Returns how many files were removed.
 */
export async function removeTemporaries(
  dir: string,
  name: string | ReadonlySet<string>,
): Promise<number> {
  const names = typeof name === "string" ? new Set([name]) : name;
  let removed = 0;
  if (names.size === 0) return removed;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const temporary = /^\.(.+)\.[0-9a-f]{8}\.tmp$/.exec(entry.name);
      if (!entry.isFile || temporary === null || !names.has(temporary[1])) continue;
      try {
        await Deno.remove(join(dir, entry.name));
        removed++;
      } catch {
        // Left for the next run.
      }
    }
  } catch {
    // No directory yet, or not readable: nothing to remove.
  }
  return removed;
}
