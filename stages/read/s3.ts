/**
 * `read.s3`: timestamped CSV snapshots in an S3-compatible bucket (RustFS,
 * MinIO, AWS), path-style. Picks the newest (or all, oldest first), skips a
 * file whose ETag equals the last load, and after a successful run moves the
 * handled file(s) to processed/ (CopyObject, then DeleteObject).
 *
 * The AWS SDK is heavy, so it is imported only when a config uses this stage.
 * @module
 */
import { z } from "zod";
import { errorMessage, MissingError, RemoteError } from "../../lib/errors.ts";
import { secret } from "../../lib/secret.ts";
import {
  checkSnapshotConfig,
  folderPrefix,
  snapshotConfigShape,
  snapshotReader,
} from "../../lib/snapshot.ts";
import type { SnapshotFile, SnapshotStore } from "../../lib/snapshot.ts";
import { defineStage } from "../../lib/stage.ts";

type S3Module = typeof import("@aws-sdk/client-s3");
type S3Client = InstanceType<S3Module["S3Client"]>;

/** Options of {@linkcode s3SnapshotStore}. */
export interface S3SnapshotStoreOptions {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Key prefix holding the snapshots (`""` or ending in `/`). */
  prefix: string;
  /** Folder under the prefix that loaded files move to (ending in `/`). */
  processedPrefix: string;
  /** Keys per ListObjectsV2 page. */
  pageSize: number;
}

/** S3 error codes that mean the credentials were refused. */
const AUTH_ERRORS = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "InvalidToken",
  "ExpiredToken",
  "Forbidden",
]);

/** `"abc"` -> `abc`: S3 quotes ETags; the cursor and messages keep the bare value. */
function bareEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/**
 * Maps an SDK error to the run's error classes: a missing bucket or key is
 * a {@linkcode MissingError} (exit 2), anything else a {@linkcode RemoteError} (exit 3).
 */
