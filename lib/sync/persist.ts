/**
 * persist: uploads what changed since the last restore/persist as a new generation.
 *
 * The walk is descriptor-relative and never follows a link (walk.ts, fsat.ts): files are opened
 * with O_NOFOLLOW from their parent's descriptor, checked to be regular by fstat, and hashed and
 * uploaded from that descriptor; symlinks are stored as their target text. Files whose
 * size/mtime/ctime match the manifest are not read again. Regular files and every directory below
 * the root keep their mode bits and mtime (meta.ts), so a chmod or touch alone makes a new
 * generation, and empty directories come back.
 *
 * What is not a regular file, directory or symlink (FIFO, socket, device) is left out and listed in
 * `skipped`. Hard links are not kept as links: each path is stored as its own file (listed in
 * `hardLinked`) and comes back as a separate copy. `exclude` leaves paths out (and does not descend).
 *
 * The phases: the walk, which uploads changed files while it goes on (persist-upload.ts: small files
 * in packs, large ones as objects; packs less than half alive rewritten), then the new generation,
 * then the index, then garbage (persist-generation.ts). Every store call is retried (persist-store.ts).
 *
 * Refusals (nothing remote changes): the directory is missing (WorkspaceMissingError), or it is not
 * the directory the manifest recorded, or there is no manifest while the index lists files
 * (WorkspaceReplacedError). A failed persist throws and forgets its remote knowledge; the next one
 * re-reads the index and uploads whatever is still missing.
 */
import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { checkpointNewest, writeCheckpoint } from "./checkpoints.js";
import { WorkspaceMissingError, WorkspaceReplacedError } from "./errors.js";
import { isSwapped, openDirectory, openFileAt, readlinkAt } from "./fsat.js";
import { entryOf, identityOf, loadManifest, type ManifestEntry, manifestPathFor, saveManifest } from "./manifest.js";
import { type Meta, metaOf, sameMeta } from "./meta.js";
import { collectGarbage, stateOf, type WrittenGeneration, writeGeneration } from "./persist-generation.js";
import { PersistStore } from "./persist-store.js";
import { Uploads } from "./persist-upload.js";
import { checkPrefix, INDEX, type RemoteState, readRemote, SYNC_DIR, summarize, validKey } from "./remote.js";
import type { CheckpointRequest, GenerationInfo, PersistOptions, RemoteDir, RemoteFile, SyncResult } from "./types.js";
import { progressOf, semaphore, sha256 } from "./util.js";
import { type WalkEntry, walkTree } from "./walk.js";

/** Files up to this size are packed. */
const PACK_FILE_MAX = 256 * 1024;
/** Larger files up to this size are read, hashed and uploaded as one buffer (at most 8 at once). */
const BUFFERED_MAX = 16 * 1024 * 1024;

