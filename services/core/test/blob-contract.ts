/** The one contract every BlobStore implementation passes (run by blob.test.ts against each). */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { type BlobStore, InvalidBlobKeyError, listAll } from "../../../lib/blob/store.js";

async function read(store: BlobStore, key: string): Promise<string | undefined> {
  const body = await store.get(key);
  return body && text(body);
}

export function blobStoreContract(open: () => Promise<BlobStore>) {
  let store: BlobStore;
  let ns: string;
  beforeEach(async () => {
    store = await open();
    ns = `t${randomBytes(4).toString("hex")}/`;
  });
  afterEach(() => store.close());

  it("puts, gets and overwrites objects; missing ones are undefined", async () => {
    await store.put(`${ns}a/b.txt`, Buffer.from("one"));
    assert.equal(await read(store, `${ns}a/b.txt`), "one");
    await store.put(`${ns}a/b.txt`, Readable.from([Buffer.from("tw"), Buffer.from("o")]));
    assert.equal(await read(store, `${ns}a/b.txt`), "two");
    assert.equal(await store.get(`${ns}a/missing`), undefined);
    assert.equal(await store.get(`${ns}a`), undefined, "a directory-like prefix is not an object");
  });

  it("refuses keys that could escape or confuse prefixes", async () => {
    for (const bad of ["", "/abs", "a/../b", "a//b", "a/./b", "a\\b", "a\0b"]) {
      await assert.rejects(store.put(bad, Buffer.from("x")), InvalidBlobKeyError, bad);
    }
  });

  it("lists by prefix in key order, in pages", async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `${ns}p/f${i}.txt`);
    for (const k of keys) await store.put(k, Buffer.from(k));
    await store.put(`${ns}q/other`, Buffer.from("x"));
    await store.put(`${ns}p-sibling`, Buffer.from("x"));
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await store.list(`${ns}p/`, { pageToken, pageSize: 3 });
      assert.ok(page.entries.length <= 3);
      seen.push(...page.entries.map((e) => e.key));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    assert.deepEqual(seen, keys);
    assert.equal(pages, 3);
    const all = await listAll(store, `${ns}p/`);
    assert.equal(all[0].size, keys[0].length);
    assert.deepEqual((await store.list(`${ns}none/`)).entries, []);
  });

  it("copies and deletes a prefix", async () => {
    await store.put(`${ns}src/a.txt`, Buffer.from("A"));
    await store.put(`${ns}src/sub/dir/b.txt`, Buffer.from("B"));
    await store.put(`${ns}srcx/not.txt`, Buffer.from("no"));
    assert.equal(await store.copyPrefix(`${ns}src/`, `${ns}dst/1/`), 2);
    assert.equal(await read(store, `${ns}dst/1/a.txt`), "A");
    assert.equal(await read(store, `${ns}dst/1/sub/dir/b.txt`), "B");
    assert.equal(await read(store, `${ns}src/a.txt`), "A", "the source stays");
    assert.equal(await store.deletePrefix(`${ns}dst/`), 2);
    assert.deepEqual(await listAll(store, `${ns}dst/`), []);
    assert.equal(await store.deletePrefix(`${ns}dst/`), 0, "idempotent");
    assert.equal(await read(store, `${ns}srcx/not.txt`), "no");
  });

  it("streams a large object in and out without changing a byte", async function () {
    this.timeout(60_000);
    const chunk = randomBytes(1024 * 1024);
    const chunks = 20;
    const expected = createHash("sha256");
    for (let i = 0; i < chunks; i++) expected.update(chunk);
    await store.put(
      `${ns}big.bin`,
      Readable.from(
        (function* () {
          for (let i = 0; i < chunks; i++) yield chunk;
        })(),
      ),
    );
    const body = await store.get(`${ns}big.bin`);
    assert.ok(body);
    const actual = createHash("sha256");
    let size = 0;
    for await (const c of body) {
      actual.update(c);
      size += c.length;
    }
    assert.equal(size, chunks * chunk.length);
    assert.equal(actual.digest("hex"), expected.digest("hex"));
  });
}
