/**
 * `sync-tickets.json_export`: exports every record into one JSON file
 * (`{ metadata, statistics, records }`), the database -> JSON files workflow.
 *
 * The file is rewritten only when its content changes (ignoring
 * `generated_at`), through a temporary file renamed over it; the old file is
 * first copied to `backups/<file>.backup.YYYYMMDD_HHMMSS` (UTC, never
 * overwriting a backup). Any failure leaves the original untouched. A run
 * killed at any moment leaves the old file or the new one, with its backup;
 * the next run removes the temporary files the killed one left, and does not
 * back up the same file twice (the latest backup holds it already).
 *
 * Optionally, as the Vivenu pull script does, the metadata and statistics go
 * to a file of their own too (`metadataPath`), and every record to one file
 * in a directory (`individual`), named from its fields; each of those is
 * written atomically, and only when its content differs. The metadata file
 * holds the main file's own `generated_at`, also when a run that leaves the
 * main file as it is writes it again (lost, or not reached by a killed run).
 * The temporary files killed runs left of those go too; in the directory of
 * the record files, which may be shared, only those of the names the export's
 * records give (this run's and the old file's), never another file's.
 *
 * The file holds the records of the run's input: one that read only part of
 * it (`--limit`, a replay of dead letters) keeps the old file's other records,
 * and so writes nothing when there is no old file to complete (none yet, or
 * one that cannot be read as the export): its records fail, telling the
 * operator to run the export in full. Nor does a run interrupted before the
 * file is written write it; the next run writes the whole file. Records of the
 * old file that a full run does not see leave the file, and one line says so.
 *
 * Limit: records are sorted for a stable file, so the sink holds every record
 * (and the old file) in memory until the end of the stream. That suits
 * reference tables (sources, cities, venues, events: thousands of rows), not
 * millions.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { diffFields } from "../../lib/diff.ts";
import { errorMessage } from "../../lib/errors.ts";
import { contentHash, stableStringify } from "../../lib/hash.ts";
import { isActionable, mergeOutcome } from "../../lib/outcome.ts";
import {
  removeTemporaries,
  temporaryName,
  writeFileAtomic,
  writeTextAtomic,
} from "../../lib/output_file.ts";
import { getPath, renderTemplate, templateFields } from "../../lib/paths.ts";
import { defineStage, type FieldChange, type SyncResult } from "../../lib/stage.ts";
import { ValueCounts } from "../../lib/value_counts.ts";

/** One record bound for the file. */
interface Entry {
  key: string;
  data: Record<string, unknown>;
  /** The results exporting it (one, or several when a key repeats: the last data wins). */
  results: SyncResult[];
}

/** The old file, as far as it could be read. */
interface OldFile {
  exists: boolean;
  /** Why an existing file is not a readable export (not JSON, no record list). */
  problem?: string;
  /** Stable JSON of the document without `metadata.generated_at`. */
  comparable: string | null;
  /** Old records by key. */
  records: Map<string, Record<string, unknown>>;
  /** The document's `metadata.generated_at`, when it is a string. */
  generatedAt?: string;
}

const WRITE_CHUNK = 64 * 1024;
/** Keys named in the line about records that leave the file. */
const REMOVED_SHOWN = 5;

/**
 * Internal, for tests only: the copy and the link a backup is made with (a
 * test makes the copy fail half-way, as a full disk would, and the link fail,
 * as a filesystem without hard links does). Not part of the stage's interface.
 */
export const internals = {
  copyFile: (from: string, to: string): Promise<void> => Deno.copyFile(from, to),
  link: (from: string, to: string): Promise<void> => Deno.link(from, to),
};

