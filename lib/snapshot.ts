/**
 * Timestamped snapshot files (`automations/inc/2026-06-15T17-00-00.csv`):
 * pick the newest (or all, oldest first), skip one whose fingerprint (S3 ETag
 * or SHA-256) matches the last load, and on a successful run move what was
 * handled to `processed/`. Shared by `read.s3` and `read.files`, which only
 * supply a {@linkcode SnapshotStore}.
 *
 * Same content at a new name: each hourly upload gets a new name, so a
 * byte-identical export arrives as a new file with the same ETag. It is
 * skipped (nothing is yielded) and still moved to `processed/` on commit, so
 * the prefix does not pile up with identical snapshots.
 *
 * With `select: "newest"`, older snapshots still in the prefix are superseded
 * (each file is a full snapshot) and are moved to `processed/` with the newest.
 *
 * With `select: "all-oldest-first"` (an incremental feed, each file a set of
 * changes), a run loads one file, the oldest, and says more input waits: the
 * same ticket may change in two files, and the later change must win, which
 * one run (one key, one outcome) cannot say. The CLI runs again for the next
 * file; each file is its own all-or-nothing load with its own freshness row.
 * @module
 */
import { z } from "zod";
import { checkCsvOptions, csvItems, csvOptionsSchema } from "./csv.ts";
import type { CsvOptions } from "./csv.ts";
import { zoneSchema } from "./datetime.ts";
import type { Item, Origin, ReadRuntime, StageContext } from "./stage.ts";

const SNAPSHOT_NAME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.csv$/;

/**
 * The instant a snapshot name (`YYYY-MM-DDTHH-mm-ss.csv`, wall time in `zone`)
 * stands for, or `null` when the name does not follow the pattern or is not a
 * real date.
 */
export function parseSnapshotName(name: string, zone: string): Temporal.Instant | null {
  const match = SNAPSHOT_NAME.exec(name);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  let wall: Temporal.PlainDateTime;
  try {
    wall = Temporal.PlainDateTime.from({ year, month, day, hour, minute, second }, {
      overflow: "reject",
    });
  } catch {
    return null;
  }
  return wall.toZonedDateTime(zone).toInstant();
}

/** Snapshot names oldest first; names that are not snapshots are left out. */
export function sortOldestFirst(names: string[], zone: string): string[] {
  return names
    .map((name) => ({ name, instant: parseSnapshotName(name, zone) }))
    .filter((entry): entry is { name: string; instant: Temporal.Instant } => entry.instant !== null)
    .sort((a, b) =>
      Temporal.Instant.compare(a.instant, b.instant) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    )
    .map((entry) => entry.name);
}

/** The newest snapshot name by the time in the name (not mtime), or `null` when there is none. */
export function pickNewest(names: string[], zone: string): string | null {
  return sortOldestFirst(names, zone).at(-1) ?? null;
}

/**
 * Config fields both snapshot readers share (spread into their strict
 * schemas), the CSV options included.
 */
export const snapshotConfigShape = {
  prefix: z.string().default("automations/inc/")
    .describe(
      'Folder (key prefix) holding the snapshots, e.g. "automations/inc/"; "" for the top level.',
    ),
  zone: zoneSchema.default("Africa/Nairobi")
    .describe("IANA time zone of the timestamps in snapshot names (YYYY-MM-DDTHH-mm-ss.csv)."),
  select: z.enum(["newest", "all-oldest-first"]).default("newest")
    .describe(
      '"newest": load only the newest full snapshot; "all-oldest-first": load every snapshot in name-time order, one file per run, `run` going on to the next (incremental feeds such as changes/).',
    ),
  processedPrefix: z.string().min(1).default("processed/")
    .describe("Where loaded files are moved, relative to prefix. Nothing under it is ever read."),
  skipUnchanged: z.boolean().default(true)
    .describe("Skip a file whose ETag (S3) or SHA-256 (files) equals the last loaded one."),
  moveOnSuccess: z.boolean().default(true)
    .describe("After a fully successful run, move the handled file(s) to processedPrefix."),
  cursor: z.string().min(1).default("snapshot")
    .describe('Name of the state cursor that keeps the last loaded fingerprint ("<cursor>.etag").'),
  format: z.literal("csv").default("csv").describe('File format; only "csv".'),
  ...csvOptionsSchema.shape,
};

