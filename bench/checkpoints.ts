/**
 * Checkpoints benchmark (`npm run bench -- checkpoints [--only flat|node-modules]`): checkpoints,
 * restores and forks of lib/sync against s3rver, with `rclone copy` of the same tree to the same
 * s3rver as the baseline, for two generated workspaces (bench/lib/trees.ts): 2,000 × 2 KB, and a
 * node_modules-like tree of 300 MiB (about 17k files, a few multi-MB ones, symlinks). Per workspace:
 *
 *   rclone copy          `rclone copy --links --transfers 32 --s3-no-head` to a fresh prefix: time,
 *                        stored bytes (--s3-no-head skips a HEAD after every PUT: about twice as fast)
 *   first persist        the full upload to a fresh prefix (rounds interleaved with rclone's)
 *   after 1 % changed    10 rounds of: rewrite 1 % of the files, then persist with a checkpoint
 *   storage              after those rounds: every key under the prefix ÷ rclone's copy
 *   unchanged, running   persist with a checkpoint over an unchanged tree through a TreeWatch (no walk
 *                        while nothing changed: what a running repl's checkpoint does); beside it the
 *                        same without the watch (the whole walk), and without a checkpoint (the walk
 *                        alone), and the watch's scan of every directory
 *   unchanged, stopped   checkpointStored: metadata only
 *   restore              a checkpoint into a fresh directory
 *   fork                 forkCheckpoint into a fresh prefix
 *   floors               a stat of every entry (find, and sync node), the manifest's JSON round trip,
 *                        `cp -a` of the tree: what a walk-based checkpoint and a restore cannot beat here
 *
 * Targets (the issue): checkpoint unchanged ≤ 100 ms; fork ≤ 200 ms whatever the size; 10 checkpoints
 * each after 1 % changes store ≤ 1.2 × one copy. Writes bench/results/checkpoints.json.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createS3BlobStore } from "../lib/blob/s3.js";
import { type BlobStore, listAll } from "../lib/blob/store.js";
import { findProgram } from "../lib/kit/find-program.js";
import {
  type CheckpointSummary,
  checkpointStored,
  forkCheckpoint,
  persist,
  restore,
  TreeWatch,
} from "../lib/sync/sync.js";
import { startS3, type TestS3 } from "../lib/testing/s3.js";
import { machineCpu } from "./lib/proc-mem.js";
import { machine, median, percentile, round1 } from "./lib/stats.js";
import { planFlat, planNodeModules, Rng, rewriteShare, type Tree, writeTree } from "./lib/trees.js";

const ROUNDS = 10;
const CHANGED_SHARE = 0.01;
const TARGETS = { checkpointUnchangedMs: 100, forkMs: 200, storageRatio: 1.2 };
const RCLONE_TRANSFERS = 32;

interface Workspace {
  slug: string;
  name: string;
  seed: number;
  plan: (seed: number) => Tree;
  /** Samples per figure (the 1 %-change figure always has ROUNDS); sized to keep the bench near 8 minutes here. */
  runs: {
    rclone: number;
    firstPersists: number;
    unchanged: number;
    restores: number;
    localCopies: number;
    forks: number;
  };
}

const WORKSPACES: Workspace[] = [
  {
    slug: "flat",
    name: "2000 x 2 KB",
    seed: 2000,
    plan: planFlat,
    runs: { rclone: 3, firstPersists: 3, unchanged: 15, restores: 5, localCopies: 3, forks: 15 },
  },
  {
    slug: "node-modules",
    name: "node_modules 300 MiB",
    seed: 20261201,
    plan: (seed) => planNodeModules(seed, 300),
    runs: { rclone: 1, firstPersists: 2, unchanged: 6, restores: 3, localCopies: 1, forks: 15 },
  },
];

type Summary = { medianMs: number; p90Ms?: number; minMs: number; maxMs: number; samplesMs: number[] };

function summary(xs: number[]): Summary {
  return {
    medianMs: round1(median(xs)),
    ...(xs.length >= 5 ? { p90Ms: round1(percentile(xs, 90)) } : {}),
    minMs: round1(Math.min(...xs)),
    maxMs: round1(Math.max(...xs)),
    samplesMs: xs.map(round1),
  };
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const began = performance.now();
  const value = await f();
  return { ms: performance.now() - began, value };
}

