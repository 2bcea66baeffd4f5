/**
 * TreeWatch: persist skips its walk only when nothing changed, and what it stores is always the
 * tree. Every check restores what was stored (or checkpointed) into a fresh directory and compares
 * it with the tree, entry by entry; "skipped" is seen from outside: the manifest was not rewritten.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import {
  appendFile,
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../blob/store.js";
import { openLocalStore, type TestStore } from "../testing/test-stores.js";
import { persist, readStoredWorkspace, restore, type SyncResult, TreeWatch } from "./sync.js";

/** path → what a restore must bring back: kind, content hash or link target, mode; files' mtimes. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = await lstat(join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        await visit(r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${await readlink(join(dir, r))}`);
      else {
        const sha = createHash("sha256")
          .update(await readFile(join(dir, r)))
          .digest("hex");
        out.set(r, `file ${mode} ${Math.round(st.mtimeMs)} ${sha}`);
      }
    }
  };
  await visit("");
  return out;
}

describe("TreeWatch: persists that skip the walk of an unchanged tree", function () {
  this.timeout(120_000);
  let tmp: string;
  let env: TestStore;
  let store: BlobStore;
  let ws: string;
  let watch: TreeWatch;
  const prefix = "repl/alice/r1/";
  let restores = 0;

  const manifestPath = () => join(tmp, "ws.manifest.json");
  const save = (checkpoint?: string) =>
    persist({
      store,
      prefix,
      dir: ws,
      manifestPath: manifestPath(),
      watch,
      checkpoint: checkpoint ? { name: checkpoint } : undefined,
    });
  const manifestStamp = async () => {
    const st = await lstat(manifestPath());
    return `${st.ino}:${st.mtimeMs}`;
  };
  /** Persists; says whether the walk ran (the manifest is rewritten only by a walk). */
  async function saveAndTell(checkpoint?: string): Promise<{ r: SyncResult; walked: boolean }> {
    const before = await manifestStamp().catch(() => "none");
    const r = await save(checkpoint);
    return { r, walked: (await manifestStamp()) !== before };
  }
  /** The stored newest state (or a checkpoint) equals the tree. */
  async function assertStoredIsTree(checkpoint?: string, what = "the stored state") {
    const out = join(tmp, `restored-${restores++}`);
    await restore({ store, prefix, dir: out, manifestPath: `${out}.m.json`, ...(checkpoint ? { checkpoint } : {}) });
    assert.deepEqual(await snapshot(out), await snapshot(ws), `${what} is not the tree`);
  }

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "devex-tree-watch-"));
    env = await openLocalStore();
    store = env.store;
    ws = join(tmp, "ws");
    await mkdir(join(ws, "src/lib"), { recursive: true });
    await writeFile(join(ws, "src/lib/a.txt"), "a");
    await writeFile(join(ws, "README.md"), "hello");
    watch = new TreeWatch(ws);
  });
  afterEach(async () => {
    watch.close();
    await env.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("skips the walk while nothing changes, and names the stored state for a checkpoint", async () => {
    assert.equal((await saveAndTell()).walked, true, "the first persist walks");
    const again = await saveAndTell("nothing changed");
    assert.equal(again.walked, false, "an unchanged tree is not walked");
    assert.equal(again.r.transferred, 0);
    assert.equal(again.r.files, 2);
    assert.ok(again.r.checkpoint, "the checkpoint is written");
    assert.equal(again.r.checkpoint.generation, again.r.generation);
    await assertStoredIsTree(again.r.checkpoint.id, "the walk-free checkpoint");
  });

  /** Every kind of change a user makes, each made after a walk-free persist, must make the next one walk. */
  const changes: Array<[string, (ws: string, outside: string) => Promise<unknown>]> = [
    ["a write of the same size", (w) => writeFile(join(w, "src/lib/a.txt"), "b")],
    ["an append", (w) => appendFile(join(w, "README.md"), "!")],
    [
      "a new file deep in a new directory",
      (w) => mkdir(join(w, "n/e/w"), { recursive: true }).then(() => writeFile(join(w, "n/e/w/f"), "x")),
    ],
    ["a file written in a directory made by the change before", (w) => writeFile(join(w, "n/e/w/g"), "y")],
    ["a chmod", (w) => chmod(join(w, "README.md"), 0o600)],
    [
      "an mtime set back (touch -d)",
      (w) => utimes(join(w, "README.md"), new Date(1_000_000_000_000), new Date(1_000_000_000_000)),
    ],
    ["a rename", (w) => rename(join(w, "README.md"), join(w, "src/README.md"))],
    ["a directory renamed", (w) => rename(join(w, "n"), join(w, "m"))],
    ["a file written in the renamed directory", (w) => writeFile(join(w, "m/e/w/f"), "changed")],
    [
      "a directory moved in from outside the tree",
      async (w, o) => {
        await mkdir(join(o, "moved/deep"), { recursive: true });
        await writeFile(join(o, "moved/deep/x"), "1");
        await rename(join(o, "moved"), join(w, "moved"));
      },
    ],
    ["a file written in the moved-in directory", (w) => writeFile(join(w, "moved/deep/x"), "2")],
    ["a symlink", (w) => symlink("src/lib/a.txt", join(w, "link"))],
    ["a symlink retargeted", (w) => rm(join(w, "link")).then(() => symlink("README.nope", join(w, "link")))],
    ["a hard link", (w) => link(join(w, "src/lib/a.txt"), join(w, "hard"))],
    ["an empty directory", (w) => mkdir(join(w, "empty"))],
    ["a deletion", (w) => rm(join(w, "src/lib/a.txt"))],
    [
      "a directory deleted and another made in its place",
      async (w) => {
        await rm(join(w, "m"), { recursive: true });
        await mkdir(join(w, "m2/sub"), { recursive: true });
        await writeFile(join(w, "m2/sub/z"), "z");
      },
    ],
    ["a file written in that directory", (w) => writeFile(join(w, "m2/sub/z"), "zz")],
  ];

  it("walks again after every kind of change, and stores it exactly", async () => {
    const outside = join(tmp, "outside");
    await mkdir(outside);
    await save();
    for (const [what, change] of changes) {
      assert.equal((await saveAndTell()).walked, false, `before ${what}: nothing had changed`);
      await change(ws, outside);
      const { r, walked } = await saveAndTell(what);
      assert.equal(walked, true, `${what}: the persist after it walked`);
      await assertStoredIsTree(r.checkpoint!.id, `after ${what}`);
    }
  });

  it("directories made at any step of the scan are seen, and what is written into them later", async () => {
    const parents = Array.from({ length: 20 }, (_, i) => `pre/p${i}`);
    for (const p of parents) await mkdir(join(ws, p, "q"), { recursive: true });
    await save();
    // How many turns of the event loop a dirty persist takes here: the steps cover all of them.
    await appendFile(join(ws, "README.md"), ".");
    let turns = 0;
    let done = false;
    const timing = save().finally(() => {
      done = true;
    });
    while (!done) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    await timing;
    const steps = Array.from({ length: 25 }, (_, i) => Math.round((i * turns) / 24));
    for (const step of steps) {
      await appendFile(join(ws, "README.md"), "."); // dirty: the next persist scans, then walks
      const racing = save();
      for (let k = 0; k < step; k++) await new Promise((r) => setImmediate(r));
      // In every parent at this step of the scan (or the walk): some are listed by then, some not.
      for (const p of parents) mkdirSync(join(ws, p, `new${step}`));
      await racing;
      for (const p of parents) writeFileSync(join(ws, p, `new${step}`, "f"), String(step));
      await save();
      const stored = await readStoredWorkspace(store, prefix);
      for (const p of parents)
        assert.equal(
          stored.get(`${p}/new${step}/f`)?.toString(),
          String(step),
          `${p}/new${step}, made at step ${step}`,
        );
      for (const p of parents) await rm(join(ws, p, `new${step}`), { recursive: true });
    }
    assert.ok(turns >= 10, `a dirty persist took ${turns} turns`);
  });

  it("never watches through a directory swapped for a symlink to outside the tree", async () => {
    const outside = join(tmp, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "s");
    await rm(join(ws, "src"), { recursive: true });
    await symlink(outside, join(ws, "src"));
    await save();
    assert.equal((await saveAndTell()).walked, false);
    await writeFile(join(outside, "secret"), "changed outside");
    await mkdir(join(outside, "more"));
    assert.equal((await saveAndTell()).walked, false, "changes outside the tree, behind a symlink, are not the tree's");
    await assertStoredIsTree();
  });

  /** After a persist of the tree, runs `flood` with another watched tree and the inotify queue's size. */
  async function withAnotherTree(flood: (other: string, queueSize: number) => Promise<void>) {
    await save();
    const other = join(tmp, "other");
    await mkdir(other);
    const otherWatch = new TreeWatch(other);
    try {
      await otherWatch.mark();
      await flood(other, Number.parseInt(await readFile("/proc/sys/fs/inotify/max_queued_events", "utf8"), 10));
    } finally {
      otherWatch.close();
    }
  }

  it("does not trust a mark once enough events arrived anywhere to have filled the inotify queue", () =>
    withAnotherTree(async (other, queueSize) => {
      // Alternating names: the kernel merges an event only with an identical one just before it.
      for (let i = 0; i < queueSize / 2 + 100; i++) await appendFile(join(other, `f${i % 2}`), "x");
      assert.equal((await saveAndTell()).walked, true, "an unchanged tree is walked after a flood elsewhere");
      assert.equal((await saveAndTell()).walked, false, "and is trusted again from that walk on");
    }));

  it("after a real queue overflow, a directory whose creation was dropped is watched from the next walk on", () =>
    withAnotherTree(async (other, queueSize) => {
      // This process's event loop is blocked while another program floods the other tree past the
      // queue's end, then makes a directory here: the kernel drops that event.
      const flood = `const fs = require("node:fs"), p = require("node:path"); const [o, w, n] = process.argv.slice(1);
        for (let i = 0; i < Number(n); i++) fs.appendFileSync(p.join(o, "f" + (i % 2)), "x");
        fs.mkdirSync(p.join(w, "N")); fs.writeFileSync(p.join(w, "N", "f"), "v1");`;
      execFileSync(process.execPath, ["-e", flood, other, ws, String(queueSize + 2000)]);
      assert.equal((await saveAndTell()).walked, true, "the persist after an overflow walks");
      await writeFile(join(ws, "N/f"), "v2");
      const { walked, r } = await saveAndTell("after the overflow");
      assert.equal(walked, true, "a write in the directory whose creation was dropped is seen");
      await assertStoredIsTree(r.checkpoint!.id, "after the overflow");
    }));

  it("a closed watch, or one given with another prefix, never skips", async () => {
    await save();
    await persist({ store, prefix: "repl/alice/r2/", dir: ws, manifestPath: join(tmp, "r2.json"), watch });
    assert.equal((await readStoredWorkspace(store, "repl/alice/r2/")).size, 2, "stored under the other prefix");
    await save();
    watch.close();
    assert.equal((await saveAndTell()).walked, true);
  });

  describe("under a writer that never pauses", () => {
    let writer: ChildProcess | undefined;
    afterEach(() => writer?.kill("SIGKILL"));

    // Plain node (no tsx): random mutations as fast as it can, in directories it keeps making,
    // renaming and deleting, until told to stop; it exits once its last change has returned.
    const WRITER = `
      const fs = require("node:fs"), path = require("node:path");
      const root = process.argv[1];
      let seed = Number(process.argv[2]), stop = false, n = seed * 1e6;
      const rnd = (k) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k; };
      const dirs = [""];
      process.stdin.on("data", () => { stop = true; });
      function step() {
        const d = dirs[rnd(dirs.length)], at = (x) => path.join(root, d, x);
        try {
          switch (rnd(8)) {
            case 0: { if (dirs.length > 40) break; const nd = path.join(d, "d" + n++); fs.mkdirSync(path.join(root, nd)); dirs.push(nd); break; }
            case 1: case 2: case 3: fs.writeFileSync(at("f" + rnd(6)), String(n++)); break;
            case 4: fs.rmSync(at("f" + rnd(6)), { force: true }); break;
            case 5: fs.chmodSync(at("f" + rnd(6)), rnd(2) ? 0o644 : 0o600); break;
            case 6: { if (!d) break; const to = path.join(path.dirname(d), "r" + n++); fs.renameSync(path.join(root, d), path.join(root, to));
                      for (let i = 0; i < dirs.length; i++) if (dirs[i] === d || dirs[i].startsWith(d + "/")) dirs[i] = to + dirs[i].slice(d.length); break; }
            case 7: { if (!d || rnd(4)) break; fs.rmSync(path.join(root, d), { recursive: true, force: true });
                      for (let i = dirs.length - 1; i >= 0; i--) if (dirs[i] === d || dirs[i].startsWith(d + "/")) dirs.splice(i, 1); break; }
          }
        } catch (e) { if (e.code !== "ENOENT") throw e; }
      }
      (function loop() { if (stop) process.exit(0); for (let i = 0; i < 20; i++) step(); setImmediate(loop); })();
    `;

    it("what a persist after the writer stops stores is the tree, walked or not (5 rounds)", async () => {
      await save();
      let skipped = 0;
      for (let round = 0; round < 5; round++) {
        writer = spawn(process.execPath, ["-e", WRITER, ws, String(round + 1)], {
          stdio: ["pipe", "ignore", "inherit"],
        });
        let persists = 0;
        const until = Date.now() + 1500;
        while (Date.now() < until) {
          await save(persists % 3 === 0 ? `racing ${round}.${persists}` : undefined);
          persists++;
        }
        const exited = once(writer, "exit");
        writer.stdin!.write("stop\n");
        const [code] = await exited;
        assert.equal(code, 0, "the writer ran until told to stop");
        writer = undefined;
        assert.ok(persists >= 2, `persists raced the writer (${persists})`);
        // The writer's last changes may have come during the walk of the last racing persist.
        const first = await saveAndTell(`after ${round}`);
        await assertStoredIsTree(first.r.checkpoint!.id, `round ${round}, the first persist after the writer`);
        const second = await saveAndTell(`after ${round}, again`);
        if (!second.walked) skipped++;
        await assertStoredIsTree(second.r.checkpoint!.id, `round ${round}, the second persist after the writer`);
        // And the watch still sees into directories the writer made while it raced.
        const deepest = (await snapshot(ws)).entries();
        const dir = [...deepest]
          .filter(([, v]) => v.startsWith("dir"))
          .map(([k]) => k)
          .sort((a, b) => b.split("/").length - a.split("/").length)[0];
        if (dir) {
          await writeFile(join(ws, dir, "late"), `late ${round}`);
          const late = await saveAndTell(`late ${round}`);
          assert.equal(late.walked, true, `a write in ${dir}, made during the race, is seen`);
          await assertStoredIsTree(late.r.checkpoint!.id, `round ${round}, a late write in ${dir}`);
        }
      }
      assert.ok(skipped >= 4, `a quiet tree after the race is not walked twice (skipped ${skipped} of 5)`);
    });
  });
});
