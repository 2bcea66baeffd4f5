/**
 * The symlink-swap race against every file RPC. A separate process (swap-loop.py) exchanges the
 * workspace directory `d` with `link`, a symlink to a bait directory outside the workspace, in a
 * tight loop (renameat2 RENAME_EXCHANGE), while each file RPC runs thousands of times against paths
 * under `d`. The runner runs with the host's whole filesystem in view, so only its own confinement
 * stands between the race and the bait. Nothing outside may be created, changed, moved, copied,
 * deleted or read: the bait dir is snapshotted (names, types, sizes, inodes, mtimes, contents)
 * before and after, every response is checked for the bait marker or bait-only names, and the
 * workspace is searched for bait content afterwards. A long-lived recursive watch of "arena", where
 * a small twin of the swap leads to files the test keeps touching outside, must never report them.
 * On the code before descriptor-relative confinement this found ~3,000 escapes in one run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { isAtomicWriteTemp } from "../../../lib/contracts/atomic-write.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { connectClient, startTestRunner, type TestRunner } from "./helpers.js";

const OPS_PER_KIND = Number(process.env.RACE_OPS ?? 2000);
const WORKERS = 12;
const WATCHERS = 6;
const MARKER = `BAIT-${randomBytes(8).toString("hex")}`;
const INSIDE = "alpha\ninside\n";
const BAIT = `alpha\n${MARKER}\n`;
/** How an RPC may fail while its path is being swapped: refused or not found, never an internal error. */
const REFUSALS = [Code.PermissionDenied, Code.NotFound, Code.FailedPrecondition, Code.InvalidArgument];
const enc = (s: string) => new TextEncoder().encode(s);

type Clients = { unary: Client<typeof FileService>; watch: Client<typeof FileService> };
type Kind = "write" | "edit" | "patch" | "mkdir" | "move" | "copy" | "delete" | "list" | "stat" | "read" | "watch";

