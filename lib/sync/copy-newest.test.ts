/**
 * copyNewestGeneration (a template saved from a repl) and persist's replaceStored (a template
 * folder installed over what is stored), against the local blob store.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../blob/local.js";
import { type BlobStore, listAll } from "../blob/store.js";
import { copyNewestGeneration } from "./copy-newest.js";
import { WorkspaceReplacedError } from "./errors.js";
import { persist, readStoredWorkspace, restore } from "./sync.js";
import { readAll } from "./util.js";

describe("copyNewestGeneration", () => {
  let tmp: string;
  let store: BlobStore;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "devex-copy-newest-"));
    store = createLocalBlobStore(join(tmp, "blobs"));
  });
  afterEach(async () => {
    await store.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const sync = (dir: string, prefix: string) => ({ store, prefix, dir, manifestPath: `${dir}.manifest.json` });

  it("copies only the newest state: no older generation, no dead bytes of a deleted file in a pack", async () => {
    const dir = join(tmp, "ws");
    await restore(sync(dir, "repl/a/r1/"));
    const deleted = `DELETED-${randomBytes(8).toString("hex")}`;
    await writeFile(join(dir, "gone.txt"), deleted);
    const kept = "kept\n".repeat(2000); // most of the pack stays alive, so persist keeps the pack
    await writeFile(join(dir, "kept.txt"), kept);
    await writeFile(join(dir, "tool.sh"), "#!/bin/sh\n");
    await chmod(join(dir, "tool.sh"), 0o755);
    const large = randomBytes(600 * 1024); // an object of its own, not packed
    await writeFile(join(dir, "large.bin"), large);
    await persist(sync(dir, "repl/a/r1/"));
    await unlink(join(dir, "gone.txt"));
    await writeFile(join(dir, "new.txt"), "new\n");
    await persist(sync(dir, "repl/a/r1/"));

    const source = await listAll(store, "repl/a/r1/.devex-sync/packs/");
    const inSource = await Promise.all(
      source.map(async (e) => (await readAll((await store.get(e.key))!)).toString("latin1").includes(deleted)),
    );
    assert.ok(inSource.includes(true), "precondition: the source's pack still holds the deleted bytes");

    const copied = await copyNewestGeneration(store, "repl/a/r1/", "templates/t1/");
    assert.deepEqual(copied, { files: 4, bytes: kept.length + 10 + large.length + 4 });
    const keys = (await listAll(store, "templates/t1/")).map((e) => e.key.slice("templates/t1/".length));
    assert.deepEqual(
      keys.filter((k) => k.includes("generations/")),
      [".devex-sync/generations/1.json"],
    );
    for (const k of keys) {
      const body = (await readAll((await store.get(`templates/t1/${k}`))!)).toString("latin1");
      assert.ok(!body.includes(deleted), `${k} holds the deleted file's bytes`);
    }
    const back = join(tmp, "back");
    await restore(sync(back, "templates/t1/"));
    const files = await readStoredWorkspace(store, "templates/t1/");
    assert.deepEqual([...files.keys()].sort(), ["kept.txt", "large.bin", "new.txt", "tool.sh"]);
    assert.ok(files.get("large.bin")!.equals(large));
    assert.equal((await stat(join(back, "tool.sh"))).mode & 0o777, 0o755, "modes come along");
  });

  it("fails, rather than copying a workspace with holes, when an object it names is gone", async () => {
    const dir = join(tmp, "ws");
    await restore(sync(dir, "repl/a/r2/"));
    await writeFile(join(dir, "a.txt"), "a\n");
    await persist(sync(dir, "repl/a/r2/"));
    const pack = (await listAll(store, "repl/a/r2/.devex-sync/packs/"))[0].key;
    await store.deletePrefix(pack);
    await assert.rejects(copyNewestGeneration(store, "repl/a/r2/", "templates/t2/", undefined, 1), /lacks/);
    assert.equal(await store.get("templates/t2/.devex-sync/index.json"), undefined, "no index: no workspace");
  });

  it("persist refuses to write over a stored workspace without a manifest, unless the folder is the truth", async () => {
    const first = join(tmp, "first");
    await restore(sync(first, "templates/node/"));
    await writeFile(join(first, "old.txt"), "old\n");
    await persist(sync(first, "templates/node/"));
    const folder = join(tmp, "folder");
    await restore({ ...sync(folder, "scratch/"), manifestPath: join(tmp, "scratch.json") });
    await writeFile(join(folder, "index.js"), "1\n");
    const over = { store, prefix: "templates/node/", dir: folder, manifestPath: join(tmp, "fresh.json") };
    await assert.rejects(persist(over), (e) => e instanceof WorkspaceReplacedError && e.reason === "no-manifest");
    await persist({ ...over, replaceStored: true, keepGenerations: 1 });
    assert.deepEqual([...(await readStoredWorkspace(store, "templates/node/")).keys()], ["index.js"]);
  });
});
