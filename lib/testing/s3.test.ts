import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { createS3BlobStore } from "../blob/s3.js";
import { startS3, type TestS3 } from "./s3.js";

describe("the tests' s3rver", function () {
  this.timeout(60_000);
  let s3: TestS3;
  before(async () => {
    s3 = await startS3();
  });
  after(() => s3?.dispose());

  it("answers every GET racing re-PUTs of the same bytes with the whole object, as S3's atomic PUT does", async () => {
    const store = createS3BlobStore(s3.storeOptions);
    const body = randomBytes(512 * 1024);
    await store.put("race/record", body);
    const torn: number[] = [];
    for (let round = 0; round < 40; round++) {
      const puts = Array.from({ length: 4 }, () => store.put("race/record", body));
      const gets = Array.from({ length: 8 }, async () => {
        const got = await buffer((await store.get("race/record"))!);
        if (!got.equals(body)) torn.push(got.length);
      });
      await Promise.all([...puts, ...gets]);
    }
    await store.close();
    assert.deepEqual(torn, [], `GETs that read a torn object (their lengths, of ${body.length})`);
  });
});
