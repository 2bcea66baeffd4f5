import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type BlobStore, listAll } from "../blob/store.js";
import { openLocalStore, openS3Store } from "../testing/test-stores.js";
import { copyNewestGeneration } from "./copy-newest.js";
import {
  abandonFork,
  CheckpointNotFoundError,
  checkpointMap,
  checkpointStored,
  deleteCheckpoint,
  deleteStored,
  diffMaps,
  forkCheckpoint,
  listCheckpoints,
  NothingStoredError,
  persist,
  pruneCheckpoints,
  readStoredWorkspace,
  restore,
  unifiedDiff,
} from "./sync.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

async function put(dir: string, rel: string, content: string | Buffer) {
  await mkdir(dirname(join(dir, rel)), { recursive: true });
  await writeFile(join(dir, rel), content);
}

/** rel → sha256 of every regular file stored at that state. */
async function stored(store: BlobStore, prefix: string, at?: number | { checkpoint: string }) {
  const out: Record<string, string> = {};
  for (const [rel, content] of await readStoredWorkspace(store, prefix, at)) out[rel] = sha(content);
  return out;
}

const keysUnder = async (store: BlobStore, prefix: string) =>
  (await listAll(store, prefix)).map((e) => e.key.slice(prefix.length));

function suite(name: string, open: () => Promise<{ store: BlobStore; close(): Promise<void> }>) {
  describe(`checkpoints and forks (${name})`, function () {
    this.timeout(60_000);
    let tmp: string;
    let env: Awaited<ReturnType<typeof open>>;
    let store: BlobStore;
    const prefix = "repl/alice/r1/";
    /** A working directory of a tree, with its manifest beside it. */
    const tree = (p: string, dir: string) => ({
      store,
      prefix: p,
      dir: join(tmp, dir),
      manifestPath: join(tmp, `${dir}.m.json`),
    });
    beforeEach(async () => {
      tmp = await mkdtemp(join(tmpdir(), "devex-checkpoints-"));
      env = await open();
      store = env.store;
    });
    afterEach(async () => {
      await env.close();
      await rm(tmp, { recursive: true, force: true });
    });

    it("a checkpoint brings back deleted and changed files exactly, modes and times included, after later persists collected their garbage", async () => {
      const ws = tree(prefix, "ws");
      await put(ws.dir, "src/a.ts", "export const a = 1;\n");
      await put(ws.dir, "run.sh", "#!/bin/sh\necho hi\n");
      await chmod(join(ws.dir, "run.sh"), 0o755);
      await put(ws.dir, "big.bin", Buffer.alloc(400 * 1024, 3)); // an object of its own
      await mkdir(join(ws.dir, "empty"), { recursive: true });
      const first = await persist({
        ...ws,
        keepGenerations: 1,
        checkpoint: { name: "first", message: "before the refactor" },
      });
      const id = first.checkpoint!.id;
      assert.equal(first.checkpoint!.name, "first");
      assert.equal(first.checkpoint!.files, 3);
      const before = await stored(store, prefix);
      const mtime = (await stat(join(ws.dir, "src/a.ts"))).mtimeMs;

      for (let i = 0; i < 3; i++) {
        await put(ws.dir, "src/a.ts", `export const a = ${i + 2};\n`);
        await rm(join(ws.dir, "big.bin"), { force: true });
        await rm(join(ws.dir, "empty"), { recursive: true, force: true });
        await put(ws.dir, `later${i}.txt`, "later");
        await persist({ ...ws, keepGenerations: 1 }); // keeps only the newest generation: garbage goes at once
      }
      assert.deepEqual(await stored(store, prefix, { checkpoint: id }), before);

      const back = tree(prefix, "back");
      const r = await restore({ ...back, checkpoint: id });
      assert.equal(r.generation, first.generation);
      assert.equal(await readFile(join(back.dir, "src/a.ts"), "utf8"), "export const a = 1;\n");
      assert.equal((await stat(join(back.dir, "run.sh"))).mode & 0o777, 0o755);
      assert.equal(Math.round((await stat(join(back.dir, "src/a.ts"))).mtimeMs), Math.round(mtime));
      assert.ok((await stat(join(back.dir, "empty"))).isDirectory(), "an empty directory comes back");
      assert.equal((await readFile(join(back.dir, "big.bin"))).length, 400 * 1024);
      await assert.rejects(stat(join(back.dir, "later0.txt")), { code: "ENOENT" });

      // Persisting the restored directory makes the checkpoint's state the newest again.
      const again = await persist(back);
      assert.equal(again.generation, 5);
      assert.deepEqual(await stored(store, prefix), before);
    });

    it("checkpointing an unchanged tree writes one small record and uploads nothing", async () => {
      const ws = tree(prefix, "ws");
      for (let i = 0; i < 200; i++) await put(ws.dir, `d${i % 10}/f${i}.txt`, `file ${i}\n`);
      await persist(ws);
      const before = new Set(await keysUnder(store, prefix));
      const r = await persist({ ...ws, checkpoint: { name: "same" } });
      assert.equal(r.transferred, 0);
      assert.equal(r.generation, 1, "no new generation");
      const added = (await keysUnder(store, prefix)).filter((k) => !before.has(k));
      assert.deepEqual(added, [`.devex-sync/checkpoints/${r.checkpoint!.id}.json`]);
      const size = (await listAll(store, prefix + added[0]))[0].size;
      assert.ok(size < 1024, `the record names the stored base map, not 200 files: ${size} bytes`);
    });

    it("a generation after a small change stores only the difference, and a large change a new base", async () => {
      const ws = tree(prefix, "ws");
      for (let i = 0; i < 500; i++) await put(ws.dir, `f${i}.txt`, `file ${i}\n`);
      await persist(ws);
      const sizeOf = async (key: string) => (await listAll(store, prefix + key))[0].size;
      const mapKey = (await keysUnder(store, prefix)).find((k) => k.startsWith(".devex-sync/maps/"))!;
      const full = await sizeOf(mapKey);
      await put(ws.dir, "f1.txt", "changed\n");
      await persist(ws);
      const small = await sizeOf(".devex-sync/generations/2.json");
      assert.ok(small * 20 < full, `one changed file: ${small} bytes against the base map's ${full}`);
      for (let i = 0; i < 300; i++) await put(ws.dir, `f${i}.txt`, `rewritten ${i}\n`);
      await persist(ws);
      const maps = (await keysUnder(store, prefix)).filter((k) => k.startsWith(".devex-sync/maps/"));
      assert.equal(maps.length, 2, "a new base map after 60 % changed; the first still kept by a kept generation");
      const files = await stored(store, prefix);
      assert.equal(files["f1.txt"], sha("rewritten 1\n"));
      assert.equal(files["f499.txt"], sha("file 499\n"));
      assert.deepEqual(await stored(store, prefix, 2), {
        ...files,
        ...Object.fromEntries(
          Array.from({ length: 300 }, (_, i) => [`f${i}.txt`, sha(i === 1 ? "changed\n" : `file ${i}\n`)]),
        ),
      });
    });

    it("a stopped tree is checkpointed from its index; list, delete and retention; unknown ids are NotFound", async () => {
      await assert.rejects(checkpointStored({ store, prefix }, { name: "x" }), NothingStoredError);
      const ws = tree(prefix, "ws");
      await put(ws.dir, "a.txt", "one");
      await persist(ws);
      const c1 = await checkpointStored({ store, prefix }, { name: "one", auto: "before-stop" });
      await put(ws.dir, "a.txt", "two");
      const c2 = (await persist({ ...ws, checkpoint: { name: "two" } })).checkpoint!;
      await new Promise((r) => setTimeout(r, 5));
      const c3 = await checkpointStored({ store, prefix }, { message: "three" });
      assert.deepEqual(
        (await listCheckpoints({ store, prefix })).map((c) => [c.id, c.name, c.auto, c.message]),
        [
          [c3.id, undefined, undefined, "three"],
          [c2.id, "two", undefined, undefined],
          [c1.id, "one", "before-stop", undefined],
        ],
      );
      assert.deepEqual(await stored(store, prefix, { checkpoint: c1.id }), { "a.txt": sha("one") });

      await assert.rejects(deleteCheckpoint({ store, prefix }, "000000000-00000000"), CheckpointNotFoundError);
      await assert.rejects(checkpointMap({ store, prefix }, "../index"), CheckpointNotFoundError);
      await deleteCheckpoint({ store, prefix }, c2.id);
      await assert.rejects(checkpointMap({ store, prefix }, c2.id), CheckpointNotFoundError);

      assert.deepEqual(await pruneCheckpoints({ store, prefix }, { maxCount: 1 }), [c1.id]);
      assert.deepEqual(await pruneCheckpoints({ store, prefix }, { maxAgeMs: 60_000 }), []);
      assert.deepEqual(await pruneCheckpoints({ store, prefix }, { maxAgeMs: 1000 }, Date.now() + 2000), [c3.id]);
      assert.deepEqual(await listCheckpoints({ store, prefix }), []);
    });

    it("a fork shares its parent's content, and each side's edits stay its own", async () => {
      const parent = tree(prefix, "parent");
      for (let i = 0; i < 50; i++) await put(parent.dir, `src/f${i}.ts`, `export const f${i} = ${i};\n`);
      await put(parent.dir, "model.bin", Buffer.alloc(300 * 1024, 9));
      const c = (await persist({ ...parent, checkpoint: { name: "base" } })).checkpoint!;
      const atCheckpoint = await stored(store, prefix);

      const forkPrefix = "repl/bob/r2/";
      const f = await forkCheckpoint({ store, prefix, checkpoint: c.id, to: forkPrefix });
      assert.equal(f.files, 51);
      const forkKeys = await keysUnder(store, forkPrefix);
      assert.deepEqual(forkKeys.sort(), [".devex-sync/generations/1.json", ".devex-sync/index.json"], "only metadata");
      assert.deepEqual(await stored(store, forkPrefix), atCheckpoint);
      await assert.rejects(forkCheckpoint({ store, prefix, checkpoint: c.id, to: forkPrefix }), /already holds/);

      const fork = tree(forkPrefix, "fork");
      await restore(fork);
      await put(fork.dir, "src/f1.ts", "fork's own\n");
      await rm(join(fork.dir, "model.bin"));
      await persist({ ...fork, keepGenerations: 1 });
      await put(parent.dir, "src/f2.ts", "parent's own\n");
      await rm(join(parent.dir, "src/f3.ts"));
      await persist({ ...parent, keepGenerations: 1 });

      const p = await stored(store, prefix);
      const k = await stored(store, forkPrefix);
      assert.equal(p["src/f1.ts"], atCheckpoint["src/f1.ts"]);
      assert.equal(p["src/f2.ts"], sha("parent's own\n"));
      assert.equal(p["model.bin"], atCheckpoint["model.bin"]);
      assert.equal(k["src/f1.ts"], sha("fork's own\n"));
      assert.equal(k["src/f2.ts"], atCheckpoint["src/f2.ts"]);
      assert.equal(k["src/f3.ts"], atCheckpoint["src/f3.ts"]);
      assert.equal(k["model.bin"], undefined);

      // The parent goes; the fork stays whole, and the parent's prefix keeps only what the fork uses.
      await deleteCheckpoint({ store, prefix }, c.id);
      await persist({ ...parent, keepGenerations: 1 });
      const deleted = await deleteStored({ store, prefix });
      assert.ok(deleted.lingering > 0);
      assert.deepEqual(await stored(store, forkPrefix), k);
      const lingering = await keysUnder(store, prefix);
      assert.ok(!lingering.some((key) => key.startsWith(".devex-sync/objects/")), "the fork dropped model.bin");
      assert.ok(!lingering.includes(".devex-sync/index.json"));

      // The fork persists its last borrowed file away, then goes: nothing of either is left.
      await deleteStored({ store, prefix: forkPrefix });
      assert.deepEqual(await keysUnder(store, "repl/"), []);
    });

    it("a fork of a fork borrows from both; deleting the middle one keeps the last whole", async () => {
      const a = tree("repl/a/r1/", "a");
      await put(a.dir, "from-a.txt", "a");
      const ca = (await persist({ ...a, checkpoint: {} })).checkpoint!;
      await forkCheckpoint({ store, prefix: a.prefix, checkpoint: ca.id, to: "repl/b/r2/" });
      const b = tree("repl/b/r2/", "b");
      await restore(b);
      await put(b.dir, "from-b.txt", "b");
      const cb = (await persist({ ...b, checkpoint: {} })).checkpoint!;
      await forkCheckpoint({ store, prefix: b.prefix, checkpoint: cb.id, to: "repl/c/r3/" });
      const expected = { "from-a.txt": sha("a"), "from-b.txt": sha("b") };
      assert.deepEqual(await stored(store, "repl/c/r3/"), expected);

      await deleteStored({ store, prefix: b.prefix });
      await deleteStored({ store, prefix: a.prefix });
      assert.deepEqual(await stored(store, "repl/c/r3/"), expected);
      const c = tree("repl/c/r3/", "c");
      await restore(c);
      await rm(join(c.dir, "from-a.txt"));
      await rm(join(c.dir, "from-b.txt"));
      await persist({ ...c, keepGenerations: 1 });
      await deleteStored({ store, prefix: "repl/c/r3/" });
      assert.deepEqual(await keysUnder(store, "repl/"), []);
    });

    it("an abandoned fork leaves no borrower record at any lender and nothing under its prefix", async () => {
      const a = tree(prefix, "a");
      await put(a.dir, "x.txt", "x");
      const ca = (await persist({ ...a, checkpoint: {} })).checkpoint!;
      await forkCheckpoint({ store, prefix, checkpoint: ca.id, to: "repl/b/r2/" });
      const b = tree("repl/b/r2/", "b");
      await restore(b);
      await put(b.dir, "y.txt", "y");
      const cb = (await persist({ ...b, checkpoint: {} })).checkpoint!;
      // Cut short: borrower records at both lenders, no index yet (as a fork that failed half way).
      await forkCheckpoint({ store, prefix: b.prefix, checkpoint: cb.id, to: "repl/c/r3/" });
      await store.deletePrefix("repl/c/r3/.devex-sync/index.json");
      await abandonFork({ store, prefix: b.prefix, checkpoint: cb.id, to: "repl/c/r3/" });
      assert.deepEqual(await keysUnder(store, "repl/c/"), []);
      for (const lender of [prefix, b.prefix])
        assert.ok(!(await keysUnder(store, lender)).some((k) => k.includes("repl%2Fc%2Fr3")), lender);
      await deleteStored({ store, prefix: b.prefix });
      await deleteStored({ store, prefix });
      assert.deepEqual(await keysUnder(store, "repl/"), []);
    });

    it("a template saved from a fork is its own copy", async () => {
      const a = tree(prefix, "a");
      await put(a.dir, "x.txt", "x");
      await put(a.dir, "big.bin", Buffer.alloc(300 * 1024, 1));
      const c = (await persist({ ...a, checkpoint: {} })).checkpoint!;
      await forkCheckpoint({ store, prefix, checkpoint: c.id, to: "repl/b/r2/" });
      await copyNewestGeneration(store, "repl/b/r2/", "templates/t/");
      await deleteStored({ store, prefix: "repl/b/r2/" });
      await deleteStored({ store, prefix });
      assert.deepEqual(await keysUnder(store, "repl/"), []);
      assert.deepEqual(await stored(store, "templates/t/"), {
        "x.txt": sha("x"),
        "big.bin": sha(Buffer.alloc(300 * 1024, 1)),
      });
    });

    it("diff: added, removed, changed and mode-only files by hash; unified diffs for text only", async () => {
      const ws = tree(prefix, "ws");
      await put(ws.dir, "keep.txt", "same\n");
      await put(ws.dir, "edit.txt", "one\ntwo\nthree\n");
      await put(ws.dir, "gone.txt", "bye\n");
      await put(ws.dir, "bin.dat", Buffer.from([0, 1, 2, 3]));
      await put(ws.dir, "tool.sh", "#!/bin/sh\n");
      const c1 = (await persist({ ...ws, checkpoint: {} })).checkpoint!;
      await put(ws.dir, "edit.txt", "one\n2\nthree\n");
      await rm(join(ws.dir, "gone.txt"));
      await put(ws.dir, "new.txt", "hello\n");
      await put(ws.dir, "bin.dat", Buffer.from([0, 1, 2, 4]));
      await chmod(join(ws.dir, "tool.sh"), 0o755);
      const c2 = (await persist({ ...ws, checkpoint: {} })).checkpoint!;
      const [m1, m2] = await Promise.all([
        checkpointMap({ store, prefix }, c1.id),
        checkpointMap({ store, prefix }, c2.id),
      ]);
      assert.deepEqual(
        diffMaps(m1, m2).map((c) => [c.path, c.kind]),
        [
          ["bin.dat", "changed"],
          ["edit.txt", "changed"],
          ["gone.txt", "removed"],
          ["new.txt", "added"],
          ["tool.sh", "mode"],
        ],
      );
      const patch = await unifiedDiff({ store, prefix }, m1, m2, "edit.txt");
      assert.match(patch!, /--- a\/edit\.txt/);
      assert.match(patch!, /-two\n\+2\n/);
      assert.match((await unifiedDiff({ store, prefix }, m1, m2, "new.txt"))!, /--- \/dev\/null[\s\S]*\+hello/);
      assert.equal(await unifiedDiff({ store, prefix }, m1, m2, "bin.dat"), undefined);
    });
  });
}

suite("local dir", openLocalStore);
suite("s3rver", openS3Store);
