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
 * `hardLinked`) and comes back as a separate copy. `exclude` leaves paths out (and does not descend). Small changed files go into new 8 MiB packs
 * while the walk goes on; large ones become objects. Then the new generation, then the index (readers
 * see the old or the new state), then garbage: objects no kept generation names. Packs less than half
 * alive are rewritten from the stored pack.
 *
 * Refusals (nothing remote changes): the directory is missing (WorkspaceMissingError), or it is not
 * the directory the manifest recorded, or there is no manifest while the index lists files
 * (WorkspaceReplacedError). A failed persist throws and forgets its remote knowledge; the next one
 * re-reads the index and uploads whatever is still missing.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { WorkspaceMissingError, WorkspaceReplacedError } from "./errors.js";
import { isSwapped, openDirectory, openFileAt, readlinkAt } from "./fsat.js";
import { entryOf, identityOf, loadManifest, type ManifestEntry, manifestPathFor, saveManifest } from "./manifest.js";
import { type Meta, metaOf, sameMeta } from "./meta.js";
import {
  checkPrefix,
  generationKey,
  INDEX,
  OBJECTS,
  PACKS,
  type RemoteState,
  readRemote,
  SYNC_DIR,
  summarize,
  validKey,
} from "./remote.js";
import type { GenerationInfo, PersistOptions, RemoteDir, RemoteFile, StoredIndex, SyncResult } from "./types.js";
import { forEachLimit, progressOf, readAll, retry, semaphore, sha256 } from "./util.js";
import { type WalkEntry, walkTree } from "./walk.js";

/** Files up to this size are packed. */
const PACK_FILE_MAX = 256 * 1024;
/** Larger files up to this size are read, hashed and uploaded as one buffer (at most 8 at once). */
const BUFFERED_MAX = 16 * 1024 * 1024;
/** A pack is closed at this size. */
const PACK_MAX = 8 * 1024 * 1024;