/** Keys under a prefix by what they hold: content (packs, objects, or rclone's files) and metadata. */
async function stored(store: BlobStore, prefix: string) {
  const kinds: Record<string, number> = {};
  let bytes = 0;
  const entries = await listAll(store, prefix);
  for (const e of entries) {
    const rel = e.key.slice(prefix.length);
    const kind = rel.startsWith(".devex-sync/") ? rel.split("/")[1].replace(/\.json$/, "") : "files";
    kinds[kind] = (kinds[kind] ?? 0) + e.size;
    bytes += e.size;
  }
  const content = (kinds.files ?? 0) + (kinds.packs ?? 0) + (kinds.objects ?? 0);
  return { keys: entries.length, bytes, contentBytes: content, metadataBytes: bytes - content, bytesByKind: kinds };
}

/** rclone with its remote in environment variables only: no config file, no proxy, nothing but s3rver. */
class Rclone {
  readonly version: string;
  constructor(
    readonly path: string,
    private readonly s3: TestS3,
  ) {
    this.version = execFileSync(path, ["version"], { env: this.env() }).toString().split("\n")[0];
  }

  /** AWS_CA_BUNDLE (set on these machines) makes rclone 1.60 refuse every S3 remote, so nothing is inherited. */
  private env(): NodeJS.ProcessEnv {
    const { s3 } = this;
    return {
      PATH: process.env.PATH,
      HOME: tmpdir(),
      RCLONE_CONFIG: "/dev/null",
      RCLONE_CONFIG_BENCH_TYPE: "s3",
      RCLONE_CONFIG_BENCH_PROVIDER: "Other",
      RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
      RCLONE_CONFIG_BENCH_REGION: "us-east-1",
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKeyId,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretAccessKey,
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: "true",
      RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET: "true",
    };
  }

  args(src: string, prefix: string) {
    const tuning = ["--transfers", String(RCLONE_TRANSFERS), "--s3-no-head"];
    return ["copy", "--links", ...tuning, src, `bench:${this.s3.bucket}/${prefix}`];
  }

  copy(src: string, prefix: string): Promise<void> {
    return new Promise((resolve, reject) =>
      execFile(this.path, this.args(src, prefix), { env: this.env() }, (err, _out, stderr) =>
        err ? reject(new Error(`rclone failed: ${stderr.slice(0, 500)}`)) : resolve(),
      ),
    );
  }
}

interface Context {
  store: BlobStore;
  rclone: Rclone;
  tmp: string;
  /** Every prefix of this run starts with it. */
  root: string;
}

/** rclone's copies and the first persists, a round of each at a time, each to a fresh prefix. */
async function fullCopies(c: Context, w: Workspace, src: string, base: string) {
  const rcloneMs: number[] = [];
  const persistMs: number[] = [];
  let result: Awaited<ReturnType<typeof persist>> | undefined;
  const rclonePrefix = (i: number) => `${c.root}${w.slug}/rclone-${i}/`;
  const devexPrefix = (i: number) => `${c.root}${w.slug}/devex${i ? `-${i}` : ""}/`;
  for (let i = 0; i < Math.max(w.runs.rclone, w.runs.firstPersists); i++) {
    if (i < w.runs.rclone) rcloneMs.push((await timed(() => c.rclone.copy(src, rclonePrefix(i)))).ms);
    if (i >= w.runs.firstPersists) continue;
    const o = { store: c.store, prefix: devexPrefix(i), dir: src, manifestPath: join(base, `m-${i}.json`) };
    const p = await timed(() => persist(o));
    persistMs.push(p.ms);
    result ??= p.value;
  }
  const rcloneStored = await stored(c.store, rclonePrefix(0));
  const devexStored = await stored(c.store, devexPrefix(0));
  // Only the first of each is used from here on: the others would slow s3rver's listings down.
  for (let i = 1; i < w.runs.rclone; i++) await c.store.deletePrefix(rclonePrefix(i));
  for (let i = 1; i < w.runs.firstPersists; i++) await c.store.deletePrefix(devexPrefix(i));
  return {
    rcloneCopy: { ...summary(rcloneMs), stored: rcloneStored },
    firstPersist: { ...summary(persistMs), uploadedBytes: result!.transferredBytes, stored: devexStored },
  };
}