export async function persist(o: PersistOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const dir = resolve(o.dir);
  let root: FileHandle;
  try {
    root = await openDirectory(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new WorkspaceMissingError(dir);
    if (code === "ELOOP") throw new WorkspaceReplacedError(dir, "identity-changed");
    throw e;
  }
  try {
    const identity = identityOf(await root.stat({ bigint: true }));
    const unchanged = await persistUnchanged(o, identity);
    if (unchanged) return { ...unchanged, ms: Date.now() - began };
    const manifestPath = manifestPathFor(o);
    const old = await loadManifest(manifestPath);
    const mine = old?.prefix === o.prefix ? old : undefined;
    if (mine?.root && mine.root !== identity) throw new WorkspaceReplacedError(dir, "identity-changed");
    const remote = mine?.remote ?? (await readRemote(o, o.attempts ?? 4));
    if (!mine && !o.replaceStored && remote.indexed && Object.keys(remote.files).length > 0)
      throw new WorkspaceReplacedError(dir, "no-manifest");
    if (o.watch) o.watch.persisted = undefined;
    const mark = await o.watch?.mark();
    const run = new PersistRun(o, root.fd, remote, mine?.files ?? {});
    try {
      const result = await run.go();
      await saveManifest(manifestPath, {
        version: 3,
        prefix: o.prefix,
        root: identity,
        files: run.nextCache,
        remote: run.nextRemote,
      });
      if (o.watch && mark) {
        const { checkpoint: _, ...stored } = result;
        o.watch.persisted = { mark, prefix: o.prefix, root: identity, generation: result.generation, result: stored };
      }
      return { ...result, ms: Date.now() - began };
    } catch (err) {
      // Keep the hashes (they describe the local files), forget the remote: the next persist reads it again.
      const files = { ...mine?.files, ...run.nextCache };
      await saveManifest(manifestPath, { version: 3, prefix: o.prefix, root: identity, files }).catch(() => {});
      throw err;
    }
  } finally {
    await root.close();
  }
}

/**
 * The walk-free persist: the tree's TreeWatch saw nothing change since the last full persist through
 * it, so what that persist stored is still the tree; with `checkpoint`, that state is named, as long
 * as it is still the newest stored (otherwise, and whenever in doubt, undefined: walk).
 */
async function persistUnchanged(o: PersistOptions, identity: string): Promise<Omit<SyncResult, "ms"> | undefined> {
  const p = o.watch?.persisted;
  if (!o.watch || !p || p.prefix !== o.prefix || p.root !== identity || o.replaceStored) return undefined;
  if (resolve(o.watch.dir) !== resolve(o.dir)) throw new Error(`a TreeWatch of ${o.watch.dir} given for ${o.dir}`);
  if (!(await o.watch.unchangedSince(p.mark))) return undefined;
  const none = { ...p.result, transferred: 0, transferredBytes: 0, deleted: 0, objects: 0 };
  if (!o.checkpoint) return none;
  const checkpoint = await checkpointNewest(o, o.checkpoint, (newest) => newest.generation === p.generation);
  return checkpoint && { ...none, objects: 1, checkpoint };
}

/** One persist after its checks: the walk with uploads, repacking, the generation, garbage. */
class PersistRun {
  readonly nextCache: Record<string, ManifestEntry> = {};
  nextRemote?: RemoteState;
  private readonly next: Record<string, RemoteFile> = {};
  private readonly nextDirs: Record<string, RemoteDir> = {};
  /** Each regular file's metadata as it was when its content was read. */
  private readonly meta = new Map<string, Required<Meta>>();
  private readonly skipped: string[] = [];
  private readonly hardLinked: string[] = [];
  private readonly concurrency: number;
  private readonly progress;
  private readonly store: PersistStore;
  private readonly uploads: Uploads;
  private readonly bigFiles = semaphore(8);
  private files = 0;
  private bytes = 0;
  private linksChanged = 0;

  constructor(
    private readonly o: PersistOptions,
    private readonly rootFd: number,
    private readonly remote: RemoteState,
    private readonly cache: Record<string, ManifestEntry>,
  ) {
    this.concurrency = o.concurrency ?? 16;
    this.progress = progressOf("persist", o.onProgress);
    this.store = new PersistStore(o);
    this.uploads = new Uploads(this.store, this.concurrency, this.progress, (rel, f) => {
      this.next[rel] = this.withMeta(rel, f);
    });
  }

  async go(): Promise<Omit<SyncResult, "ms">> {
    const { o, remote, uploads } = this;
    const walk = {
      limit: 32,
      skipTop: SYNC_DIR,
      exclude: o.exclude,
      onDirectory: (rel: string, st: Stats) => this.visitDirectory(rel, st),
      signal: o.signal,
    };
    await walkTree(this.rootFd, walk, (e) => this.visit(e));
    await uploads.repack(remote, this.next);
    await uploads.flushPack();

    const next = this.next;
    const removed = Object.keys(remote.files).filter((rel) => !(rel in next));
    // A directory restored from an earlier generation differs from the newest even when unchanged.
    const rewound = (remote.base ?? remote.generation) !== remote.generation;
    const changed =
      uploads.transferred + this.linksChanged + removed.length > 0 || this.metaChanged() || !remote.indexed || rewound;
    let generation = remote.generation;
    let written: WrittenGeneration | undefined;
    if (changed) {
      generation = remote.generation + 1;
      const keep = Math.max(1, o.keepGenerations ?? 5);
      written = await writeGeneration(o, this.store, remote, { n: generation, files: next, dirs: this.nextDirs, keep });
    }
    let objects: Record<string, number> = { ...remote.objects, ...this.store.uploaded };
    delete objects[INDEX];
    if (written) objects = await collectGarbage(this.store, written, objects, this.concurrency);
    const kept = written?.kept ?? remote.generations;
    const checkpoint = o.checkpoint && (await this.checkpoint(o.checkpoint, written, kept[0]));
    this.nextRemote = {
      indexed: true,
      files: next,
      dirs: this.nextDirs,
      generation,
      generations: kept,
      objects: { ...objects, ...this.store.uploaded },
      baseRef: written?.state.base ?? remote.baseRef,
      borrows: written?.borrows ?? remote.borrows,
    };
    this.progress.done();
    return {
      files: this.files,
      bytes: this.bytes,
      transferred: uploads.transferred + this.linksChanged,
      transferredBytes: uploads.transferredBytes,
      deleted: removed.length,
      objects: this.store.objects,
      skipped: this.skipped,
      hardLinked: this.hardLinked,
      generation,
      ...(checkpoint ? { checkpoint } : {}),
    };
  }

  /** A checkpoint of the state just persisted: the new generation's record, or the newest one's again. */
  private async checkpoint(req: CheckpointRequest, written: WrittenGeneration | undefined, newest: GenerationInfo) {
    const { o, remote } = this;
    const state = written?.state ?? (await stateOf(o, this.store, remote, { files: this.next, dirs: this.nextDirs }));
    const info = summarize(newest.generation, newest.time, this.next, state.base);
    return writeCheckpoint({ ...o, attempts: this.store.attempts }, state, info, req);
  }

  /** A mode or mtime differs from the stored one (a file's, or a directory's, or a directory came or went). */
  private metaChanged(): boolean {
    const { remote, next, nextDirs } = this;
    const files = Object.entries(next).some(([rel, f]) => f.link === undefined && !sameMeta(remote.files[rel], f));
    const dirs = remote.dirs ?? {};
    const dirNames = Object.keys(nextDirs);
    return (
      files ||
      dirNames.length !== Object.keys(dirs).length ||
      dirNames.some((rel) => !sameMeta(dirs[rel], nextDirs[rel]))
    );
  }

  private visitDirectory(rel: string, st: Stats) {
    if (validKey(this.o.prefix, rel)) this.nextDirs[rel] = metaOf(st);
    else this.skipped.push(rel);
  }

  /** `f` with the metadata its file had when it was read. */
  private withMeta(rel: string, f: RemoteFile): RemoteFile {
    return { ...f, ...this.meta.get(rel) };
  }

  private unchanged(rel: string, sha: string, size: number): RemoteFile | undefined {
    const r = this.remote.files[rel];
    return r && r.link === undefined && r.sha256 === sha && r.size === size ? r : undefined;
  }

  private async visit(e: WalkEntry): Promise<void> {
    if (!validKey(this.o.prefix, e.rel)) {
      this.skipped.push(e.rel);
      return;
    }
    if (e.st.isSymbolicLink()) return this.visitLink(e);
    if (!e.st.isFile()) {
      this.skipped.push(e.rel); // a FIFO, socket or device: nothing a file could hold
      return;
    }
    if (e.st.nlink > 1) this.hardLinked.push(e.rel);
    const c = this.cache[e.rel];
    const same = c && c.size === e.st.size && c.mtimeMs === e.st.mtimeMs && c.ctimeMs === e.st.ctimeMs;
    const stored = same ? this.unchanged(e.rel, c.sha256, c.size) : undefined;
    if (stored) {
      this.meta.set(e.rel, metaOf(e.st));
      this.next[e.rel] = this.withMeta(e.rel, stored);
      this.nextCache[e.rel] = c;
      this.files++;
      this.bytes += c.size;
      return;
    }
    const opened = await openFileAt(e.dirFd, e.name).catch((err) => (isSwapped(err) ? undefined : Promise.reject(err)));
    if (!opened) return; // gone, or swapped for something that is not a regular file: the next persist sees it
    try {
      if (opened.st.size <= PACK_FILE_MAX) await this.visitSmall(e.rel, opened.fh, opened.st);
      else await this.bigFiles(() => this.visitLarge(e.rel, opened.fh, opened.st));
    } finally {
      await opened.fh.close();
    }
  }

  private async visitLink(e: WalkEntry) {
    const link = await readlinkAt(e.dirFd, e.name).catch((err) => (isSwapped(err) ? undefined : Promise.reject(err)));
    if (link === undefined) return;
    const r = this.remote.files[e.rel];
    if (r?.link !== link) this.linksChanged++;
    this.next[e.rel] = { sha256: sha256(link), size: 0, link };
    this.files++;
  }

  private counted(rel: string, st: Stats, sha: string, size: number): RemoteFile | undefined {
    this.nextCache[rel] = entryOf(st, sha);
    this.meta.set(rel, metaOf(st));
    this.files++;
    this.bytes += size;
    const stored = this.unchanged(rel, sha, size);
    if (stored) this.next[rel] = this.withMeta(rel, stored);
    else this.progress.plan(1, size);
    return stored;
  }

  private async visitSmall(rel: string, fh: FileHandle, st: Stats) {
    const content = await readSize(fh, st.size);
    if (content.length > PACK_FILE_MAX) return this.bigFiles(() => this.uploadObject(rel, st, content));
    if (this.counted(rel, st, sha256(content), content.length)) return;
    await this.uploads.addToPack(rel, content);
  }

  private async visitLarge(rel: string, fh: FileHandle, st: Stats) {
    if (st.size <= BUFFERED_MAX) return this.uploadObject(rel, st, await readSize(fh, st.size));
    // Streamed, and like readSize at most the size fstat saw (`end` is inclusive).
    const read = (signal?: AbortSignal) =>
      fh.createReadStream({ start: 0, end: st.size - 1, autoClose: false, signal });
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of read(this.o.signal)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const sha = hash.digest("hex");
    if (this.counted(rel, st, sha, size)) return;
    await this.uploads.putObject(rel, sha, size, () => read());
  }

  private async uploadObject(rel: string, st: Stats, content: Buffer) {
    const sha = sha256(content);
    if (this.counted(rel, st, sha, content.length)) return;
    await this.uploads.putObject(rel, sha, content.length, () => content);
  }
}

/**
 * At most `size` bytes (the size fstat saw) from an open file: a file the repl keeps growing while
 * root reads it cannot make core read without bound. What grew is picked up by the next persist.
 */
async function readSize(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}