/**
 * The cross-field rules of {@linkcode snapshotConfigShape} (zod refinement),
 * the CSV options' among them. Both snapshot readers apply it to their
 * schemas, so config validation reports them with their paths.
 */
export function checkSnapshotConfig(
  config: {
    header: boolean;
    columns?: string[];
    select: string;
    moveOnSuccess: boolean;
    processedPrefix: string;
  },
  ctx: z.RefinementCtx,
): void {
  checkCsvOptions(config, ctx);
  // Loaded files must leave the folder the reader lists, or they would be loaded again.
  const processed = config.processedPrefix.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (processed === "" || processed === "." || processed.split("/").includes("..")) {
    ctx.addIssue({
      code: "custom",
      path: ["processedPrefix"],
      message: 'expected a folder inside the prefix, like "processed/"',
      input: config.processedPrefix,
    });
  }
  // The skip cursor remembers one file: without moving them, an older change would load again.
  if (config.select === "all-oldest-first" && config.moveOnSuccess === false) {
    ctx.addIssue({
      code: "custom",
      path: ["moveOnSuccess"],
      message:
        'expected true with select "all-oldest-first": processed/ is how an incremental feed remembers what it loaded',
      input: false,
    });
  }
}

/** The shared fragment as a schema of its own (for tests and docs). */
export const snapshotConfigSchema = z.object(snapshotConfigShape).strict().superRefine(
  checkSnapshotConfig,
);

/** Parsed shared snapshot config. */
export type SnapshotConfig = z.output<typeof snapshotConfigSchema>;

/** One file in the listed folder. */
export interface SnapshotFile {
  /** Base name: `2026-06-15T17-00-00.csv`. */
  name: string;
  /** The object key or file path: `origin.source` of its records and how messages name it. */
  source: string;
  /** The fingerprint when the listing already knows it (an S3 ETag). */
  fingerprint?: string;
}

/** Where snapshots live: an S3 prefix or a local directory. */
export interface SnapshotStore {
  /** How messages name the listed folder: `s3://bucket/automations/inc/`, `data/automations/inc/`. */
  readonly location: string;
  /** What the fingerprint is, for messages: `ETag`, `SHA-256`. */
  readonly fingerprintKind: string;
  /** The files directly in the folder (not in sub-folders such as processed/). */
  list(): Promise<SnapshotFile[]>;
  /** The file's content fingerprint. */
  fingerprint(file: SnapshotFile): Promise<string>;
  /** The file's bytes. */
  open(file: SnapshotFile): Promise<ReadableStream<Uint8Array>>;
  /**
   * Moves the file into the processed folder; returns its new object key or
   * path, or null when `fingerprint` is given and the file no longer has it
   * (rewritten or re-uploaded since it was read): it is then left in place,
   * for the next run to load what it holds now.
   */
  moveToProcessed(file: SnapshotFile, fingerprint?: string): Promise<string | null>;
  close?(): Promise<void> | void;
}

/** Normalises a key prefix: `""` stays, anything else ends with `/`. */
export function folderPrefix(prefix: string): string {
  return prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
}

/** The CSV options inside a snapshot config. */
function csvOptionsOf(config: SnapshotConfig): CsvOptions {
  const options: Record<string, unknown> = {};
  for (const key of Object.keys(csvOptionsSchema.shape)) {
    options[key] = (config as Record<string, unknown>)[key];
  }
  return options as CsvOptions;
}

/** LogTape reads `{name}` as a placeholder; file names are plain text. */
function logText(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}

interface Handled {
  file: SnapshotFile;
  fingerprint: string;
}

/** A file of this run and whether it is skipped as unchanged. */
interface Planned extends Handled {
  skip: boolean;
}

/**
 * The read runtime over a {@linkcode SnapshotStore}: chooses the file(s),
 * skips unchanged ones, streams records through `csvItems`, and in `commit`
 * moves what it handled and saves the skip cursor `<cursor>.etag`.
 *
 * The cursors `source.etag` and `source.name` (fingerprint and object key or
 * path of the file) are set as soon as a file starts being read, in run mode:
 * a sink that writes a freshness row (`importMeta`) commits before the reader
 * and must name the file this run loads. After a failed run they name the file
 * that failed; the skip cursor still names the last one loaded.
 */
