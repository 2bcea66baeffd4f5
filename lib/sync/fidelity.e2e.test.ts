/**
 * Issue 13, point 1: a workspace comes back exactly as it was left. The fidelity table
 * (fidelity-fixture.ts) through persist → restore into a fresh directory; chmod-only and touch-only
 * changes; an index from before modes and mtimes; `exclude`; a 1 GiB sparse file in bounded memory.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createLocalBlobStore } from "../blob/local.js";
import type { BlobStore } from "../blob/store.js";
import { FIDELITY_BUILD, FIDELITY_PROBE, fidelityPaths, fidelityTable, parseProbe } from "./fidelity-fixture.js";
import { readRemote } from "./remote.js";
import { persist, readStoredWorkspace, restore } from "./sync.js";
import type { RemoteFile } from "./types.js";

const bash = (script: string, cwd: string, args: string[] = []) =>
  execFileSync("bash", ["-c", script, "fidelity", ...args], { cwd, encoding: "utf8" });
const probe = (dir: string, paths = fidelityPaths()) => parseProbe(bash(FIDELITY_PROBE, dir, paths));

describe("workspace fidelity: persist → restore", function () {
  this.timeout(120_000);
  let tmp: string;
  let store: BlobStore;
  const prefix = "repl/alice/r1/";
  const manifestPath = (name: string) => join(tmp, `${name}.manifest.json`);
  const sync = (name: string) => ({ store, prefix, dir: join(tmp, name), manifestPath: manifestPath(name) });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "devex-fidelity-"));
    store = createLocalBlobStore(join(tmp, "blobs"));
  });
  afterEach(async () => {
    await store.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("every row of the fidelity table comes back (files, empty dirs, modes, mtimes, symlinks, sparse; hard links and FIFOs by rule)", async () => {
    await mkdir(join(tmp, "src"));
    bash(FIDELITY_BUILD, join(tmp, "src"));
    const before = probe(join(tmp, "src"));
    const persisted = await persist(sync("src"));
    assert.deepEqual(persisted.skipped, ["fifo"]);
    assert.deepEqual([...persisted.hardLinked].sort(), ["hard-a", "hard-b"]);

    const restored = await restore(sync("dst"));
    const table = fidelityTable("lib/sync persist → restore", before, probe(join(tmp, "dst")));
    assert.equal(table.failed, 0, "rows marked FAIL above");
    const size = 64 * 1024 * 1024;
    const allocated = async (p: string) => (await stat(p)).blocks * 512;
    if ((await allocated(join(tmp, "src/sparse.img"))) < size / 2)
      assert.ok((await allocated(join(tmp, "dst/sparse.img"))) < size / 2, "a sparse file comes back sparse");

    // A persist of the restored tree finds nothing changed: restored metadata reads back as stored.
    const again = await persist(sync("dst"));
    assert.equal(again.generation, restored.generation, "no new generation");
  });

  it("a chmod alone and a touch alone (file and directory) are each persisted as a new generation", async () => {
    const src = join(tmp, "src");
    await mkdir(join(src, "dir/sub"), { recursive: true });
    await writeFile(join(src, "run.sh"), "#!/bin/sh\n");
    await writeFile(join(src, "dir/notes.txt"), "notes\n");
    const first = await persist(sync("src"));

    await chmod(join(src, "run.sh"), 0o755);
    const chmodded = await persist(sync("src"));
    assert.equal(chmodded.generation, first.generation + 1, "chmod: new generation");
    assert.equal(chmodded.transferred, 0, "no content uploaded for a chmod");

    const old = new Date("2003-04-05T06:07:08.500Z");
    await utimes(join(src, "dir/notes.txt"), old, old);
    const touched = await persist(sync("src"));
    assert.equal(touched.generation, chmodded.generation + 1, "touch: new generation");

    const older = new Date("2002-01-01T00:00:00.000Z");
    await utimes(join(src, "dir/sub"), older, older);
    await chmod(join(src, "dir"), 0o700);
    const dirChanged = await persist(sync("src"));
    assert.equal(dirChanged.generation, touched.generation + 1, "directory touch + chmod: new generation");
    assert.equal((await persist(sync("src"))).generation, dirChanged.generation, "nothing changed: no generation");

    await restore(sync("dst"));
    const dst = join(tmp, "dst");
    assert.equal((await stat(join(dst, "run.sh"))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(dst, "dir/notes.txt"))).mtimeMs, old.getTime());
    assert.equal((await stat(join(dst, "dir/sub"))).mtimeMs, older.getTime());
    assert.equal((await stat(join(dst, "dir"))).mode & 0o7777, 0o700);
  });

  it("an index from before modes, mtimes and directories restores with default modes and the restore time", async () => {
    const src = join(tmp, "src");
    await mkdir(join(src, "bin"), { recursive: true });
    await mkdir(join(src, "empty"));
    await writeFile(join(src, "bin/tool"), "#!/bin/sh\n", { mode: 0o700 });
    await persist(sync("src"));
    // Rewrite the index and its generation as an older lib/sync wrote them: plain JSON, a full map,
    // no mode, mtimeMs, dirs.
    const remote = await readRemote({ store, prefix }, 1);
    const files: Record<string, Partial<RemoteFile>> = structuredClone(remote.files);
    for (const f of Object.values(files)) {
      assert.equal(typeof f.mode, "number", "the new format stores modes");
      delete f.mode;
      delete f.mtimeMs;
    }
    const index = { version: 2, generation: remote.generation, time: 0, files, generations: remote.generations };
    const old = Buffer.from(JSON.stringify(index));
    await store.put(`${prefix}.devex-sync/index.json`, old);
    await store.put(`${prefix}.devex-sync/generations/${index.generation}.json`, old);

    const began = Date.now();
    await restore(sync("dst"));
    const tool = await stat(join(tmp, "dst/bin/tool"));
    assert.equal(await readFile(join(tmp, "dst/bin/tool"), "utf8"), "#!/bin/sh\n");
    assert.equal(tool.mode & 0o777, 0o666 & ~process.umask(), "the default mode, as before");
    assert.ok(tool.mtimeMs >= began - 1000, "the restore time");
    await assert.rejects(stat(join(tmp, "dst/empty")), { code: "ENOENT" });
    // The next persist stores the metadata the old index lacked.
    const upgraded = await persist(sync("dst"));
    assert.equal(upgraded.generation, index.generation + 1);
  });

  it("exclude: excluded paths are neither stored nor descended into; stored ones excluded later are dropped", async () => {
    const src = join(tmp, "src");
    const put = async (rel: string, text: string) => {
      await mkdir(dirname(join(src, rel)), { recursive: true });
      await writeFile(join(src, rel), text);
    };
    await put(".bashrc", "alias ll='ls -l'\n");
    await put(".cache/pip/wheel.whl", "cached");
    await put(".npm/_cacache/index", "cached");
    await put(".npm/etc/npmrc", "kept");
    await put("project/.cache/build", "kept: only the top-level .cache is excluded");
    await put("later.log", "stored first, excluded later");
    await symlink(".bashrc", join(src, "rc-link"));
    await persist(sync("src"));
    assert.ok((await readStoredWorkspace(store, prefix)).has("later.log"));

    const asked: string[] = [];
    const excluded = new Set([".cache", ".npm/_cacache", "rc-link", "later.log"]);
    const exclude = (rel: string, kind: "dir" | "file" | "link") => {
      asked.push(`${kind} ${rel}`);
      return excluded.has(rel);
    };
    const r = await persist({ ...sync("src"), exclude });
    assert.deepEqual([...(await readStoredWorkspace(store, prefix)).keys()].sort(), [
      ".bashrc",
      ".npm/etc/npmrc",
      "project/.cache/build",
    ]);
    assert.equal(r.deleted, 4, "the four stored earlier and excluded now are dropped");
    assert.ok(asked.includes("dir .cache") && asked.includes("dir .npm/_cacache") && asked.includes("link rc-link"));
    assert.ok(asked.includes("file later.log") && asked.includes("dir project/.cache"));
    assert.ok(!asked.some((a) => a.includes(".cache/pip") || a.includes("_cacache/")), "not descended into");

    await restore(sync("dst"));
    await assert.rejects(stat(join(tmp, "dst/.cache")), { code: "ENOENT" });
    await assert.rejects(stat(join(tmp, "dst/rc-link")), { code: "ENOENT" });
  });

  // 512 MiB rather than 1 GiB: the same proof (held in memory it would need 512 MiB) in half the time.
  it("a 512 MiB sparse file round-trips byte-exact without holding it in memory", async () => {
    const size = 512 * 1024 ** 2;
    const src = join(tmp, "src");
    await mkdir(src);
    await writeFile(join(src, "huge.img"), "HEAD");
    await truncate(join(src, "huge.img"), size);
    bash(`printf TAIL | dd of=huge.img bs=1 seek=${size - 4} conv=notrunc status=none`, src);
    const sum = (dir: string) => bash("sha256sum huge.img", dir).split(" ")[0];

    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      await persist(sync("src"));
      await restore(sync("dst"));
    } finally {
      clearInterval(sampler);
    }
    assert.equal(sum(join(tmp, "dst")), sum(src));
    const grown = (peak - baseline) / 1024 ** 2;
    console.log(`    512 MiB sparse: resident memory grew by at most ${grown.toFixed(0)} MiB`);
    assert.ok(grown < 128, `memory grew by ${grown.toFixed(0)} MiB`);
  });
});
