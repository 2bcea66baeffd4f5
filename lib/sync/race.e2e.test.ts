/**
 * The attack on persist/restore from issue 12: core runs as root over a tree its user controls. A
 * separate process swaps a workspace directory with a symlink to a bait directory in a tight loop
 * (renameat2 RENAME_EXCHANGE) while persist runs over and over; the bait holds a root-only file with
 * a random marker. Zero bytes of the marker may reach any stored object or any restored tree.
 * Every fourth persist goes through a TreeWatch, whose scan must never watch the bait (the kernel's
 * fdinfo lists what is watched). Everything lives under the test's own temp dir.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalBlobStore } from "../blob/local.js";
import { createS3BlobStore } from "../blob/s3.js";
import { type BlobStore, listAll } from "../blob/store.js";
import { requireProgram } from "../testing/programs.js";
import { startS3 } from "../testing/s3.js";
import { persist, restore, TreeWatch } from "./sync.js";
import { readAll } from "./util.js";

/** Exchanges two paths as fast as it can until killed (or its parent is gone); with a third
 * argument it first (re)creates the second path as a symlink to it whenever it is missing. */
const SWAPPER = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
target = sys.argv[3] if len(sys.argv) > 3 else None
parent = os.getppid()
n = 0
while True:
    if target and not os.path.lexists(b) and not os.path.lexists(a + b".tmp"):
        try:
            os.symlink(target, b)
        except OSError:
            pass
    if libc.renameat2(-100, a, -100, b, 2) != 0 and ctypes.get_errno() in (22, 38):  # no RENAME_EXCHANGE here
        try:
            os.rename(a, a + b".tmp"); os.rename(b, a); os.rename(a + b".tmp", b)
        except OSError:
            pass  # one of them is not there (yet): a restore is creating them
    n += 1
    if n % 2000 == 0 and os.getppid() != parent:
        break