describe("runner file RPCs racing a directory swapped for a symlink", function () {
  // 22,000 RPCs against a tight swap loop: 220 and 239 s in two clean CI runs of this session, over
  // 240 s in a third (load of the longer e2e suite); the count of operations is what the test is about.
  this.timeout(480_000);
  let t: TestRunner;
  let files: Clients;
  let scratch: string;
  let outside: string;
  let swapper: ChildProcess | undefined;
  let toucher: NodeJS.Timeout | undefined;

  before(async function () {
    const python = requireProgram(this, "python3");
    // tmpfs where there is one: the thousands of fsyncs of atomic writes would otherwise dominate
    scratch = await mkdtemp(path.join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "devex-race-"));
    outside = path.join(scratch, "outside");
    await mkdir(outside);
    t = await startTestRunner({ config: { workspace: path.join(scratch, "ws") } });
    // unary calls share one HTTP/2 connection; watches, cancelled by the thousand, use HTTP/1.1
    // (Node's HTTP/2 server ends a session that resets that many streams: rapid-reset protection)
    files = { unary: h2Client(t), watch: connectClient(FileService, t.runner.url, t.token) };
    // the same names inside and outside, so a redirected operation would succeed on the bait
    await populate(path.join(t.workspace, "d"), INSIDE);
    await populate(outside, BAIT);
    await writeFile(path.join(outside, "bait-only.txt"), BAIT);
    for (let i = 0; i < 8; i++) await writeFile(path.join(outside, "w", `live-${i}`), BAIT);
    await symlink(outside, path.join(t.workspace, "link"));
    // a small twin inside a long-lived recursive watch of "arena": its link leads to the live files
    await mkdir(path.join(t.workspace, "arena", "d", "sub"), { recursive: true });
    await symlink(path.join(outside, "w"), path.join(t.workspace, "arena", "link"));
    swapper = spawn(
      python,
      [path.join(import.meta.dirname, "swap-loop.py"), t.workspace, "d", "link", "arena/d", "arena/link"],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      swapper!.stdout!.once("data", () => resolve());
      swapper!.once("exit", (code) => reject(new Error(`swap-loop.py exited with ${code}`)));
    });
  });

  after(async () => {
    clearInterval(toucher);
    if (swapper && swapper.exitCode === null) swapper.kill("SIGKILL");
    await t?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it(`lets no operation escape: ${OPS_PER_KIND} of each file RPC while d is swapped in a tight loop`, async () => {
    const before = await snapshot(outside);
    const escapes = new Map<string, string[]>(); // what escaped → examples
    const escaped = (what: string, example: string) => escapes.set(what, [...(escapes.get(what) ?? []), example]);
    const codes = new Map<string, number>();
    const unexpected: string[] = [];
    const count = (kind: Kind, code: string) => codes.set(`${kind} ${code}`, (codes.get(`${kind} ${code}`) ?? 0) + 1);
    const started = performance.now();

    const ops: Array<[Kind, number]> = [];
    const kinds: Kind[] = ["write", "edit", "patch", "mkdir", "move", "copy", "delete", "list", "stat", "read"];
    for (let i = 0; i < OPS_PER_KIND; i++) for (const k of kinds) ops.push([k, i]);
    const run = async (kind: Kind, i: number) => {
      try {
        const leak = await attempt(files, kind, i);
        if (leak) escaped(`${kind} returned bait`, leak);
        count(kind, "OK");
      } catch (e) {
        const err = ConnectError.from(e);
        count(kind, Code[err.code]);
        if (!REFUSALS.includes(err.code)) unexpected.push(`${kind}: ${Code[err.code]} ${err.rawMessage}`);
      }
    };
    let next = 0;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (next < ops.length) {
        const [kind, i] = ops[next++];
        await run(kind, i);
      }
    });
    let watchNext = 0;
    const watchers = Array.from({ length: WATCHERS }, async () => {
      while (watchNext < OPS_PER_KIND) await run("watch", watchNext++);
    });
    // activity outside that a watch redirected there would report (rewrites: the dir stays unchanged)
    let live = 0;
    const arenaWatch = watchAll(files.watch);
    toucher = setInterval(() => void writeFile(path.join(outside, "w", `live-${live++ % 8}`), BAIT), 2);
    try {
      await Promise.all([...workers, ...watchers]);
    } finally {
      clearInterval(toucher);
    }
    const arenaEvents = await arenaWatch.stop();
    const liveEvents = arenaEvents.filter((p) => p.includes("live-"));
    if (liveEvents.length > 0)
      escaped(
        "arena watch reported bait activity",
        `${liveEvents.length} events: ${liveEvents.slice(0, 3).join(", ")}`,
      );
    const seconds = (performance.now() - started) / 1000;
    swapper!.stdin!.end();
    const swaps = await new Promise<string>((resolve) => swapper!.stdout!.once("data", (d) => resolve(String(d))));
    await new Promise((r) => swapper!.once("exit", r));

    const after = await snapshot(outside);
    for (const [name, was] of before) {
      const now = after.get(name);
      if (now === undefined) escaped("outside entry deleted or moved away", name);
      else if (now !== was) escaped("outside entry changed", name);
    }
    for (const name of after.keys()) if (!before.has(name)) escaped("outside entry created", name);
    const inside = await scan(t.workspace);
    for (const name of inside.bait) escaped("bait copied or moved into the workspace", name);
    for (const name of inside.temps) escaped("temporary file left behind", name);

    const summary = [...codes].sort().map(([k, n]) => `${k}: ${n}`);
    console.log(
      `      ${OPS_PER_KIND * 11} RPCs in ${seconds.toFixed(1)} s, ${swaps.trim()} swaps; ${summary.join(", ")}`,
    );
    const found = [...escapes].map(
      ([what, examples]) => `${examples.length} × ${what} (${examples.slice(0, 3).join("; ")})`,
    );
    assert.equal(found.length, 0, `escapes:\n${found.join("\n")}`);
    assert.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} failures that are not a clean refusal`);
    for (const kind of [...kinds, "watch"]) {
      assert.ok((codes.get(`${kind} OK`) ?? 0) > OPS_PER_KIND / 10, `${kind} succeeded too rarely to mean anything`);
    }
  });
});

/** A FileService client over one HTTP/2 connection: thousands of calls, less per-call overhead. */
function h2Client(t: TestRunner): Client<typeof FileService> {
  const transport = createConnectTransport({
    baseUrl: t.runner.url,
    httpVersion: "2",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${t.token}`);
        return next(req);
      },
    ],
  });
  return createClient(FileService, transport);
}

/** The tree both sides of the swap hold, with `content` in every file. */
async function populate(dir: string, content: string): Promise<void> {
  await mkdir(path.join(dir, "w", "sub"), { recursive: true });
  for (const sub of ["new", "mk", "cp", "del", "mv"]) await mkdir(path.join(dir, sub));
  for (const name of ["f.txt", "p.txt", "ow.txt"]) await writeFile(path.join(dir, name), content);
  for (let i = 0; i < OPS_PER_KIND; i++) {
    await writeFile(path.join(dir, "del", `${i}`), content);
    await writeFile(path.join(dir, "mv", `${i}`), content);
  }
}