/** ROUNDS × (rewrite 1 % of the files, persist with a checkpoint), and what the prefix then holds. */
async function changedRounds(c: Context, w: Workspace, tree: Tree, src: string, prefix: string, manifest: string) {
  const ms: number[] = [];
  const changed: Array<{ files: number; bytes: number }> = [];
  const storedAfterRound: number[] = [];
  const checkpoints: CheckpointSummary[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    changed.push(await rewriteShare(src, tree, CHANGED_SHARE, new Rng(w.seed * 31 + round)));
    const p = await timed(() =>
      persist({ store: c.store, prefix, dir: src, manifestPath: manifest, checkpoint: { name: `round ${round}` } }),
    );
    ms.push(p.ms);
    checkpoints.push(p.value.checkpoint!);
    storedAfterRound.push((await stored(c.store, prefix)).bytes);
  }
  return { ms, changed, storedAfterRound, checkpoints };
}

/**
 * Unchanged tree, a round of each at a time: persist({checkpoint}) through a TreeWatch (what a
 * running repl's checkpoint does: no walk while nothing changed), the same without the watch (the
 * whole walk), a persist without either (the walk alone), checkpointStored (a stopped tree). Then
 * what a watch's scan of every directory costs (a watched persist after a change pays it once).
 */
async function unchangedCheckpoints(c: Context, w: Workspace, src: string, prefix: string, manifest: string) {
  const running: number[] = [];
  const walked: number[] = [];
  const walkOnly: number[] = [];
  const stopped: number[] = [];
  const o = { store: c.store, prefix, dir: src, manifestPath: manifest };
  const watch = new TreeWatch(src);
  const manifestStamp = async () => String((await stat(manifest)).mtimeMs);
  let watchedWalks = 0;
  try {
    await persist({ ...o, watch }); // the watched persist after which nothing changes: it walks and scans
    for (let i = -1; i < w.runs.unchanged; i++) {
      const before = await manifestStamp();
      const r = await timed(() => persist({ ...o, watch, checkpoint: { name: `unchanged ${i}` } }));
      if ((await manifestStamp()) !== before) watchedWalks++;
      const f = await timed(() => persist({ ...o, checkpoint: { name: `unchanged, walked ${i}` } }));
      if (f.value.transferred !== 0) throw new Error(`an unchanged persist uploaded ${f.value.transferred} files`);
      const p = await timed(() => persist(o));
      const s = await timed(() => checkpointStored({ store: c.store, prefix }, { name: `stopped ${i}` }));
      if (i < 0) continue; // the first round warms up
      running.push(r.ms);
      walked.push(f.ms);
      walkOnly.push(p.ms);
      stopped.push(s.ms);
    }
  } finally {
    watch.close();
  }
  const scans: number[] = [];
  for (let i = 0; i < 3; i++) {
    const fresh = new TreeWatch(src);
    scans.push((await timed(() => fresh.mark())).ms);
    fresh.close();
  }
  return { running, walked, walkOnly, stopped, watchedWalks, scans };
}

