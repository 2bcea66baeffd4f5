/**
 * BlobStore on S3 or an S3-compatible service (AWS S3, Cloudflare R2, MinIO). Uploads stream through
 * `@aws-sdk/lib-storage` (multipart above 8 MiB), so a workspace never has to fit in memory.
 * Checksums are computed only when required: several S3-compatible services do not understand the
 * SDK's default aws-chunked uploads.
 */

import type { Readable } from "node:stream";
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { type BlobStore, backendCall, checkKey, listAll } from "./store.js";

export interface S3BlobStoreOptions {
  bucket: string;
  region: string;
  /** Custom endpoint for R2, MinIO and the like; unset for AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Key prefix inside the bucket, e.g. "devex/"; defaults to none. */
  prefix?: string;
}

export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const client = new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? false,
    credentials:
      options.accessKeyId && options.secretAccessKey
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
        : undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 2,
  });
  const Bucket = options.bucket;
  const root = options.prefix ?? "";
  const full = (key: string) => {
    checkKey(key);
    return root + key;
  };
  const guard = <T>(fn: () => Promise<T>) => backendCall("the blob store (S3) is unavailable, try again", fn);

  const store: BlobStore = {
    put: (key, body, signal) =>
      guard(async () => {
        const upload = new Upload({
          client,
          params: { Bucket, Key: full(key), Body: body },
          partSize: 8 * 1024 * 1024,
          queueSize: 2,
        });
        const abort = () => void upload.abort();
        signal?.addEventListener("abort", abort, { once: true });
        try {
          await upload.done();
        } finally {
          signal?.removeEventListener("abort", abort);
        }
      }),
    get: (key, signal) =>
      guard(async () => {
        try {
          const res = await client.send(new GetObjectCommand({ Bucket, Key: full(key) }), { abortSignal: signal });
          return res.Body as Readable;
        } catch (e) {
          if (e instanceof NoSuchKey || (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 404))
            return undefined;
          throw e;
        }
      }),
    list: (prefix, page = {}, signal) =>
      guard(async () => {
        const res = await client.send(
          new ListObjectsV2Command({
            Bucket,
            Prefix: root + prefix,
            MaxKeys: Math.max(1, Math.min(page.pageSize ?? 1000, 1000)),
            StartAfter: page.pageToken ? root + page.pageToken : undefined,
          }),
          { abortSignal: signal },
        );
        const entries = (res.Contents ?? []).map((o) => ({ key: (o.Key ?? "").slice(root.length), size: o.Size ?? 0 }));
        return { entries, nextPageToken: res.IsTruncated && entries.length ? entries[entries.length - 1].key : "" };
      }),
    deletePrefix: (prefix, signal) =>
      guard(async () => {
        const entries = await listAll(store, prefix, signal);
        for (let i = 0; i < entries.length; i += 1000) {
          const Objects = entries.slice(i, i + 1000).map((e) => ({ Key: root + e.key }));
          const res = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects, Quiet: true } }), {
            abortSignal: signal,
          });
          if (res.Errors?.length) throw new Error(`S3 refused to delete ${res.Errors.length} objects`);
        }
        return entries.length;
      }),
    copyPrefix: (from, to, signal) =>
      guard(async () => {
        const entries = await listAll(store, from, signal);
        const queue = [...entries];
        const worker = async () => {
          for (let e = queue.shift(); e; e = queue.shift()) {
            await client.send(
              new CopyObjectCommand({
                Bucket,
                Key: full(to + e.key.slice(from.length)),
                CopySource: `${Bucket}/${encodeURIComponent(root + e.key).replace(/%2F/g, "/")}`,
              }),
              { abortSignal: signal },
            );
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        return entries.length;
      }),
    close: async () => client.destroy(),
  };
  return store;
}