export function snapshotReader(
  store: SnapshotStore,
  config: SnapshotConfig,
  ctx: StageContext,
): ReadRuntime {
  const csv = csvOptionsOf(config);
  const cursorName = `${config.cursor}.etag`;
  let handled: Handled[] = [];
  let superseded: SnapshotFile[] = [];
  /** Files of an incremental feed left for the next run. */
  let waiting = 0;

  function onInvalid(origin: Origin, reason: string, raw: string): void {
    const invalid: Item = { key: `${origin.source}#${origin.position}`, data: { raw }, origin };
    ctx.deadLetter(invalid, reason);
  }

  /** The files this run reads or skips, fingerprinted once (hasInput and read share it). */
  let planned: Promise<Planned[]> | undefined;

  async function plan(): Promise<Planned[]> {
    superseded = [];
    const listed = await store.list();
    const byName = new Map(listed.map((file) => [file.name, file]));
    const ordered = sortOldestFirst([...byName.keys()], config.zone).map((name) =>
      byName.get(name)!
    );
    if (ordered.length === 0) {
      ctx.log.info(logText(`No snapshot to load in "${store.location}"`));
      return [];
    }
    const chosen = config.select === "newest" ? ordered.slice(-1) : ordered;
    superseded = config.select === "newest" ? ordered.slice(0, -1) : [];
    let previous = ctx.state.getCursor(cursorName);
    const out: Planned[] = [];
    waiting = 0;
    for (const [index, file] of chosen.entries()) {
      if (ctx.signal.aborted) break;
      const fingerprint = await store.fingerprint(file);
      // --full rewrites everything: it reads an unchanged snapshot too.
      const skip = config.skipUnchanged && !ctx.options.full && fingerprint === previous;
      out.push({ file, fingerprint, skip });
      if (!skip) previous = fingerprint;
      // An incremental feed loads one file a run (unchanged ones before it are passed over).
      if (!skip && config.select === "all-oldest-first") {
        waiting = chosen.length - index - 1;
        break;
      }
    }
    return out;
  }

  return {
    async hasInput(): Promise<boolean> {
      planned ??= plan();
      return (await planned).some((entry) => !entry.skip);
    },

    async *read(): AsyncGenerator<Item> {
      handled = [];
      planned ??= plan();
      const files = await planned;
      planned = undefined;
      for (const { file, fingerprint, skip } of files) {
        if (ctx.signal.aborted) return;
        handled.push({ file, fingerprint });
        if (skip) {
          ctx.log.info(logText(
            `Skipped "${file.source}": unchanged since the last load (${store.fingerprintKind} "${fingerprint}")`,
          ));
          continue;
        }
        ctx.log.info(
          logText(`Reading "${file.source}" (${store.fingerprintKind} "${fingerprint}")`),
        );
        // Sinks that record freshness (import_meta) commit before the reader
        // does, so they need to know the file now, not after commit.
        if (ctx.options.mode === "run") {
          ctx.state.setCursor("source.etag", fingerprint);
          ctx.state.setCursor("source.name", file.source);
        }
        yield* csvItems(await store.open(file), {
          ...csv,
          source: file.source,
          onInvalid,
          signal: ctx.signal,
        });
      }
    },

    async commit(): Promise<void> {
      if (config.moveOnSuccess) {
        const moves: { file: SnapshotFile; fingerprint?: string }[] = [
          ...superseded.map((file) => ({ file })),
          ...handled,
        ];
        for (const { file, fingerprint } of moves) {
          const target = await store.moveToProcessed(file, fingerprint);
          if (target === null) {
            ctx.log.warn(logText(
              `"${file.source}" changed while it was loaded: left in place, the next run loads it`,
            ));
          } else ctx.log.info(logText(`Moved "${file.source}" to "${target}"`));
        }
      }
      // An older full snapshot's bad rows are moot once a newer one loaded cleanly:
      // its dead letters would otherwise stay open, pointing at a file no run reads again.
      for (const file of superseded) {
        const resolved = ctx.state.resolveDeadLetters?.(file.source) ?? 0;
        if (resolved > 0) {
          ctx.log.info(logText(
            `Resolved ${resolved} dead letter(s) of "${file.source}": superseded by a clean load of a newer snapshot`,
          ));
        }
      }
      const last = handled.at(-1);
      if (last) {
        ctx.state.setCursor(cursorName, last.fingerprint);
        ctx.state.setCursor("source.etag", last.fingerprint);
        ctx.state.setCursor("source.name", last.file.source);
      }
      handled = [];
      superseded = [];
    },

    moreInput(): boolean {
      return waiting > 0;
    },

    close(): Promise<void> | void {
      return store.close?.();
    },
  };
}