`;

/**
 * The inodes this process's inotify instances watch, from the kernel (fdinfo: `inotify wd:N ino:HEX`):
 * what a TreeWatch really watches, whatever it believes.
 */
async function watchedInodes(): Promise<Set<number>> {
  const out = new Set<number>();
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== "anon_inode:inotify") continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
    for (const m of info.matchAll(/^inotify wd:\d+ ino:([0-9a-f]+)/gm)) out.add(Number.parseInt(m[1]!, 16));
  }
  return out;
}

/** Every regular file's bytes and every symlink's target under a restored tree (nothing followed). */
async function scanTree(dir: string, out: { bytes: Buffer[]; links: Map<string, string> }, rel = "") {
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await scanTree(dir, out, r);
    else if (e.isSymbolicLink()) out.links.set(r, await readlink(join(dir, r)));
    else if (e.isFile()) out.bytes.push(await readFile(join(dir, r)));
  }
  return out;
}

function raceSuite(name: string, open_: () => Promise<{ store: BlobStore; close(): Promise<void> }>, cycles: number) {
  describe(`persist/restore under a symlink-swap race (${name})`, function () {
    this.timeout(120_000);
    let tmp: string;
    let env: Awaited<ReturnType<typeof open_>>;
    let swapper: ChildProcess | undefined;
    let python: string;
    before(function () {
      python = requireProgram(this, "python3");
    });
    beforeEach(async () => {
      tmp = await mkdtemp(join(tmpdir(), "devex-sync-race-"));
      env = await open_();
    });
    afterEach(async () => {
      if (swapper && swapper.exitCode === null && swapper.signalCode === null) {
        const exited = new Promise((r) => swapper!.once("exit", r));
        swapper.kill("SIGKILL");
        await exited;
      }
      await env.close();
      await rm(tmp, { recursive: true, force: true });
    });

    it(`${cycles} persists and several restores: no byte of a root-only bait file is stored or restored; links stay links`, async () => {
      const marker = `DEVEX-BAIT-${randomBytes(16).toString("hex")}`;
      const bait = join(tmp, "bait");
      await mkdir(join(bait, "deeper"), { recursive: true });
      for (const f of ["secret.txt", "f0.txt", "deeper/secret.txt"]) {
        await writeFile(join(bait, f), `${marker}\n`, { mode: 0o600 });
        await chmod(join(bait, f), 0o600);
      }
      const ws = join(tmp, "ws");
      for (let i = 0; i < 300; i++) {
        const d = join(ws, "src", `m${i % 6}`, `n${i % 5}`);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, `f${i}.txt`), `file ${i}\n`);
      }
      // The directory the attacker swaps, with files of the bait's names, and its swap partner.
      await mkdir(join(ws, "swap", "deeper"), { recursive: true });
      for (let i = 0; i < 20; i++) await writeFile(join(ws, "swap", `f${i}.txt`), `swap ${i}\n`);
      await writeFile(join(ws, "swap", "deeper", "secret.txt"), "not the secret\n");
      await symlink(bait, join(ws, "swaplink"));
      // Links the user made on purpose: stored as links, their targets never read.
      await symlink(join(bait, "secret.txt"), join(ws, "abs-link"));
      await symlink("src/m0/n0/f0.txt", join(ws, "rel-link"));
      // The swapped directory, reachable whatever its name is at the moment.
      const swapDir = await open(join(ws, "swap"), constants.O_RDONLY | constants.O_DIRECTORY);
      after(() => swapDir.close().catch(() => {}));

      const prefix = "repl/mallory/r1/";
      const manifestPath = join(tmp, "ws.manifest.json");
      await persist({ store: env.store, prefix, dir: ws, manifestPath });
      swapper = spawn(python, ["-c", SWAPPER, join(ws, "swap"), join(ws, "swaplink")], { stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(swapper.exitCode, null, "the swapper runs");

      const scanned = new Set<string>();
      const leaks: string[] = [];
      const failures: string[] = []; // a persist the race made fail (the old walk read by path)
      const needle = Buffer.from(marker);
      const scanStore = async () => {
        for (const { key } of await listAll(env.store, prefix)) {
          if (scanned.has(key) && !key.endsWith("index.json")) continue; // everything else is immutable
          scanned.add(key);
          const body = await env.store.get(key);
          if (body && (await readAll(body)).includes(needle)) leaks.push(key);
        }
      };
      const restores: string[] = [];
      // Every fourth persist goes through a TreeWatch (as a checkpoint's does): its scan of every
      // directory runs under the swap too, and the kernel must never hold a watch on the bait.
      const watch = new TreeWatch(ws); // its watches never keep the process alive (persistent: false)
      const baitInodes = [(await lstat(bait)).ino, (await lstat(join(bait, "deeper"))).ino];
      const watchedBait: number[] = [];
      let watchedScans = 0;
      const began = Date.now();
      let persistMs = 0;
      for (let i = 0; i < cycles; i++) {
        // Touch files so the next persist reads them again, in the swapped directory too.
        await writeFile(join(ws, "src", "m1", "n1", `f${i % 300}.txt`), `edit ${i}\n`).catch(() => {});
        await writeFile(`/proc/self/fd/${swapDir.fd}/f${i % 20}.txt`, `swap edit ${i}\n`);
        const t = Date.now();
        const watched = i % 4 === 1 ? { watch } : {};
        await persist({ store: env.store, prefix, dir: ws, manifestPath, ...watched }).catch((e) =>
          failures.push(e.message),
        );
        persistMs += Date.now() - t;
        if (i % 4 === 1) {
          const inodes = await watchedInodes();
          if (inodes.size > 0) watchedScans++;
          watchedBait.push(...baitInodes.filter((ino) => inodes.has(ino)));
        }
        await scanStore();
        if (i % Math.floor(cycles / 4) === 0) {
          const dir = join(tmp, `restored-${i}`);
          await restore({ store: env.store, prefix, dir, manifestPath: join(tmp, `restored-${i}.json`) });
          restores.push(dir);
        }
      }
      const raceMs = Date.now() - began;
      watch.close();
      const exited = new Promise((r) => swapper!.once("exit", r));
      swapper.kill("SIGKILL");
      await exited;

      const trees = [];
      for (const dir of restores) {
        const tree = await scanTree(dir, { bytes: [], links: new Map() });
        for (const b of tree.bytes) if (b.includes(needle)) leaks.push(`restored file in ${dir}`);
        trees.push(tree);
      }
      assert.deepEqual(leaks, [], `bait bytes escaped ${leaks.length} times (${failures.length} persists failed)`);
      for (const { bytes, links } of trees) {
        assert.equal(links.get("abs-link"), join(bait, "secret.txt"), "an absolute link is restored as that link");
        assert.equal(links.get("rel-link"), "src/m0/n0/f0.txt");
        assert.ok(bytes.length >= 300, `restored ${bytes.length} files`);
      }
      assert.deepEqual(failures, [], "no persist fails because of the race");
      assert.deepEqual(watchedBait, [], "a TreeWatch's scan never watched the bait through the swapped link");
      assert.ok(watchedScans >= cycles / 4 - 1, `the kernel listed the watches after ${watchedScans} scans`);

      // With the race over, the swapped directory is stored as a directory and its partner as a link.
      await persist({ store: env.store, prefix, dir: ws, manifestPath });
      const final = join(tmp, "final");
      await restore({ store: env.store, prefix, dir: final, manifestPath: join(tmp, "final.json") });
      const realName = (await lstat(join(ws, "swap"))).isDirectory() ? "swap" : "swaplink";
      const linkName = realName === "swap" ? "swaplink" : "swap";
      assert.equal(await readlink(join(final, linkName)), bait);
      assert.equal((await readdir(join(final, realName))).length, 21);
      assert.equal(await readFile(join(final, realName, "deeper", "secret.txt"), "utf8"), "not the secret\n");
      assert.ok(raceMs > 0);
      console.log(
        `      ${cycles} persists (${watchedScans} through a TreeWatch) + ${restores.length} restores raced the swapper for ${raceMs} ms (persists ${persistMs} ms)`,
      );
    });

    it("restores racing a swap of a directory they create with a link to a bait directory: nothing lands outside", async function () {
      if (name !== "local dir") this.skip(); // the writes are local; one store is enough
      const bait = join(tmp, "bait");
      await mkdir(bait);
      await writeFile(join(bait, "keep.txt"), "bait\n", { mode: 0o600 });
      const seed = join(tmp, "seed");
      for (let i = 0; i < 60; i++) {
        await mkdir(join(seed, "swap", `d${i % 3}`), { recursive: true });
        await writeFile(join(seed, "swap", `d${i % 3}`, `f${i}.txt`), `seed ${i}\n`);
        await writeFile(join(seed, "swap", `f${i}.txt`), `seed ${i}\n`);
      }
      const prefix = "repl/mallory/r2/";
      await persist({ store: env.store, prefix, dir: seed, manifestPath: join(tmp, "seed.json") });
      const ws = join(tmp, "ws");
      await mkdir(ws);
      // The attacker makes its own link to the bait while restore creates the directory.
      swapper = spawn(python, ["-c", SWAPPER, join(ws, "swap"), join(ws, "swaplink"), bait], { stdio: "ignore" });
      let refused = 0;
      for (let i = 0; i < 25; i++) {
        await restore({ store: env.store, prefix, dir: ws, manifestPath: join(tmp, "ws.json") }).catch(() => refused++);
      }
      assert.equal(swapper.exitCode, null, "the swapper ran throughout");
      assert.deepEqual(await readdir(bait), ["keep.txt"], "nothing was created in the bait directory");
      assert.equal(await readFile(join(bait, "keep.txt"), "utf8"), "bait\n");
      console.log(`      25 restores raced the swapper; ${refused} stopped at a swapped-in link`);
    });
  });
}

raceSuite(
  "local dir",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "devex-sync-race-blobs-"));
    return { store: createLocalBlobStore(dir), close: () => rm(dir, { recursive: true, force: true }) };
  },
  200,
);

raceSuite(
  "s3rver",
  async () => {
    const s3 = await startS3();
    const store = createS3BlobStore(s3.storeOptions);
    return {
      store,
      async close() {
        await store.close();
        await s3.dispose();
      },
    };
  },
  20, // the same attack through S3 requests; the 200 above make the odds
);