/**
 * One RPC of `kind` against a path under `d`; returns a description of what leaked when the
 * response shows something of the bait (throws when the RPC fails).
 */
async function attempt(clients: Clients, kind: Kind, i: number): Promise<string | undefined> {
  const files = clients.unary;
  const leaked = (s: string) => (s.includes(MARKER) || s.includes("bait-only") ? s.slice(0, 80) : undefined);
  switch (kind) {
    case "write":
      await files.writeFile({ path: i % 2 ? "d/ow.txt" : `d/new/${i}`, content: enc(INSIDE) });
      return;
    case "edit":
      return leaked((await files.editFile({ path: "d/f.txt", edits: [{ oldText: "alpha", newText: "alpha" }] })).diff);
    case "patch":
      await files.patchFile({ path: "d/p.txt", patch: "--- a/p.txt\n+++ b/p.txt\n@@ -1 +1 @@\n-alpha\n+alpha\n" });
      return;
    case "mkdir":
      await files.createDirectory(i % 2 ? { path: `d/mk/p-${i}/x`, parents: true } : { path: `d/mk/${i}` });
      return;
    case "move":
      await files.moveFile({ source: `d/mv/${i}`, destination: i % 2 ? `mv-out-${i}` : `d/mv/moved-${i}` });
      return;
    case "copy":
      await files.copyFile({ source: "d/f.txt", destination: i % 2 ? `cp-out-${i}` : `d/cp/${i}` });
      return;
    case "delete":
      await files.deleteFile({ path: `d/del/${i}` });
      return;
    case "list":
      return leaked((await files.listFiles({ path: "d" })).entries.map((e) => e.name).join(" "));
    case "stat":
      await files.statFile({ path: i % 2 ? "d/f.txt" : "d/bait-only.txt" });
      return i % 2 ? undefined : "stat of d/bait-only.txt succeeded";
    case "read": {
      const res = await files.readFile({ path: i % 2 ? "d/f.txt" : "d/bait-only.txt" });
      return leaked(new TextDecoder().decode(res.content)) ?? (i % 2 ? undefined : "read of d/bait-only.txt succeeded");
    }
    case "watch":
      return watchBriefly(clients.watch);
  }
}

/** Watches d/w recursively for a moment; returns the bait activity it reported, if any. */
async function watchBriefly(files: Client<typeof FileService>): Promise<string | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30);
  const seen: string[] = [];
  try {
    for await (const batch of files.watchFiles({ path: "d/w", recursive: true }, { signal: ac.signal })) {
      seen.push(...batch.events.map((e) => e.path));
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  const live = seen.filter((p) => p.includes("live-"));
  return live.length > 0 ? `watch reported ${live.join(", ")}` : undefined;
}

/** A recursive watch of "arena" for the length of the run: the swap happens inside it. */
function watchAll(files: Client<typeof FileService>) {
  const ac = new AbortController();
  const paths: string[] = [];
  const done = (async () => {
    try {
      for await (const batch of files.watchFiles({ path: "arena", recursive: true }, { signal: ac.signal })) {
        paths.push(...batch.events.map((e) => e.path));
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
  })();
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200)); // the last batches
      ac.abort();
      await done;
      assert.ok(paths.length > 0, "the arena watch saw the swaps");
      return paths;
    },
  };
}

/** name → type, size, inode, mtime and content hash of everything under `dir` (links not followed). */
async function snapshot(dir: string, rel = "", out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const name of await readdir(path.join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (r.startsWith("w/live-")) continue; // the test's own activity for the watches
    const p = path.join(dir, r);
    const st = await lstat(p, { bigint: true });
    const content = st.isFile() ? await readFile(p) : st.isSymbolicLink() ? await readlink(p) : "";
    const hash = createHash("sha256").update(content).digest("hex").slice(0, 12);
    out.set(r, `${st.mode.toString(8)} ${st.size} ${st.ino} ${st.mtimeNs} ${hash}`);
    if (st.isDirectory()) await snapshot(dir, r, out);
  }
  return out;
}

/** Workspace files holding the bait marker, and atomic-write temp files left over (links not followed). */
async function scan(dir: string, rel = "", found = { bait: [] as string[], temps: [] as string[] }) {
  for (const name of await readdir(path.join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(dir, r));
    if (isAtomicWriteTemp(name)) found.temps.push(r);
    if (st.isDirectory()) await scan(dir, r, found);
    else if (st.isFile() && (await readFile(path.join(dir, r), "utf8")).includes(MARKER)) found.bait.push(r);
  }
  return found;
}