/** Runs a program to its end, its output discarded. */
function exec(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    spawn(cmd, args, { stdio: "ignore" }).on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`)),
    ),
  );
}

/** lstat of every entry, synchronously in this process: what any walk that checks for changes needs at least. */
function statWalk(dir: string) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    lstatSync(join(dir, e.name));
    if (e.isDirectory()) statWalk(join(dir, e.name));
  }
}

/** What the disk and CPU here allow: a stat of every entry (find; node, sync), the manifest's JSON, a local copy. */
async function floors(w: Workspace, src: string, base: string, manifest: string) {
  const find: number[] = [];
  const nodeWalk: number[] = [];
  const manifestMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    find.push((await timed(() => exec("find", [src, "-printf", "%s %T@ %C@\\n"]))).ms);
    nodeWalk.push((await timed(async () => statWalk(src))).ms);
    const copy = join(base, "manifest-copy.json");
    manifestMs.push(
      (await timed(async () => writeFile(copy, JSON.stringify(JSON.parse(await readFile(manifest, "utf8")))))).ms,
    );
  }
  const localCopy: number[] = [];
  for (let i = 0; i < w.runs.localCopies; i++) {
    const to = join(base, `cp-${i}`);
    localCopy.push((await timed(() => exec("cp", ["-a", src, to]))).ms);
    await rm(to, { recursive: true, force: true });
  }
  return {
    statWalkFind: { what: "find <tree> -printf '%s %T@ %C@\\n' (one lstat per entry, in C)", ...summary(find) },
    statWalkNodeSync: { what: "readdirSync + lstatSync of every entry in this process", ...summary(nodeWalk) },
    manifestJson: {
      what: "the manifest read, parsed, serialised and written again (persist does each once)",
      bytes: (await stat(manifest)).size,
      ...summary(manifestMs),
    },
    localCopy: {
      what: "cp -a of the tree into a fresh directory on the same disk: what a restore writes",
      ...summary(localCopy),
    },
  };
}

async function restores(c: Context, w: Workspace, base: string, prefix: string, checkpoint: CheckpointSummary) {
  const ms: number[] = [];
  for (let i = 0; i < w.runs.restores; i++) {
    const dir = join(base, `restore-${i}`);
    const r = await timed(() =>
      restore({ store: c.store, prefix, dir, manifestPath: `${dir}.m.json`, checkpoint: checkpoint.id }),
    );
    if (r.value.files !== checkpoint.files || r.value.bytes !== checkpoint.bytes)
      throw new Error(
        `restore brought ${r.value.files} files, ${r.value.bytes} B; the checkpoint has ${checkpoint.files}, ${checkpoint.bytes} B`,
      );
    ms.push(r.ms);
    await rm(dir, { recursive: true, force: true });
  }
  return ms;
}

async function forks(c: Context, w: Workspace, prefix: string, checkpoint: CheckpointSummary) {
  const ms: number[] = [];
  for (let i = -1; i < w.runs.forks; i++) {
    const to = `${c.root}${w.slug}/fork-${i + 1}/`;
    const f = await timed(() => forkCheckpoint({ store: c.store, prefix, checkpoint: checkpoint.id, to }));
    if (f.value.files !== checkpoint.files) throw new Error(`the fork holds ${f.value.files} files`);
    if (i >= 0) ms.push(f.ms);
  }
  // What one fork read and wrote: the checkpoint record; its generation and index; a borrower record here.
  const bytesUnder = async (p: string) => (await stored(c.store, p)).bytes;
  const forked = await stored(c.store, `${c.root}${w.slug}/fork-1/`);
  const borrowers = await bytesUnder(`${prefix}.devex-sync/borrowers/`);
  return {
    ms,
    metadataBytes: {
      checkpointRecordRead: await bytesUnder(`${prefix}.devex-sync/checkpoints/${checkpoint.id}.json`),
      forkGenerationAndIndexWritten: forked.bytes,
      borrowerRecordWritten: Math.round(borrowers / (w.runs.forks + 1)),
    },
  };
}

async function benchWorkspace(c: Context, w: Workspace) {
  const loadAtStart = loadavg().map(round1);
  const base = await mkdtemp(join(c.tmp, `${w.slug}-`));
  const src = join(base, "src");
  const tree = w.plan(w.seed);
  const generateMs = (await timed(() => writeTree(src, tree, w.seed))).ms;
  console.error(`${w.name}: generated ${tree.files.length} files in ${Math.round(generateMs)} ms`);
  const prefix = `${c.root}${w.slug}/devex/`;
  const manifest = join(base, "m-0.json");

  const copies = await fullCopies(c, w, src, base);
  console.error(`${w.name}: full copies done`);
  const rounds = await changedRounds(c, w, tree, src, prefix, manifest);
  const afterRounds = await stored(c.store, prefix);
  console.error(`${w.name}: ${ROUNDS} changed rounds done`);
  const unchanged = await unchangedCheckpoints(c, w, src, prefix, manifest);
  console.error(`${w.name}: unchanged checkpoints done`);
  const floor = await floors(w, src, base, manifest);
  const last = rounds.checkpoints[ROUNDS - 1];
  const restoreMs = await restores(c, w, base, prefix, last);
  const fork = await forks(c, w, prefix, last);
  await rm(base, { recursive: true, force: true });

  const oneCopy = copies.rcloneCopy.stored.bytes;
  const changedBytes = rounds.changed.reduce((n, r) => n + r.bytes, 0);
  return {
    workspace: {
      files: tree.files.length,
      symlinks: tree.links.length,
      directories: tree.dirs,
      bytes: tree.bytes,
      generated: tree.description,
      generateMs: Math.round(generateMs),
    },
    loadAverageAtStartAndEnd: [loadAtStart, loadavg().map(round1)],
    baseline: { rcloneCopy: copies.rcloneCopy },
    devex: {
      firstPersist: copies.firstPersist,
      checkpointAfter1PercentChanged: {
        what: "rewrite 1 % of the files (untimed), then persist({checkpoint}); the rounds of the storage figure",
        ...summary(rounds.ms),
        changedPerRound: rounds.changed,
      },
      checkpointUnchangedRunning: {
        what: "persist({checkpoint, watch}) over an unchanged tree: its TreeWatch saw nothing change, so no walk; the index read, a checkpoint record, the index read again",
        ...summary(unchanged.running),
        roundsThatWalked: unchanged.watchedWalks,
      },
      checkpointUnchangedRunningWalked: {
        what: "the same without a TreeWatch: the whole walk, a checkpoint record, the manifest (the figure before TreeWatch)",
        ...summary(unchanged.walked),
      },
      persistUnchangedNoCheckpoint: {
        what: "a persist without a checkpoint or a watch: what the walk and the manifest cost alone",
        ...summary(unchanged.walkOnly),
      },
      checkpointOwnMs: {
        what: "median over rounds of (walked checkpoint − the persist without one right after it): the checkpoint's own cost; noisy under load",
        ms: round1(median(unchanged.walked.map((r, i) => r - unchanged.walkOnly[i]))),
      },
      treeWatchScan: {
        what: "TreeWatch.mark() on a fresh watch: every directory opened, listed and watched (a watched persist after a change pays this before its walk)",
        ...summary(unchanged.scans),
      },
      checkpointUnchangedStopped: {
        what: "checkpointStored: the index read, a checkpoint record written",
        ...summary(unchanged.stopped),
      },
      restoreCheckpoint: {
        what: `restore({checkpoint}) of the last round's checkpoint into a fresh directory`,
        ...summary(restoreMs),
      },
      fork: {
        what: "forkCheckpoint of the last round's checkpoint into a fresh prefix",
        ...summary(fork.ms),
        metadataBytes: fork.metadataBytes,
      },
    },
    floors: floor,
    storage: {
      what: `every key under the prefix after the first persist and ${ROUNDS} rounds of (1 % changed, persist with a checkpoint)`,
      ...afterRounds,
      oneCopyBytes: oneCopy,
      ratioToOneCopy: round2(afterRounds.bytes / oneCopy),
      metadataShareOfTotal: round2(afterRounds.metadataBytes / afterRounds.bytes),
      changedBytesAllRounds: changedBytes,
      floorRatio: {
        what: "(one copy + every byte the rounds rewrote) ÷ one copy: what keeping each checkpoint's content needs at least",
        ratio: round2((oneCopy + changedBytes) / oneCopy),
      },
      storedAfterEachRoundBytes: rounds.storedAfterRound,
    },
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

