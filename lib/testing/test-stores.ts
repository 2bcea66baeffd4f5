/**
 * The two blob stores lib/sync's suites run against: a local directory, and s3rver (a real S3 HTTP
 * server, lib/testing/s3.ts). Each opens fresh and `close` removes what it made.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../blob/local.js";
import { createS3BlobStore } from "../blob/s3.js";
import type { BlobStore } from "../blob/store.js";
import { startS3, type TestS3 } from "./s3.js";

export interface TestStore {
  store: BlobStore;
  /** The S3 server, to stop and start it (outage tests); absent for the local store. */
  s3?: TestS3;
  close(): Promise<void>;
}

export async function openLocalStore(): Promise<TestStore> {
  const dir = await mkdtemp(join(tmpdir(), "devex-sync-blobs-"));
  return { store: createLocalBlobStore(dir), close: () => rm(dir, { recursive: true, force: true }) };
}

export async function openS3Store(): Promise<TestStore> {
  const s3 = await startS3();
  const store = createS3BlobStore(s3.storeOptions);
  return {
    store,
    s3,
    async close() {
      await store.close();
      await s3.dispose();
    },
  };
}