export function s3Error(action: string, target: string, error: unknown): Error {
  const failure = error as {
    name?: string;
    Code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const code = failure.Code ?? failure.name ?? "";
  const status = failure.$metadata?.httpStatusCode;
  const what = `Cannot ${action} "${target}"`;
  if (code === "NoSuchBucket") {
    return new MissingError(`${what}: bucket does not exist`, { cause: error });
  }
  if (code === "NoSuchKey" || code === "NotFound") {
    return new MissingError(`${what}: object does not exist`, { cause: error });
  }
  if (AUTH_ERRORS.has(code) || status === 401 || status === 403) {
    return new RemoteError(
      `${what}: access denied (${code || `HTTP ${status}`}: ${errorMessage(error)})`,
      status ?? 403,
      { cause: error },
    );
  }
  const detail = status ? `HTTP ${status} ${code}: ${errorMessage(error)}` : errorMessage(error);
  return new RemoteError(`${what}: ${detail}`, status, { cause: error });
}

/** A {@linkcode SnapshotStore} over an S3 prefix; fingerprints are ETags. */
export function s3SnapshotStore(options: S3SnapshotStoreOptions): SnapshotStore {
  const { bucket, prefix } = options;
  const location = `s3://${bucket}/${prefix}`;
  let loaded: { sdk: S3Module; client: S3Client } | undefined;

  async function s3(): Promise<{ sdk: S3Module; client: S3Client }> {
    if (!loaded) {
      const sdk = await import("@aws-sdk/client-s3");
      const client = new sdk.S3Client({
        endpoint: options.endpoint,
        region: options.region,
        forcePathStyle: true,
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
        // S3-compatible servers (RustFS, MinIO, older Ceph) reject the newer default checksums.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      });
      loaded = { sdk, client };
    }
    return loaded;
  }

  /** The object's ETag as the server has it now. */
  async function headEtag(file: SnapshotFile): Promise<string> {
    const { sdk, client } = await s3();
    try {
      const head = await client.send(
        new sdk.HeadObjectCommand({ Bucket: bucket, Key: file.source }),
      );
      return bareEtag(head.ETag) ?? "";
    } catch (error) {
      throw s3Error("read", `s3://${bucket}/${file.source}`, error);
    }
  }

  return {
    location,
    fingerprintKind: "ETag",

    async list(): Promise<SnapshotFile[]> {
      const { sdk, client } = await s3();
      const files: SnapshotFile[] = [];
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new sdk.ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix,
              // Only the prefix's own files: processed/ and other folders come back as CommonPrefixes.
              Delimiter: "/",
              MaxKeys: options.pageSize,
              ContinuationToken: token,
            }),
          );
        } catch (error) {
          throw s3Error("list", location, error);
        }
        for (const object of page.Contents ?? []) {
          if (!object.Key || object.Key.endsWith("/")) continue;
          files.push({
            name: object.Key.slice(prefix.length),
            source: object.Key,
            fingerprint: bareEtag(object.ETag),
          });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return files;
    },

    async fingerprint(file: SnapshotFile): Promise<string> {
      return file.fingerprint ?? await headEtag(file);
    },

    async open(file: SnapshotFile): Promise<ReadableStream<Uint8Array>> {
      const { sdk, client } = await s3();
      try {
        const object = await client.send(
          new sdk.GetObjectCommand({ Bucket: bucket, Key: file.source }),
        );
        if (!object.Body) throw new Error("the response has no body");
        return object.Body.transformToWebStream() as ReadableStream<Uint8Array>;
      } catch (error) {
        throw s3Error("read", `s3://${bucket}/${file.source}`, error);
      }
    },

    async moveToProcessed(file: SnapshotFile, fingerprint?: string): Promise<string | null> {
      const { sdk, client } = await s3();
      const target = `${prefix}${options.processedPrefix}${file.name}`;
      // Re-uploaded since it was read: moving it would archive content no run loaded.
      if (fingerprint !== undefined && await headEtag(file) !== fingerprint) return null;
      try {
        await client.send(
          new sdk.CopyObjectCommand({
            Bucket: bucket,
            Key: target,
            CopySource: `${bucket}/${file.source.split("/").map(encodeURIComponent).join("/")}`,
            // Closes the gap after the HEAD above (S3 refuses the copy if the object changed).
            ...(fingerprint === undefined ? {} : { CopySourceIfMatch: `"${fingerprint}"` }),
          }),
        );
        await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: file.source }));
      } catch (error) {
        throw s3Error("move", `s3://${bucket}/${file.source}`, error);
      }
      return target;
    },

    close(): void {
      loaded?.client.destroy();
      loaded = undefined;
    },
  };
}

/** The `read.s3` stage. */
export const stage = defineStage({
  kind: "read",
  name: "s3",
  summary: "Read the newest (or every) timestamped CSV snapshot from an S3-compatible bucket.",
  config: z.object({
    endpoint: z.url().optional()
      .describe('S3-compatible endpoint, e.g. "https://rustfs.example.com"; omit for AWS.'),
    region: z.string().min(1).default("us-east-1").describe("Region used for request signing."),
    bucket: z.string().min(1).describe("Bucket name."),
    accessKeyId: secret(z.string().min(1)).describe("Access key id."),
    secretAccessKey: secret(z.string().min(1)).describe("Secret access key."),
    pageSize: z.number().int().min(1).max(1000).default(1000)
      .describe("Keys per ListObjectsV2 request (pages are followed to the end)."),
    ...snapshotConfigShape,
  }).strict().superRefine(checkSnapshotConfig),
  create(config, ctx) {
    const store = s3SnapshotStore({
      endpoint: config.endpoint,
      region: config.region,
      bucket: config.bucket,
      accessKeyId: config.accessKeyId,
      secretAccessKey: config.secretAccessKey,
      prefix: folderPrefix(config.prefix),
      processedPrefix: folderPrefix(config.processedPrefix),
      pageSize: config.pageSize,
    });
    return snapshotReader(store, config, ctx);
  },
});