/** The sink. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "json_export",
  summary:
    "Export all records to one JSON file with metadata and statistics; backup before overwrite.",
  config: z.object({
    path: z.string().min(1).describe(
      "JSON file to write, e.g. data/venues.json; relative to the working directory.",
    ),
    version: z.string().default("1.0").describe("metadata.version of the file."),
    source: z.string().optional().describe("metadata.source (default: the pipeline's name)."),
    statsFields: z.array(z.string().min(1)).default([]).describe(
      "Dotted field paths counted into statistics: { field: { value: count } }, most frequent first.",
    ),
    sortBy: z.string().min(1).default("key").describe(
      '"key" (the record key) or a dotted field path to order records by (ties by key).',
    ),
    keyField: z.string().min(1).default("id").describe(
      "Field of an exported record holding its key, used to match the old file's records (created/updated/unchanged).",
    ),
    backupDir: z.string().min(1).optional().describe(
      "Directory of backups (default: backups/ next to the file); relative to the working directory.",
    ),
    recordsKey: z.string().min(1).default("records").describe(
      'Top-level key of the record list, e.g. "venues".',
    ),
    pretty: z.boolean().default(true).describe("Indent the JSON by 2 spaces (false: compact)."),
    metadataPath: z.string().min(1).optional().describe(
      "Also write `{ metadata, statistics }` to this file (e.g. .../metadata.json); relative to the working directory.",
    ),
    individual: z.object({
      dir: z.string().min(1).describe(
        "Directory of the per-record files; relative to the working directory.",
      ),
      name: z.string().min(1).describe(
        'File name template over the record\'s fields, e.g. "{_id}_{firstname} {lastname}.json"; `/`, `\\` and control characters become `_`.',
      ),
    }).strict().optional().describe(
      "Also write every record to a file of its own (only when its content differs).",
    ),
  }).strict().superRefine((config, ctx) => {
    if (config.recordsKey === "metadata" || config.recordsKey === "statistics") {
      ctx.addIssue({
        code: "custom",
        path: ["recordsKey"],
        message: `expected a name other than the file's own sections "metadata" and "statistics"`,
        input: config.recordsKey,
      });
    }
    if (config.individual && templateFields(config.individual.name).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["individual", "name"],
        message: "expected a template with at least one {field} (every record would get one file)",
        input: config.individual.name,
      });
    }
  }),
  create(config, ctx) {
    const path = resolve(ctx.cwd, config.path);
    const metadataPath = config.metadataPath === undefined
      ? undefined
      : resolve(ctx.cwd, config.metadataPath);
    const individualDir = config.individual && resolve(ctx.cwd, config.individual.dir);
    const backupDir = config.backupDir === undefined
      ? join(dirname(path), "backups")
      : resolve(ctx.cwd, config.backupDir);
    const plan = ctx.options.mode === "plan";

    /**
     * Reads the existing file; a missing one is empty. One that is not an
     * export (`problem`) has no records: a full run replaces it.
     */
    async function readOld(): Promise<OldFile> {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          return { exists: false, comparable: null, records: new Map() };
        }
        throw new Error(`Cannot read "${path}": ${errorMessage(error)}`);
      }
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch (error) {
        const problem = `not valid JSON: ${errorMessage(error)}`;
        return { exists: true, problem, comparable: null, records: new Map() };
      }
      const records = new Map<string, Record<string, unknown>>();
      const list = document !== null && typeof document === "object" && !Array.isArray(document)
        ? (document as Record<string, unknown>)[config.recordsKey]
        : undefined;
      if (!Array.isArray(list)) {
        const problem = `no ${JSON.stringify(config.recordsKey)} list of records`;
        return { exists: true, problem, comparable: comparable(document), records };
      }
      for (const record of list) {
        const key = getPath(record, config.keyField);
        if (key !== undefined && key !== null) records.set(String(key), record);
      }
      const generatedAt = getPath(document, "metadata.generated_at");
      return {
        exists: true,
        comparable: comparable(document),
        records,
        ...(typeof generatedAt === "string" ? { generatedAt } : {}),
      };
    }

    /**
     * Why a partial run (--limit, replay) must not write the file: it would
     * hold only the records this run saw, since there is no old file to keep
     * the others from. Null when the old file is a readable export.
     */
    function partialRefusal(old: OldFile): string | null {
      if (!ctx.options.partial) return null;
      const why = !old.exists
        ? "which does not exist yet"
        : old.problem
        ? `which is not a readable export (${old.problem})`
        : null;
      if (why === null) return null;
      return `not exported: a replay or --limit run cannot write "${path}", ${why}: ` +
        "run the export in full (without --limit, not as a replay)";
    }

    /** Logs the old file's records that the new one no longer holds (deleted at the source). */
    function logRemoved(entries: Entry[], old: OldFile): void {
      const kept = new Set(entries.map((entry) => entry.key));
      const removed = [...old.records.keys()].filter((key) => !kept.has(key));
      if (removed.length === 0) return;
      const shown = removed.slice(0, REMOVED_SHOWN).join(", ");
      const more = removed.length > REMOVED_SHOWN
        ? ` and ${removed.length - REMOVED_SHOWN} more`
        : "";
      const one = removed.length === 1;
      const leave = plan ? "would leave" : one ? "leaves" : "leave";
      const message = one
        ? `{count} record of the old {path} is not in this run's input and ${leave} the file: {keys}`
        : `{count} records of the old {path} are not in this run's input and ${leave} the file: {keys}`;
      ctx.log.info(message, { count: removed.length, path, keys: shown + more });
    }

    /** The records the new file holds, sorted; failures are marked on their results. */
    function collectEntries(results: SyncResult[], old: OldFile): Entry[] {
      const entries = new Map<string, Entry>();
      for (const result of results) {
        const key = result.item.key;
        if (!isActionable(result)) {
          // A record that failed upstream keeps its old version rather than vanishing.
          const previous = old.records.get(key);
          if (previous && !entries.has(key)) entries.set(key, { key, data: previous, results: [] });
          continue;
        }
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(JSON.stringify(result.item.data));
        } catch (error) {
          result.outcome = "failed";
          result.reason = `Cannot export record as JSON: ${errorMessage(error)}`;
          continue;
        }
        const entry = entries.get(key);
        if (entry && entry.results.length > 0) {
          entry.data = data;
          entry.results.push(result);
        } else {
          entries.set(key, { key, data, results: [result] });
        }
      }
      // A run that saw only part of the input (--limit, replay) keeps the rest.
      if (ctx.options.partial) {
        for (const [key, data] of old.records) {
          if (!entries.has(key)) entries.set(key, { key, data, results: [] });
        }
      }
      return [...entries.values()].sort(compareEntries);
    }

    function compareEntries(a: Entry, b: Entry): number {
      if (config.sortBy !== "key") {
        const order = compareValues(getPath(a.data, config.sortBy), getPath(b.data, config.sortBy));
        if (order !== 0) return order;
      }
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    }

    /** Sets each record's outcome from the old file; `rewritten` false means all unchanged. */
    function decide(entries: Entry[], old: OldFile, rewritten: boolean): void {
      for (const entry of entries) {
        const previous = old.records.get(entry.key);
        let outcome: "created" | "updated" | "unchanged" = "unchanged";
        let changes: FieldChange[] = [];
        if (rewritten && previous === undefined) outcome = "created";
        else if (rewritten && contentHash(previous) !== contentHash(entry.data)) {
          outcome = "updated";
          if (plan) changes = diffFields(previous as Record<string, unknown>, entry.data);
        }
        for (const result of entry.results) {
          result.outcome = mergeOutcome(result.outcome, outcome);
          result.remoteId = entry.key;
          if (changes.length > 0) result.changes = [...(result.changes ?? []), ...changes];
        }
      }
    }

    /** The newest backup of the file (by the time and suffix in its name), or null. */
    async function latestBackup(): Promise<string | null> {
      const prefix = `${basename(path)}.backup.`;
      let latest: string | null = null;
      let latestOrder = "";
      for await (const entry of Deno.readDir(backupDir)) {
        if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
        const stamp = /^(\d{8}_\d{6})(?:_(\d+))?$/.exec(entry.name.slice(prefix.length));
        if (stamp === null) continue;
        const order = `${stamp[1]}_${(stamp[2] ?? "0").padStart(12, "0")}`;
        if (order > latestOrder) [latest, latestOrder] = [join(backupDir, entry.name), order];
      }
      return latest;
    }

    /** Creates `name` empty if it does not exist; false when it does. */
    async function claim(name: string): Promise<boolean> {
      try {
        (await Deno.open(name, { write: true, createNew: true })).close();
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) return false;
        throw error;
      }
    }

    /**
     * Copies the current file to a new backup name (a suffix if that second
     * is taken). The copy goes to a temporary name first and is hard-linked
     * to the backup name only once complete, so a copy that fails half-way
     * (disk full, file size limit) never leaves a truncated file under a
     * backup name; the temporary is removed in every case. When the latest
     * backup holds the current file already (a run killed after its backup,
     * before its rename), that backup is the one: no second copy.
     */
    async function backup(): Promise<string> {
      await Deno.mkdir(backupDir, { recursive: true });
      const latest = await latestBackup();
      if (latest !== null && await sameBytes(latest, path)) return latest;
      const stamp = ctx.clock.now().toZonedDateTimeISO("UTC").toPlainDateTime().toString()
        .slice(0, 19).replace(/-|:/g, "").replace("T", "_");
      const base = join(backupDir, `${basename(path)}.backup.${stamp}`);
      const temp = join(backupDir, temporaryName(basename(path)));
      try {
        await internals.copyFile(path, temp);
        for (let n = 0;; n++) {
          const candidate = n === 0 ? base : `${base}_${n}`;
          try {
            // A link fails when the name exists: a backup is never overwritten.
            await internals.link(temp, candidate);
            return candidate;
          } catch (error) {
            if (error instanceof Deno.errors.AlreadyExists) continue;
            // A filesystem without hard links (vfat, some network mounts): claim the
            // name with createNew, then rename the complete copy over it.
            if (!(await claim(candidate))) continue;
            try {
              await Deno.rename(temp, candidate);
            } catch (renameError) {
              await Deno.remove(candidate).catch(() => {});
              throw renameError;
            }
            return candidate;
          }
        }
      } finally {
        await Deno.remove(temp).catch(() => {});
      }
    }

    /**
     * Removes the temporary files of the file, of its backups and of the
     * metadata file that runs killed mid-write left behind. A run holds the
     * pipeline's lock, so no other run is writing them; a plan writes nothing.
     */
    async function removeLeftovers(): Promise<void> {
      if (plan) return;
      // One listing per directory: the metadata file is often next to the file.
      const names = new Map<string, Set<string>>();
      for (const file of [path, join(backupDir, basename(path)), metadataPath]) {
        if (file === undefined) continue;
        const dir = dirname(file);
        names.set(dir, (names.get(dir) ?? new Set()).add(basename(file)));
      }
      let count = 0;
      for (const [dir, files] of names) count += await removeTemporaries(dir, files);
      if (count > 0) {
        ctx.log.info("Removed {count} temporary files left by interrupted writes of {path}", {
          count,
          path,
        });
      }
    }

    async function exportAll(results: SyncResult[]): Promise<void> {
      const actionable = results.filter(isActionable);
      if (actionable.length === 0 && results.length > 0) return;
      if (ctx.signal.aborted) {
        // The run saw only part of its input: writing would drop the rest. Failed (so the
        // ledger does not claim them), the records are exported by the next run, which
        // rewrites the whole file and resolves their dead letters.
        failAll(
          actionable,
          `not exported: the run was interrupted before "${path}" was written (the next run writes it)`,
        );
        return;
      }
      await removeLeftovers();
      let old: OldFile;
      try {
        old = await readOld();
      } catch (error) {
        failAll(actionable, errorMessage(error));
        return;
      }
      const refusal = partialRefusal(old);
      if (refusal !== null) {
        failAll(actionable, refusal);
        return;
      }
      if (old.problem) {
        const message =
          "The existing {path} is not a readable export ({problem}): it will be replaced";
        ctx.log.warn(message, { path, problem: old.problem });
      }
      const entries = collectEntries(results, old);
      const statistics = new ValueCounts(config.statsFields);
      for (const entry of entries) statistics.add(entry.data);
      const document = {
        metadata: {
          version: config.version,
          generated_at: ctx.clock.now().toString(),
          total_count: entries.length,
          source: config.source ?? ctx.pipeline,
        },
        statistics: statistics.toJSON(),
        [config.recordsKey]: entries.map((entry) => entry.data),
      };
      const rewritten = old.comparable !== comparable(document);
      // Not rewritten, the file is the old document, generated then: a metadata file written
      // now (lost, or not reached by a killed run) describes it with its own generated_at.
      if (!rewritten && old.generatedAt !== undefined) {
        document.metadata.generated_at = old.generatedAt;
      }
      decide(entries, old, rewritten);
      if (plan) {
        if (rewritten) logRemoved(entries, old);
        return;
      }
      if (!rewritten) {
        ctx.log.info("{path} is up to date ({count} records): not rewritten", {
          path,
          count: entries.length,
        });
      } else {
        if (!await writeMain(document, entries, old)) return;
        logRemoved(entries, old);
      }
      // The metadata file's generated_at is the file's when the file has one: written now, or
      // kept from the unchanged old file.
      const dated = rewritten || old.generatedAt !== undefined;
      await writeCompanions(document, entries, old, dated);
    }

    /** Writes the main file (backing up the old one); false when it failed (results marked). */
    async function writeMain(
      document: Record<string, unknown>,
      entries: Entry[],
      old: OldFile,
    ): Promise<boolean> {
      let backupPath: string | null = null;
      try {
        await writeFileAtomic(path, (write) => writeDocument(document, entries, write), {
          async beforeRename() {
            if (old.exists) backupPath = await backup();
          },
        });
      } catch (error) {
        failAll(
          entries.flatMap((entry) => entry.results),
          `Cannot write "${path}": ${errorMessage(error)} (the file was left as it was)`,
        );
        return false;
      }
      ctx.log.info("Exported {count} records to {path}{backup}", {
        count: entries.length,
        path,
        backup: backupPath ? ` (backup: ${backupPath})` : "",
      });
      return true;
    }

    /**
     * The metadata file and the per-record files, each written only when its
     * content differs from what is on disk (so an unchanged export writes
     * nothing, and a file deleted or missed by a killed run comes back on the
     * next run). A file that cannot be written fails the records it holds.
     * The per-record files' temporaries that killed runs left go first
     * ({@linkcode removeRecordTemporaries}). The metadata file is compared
     * with its generated_at when `dated` (it is the file's: new, or kept from
     * the unchanged old file), and without it when the old file, kept, has none.
     */
    async function writeCompanions(
      document: Record<string, unknown>,
      entries: Entry[],
      old: OldFile,
      dated: boolean,
    ): Promise<void> {
      if (metadataPath) {
        const metadata = { metadata: document.metadata, statistics: document.statistics };
        try {
          let current: unknown = undefined;
          try {
            current = JSON.parse(await Deno.readTextFile(metadataPath));
          } catch (error) {
            if (error instanceof Deno.errors.PermissionDenied) throw error;
          }
          const same = (a: unknown, b: unknown) =>
            dated ? stableStringify(a) === stableStringify(b) : comparable(a) === comparable(b);
          if (current === undefined || !same(current, metadata)) {
            await writeTextAtomic(metadataPath, toJson(metadata));
          }
        } catch (error) {
          failAll(
            entries.flatMap((entry) => entry.results),
            `Cannot write "${metadataPath}": ${errorMessage(error)}`,
          );
          return;
        }
      }
      if (!config.individual || !individualDir) return;
      const template = config.individual.name;
      const names = entries.map((entry) => fileName(renderTemplate(template, entry.data)));
      await removeRecordTemporaries(individualDir, template, entries, names, old);
      const owners = new Map<string, string>();
      let written = 0;
      for (const [index, entry] of entries.entries()) {
        if (entry.results.length === 0) continue;
        const name = names[index];
        if (name === null) {
          failAll(entry.results, "individual file: the name template gives no usable file name");
          continue;
        }
        const owner = owners.get(name);
        if (owner !== undefined) {
          failAll(entry.results, `individual file: "${name}" is already record "${owner}"'s file`);
          continue;
        }
        owners.set(name, entry.key);
        const file = join(individualDir, name);
        try {
          if (await writeIfChanged(file, toJson(entry.data))) written++;
        } catch (error) {
          failAll(entry.results, `Cannot write "${file}": ${errorMessage(error)}`);
        }
      }
      if (written > 0) {
        ctx.log.info("Wrote {count} record files in {dir}", { count: written, dir: individualDir });
      }
    }

    /**
     * Removes from `dir` the temporary files of per-record files that runs
     * killed mid-write left behind, and only those of this export's own files:
     * the names its records give, this run's and the old file's (the records a
     * killed run was writing files for are in the file it wrote first). The
     * directory may be shared with other exports or hold other files: a
     * temporary file of any other name is left alone, a write of it may be in
     * progress. `entryNames` are the file names of `entries`, in their order.
     */
    async function removeRecordTemporaries(
      dir: string,
      template: string,
      entries: Entry[],
      entryNames: (string | null)[],
      old: OldFile,
    ): Promise<void> {
      const names = new Set<string>();
      for (const name of entryNames) if (name !== null) names.add(name);
      const named = new Set(entries.map((entry) => entry.data));
      for (const data of old.records.values()) {
        if (named.has(data)) continue; // An old record the file keeps: named already.
        const name = fileName(renderTemplate(template, data));
        if (name !== null) names.add(name);
      }
      const count = await removeTemporaries(dir, names);
      if (count > 0) {
        ctx.log.info("Removed {count} temporary files left by interrupted writes in {dir}", {
          count,
          dir,
        });
      }
    }

    function toJson(value: unknown): string {
      return JSON.stringify(value, null, config.pretty ? 2 : undefined) + "\n";
    }

    /** Streams the document: the records one by one, in chunks of about 64 KiB. */
    async function writeDocument(
      document: Record<string, unknown>,
      entries: Entry[],
      write: (chunk: string) => Promise<void>,
    ): Promise<void> {
      const space = config.pretty ? 2 : undefined;
      const nl = config.pretty ? "\n" : "";
      const pad = (depth: number) => (config.pretty ? " ".repeat(depth * 2) : "");
      const json = (value: unknown, depth: number) =>
        JSON.stringify(value, null, space).replaceAll("\n", `\n${pad(depth)}`);
      const colon = config.pretty ? ": " : ":";
      let buffer = `{${nl}${pad(1)}"metadata"${colon}${json(document.metadata, 1)},${nl}` +
        `${pad(1)}"statistics"${colon}${json(document.statistics, 1)},${nl}` +
        `${pad(1)}${JSON.stringify(config.recordsKey)}${colon}[`;
      for (const [index, entry] of entries.entries()) {
        buffer += `${index > 0 ? "," : ""}${nl}${pad(2)}${json(entry.data, 2)}`;
        if (buffer.length >= WRITE_CHUNK) {
          await write(buffer);
          buffer = "";
        }
      }
      buffer += entries.length > 0 ? `${nl}${pad(1)}]${nl}}\n` : `]${nl}}\n`;
      await write(buffer);
    }

    /** Writes `text` atomically unless the file holds it already; true when it wrote. */
    async function writeIfChanged(file: string, text: string): Promise<boolean> {
      try {
        if (await Deno.readTextFile(file) === text) return false;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      await writeTextAtomic(file, text);
      return true;
    }

    function failAll(results: SyncResult[], reason: string): void {
      for (const result of results) {
        result.outcome = "failed";
        result.reason = reason;
      }
    }

    return {
      async *sync(results) {
        // The file needs every record (sorted) before it can be written.
        const all: SyncResult[] = [];
        for await (const result of results) all.push(result);
        await exportAll(all);
        yield* all;
      },
    };
  },
});

