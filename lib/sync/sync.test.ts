import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createLocalBlobStore } from "../blob/local.js";
import { type BlobStore, listAll } from "../blob/store.js";
import { openLocalStore, openS3Store, type TestStore } from "../testing/test-stores.js";
import { main } from "./cli.js";
import { persist, readStoredWorkspace, restore, type SyncProgress } from "./sync.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

async function remoteHashes(store: BlobStore, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [rel, content] of await readStoredWorkspace(store, prefix)) out[rel] = sha(content);
  return out;
}

async function localHashes(dir: string, files: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) out[f] = sha(await readFile(join(dir, f)));
  return out;
}

async function put(dir: string, rel: string, content: string | Buffer) {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), content);
}

function suite(name: string, open: () => Promise<TestStore>) {
  describe(`workspace sync (${name})`, () => {
    let tmp: string;
    let env: Awaited<ReturnType<typeof open>>;
    const prefix = "repl/alice/r1/";
    beforeEach(async () => {
      tmp = await mkdtemp(join(tmpdir(), "devex-sync-"));
      env = await open();
    });
    afterEach(async () => {
      await env.close();
      await rm(tmp, { recursive: true, force: true });
    });

    it("restores, then persists only changes, deletions included (a.txt removed, a.txt.bak kept)", async () => {
      const seed = join(tmp, "seed");
      await put(seed, "index.js", "console.log(1)\n");
      await put(seed, "a.txt", "a");
      await put(seed, "a.txt.bak", "backup");
      await put(seed, "src/lib/deep.ts", "export {}\n");
      const first = await persist({ store: env.store, prefix, dir: seed, manifestPath: join(tmp, "seed.m.json") });
      assert.equal(first.transferred, 4);
      assert.equal(first.objects, 4, "four small files: one pack, the base map, the generation and the index");

      const ws = join(tmp, "ws");
      const progress: SyncProgress[] = [];
      const r = await restore({ store: env.store, prefix, dir: ws, onProgress: (p) => progress.push(p) });
      assert.equal(r.files, 4);
      assert.equal(progress.at(-1)?.filesDone, 4);
      assert.deepEqual(
        await localHashes(ws, ["index.js", "a.txt", "a.txt.bak", "src/lib/deep.ts"]),
        await remoteHashes(env.store, prefix),
      );

      const unchanged = await persist({ store: env.store, prefix, dir: ws });
      assert.equal(unchanged.transferred, 0);
      assert.equal(unchanged.objects, 0);

      await rm(join(ws, "a.txt"));
      await put(ws, "index.js", "console.log(2)\n");
      await put(ws, "new/file.bin", Buffer.alloc(2 * 1024 * 1024, 7)); // a large (loose, streamed) file
      const later = new Date(Date.now() + 5000);
      await utimes(join(ws, "src/lib/deep.ts"), later, later); // touched, same content: not uploaded
      const changed = await persist({ store: env.store, prefix, dir: ws });
      assert.equal(changed.deleted, 1);
      assert.equal(changed.transferred, 2);
      assert.deepEqual(
        await remoteHashes(env.store, prefix),
        await localHashes(ws, ["index.js", "a.txt.bak", "src/lib/deep.ts", "new/file.bin"]),
      );
      assert.equal((await persist({ store: env.store, prefix, dir: ws })).transferred, 0);
    });

    it("files from a template (loose objects, no index) restore and persist; packs less than half alive are rewritten", async () => {
      const keepGenerations = 1; // only the newest generation keeps objects, so garbage goes at once
      await env.store.put(`${prefix}index.js`, Buffer.from("template"));
      await env.store.put(`${prefix}README.md`, Buffer.from("readme"));
      const ws = join(tmp, "ws");
      await restore({ store: env.store, prefix, dir: ws });
      for (let i = 0; i < 10; i++) await put(ws, `f${i}.txt`, `file ${i} ${"x".repeat(1000)}`);
      assert.equal((await persist({ store: env.store, prefix, dir: ws, keepGenerations })).transferred, 10);
      for (let i = 0; i < 8; i++) await rm(join(ws, `f${i}.txt`));
      await rm(join(ws, "README.md"));
      const r = await persist({ store: env.store, prefix, dir: ws, keepGenerations });
      assert.equal(r.deleted, 9);
      const keys = (await listAll(env.store, prefix)).map((e) => e.key.slice(prefix.length));
      assert.equal(keys.filter((k) => k.startsWith(".devex-sync/packs/")).length, 1, keys.join(" "));
      assert.ok(!keys.includes("README.md"));
      assert.deepEqual(await remoteHashes(env.store, prefix), await localHashes(ws, ["index.js", "f8.txt", "f9.txt"]));
    });

    it("without a manifest uploads everything and drops what else is under the prefix", async () => {
      await env.store.put(`${prefix}stale.txt`, Buffer.from("old"));
      const ws = join(tmp, "ws");
      await put(ws, "x.txt", "x");
      const r = await persist({ store: env.store, prefix, dir: ws });
      assert.equal(r.deleted, 1);
      assert.deepEqual(Object.keys(await remoteHashes(env.store, prefix)), ["x.txt"]);
      assert.ok(!(await listAll(env.store, prefix)).some((e) => e.key.endsWith("stale.txt")));
    });

    if (name === "s3rver") {
      it("a persist that fails while S3 is down leaves the stored workspace as it was; the next one uploads everything", async () => {
        const ws = join(tmp, "ws");
        await restore({ store: env.store, prefix, dir: ws });
        const files = Array.from({ length: 40 }, (_, i) => `f${i}.txt`);
        for (const f of files) await put(ws, f, `content ${f}`);
        const before = await localHashes(ws, files);
        await env.s3!.stop();
        await assert.rejects(persist({ store: env.store, prefix, dir: ws, attempts: 2 }));
        assert.deepEqual(await localHashes(ws, files), before); // the workspace is untouched
        await env.s3!.start();
        const r = await persist({ store: env.store, prefix, dir: ws });
        assert.equal(r.transferred, 40);
        assert.deepEqual(await remoteHashes(env.store, prefix), await localHashes(ws, files));
      });
    }

    it("the CLI restores and persists with the store from the environment", async function () {
      if (name !== "local dir") this.skip();
      const blobDir = join(tmp, "blobs");
      const store = createLocalBlobStore(blobDir);
      await store.put(`${prefix}hello.txt`, Buffer.from("hi"));
      const ws = join(tmp, "cli-ws");
      const env2 = { DEVEX_BLOB_DIR: blobDir };
      const write = process.stdout.write;
      const err = process.stderr.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      process.stderr.write = (() => true) as typeof process.stderr.write;
      try {
        assert.equal(await main(["restore", "--dir", ws, "--prefix", prefix], env2), 0);
        assert.equal(await readFile(join(ws, "hello.txt"), "utf8"), "hi");
        await put(ws, "more.txt", "more");
        assert.equal(await main(["persist", "--dir", ws, "--prefix", prefix], env2), 0);
        assert.ok(existsSync(join(ws, ".devex-sync", "manifest.json")), "the manifest lives on the workspace volume");
        assert.equal(await main(["bogus"], env2), 2);
      } finally {
        process.stdout.write = write;
        process.stderr.write = err;
      }
      assert.deepEqual(Object.keys(await remoteHashes(store, prefix)).sort(), ["hello.txt", "more.txt"]);
    });
  });
}

suite("local dir", openLocalStore);
suite("s3rver", openS3Store);