const newId = () => `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;

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
    const manifestPath = manifestPathFor(o);
    const old = await loadManifest(manifestPath);
    const mine = old?.prefix === o.prefix ? old : undefined;
    if (mine?.root && mine.root !== identity) throw new WorkspaceReplacedError(dir, "identity-changed");
    const remote = mine?.remote ?? (await readRemote(o, o.attempts ?? 4));
    if (!mine && remote.indexed && Object.keys(remote.files).length > 0)
      throw new WorkspaceReplacedError(dir, "no-manifest");
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
  private readonly uploaded: Record<string, number> = {};
  private readonly attempts: number;
  private readonly concurrency: number;
  private readonly progress;
  private readonly bigFiles = semaphore(8);
  private readonly packUploads: ReturnType<typeof semaphore>;
  private pack = { id: newId(), parts: [] as Buffer[], entries: [] as Array<[string, RemoteFile]>, size: 0 };
  private files = 0;
  private bytes = 0;
  private transferred = 0;
  private transferredBytes = 0;
  private linksChanged = 0;
  private objects = 0;

  constructor(
    private readonly o: PersistOptions,
    private readonly rootFd: number,
    private readonly remote: RemoteState,
    private readonly cache: Record<string, ManifestEntry>,
  ) {
    this.attempts = o.attempts ?? 4;
    this.concurrency = o.concurrency ?? 16;
    this.packUploads = semaphore(Math.max(1, Math.min(this.concurrency, 4)));
    this.progress = progressOf("persist", o.onProgress);
  }

  async go(): Promise<Omit<SyncResult, "ms">> {
    const { o, remote } = this;
    const walk = {
      limit: 32,
      skipTop: SYNC_DIR,
      exclude: o.exclude,
      onDirectory: (rel: string, st: Stats) => this.visitDirectory(rel, st),
      signal: o.signal,
    };
    await walkTree(this.rootFd, walk, (e) => this.visit(e));
    await this.repack();
    await this.flushPack();

    const next = this.next;
    const removed = Object.keys(remote.files).filter((rel) => !(rel in next));
    // A directory restored from an earlier generation differs from the newest even when unchanged.
    const rewound = (remote.base ?? remote.generation) !== remote.generation;
    const changed =
      this.transferred + this.linksChanged + removed.length > 0 || this.metaChanged() || !remote.indexed || rewound;
    let generation = remote.generation;
    let kept = remote.generations;
    if (changed) {
      generation = remote.generation + 1;
      kept = await this.writeGeneration(generation);
    }
    let objects: Record<string, number> = { ...remote.objects, ...this.uploaded };
    delete objects[INDEX];
    if (changed) objects = await this.collectGarbage(kept, objects);
    this.nextRemote = { indexed: true, files: next, dirs: this.nextDirs, generation, generations: kept, objects };
    this.progress.done();
    return {
      files: this.files,
      bytes: this.bytes,
      transferred: this.transferred + this.linksChanged,
      transferredBytes: this.transferredBytes,
      deleted: removed.length,
      objects: this.objects,
      skipped: this.skipped,
      hardLinked: this.hardLinked,
      generation,
    };
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
    await this.addToPack(rel, content);
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
    await this.putObject(rel, sha, size, () => read());
  }

  private async uploadObject(rel: string, st: Stats, content: Buffer) {
    const sha = sha256(content);
    if (this.counted(rel, st, sha, content.length)) return;
    await this.putObject(rel, sha, content.length, () => content);
  }

  private async putObject(rel: string, sha: string, size: number, body: () => Buffer | Readable) {
    const id = newId();
    await this.put(OBJECTS + id, body, size);
    this.next[rel] = this.withMeta(rel, { sha256: sha, size, object: id });
    this.transferred++;
    this.transferredBytes += size;
    this.progress.add(1, size);
  }

  private async put(key: string, body: () => Buffer | Readable, size: number) {
    const { o } = this;
    await retry(this.attempts, o.signal, () => o.store.put(o.prefix + key, body(), o.signal));
    this.uploaded[key] = size;
    this.objects++;
  }

  private async addToPack(rel: string, content: Buffer) {
    if (this.pack.size + content.length > PACK_MAX && this.pack.parts.length) await this.flushPack();
    const p = this.pack;
    p.entries.push([rel, { sha256: sha256(content), size: content.length, pack: p.id, offset: p.size }]);
    p.parts.push(content);
    p.size += content.length;
  }

  private async flushPack() {
    const p = this.pack;
    if (!p.parts.length) return;
    this.pack = { id: newId(), parts: [], entries: [], size: 0 };
    const body = Buffer.concat(p.parts);
    await this.packUploads(() => this.put(PACKS + p.id, () => body, body.length));
    for (const [rel, f] of p.entries) this.next[rel] = this.withMeta(rel, f);
    this.transferred += p.entries.length;
    this.transferredBytes += body.length;
    this.progress.add(p.entries.length, body.length);
  }

  /** Packs less than half alive: their live files go into a new pack, read from the stored pack. */
  private async repack() {
    const { o, remote, next } = this;
    const live = new Map<string, string[]>();
    for (const [rel, f] of Object.entries(next)) if (f.pack) live.set(f.pack, [...(live.get(f.pack) ?? []), rel]);
    const underused = [...live].filter(([pack, rels]) => {
      const size = remote.objects[PACKS + pack] ?? 0;
      return rels.reduce((n, rel) => n + next[rel].size, 0) * 2 < size;
    });
    for (const [pack, rels] of underused) {
      const body = await retry(this.attempts, o.signal, async () => {
        const b = await o.store.get(`${o.prefix}${PACKS}${pack}`, o.signal);
        if (!b) throw new Error(`pack ${pack} named by the index is missing`);
        return readAll(b);
      });
      this.objects++;
      for (const rel of rels) {
        const f = next[rel];
        const content = body.subarray(f.offset!, f.offset! + f.size);
        if (sha256(content) !== f.sha256) throw new Error(`pack ${pack}: ${rel} does not match its hash`);
        this.progress.plan(1, f.size);
        await this.addToPack(rel, content);
      }
    }
  }

  /** Writes generation `n` and then the index; returns the kept generations, newest first. */
  private async writeGeneration(n: number): Promise<GenerationInfo[]> {
    const { remote } = this;
    const time = Date.now();
    let previous = remote.generations;
    if (remote.indexed && remote.generation === 0 && !previous.length && Object.keys(remote.files).length) {
      // A version 1 index becomes generation 0, so it stays restorable like any other.
      const legacy: StoredIndex = { version: 2, generation: 0, time: 0, files: remote.files };
      await this.put(generationKey(0), () => Buffer.from(JSON.stringify(legacy)), 0);
      previous = [summarize(0, 0, remote.files)];
    }
    const keep = Math.max(1, this.o.keepGenerations ?? 5);
    const kept = [summarize(n, time, this.next), ...previous].slice(0, keep);
    const body = Buffer.from(
      JSON.stringify({
        version: 2,
        generation: n,
        time,
        files: this.next,
        dirs: this.nextDirs,
        generations: kept,
      } satisfies StoredIndex),
    );
    await this.put(generationKey(n), () => body, body.length);
    await this.put(INDEX, () => body, body.length);
    return kept;
  }

  /**
   * Deletes what no kept generation needs; returns the objects left. Deleting is by prefix, so a key
   * that starts another key ("a" vs "a.bak") is left (no index names it) rather than taking its
   * neighbours along.
   */
  private async collectGarbage(kept: GenerationInfo[], objects: Record<string, number>) {
    const { o } = this;
    const needed = new Set(kept.flatMap((g) => [...g.objects, generationKey(g.generation)]));
    // Sorted, the keys that start with a key follow it directly.
    const keys = Object.keys(objects).sort();
    const gone = keys.filter((k, i) => !needed.has(k) && !keys[i + 1]?.startsWith(k));
    await forEachLimit(gone, this.concurrency, async (key) => {
      await retry(this.attempts, o.signal, () => o.store.deletePrefix(o.prefix + key, o.signal));
      this.objects++;
    });
    const left = { ...objects };
    for (const k of gone) delete left[k];
    return left;
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
