/**
 * What keeps a persist from destroying stored data (a missing, replaced or emptied directory, kept
 * generations), and what restore hands over (owner, symlinks as links), against the local blob store
 * and s3rver.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type BlobStore, listAll } from "../blob/store.js";
import { openLocalStore, openS3Store } from "../testing/test-stores.js";
import {
  listGenerations,
  persist,
  readStoredWorkspace,
  restore,
  WorkspaceMissingError,
  WorkspaceReplacedError,
} from "./sync.js";
import { readAll, sha256 } from "./util.js";

async function put(dir: string, rel: string, content: string | Buffer) {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), content);
}

/** Every object under the prefix with its content hash: "nothing remote changed" means this is equal. */
async function snapshot(store: BlobStore, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { key } of await listAll(store, prefix)) out[key] = sha256(await readAll((await store.get(key))!));
  return out;
}

const texts = async (store: BlobStore, prefix: string, generation?: number) =>
  Object.fromEntries(
    [...(await readStoredWorkspace(store, prefix, generation))].map(([rel, b]) => [rel, b.toString("latin1")]),
  );

function suite(name: string, open: () => Promise<{ store: BlobStore; close(): Promise<void> }>) {
  describe(`workspace sync safety (${name})`, () => {
    let tmp: string;
    let env: Awaited<ReturnType<typeof open>>;
    let ws: string;
    let manifestPath: string;
    const prefix = "repl/alice/r1/";
    const big = (c: number) => Buffer.alloc(300 * 1024, c); // above the pack limit: its own object
    const sync = () => ({ store: env.store, prefix, dir: ws, manifestPath });
    beforeEach(async () => {
      tmp = await mkdtemp(join(tmpdir(), "devex-sync-safety-"));
      env = await open();
      ws = join(tmp, "ws");
      manifestPath = join(tmp, "ws.manifest.json");
      await put(ws, "a.txt", "a1");
      await put(ws, "src/b.txt", "b1");
      await put(ws, "big.bin", big(1));
      await persist(sync());
    });
    afterEach(async () => {
      await env.close();
      await rm(tmp, { recursive: true, force: true });
    });

    it("a missing directory: WorkspaceMissingError, nothing remote changes", async () => {
      const before = await snapshot(env.store, prefix);
      await rm(ws, { recursive: true });
      await assert.rejects(persist(sync()), WorkspaceMissingError);
      assert.deepEqual(await snapshot(env.store, prefix), before);
    });

    it("a replaced directory (other inode) or no manifest over stored files: refused, nothing remote changes", async () => {
      const before = await snapshot(env.store, prefix);
      await rename(ws, join(tmp, "old-ws"));
      await mkdir(ws); // what an unmounted volume or a re-created directory looks like: empty
      await assert.rejects(
        persist(sync()),
        (e) => e instanceof WorkspaceReplacedError && e.reason === "identity-changed",
      );
      await rm(manifestPath);
      await assert.rejects(persist(sync()), (e) => e instanceof WorkspaceReplacedError && e.reason === "no-manifest");
      assert.deepEqual(await snapshot(env.store, prefix), before);
      // A restore makes the directory the known one again.
      await restore(sync());
      await put(ws, "c.txt", "c1");
      assert.equal((await persist(sync())).transferred, 1);
    });

    it("an emptied directory with its manifest persists empty; the previous generation restores every file", async () => {
      await put(ws, "a.txt", "a2");
      await put(ws, "big.bin", big(2)); // a new object; generation 1's stays
      await symlink("src/b.txt", join(ws, "link"));
      const second = await persist(sync());
      assert.equal(second.generation, 2);
      for (const entry of ["a.txt", "src", "big.bin", "link"]) await rm(join(ws, entry), { recursive: true });
      const emptied = await persist(sync());
      assert.deepEqual([emptied.files, emptied.deleted, emptied.generation], [0, 4, 3]);
      assert.deepEqual(await readStoredWorkspace(env.store, prefix), new Map());

      const generations = await listGenerations({ store: env.store, prefix });
      assert.deepEqual(
        generations.map((g) => [g.generation, g.files, g.bytes]),
        [
          [3, 0, 0],
          [2, 4, 2 + 2 + 300 * 1024],
          [1, 3, 2 + 2 + 300 * 1024],
        ],
      );
      assert.ok(generations[0].time >= generations[1].time);
      assert.deepEqual(await texts(env.store, prefix, 2), {
        "a.txt": "a2",
        "src/b.txt": "b1",
        "big.bin": big(2).toString("latin1"),
      });
      assert.deepEqual(await texts(env.store, prefix, 1), {
        "a.txt": "a1",
        "src/b.txt": "b1",
        "big.bin": big(1).toString("latin1"),
      });
      const back = await restore({ ...sync(), generation: 2 });
      assert.equal(back.generation, 2);
      assert.equal(await readlink(join(ws, "link")), "src/b.txt");
      // Persisting the restored generation makes it the newest again.
      const again = await persist(sync());
      assert.equal(again.generation, 4);
      assert.equal(again.transferred, 0);
      assert.deepEqual(Object.keys(await texts(env.store, prefix)).sort(), ["a.txt", "big.bin", "src/b.txt"]);
      await assert.rejects(restore({ ...sync(), generation: 99 }), /generation 99 is not kept \(kept: 4, 3, 2, 1\)/);
    });

    it("keeps the last keepGenerations; objects only dropped generations named are deleted", async () => {
      for (let i = 2; i <= 7; i++) {
        await put(ws, "big.bin", big(i));
        await put(ws, `n${i}.txt`, `n${i}`);
        await persist({ ...sync(), keepGenerations: 3 });
      }
      assert.deepEqual(
        (await listGenerations({ store: env.store, prefix })).map((g) => g.generation),
        [7, 6, 5],
      );
      const keys = (await listAll(env.store, prefix)).map((e) => e.key.slice(prefix.length));
      assert.deepEqual(
        keys.filter((k) => k.includes("/generations/")).sort(),
        [5, 6, 7].map((n) => `.devex-sync/generations/${n}.json`),
      );
      assert.equal(keys.filter((k) => k.includes("/objects/")).length, 3, "one big.bin per kept generation");
      assert.equal((await texts(env.store, prefix, 5))["big.bin"], big(5).toString("latin1"));
      await assert.rejects(restore({ ...sync(), generation: 4 }), /not kept/);
    });

    it("restore with owner chowns every directory, file and symlink (and the workspace) to it", async () => {
      await symlink("a.txt", join(ws, "src", "link"));
      await put(ws, "deep/er/c.txt", "c");
      await persist(sync());
      const owner = { uid: 12345, gid: 12346 };
      await restore({ ...sync(), owner });
      for (const rel of ["", "a.txt", "big.bin", "src", "src/b.txt", "src/link", "deep", "deep/er", "deep/er/c.txt"]) {
        const st = await lstat(join(ws, rel));
        assert.deepEqual([rel, st.uid, st.gid], [rel, owner.uid, owner.gid]);
      }
      assert.ok((await lstat(join(ws, "src/link"))).isSymbolicLink());
      assert.equal(await readFile(join(ws, "deep/er/c.txt"), "utf8"), "c");
      await restore(sync());
      assert.equal((await lstat(join(ws, "a.txt"))).uid, process.getuid!(), "without owner: the caller's");
    });

    it("symlinks are stored as their target text and never followed; FIFOs are skipped unread", async () => {
      const outside = join(tmp, "outside");
      await put(outside, "secret.txt", "outside-content");
      await symlink(join(outside, "secret.txt"), join(ws, "to-file"));
      await symlink(outside, join(ws, "to-dir"));
      await symlink("does/not/exist", join(ws, "dangling"));
      execFileSync("mkfifo", [join(ws, "pipe")]);
      const r = await persist(sync());
      assert.equal(r.files, 6, "three files and three links");
      for (const [key, h] of Object.entries(await snapshot(env.store, prefix))) {
        const body = await readAll((await env.store.get(key))!);
        assert.ok(!body.includes("outside-content"), `${key} (${h}) holds the link's target content`);
      }
      await restore({ ...sync(), dir: join(tmp, "back"), manifestPath: join(tmp, "back.json") });
      assert.equal(await readlink(join(tmp, "back", "to-file")), join(outside, "secret.txt"));
      assert.equal(await readlink(join(tmp, "back", "to-dir")), outside);
      assert.equal(await readlink(join(tmp, "back", "dangling")), "does/not/exist");
      await assert.rejects(lstat(join(tmp, "back", "pipe")), { code: "ENOENT" });
    });

    it("reads a version 1 index (before generations) and keeps it as generation 0", async () => {
      const legacy = "repl/alice/legacy/";
      await env.store.put(`${legacy}big.bin`, big(9));
      await env.store.put(
        `${legacy}.devex-sync/index.json`,
        Buffer.from(
          JSON.stringify({ version: 1, files: { "big.bin": { sha256: sha256(big(9)), size: big(9).length } } }),
        ),
      );
      assert.deepEqual(
        (await listGenerations({ store: env.store, prefix: legacy })).map((g) => [g.generation, g.files]),
        [[0, 1]],
      );
      const o = { store: env.store, prefix: legacy, dir: join(tmp, "legacy"), manifestPath: join(tmp, "legacy.json") };
      await restore(o);
      await put(o.dir, "big.bin", big(10));
      assert.equal((await persist(o)).generation, 1);
      assert.equal((await texts(env.store, legacy, 0))["big.bin"], big(9).toString("latin1"));
      assert.equal((await texts(env.store, legacy))["big.bin"], big(10).toString("latin1"));
    });
  });
}

suite("local dir", openLocalStore);
suite("s3rver", openS3Store);
