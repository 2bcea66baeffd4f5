/**
 * restore: downloads a generation (default the newest) into the directory, emptied first, and writes
 * the manifest. Everything is created relative to an open parent descriptor (fsat.ts): directories
 * with mkdir + O_NOFOLLOW open, files with O_CREAT|O_EXCL|O_NOFOLLOW, symlinks with symlink(); with
 * `owner` each of them (and the workspace directory) is chowned to it, so a privileged core can hand
 * the tree to the sandbox's uid. Nothing goes through a link that is already there.
 *
 * Metadata (meta.ts) is applied on open descriptors: each file gets its mode and then its mtime once
 * its content is written; directories, empty ones included, get theirs last and deepest first,
 * because creating an entry changes its parent's mtime (and a read-only directory must stay writable
 * until it is full). Runs of 64 KiB zero blocks are not written, so a sparse file comes back sparse;
 * files above 16 MiB are streamed, never held in memory.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { readCheckpoint } from "./checkpoints.js";
import { createFileAt, emptyDirectory, mkdirAt, type Owner, openDirectory, symlinkAt } from "./fsat.js";
import { entryOf, identityOf, type ManifestEntry, manifestPathFor, saveManifest } from "./manifest.js";
import { applyMeta } from "./meta.js";
import { checkPrefix, contentAt, readGeneration, readRemote, validKey } from "./remote.js";
import { resolveState } from "./state.js";
import type { RemoteDir, RemoteFile, RestoreOptions, SyncResult } from "./types.js";
import { forEachLimit, progressOf, readAll, retry, sha256 } from "./util.js";

/** Loose files up to this size are downloaded into memory (hashed and written in one go). */
const BUFFERED_MAX = 16 * 1024 * 1024;
/** Directory descriptors kept open for reuse while idle. */
const IDLE_DIRS = 256;

export async function restore(o: RestoreOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const dir = resolve(o.dir);
  const attempts = o.attempts ?? 4;
  const concurrency = o.concurrency ?? 16;
  const remote = await readRemote(o, attempts);
  const checkpoint = o.checkpoint === undefined ? undefined : await readCheckpoint({ ...o, attempts }, o.checkpoint);
  const generation = checkpoint?.generation ?? o.generation ?? remote.generation;
  const stored = checkpoint
    ? await resolveState(o, o.prefix, checkpoint.state, attempts)
    : await readGeneration(o, remote, generation, attempts);

  // Empty it rather than remove it: it may be a mount point (a Kubernetes volume).
  await mkdir(dir, { recursive: true });
  const root = await openDirectory(dir);
  const dirs = directories(root.fd, o.owner);
  try {
    if (o.owner) await root.chown(o.owner.uid, o.owner.gid);
    await emptyDirectory(root.fd);
    const plan = planRestore(o.prefix, stored.files, stored.dirs ?? {});
    await forEachLimit(plan.dirNames, concurrency, async (rel) => {
      await dirs.acquire(rel);
      await dirs.release(rel);
    });
    const run = new RestoreRun(o, dirs, { ...stored.files }, plan);
    await run.restorePacks();
    await run.restoreLoose();
    await run.restoreLinks();
    await applyDirectoryMeta(dirs, plan.dirNames, stored.dirs ?? {}, concurrency);

    const files = run.files;
    for (const rel of plan.skipped) delete files[rel];
    await saveManifest(manifestPathFor(o), {
      version: 3,
      prefix: o.prefix,
      root: identityOf(await root.stat({ bigint: true })),
      files: run.local,
      remote: { ...remote, files, dirs: stored.dirs, base: generation },
    });
    run.progress.done();
    const n = Object.keys(run.local).length + plan.links.length;
    return {
      files: n,
      bytes: run.bytes,
      transferred: n,
      transferredBytes: run.bytes,
      deleted: 0,
      objects: run.objects,
      skipped: plan.skipped,
      hardLinked: [],
      generation,
      ms: Date.now() - began,
    };
  } finally {
    await dirs.closeAll();
    await root.close();
  }
}

/** What a restore makes, by kind; what cannot be stored under a blob key is skipped. */
interface RestorePlan {
  skipped: string[];
  dirNames: string[];
  /** Packed files by the pack's full key. */
  byPack: Map<string, string[]>;
  /** Files stored as objects of their own. */
  loose: string[];
  links: string[];
}