type WorkspaceResult = Awaited<ReturnType<typeof benchWorkspace>>;

function targetsOf(results: Record<string, WorkspaceResult>) {
  const out = [];
  for (const [name, r] of Object.entries(results)) {
    const d = r.devex;
    const timedTargets = [
      {
        what: "checkpoint, nothing changed, running tree",
        s: d.checkpointUnchangedRunning,
        target: TARGETS.checkpointUnchangedMs,
      },
      {
        what: "checkpoint, nothing changed, stopped tree",
        s: d.checkpointUnchangedStopped,
        target: TARGETS.checkpointUnchangedMs,
      },
      { what: "fork", s: d.fork, target: TARGETS.forkMs },
    ];
    for (const t of timedTargets)
      out.push({
        workspace: name,
        what: t.what,
        targetMedianMs: t.target,
        medianMs: t.s.medianMs,
        p90Ms: t.s.p90Ms,
        met: t.s.medianMs <= t.target,
      });
    out.push({
      workspace: name,
      what: `stored after ${ROUNDS} checkpoints each after 1 % changed ÷ one copy (rclone's)`,
      targetRatio: TARGETS.storageRatio,
      ratio: r.storage.ratioToOneCopy,
      met: r.storage.ratioToOneCopy <= TARGETS.storageRatio,
    });
  }
  return out;
}

