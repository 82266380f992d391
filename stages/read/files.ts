/**
 * `read.files`: timestamped CSV snapshots in a local directory, as `read.s3`
 * reads them from a bucket (newest or all oldest first, skip when the SHA-256
 * is unchanged, move to processed/ after a successful run).
 * @module
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { z } from "zod";
import { MissingError } from "../../lib/errors.ts";
import {
  checkSnapshotConfig,
  folderPrefix,
  snapshotConfigShape,
  snapshotReader,
} from "../../lib/snapshot.ts";
import type { SnapshotFile, SnapshotStore } from "../../lib/snapshot.ts";
import { defineStage } from "../../lib/stage.ts";

/** Options of {@linkcode fileSnapshotStore}. */
export interface FileSnapshotStoreOptions {
  /** Root directory as configured (relative paths are shown as given). */
  dir: string;
  /** Folder under `dir` holding the snapshots (`""` or ending in `/`). */
  prefix: string;
  /** Folder under the prefix that loaded files move to (ending in `/`). */
  processedPrefix: string;
  /** Directory `dir` resolves against. */
  cwd: string;
}

/** A {@linkcode SnapshotStore} over a local directory; fingerprints are SHA-256 hex. */
export function fileSnapshotStore(options: FileSnapshotStoreOptions): SnapshotStore {
  const shown = join(options.dir, options.prefix);
  const folder = resolve(options.cwd, shown);
  const processed = resolve(folder, options.processedPrefix);
  const location = shown.endsWith("/") ? shown : `${shown}/`;
  /** Size and mtime of each file when it was fingerprinted. */
  const stamps = new Map<string, string>();

  function stampOf(info: Deno.FileInfo): string {
    return `${info.size}:${info.mtime?.getTime() ?? ""}`;
  }

  async function stamp(file: SnapshotFile): Promise<string> {
    return stampOf(await Deno.stat(resolve(folder, file.name)));
  }

  return {
    location,
    fingerprintKind: "SHA-256",

    async list(): Promise<SnapshotFile[]> {
      const files: SnapshotFile[] = [];
      try {
        for await (const entry of Deno.readDir(folder)) {
          if (entry.isDirectory) continue;
          files.push({ name: entry.name, source: join(shown, entry.name) });
        }
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          throw new MissingError(`Cannot list "${location}": directory does not exist`, {
            cause: error,
          });
        }
        if (error instanceof Deno.errors.NotADirectory) {
          throw new MissingError(`Cannot list "${location}": not a directory`, { cause: error });
        }
        throw error;
      }
      return files;
    },

    async fingerprint(file: SnapshotFile): Promise<string> {
      const hash = createHash("sha256");
      // Plain reads into one buffer: a web stream's 64 KiB chunks cost more than the hashing.
      using handle = await openHandle(file);
      stamps.set(file.name, stampOf(await handle.stat()));
      const buffer = new Uint8Array(1 << 20);
      for (let n = await handle.read(buffer); n !== null; n = await handle.read(buffer)) {
        hash.update(buffer.subarray(0, n));
      }
      return hash.digest("hex");
    },

    open: openFile,

    async moveToProcessed(file: SnapshotFile, fingerprint?: string): Promise<string | null> {
      // Size and modification time as when it was fingerprinted: a file written since (an
      // export still being appended to) would be moved with rows no run read.
      if (fingerprint !== undefined && stamps.get(file.name) !== await stamp(file)) return null;
      await Deno.mkdir(processed, { recursive: true });
      await Deno.rename(resolve(folder, file.name), resolve(processed, file.name));
      return join(shown, options.processedPrefix, file.name);
    },
  };

  async function openFile(file: SnapshotFile): Promise<ReadableStream<Uint8Array>> {
    return (await openHandle(file)).readable;
  }

  async function openHandle(file: SnapshotFile): Promise<Deno.FsFile> {
    try {
      return await Deno.open(resolve(folder, file.name));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new MissingError(`Cannot read "${file.source}": file does not exist`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}

/** The `read.files` stage. */
export const stage = defineStage({
  kind: "read",
  name: "files",
  summary: "Read the newest (or every) timestamped CSV snapshot from a local directory.",
  config: z.object({
    dir: z.string().min(1)
      .describe("Directory that holds the prefix folder (relative to the working directory)."),
    ...snapshotConfigShape,
  }).strict().superRefine(checkSnapshotConfig),
  create(config, ctx) {
    const store = fileSnapshotStore({
      dir: config.dir,
      prefix: folderPrefix(config.prefix),
      processedPrefix: folderPrefix(config.processedPrefix),
      cwd: ctx.cwd,
    });
    return snapshotReader(store, config, ctx);
  },
});