function planRestore(prefix: string, files: Record<string, RemoteFile>, dirs: Record<string, RemoteDir>): RestorePlan {
  const skipped = Object.keys(dirs).filter((rel) => !validKey(prefix, rel));
  const dirNames = Object.keys(dirs).filter((rel) => validKey(prefix, rel));
  const byPack = new Map<string, string[]>();
  const loose: string[] = [];
  const links: string[] = [];
  for (const [rel, f] of Object.entries(files)) {
    if (!validKey(prefix, rel)) skipped.push(rel);
    else if (f.link !== undefined) links.push(rel);
    else if (f.pack) {
      const key = contentAt(prefix, rel, f)!;
      const rels = byPack.get(key) ?? [];
      if (!rels.length) byPack.set(key, rels);
      rels.push(rel);
    } else loose.push(rel);
  }
  return { skipped, dirNames, byPack, loose, links };
}

/** The downloads of one restore, into directories that exist: packed files, loose files, symlinks. */
class RestoreRun {
  /** The manifest entries of the files written. */
  readonly local: Record<string, ManifestEntry> = {};
  readonly progress;
  bytes = 0;
  /** Objects read: the index and the generation, then each pack and loose object. */
  objects = 2;
  private readonly attempts: number;
  private readonly concurrency: number;

  constructor(
    private readonly o: RestoreOptions,
    private readonly dirs: Directories,
    /** The generation's files; each written file's hash and size are updated to what was written. */
    readonly files: Record<string, RemoteFile>,
    private readonly plan: RestorePlan,
  ) {
    this.attempts = o.attempts ?? 4;
    this.concurrency = o.concurrency ?? 16;
    const total = Object.values(files).reduce((n, f) => n + f.size, 0);
    this.progress = progressOf("restore", o.onProgress);
    this.progress.plan(Object.keys(files).length - plan.skipped.length, total);
  }

  async restorePacks() {
    const { o, files } = this;
    await forEachLimit([...this.plan.byPack], this.concurrency, async ([pack, rels]) => {
      const body = await retry(this.attempts, o.signal, async () => {
        const b = await o.store.get(pack, o.signal);
        if (!b) throw new Error(`pack ${pack} named by the index is missing`);
        return readAll(b);
      });
      this.objects++;
      await forEachLimit(rels, 32, async (rel) => {
        const f = files[rel];
        if (f.offset === undefined) return;
        const content = body.subarray(f.offset, f.offset + f.size);
        if (sha256(content) !== f.sha256) throw new Error(`pack ${pack}: ${rel} does not match its hash`);
        await this.create(rel, writeAll(content));
      });
    });
  }

  async restoreLoose() {
    const { o, files, attempts } = this;
    await forEachLimit(this.plan.loose, this.concurrency, async (rel) => {
      const key = contentAt(o.prefix, rel, files[rel])!;
      const get = async () => {
        const body = await o.store.get(key, o.signal);
        if (!body) throw new Error(`object ${key} vanished during restore`);
        return body;
      };
      if (files[rel].size <= BUFFERED_MAX) {
        const content = await retry(attempts, o.signal, async () => readAll(await get()));
        await this.create(rel, writeAll(content));
      } else {
        await this.create(rel, (fh) => retry(attempts, o.signal, () => writeStreamed(fh, get)));
      }
      this.objects++;
    });
  }

  async restoreLinks() {
    await forEachLimit(this.plan.links, 32, async (rel) => {
      const { parent, name } = splitPath(rel);
      const fd = await this.dirs.acquire(parent);
      try {
        await symlinkAt(fd, name, this.files[rel].link!, this.o.owner);
      } finally {
        await this.dirs.release(parent);
      }
      this.progress.add(1, 0);
    });
  }

  /** Creates `rel` in its parent directory and runs `fill` on it; records its manifest entry. */
  private async create(rel: string, fill: (fh: FileHandle) => Promise<string>) {
    const { parent, name } = splitPath(rel);
    const fd = await this.dirs.acquire(parent);
    try {
      const fh = await createFileAt(fd, name, this.o.owner);
      try {
        const sha = await fill(fh);
        await applyMeta(fh.fd, this.files[rel]);
        const st = await fh.stat();
        this.local[rel] = entryOf(st, sha);
        this.files[rel] = { ...this.files[rel], sha256: sha, size: st.size };
        this.bytes += st.size;
        this.progress.add(1, st.size);
      } finally {
        await fh.close();
      }
    } finally {
      await this.dirs.release(parent);
    }
  }
}