function printTable(results: Record<string, WorkspaceResult>) {
  const names = Object.keys(results);
  const ms = (x: number) => (x >= 10_000 ? `${round1(x / 1000)} s` : `${Math.round(x)} ms`);
  const cell = (s: Summary) => `${ms(s.medianMs)}${s.p90Ms === undefined ? "" : ` (p90 ${ms(s.p90Ms)})`}`;
  const rows: Array<[string, (r: WorkspaceResult) => string]> = [
    ["rclone copy (baseline)", (r) => cell(r.baseline.rcloneCopy)],
    ["first persist", (r) => cell(r.devex.firstPersist)],
    ["checkpoint after 1 % changed", (r) => cell(r.devex.checkpointAfter1PercentChanged)],
    ["checkpoint unchanged, running", (r) => cell(r.devex.checkpointUnchangedRunning)],
    ["  the same, walked (no TreeWatch)", (r) => cell(r.devex.checkpointUnchangedRunningWalked)],
    ["  TreeWatch scan", (r) => cell(r.devex.treeWatchScan)],
    ["  persist unchanged, no checkpoint", (r) => cell(r.devex.persistUnchangedNoCheckpoint)],
    ["checkpoint unchanged, stopped", (r) => cell(r.devex.checkpointUnchangedStopped)],
    ["restore checkpoint", (r) => cell(r.devex.restoreCheckpoint)],
    ["fork", (r) => cell(r.devex.fork)],
    ["floor: find (stat every entry)", (r) => cell(r.floors.statWalkFind)],
    ["floor: manifest JSON round trip", (r) => cell(r.floors.manifestJson)],
    ["floor: cp -a", (r) => cell(r.floors.localCopy)],
    ["stored ÷ one copy (10 × 1 %)", (r) => `${r.storage.ratioToOneCopy} (floor ${r.storage.floorRatio.ratio})`],
    ["  of which metadata", (r) => `${Math.round(r.storage.metadataShareOfTotal * 100)} %`],
  ];
  console.log(["".padEnd(36), ...names.map((n) => n.padEnd(28))].join(""));
  for (const [label, f] of rows)
    console.log([label.padEnd(36), ...names.map((n) => f(results[n]).padEnd(28))].join(""));
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { only: { type: "string" } } });
  const workspaces = WORKSPACES.filter((w) => !values.only || w.slug === values.only);
  const rclonePath = findProgram("rclone");
  if (!rclonePath) throw new Error("rclone is missing (scripts/install-system-deps.sh installs it)");
  const loadAtStart = loadavg().map(round1);
  const cpuAtStart = machineCpu();
  const began = performance.now();
  const s3 = await startS3("devex-bench");
  const store = createS3BlobStore(s3.storeOptions);
  const tmp = await mkdtemp(join(tmpdir(), "devex-bench-checkpoints-"));
  const rclone = new Rclone(rclonePath, s3);
  const results: Record<string, WorkspaceResult> = {};
  try {
    const c: Context = { store, rclone, tmp, root: `bench/${Date.now().toString(36)}/` };
    for (const w of workspaces) results[w.name] = await benchWorkspace(c, w);
  } finally {
    await store.close();
    await s3.dispose();
    await rm(tmp, { recursive: true, force: true });
  }
  const cpuAtEnd = machineCpu();
  const result = {
    benchmark: "checkpoints",
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      store:
        "s3rver 3.7.1 (lib/testing/s3.ts: a child process on loopback, filesystem-backed, one bucket) through createS3BlobStore, both tools against the same server in the same run",
      rclone: {
        path: rclone.path,
        version: rclone.version,
        command: `rclone ${rclone.args("<src>", "<prefix>").join(" ")}`,
        config:
          "env only (RCLONE_CONFIG=/dev/null; RCLONE_CONFIG_BENCH_*: type s3, provider Other, the endpoint, S3RVER keys, region us-east-1, force_path_style, no_check_bucket); nothing inherited, since AWS_CA_BUNDLE makes rclone 1.60 refuse S3 remotes",
        symlinks: "--links: stored as <name>.rclonelink objects",
        noHead:
          "--s3-no-head: no HEAD after each PUT (rclone's default re-reads every object), about half the time here",
      },
      method:
        "wall clock in this process around each call, one call at a time; unchanged-tree and fork figures after one unrecorded round; rclone and first persist interleaved",
      changedShare: CHANGED_SHARE,
      rounds: ROUNDS,
      totalSeconds: Math.round((performance.now() - began) / 1000),
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg().map(round1),
      machineBusyPercent: round1((100 * (cpuAtEnd.busy - cpuAtStart.busy)) / (cpuAtEnd.total - cpuAtStart.total)),
    },
    targets: targetsOf(results),
    forkBySize: {
      what: "a fork is metadata only, so its time should not follow the workspace's size; the bytes are what it moves",
      ...Object.fromEntries(
        Object.entries(results).map(([name, r]) => [
          name,
          { files: r.workspace.files, medianMs: r.devex.fork.medianMs, metadataBytes: r.devex.fork.metadataBytes },
        ]),
      ),
    },
    workspaces: results,
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/checkpoints.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  printTable(results);
  for (const t of result.targets) console.log(`${t.met ? "met    " : "MISSED "} ${t.workspace}: ${t.what}`);
  console.log("wrote bench/results/checkpoints.json");
}
