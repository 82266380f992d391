/**
 * A real S3-compatible server for tests: s3rver (npm), in-process on
 * 127.0.0.1 and a free port, storing objects in a temp directory. It speaks
 * the S3 REST API (ListObjectsV2, GetObject, HeadObject, PutObject,
 * CopyObject, DeleteObject, ETag = quoted MD5) and checks SigV4 signatures
 * against its fixed credentials, so a wrong key is refused as on a real server.
 *
 * One shim: s3rver encrypts its (opaque) ListObjectsV2 continuation tokens with
 * DES, which Deno's node:crypto does not have. {@linkcode startS3} makes the
 * "des" cipher a pass-through in this process, so paging works; no other
 * cipher is touched.
 * @module
 */
import { Buffer } from "node:buffer";
import crypto from "node:crypto";
import S3rver from "s3rver";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

/** The credentials s3rver accepts. */
export const S3_ACCESS_KEY_ID = "S3RVER";
/** The secret s3rver accepts. */
export const S3_SECRET_ACCESS_KEY = "S3RVER";

/** A running test S3 server with one bucket. */
export interface TestS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** The bucket created at start. */
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Uploads an object; returns its ETag without quotes. */
  put(key: string, body: string | Uint8Array): Promise<string>;
  /** The object's content as text. */
  get(key: string): Promise<string>;
  /** Every key in the bucket (all folders), sorted. */
  list(prefix?: string): Promise<string[]>;
  /** Stops the server and removes its files. */
  close(): Promise<void>;
}

/** The part of a node:crypto Cipher/Decipher that s3rver uses. */
interface PassThroughCipher {
  update(data: string | Uint8Array, encoding?: BufferEncoding): Buffer;
  final(): Buffer;
}

function passThroughCipher(): PassThroughCipher {
  return {
    update(data, encoding) {
      return typeof data === "string" ? Buffer.from(data, encoding ?? "utf8") : Buffer.from(data);
    },
    final() {
      return Buffer.alloc(0);
    },
  };
}

let desShimmed = false;

/** Makes `createCipheriv("des", ...)` and its decipher a pass-through when DES is missing. */
function shimDes(): void {
  if (desShimmed) return;
  desShimmed = true;
  try {
    crypto.createCipheriv("des", Buffer.alloc(8), Buffer.alloc(8));
    return; // a runtime with DES needs no shim
  } catch {
    // fall through: DES is missing
  }
  const { createCipheriv, createDecipheriv } = crypto;
  // deno-lint-ignore no-explicit-any
  const target = crypto as any;
  target.createCipheriv = function cipherOrShim(algorithm: string, ...rest: unknown[]) {
    if (algorithm === "des") return passThroughCipher();
    return (createCipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest);
  };
  target.createDecipheriv = function decipherOrShim(algorithm: string, ...rest: unknown[]) {
    if (algorithm === "des") return passThroughCipher();
    return (createDecipheriv as (...args: unknown[]) => unknown)(algorithm, ...rest);
  };
}

/** Starts s3rver with `bucket` (default `"inc-exports"`) on a free port. */
export async function startS3(bucket = "inc-exports"): Promise<TestS3> {
  shimDes();
  const directory = await Deno.makeTempDir({ prefix: "ticketsync_s3_" });
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });

  return {
    endpoint,
    bucket,
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,

    async put(key, body) {
      const out = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      return (out.ETag ?? "").replace(/^"(.*)"$/, "$1");
    },

    async get(key) {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await out.Body!.transformToString();
    },

    async list(prefix = "") {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },

    async close() {
      client.destroy();
      await server.close();
      await Deno.remove(directory, { recursive: true });
    },
  };
}