function splitPath(rel: string): { parent: string; name: string } {
  const parts = rel.split("/");
  const name = parts.pop()!;
  return { parent: parts.join("/"), name };
}

/** A fill for `create` that writes `content` (sparse) and returns its hash. */
const writeAll = (content: Buffer) => async (fh: FileHandle) => {
  if ((await writeSparse(fh, content, 0)) < content.length) await fh.truncate(content.length);
  return sha256(content);
};

/** Writes a streamed object from the start (a retry starts over) and returns its hash. */
async function writeStreamed(fh: FileHandle, get: () => Promise<Readable>): Promise<string> {
  await fh.truncate(0);
  const hash = createHash("sha256");
  let position = 0;
  let written = 0;
  for await (const chunk of await get()) {
    hash.update(chunk as Buffer);
    const end = await writeSparse(fh, chunk as Buffer, position);
    if (end > position) written = end;
    position += (chunk as Buffer).length;
  }
  if (written < position) await fh.truncate(position);
  return hash.digest("hex");
}

/** Directory metadata, deepest first: a directory's own entries are all made (and their times set) before its time is. */
async function applyDirectoryMeta(
  dirs: Directories,
  dirNames: string[],
  storedDirs: Record<string, RemoteDir>,
  concurrency: number,
) {
  const depth = (rel: string) => rel.split("/").length;
  for (let d = dirNames.reduce((n, rel) => Math.max(n, depth(rel)), 0); d > 0; d--) {
    const level = dirNames.filter((rel) => depth(rel) === d);
    await forEachLimit(level, concurrency, async (rel) => {
      const fd = await dirs.acquire(rel);
      try {
        await applyMeta(fd, storedDirs[rel]);
      } finally {
        await dirs.release(rel);
      }
    });
  }
}

type Directories = ReturnType<typeof directories>;

/**
 * Directories below the root, created on first use and opened by descriptor, each from its parent's
 * descriptor. Reference-counted; idle ones beyond IDLE_DIRS are closed so huge trees do not run out
 * of descriptors.
 */
function directories(rootFd: number, owner?: Owner) {
  const open = new Map<string, { refs: number; handle: Promise<FileHandle> }>();
  const acquire = async (rel: string): Promise<number> => {
    if (rel === "") return rootFd;
    let e = open.get(rel);
    if (!e) {
      const cut = rel.lastIndexOf("/");
      const parent = cut < 0 ? "" : rel.slice(0, cut);
      const handle = (async () => {
        const fd = await acquire(parent);
        try {
          return await mkdirAt(fd, rel.slice(cut + 1), owner);
        } finally {
          await release(parent);
        }
      })();
      e = { refs: 0, handle };
      open.set(rel, e);
    }
    e.refs++;
    return (await e.handle).fd;
  };
  const release = async (rel: string) => {
    const e = open.get(rel);
    if (!e || --e.refs > 0 || open.size <= IDLE_DIRS) return;
    open.delete(rel);
    await (await e.handle).close();
  };
  const closeAll = async () => {
    const all = [...open.values()];
    open.clear();
    await Promise.all(all.map((e) => e.handle.then((h) => h.close()).catch(() => {})));
  };
  return { acquire, release, closeAll };
}

const BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Writes `chunk` at `position` except for its all-zero 64 KiB blocks, which stay holes; returns the
 * offset just after the last byte written (the caller extends the file to its size with truncate).
 */
async function writeSparse(fh: FileHandle, chunk: Buffer, position: number): Promise<number> {
  let end = position;
  let run = -1; // start of the current run of blocks with data
  for (let at = 0; ; at += BLOCK) {
    const block = chunk.subarray(at, at + BLOCK);
    const hole = block.length === 0 || ZEROS.subarray(0, block.length).equals(block);
    if (!hole && run < 0) run = at;
    if (hole && run >= 0) {
      await writeFully(fh, chunk.subarray(run, at), position + run);
      end = position + Math.min(at, chunk.length);
      run = -1;
    }
    if (block.length === 0) return end;
  }
}

async function writeFully(fh: FileHandle, data: Buffer, position: number) {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
