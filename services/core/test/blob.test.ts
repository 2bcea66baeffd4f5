import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { createS3BlobStore } from "../../../lib/blob/s3.js";
import { isKind } from "../../../lib/kit/errors.js";
import { startS3, type TestS3 } from "../../../lib/testing/s3.js";
import { blobStoreContract } from "./blob-contract.js";

describe("blob store: local directory", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-blob-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  blobStoreContract(async () => createLocalBlobStore(dir));
});

describe("blob store: S3 (s3rver)", function () {
  this.timeout(60_000);
  let s3: TestS3;
  before(async () => {
    s3 = await startS3();
  });
  after(() => s3?.dispose());
  const open = async () => createS3BlobStore(s3.storeOptions);
  blobStoreContract(open);

  it("fails with Unavailable while S3 is down", async () => {
    const store = await open();
    await s3.stop();
    try {
      await assert.rejects(store.put("x/y", Buffer.from("1")), (e) => isKind(e, "unavailable"));
      await assert.rejects(store.list("x/"), (e) => isKind(e, "unavailable") && !/ECONNREFUSED/.test(e.message));
    } finally {
      await s3.start();
      await store.close();
    }
  });
});