/**
 * A rendered name made safe as one file name: path separators and control
 * characters become `_`, surrounding spaces go; null when nothing usable is
 * left (empty, `.`, `..`, or only an extension).
 */
export function fileName(rendered: string): string | null {
  // deno-lint-ignore no-control-regex
  const name = rendered.replace(/[\/\\\x00-\x1f\x7f]/g, "_").trim();
  if (name === "" || name === "." || name === ".." || /^\.[^.]*$/.test(name)) return null;
  return name;
}

/** Stable JSON of a document without `metadata.generated_at`, for "did it change". */
function comparable(document: unknown): string {
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    return stableStringify(document);
  }
  const { metadata, ...rest } = document as Record<string, unknown>;
  const meta = metadata !== null && typeof metadata === "object"
    ? { ...metadata as Record<string, unknown>, generated_at: undefined }
    : metadata;
  return stableStringify({ ...rest, metadata: meta });
}

/** Orders field values: numbers numerically, others as strings; missing values last. */
function compareValues(a: unknown, b: unknown): number {
  const aMissing = a === undefined || a === null;
  const bMissing = b === undefined || b === null;
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = typeof a === "string" ? a : stableStringify(a);
  const y = typeof b === "string" ? b : stableStringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether two files hold the same bytes. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  if ((await Deno.stat(a)).size !== (await Deno.stat(b)).size) return false;
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.every((byte, index) => byte === y[index]);
}
