/**
 * Incremental workspace sync: a directory ⇄ a blob-store prefix (`repl/<user>/<replId>/`).
 *
 * `restore` downloads every object under the prefix into the directory and writes a manifest
 * (path → size, mtime, ctime, sha256). `persist` walks the directory, re-hashes only files whose
 * size/mtime/ctime changed since the manifest, uploads only files whose content changed, deletes the
 * objects of removed files, then writes the new manifest. A failed persist saves the progress it made
 * and throws, so the next attempt picks up what is left; nothing in the directory is touched.
 *
 * Used by the local driver in core and by the Kubernetes init/ephemeral containers (lib/sync/cli.ts).
 *
 * Concurrency: one persist or restore per directory at a time (the caller serialises); objects are
 * transferred in parallel with bounded concurrency. Per object, a failed transfer is retried with
 * exponential backoff before the whole operation fails.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, type Dirent, type Stats } from "node:fs";
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobStore, checkKey, listAll } from "../../services/core/src/blob/store.js";

export interface ManifestEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

export interface Manifest {
  version: 1;
  prefix: string;
  files: Record<string, ManifestEntry>;
}

export interface SyncProgress {
  phase: "restore" | "persist";
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface SyncOptions {
  store: BlobStore;
  /** Blob-store prefix ending in "/". */
  prefix: string;
  /** The workspace directory. */
  dir: string;
  /** Where the manifest lives; outside `dir` so users never see it. Defaults to `<dir>.manifest.json`. */
  manifestPath?: string;
  /** Objects transferred at once (default 32). */
  concurrency?: number;
  /** Attempts per object before giving up (default 4: waits 100, 400, 1600 ms between). */
  attempts?: number;
  signal?: AbortSignal;
  onProgress?: (p: SyncProgress) => void;
}

export interface SyncResult {
  files: number;
  bytes: number;
  /** Files uploaded (persist) or downloaded (restore). */
  transferred: number;
  transferredBytes: number;
  deleted: number;
  /** Files that cannot be stored under a blob key (odd names) and were left out. */
  skipped: string[];
  ms: number;
}

/** Small files are read whole, hashed and uploaded from the same buffer. */
const SMALL = 1024 * 1024;

export const manifestPathFor = (o: Pick<SyncOptions, "dir" | "manifestPath">) =>
  o.manifestPath ?? `${resolve(o.dir)}.manifest.json`;

export async function loadManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as Manifest;
    return m.version === 1 && m.files ? m : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return undefined; // a corrupt manifest only costs a full re-hash
  }
}

async function saveManifest(path: string, m: Manifest): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(m));
  await rename(tmp, path);
}

function checkPrefix(prefix: string) {
  if (!prefix.endsWith("/")) throw new Error(`sync prefix must end in "/": ${JSON.stringify(prefix)}`);
  checkKey(prefix.slice(0, -1));
}

/** Every regular file under `dir` (symlinks, sockets and the like are not part of a workspace). */
async function walk(dir: string): Promise<Map<string, Stats>> {
  const out = new Map<string, Stats>();
  const visit = async (abs: string) => {
    let entries: Dirent[];
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    await Promise.all(
      entries.map(async (e) => {
        const p = join(abs, e.name);
        if (e.isDirectory()) return visit(p);
        if (!e.isFile()) return;
        const st = await lstat(p).catch(() => undefined);
        if (st?.isFile()) out.set(relative(dir, p).split(sep).join("/"), st);
      }),
    );
  };
  await visit(dir);
  return out;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        rej(signal.reason);
      },
      { once: true },
    );
  });

async function retry<T>(attempts: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || (e as Error).name === "AbortError" || signal?.aborted) throw e;
      await sleep(100 * 4 ** (i - 1), signal);
    }
  }
}

/** Runs `fn` over items with at most `limit` at once; the first failure stops new work and is thrown after the rest settle. */
async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

function progressOf(
  phase: SyncProgress["phase"],
  filesTotal: number,
  bytesTotal: number,
  cb?: SyncOptions["onProgress"],
) {
  const p: SyncProgress = { phase, filesDone: 0, filesTotal, bytesDone: 0, bytesTotal };
  let last = 0;
  const emit = (force = false) => {
    const now = Date.now();
    if (!cb || (!force && now - last < 100)) return;
    last = now;
    cb({ ...p });
  };
  emit(true);
  return {
    add(bytes: number) {
      p.filesDone++;
      p.bytesDone += bytes;
      emit(p.filesDone === p.filesTotal);
    },
    done: () => emit(true),
  };
}

function hashingStream(hash: ReturnType<typeof createHash>) {
  return new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(
    createReadStream(path),
    hashingStream(hash),
    async (src) => {
      for await (const _ of src) {
      }
    },
    { signal },
  );
  return hash.digest("hex");
}

const entryOf = (st: Stats, sha256: string): ManifestEntry => ({
  size: st.size,
  mtimeMs: st.mtimeMs,
  ctimeMs: st.ctimeMs,
  sha256,
});

/** Downloads everything under the prefix into `dir` (which is emptied first) and writes the manifest. */
export async function restore(o: SyncOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const root = resolve(o.dir);
  const entries = (await listAll(o.store, o.prefix, o.signal)).filter((e) => e.key.length > o.prefix.length);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const total = entries.reduce((n, e) => n + e.size, 0);
  const progress = progressOf("restore", entries.length, total, o.onProgress);
  const manifest: Manifest = { version: 1, prefix: o.prefix, files: {} };
  const skipped: string[] = [];
  let bytes = 0;
  await forEachLimit(entries, o.concurrency ?? 32, async (e) => {
    const rel = e.key.slice(o.prefix.length);
    const abs = resolve(root, ...rel.split("/"));
    if (!abs.startsWith(root + sep)) {
      skipped.push(rel);
      return;
    }
    await retry(o.attempts ?? 4, o.signal, async () => {
      const body = await o.store.get(e.key, o.signal);
      if (!body) throw new Error(`object ${e.key} vanished during restore`);
      await mkdir(dirname(abs), { recursive: true });
      const hash = createHash("sha256");
      await pipeline(body, hashingStream(hash), createWriteStream(abs), { signal: o.signal });
      const st = await stat(abs);
      manifest.files[rel] = entryOf(st, hash.digest("hex"));
      bytes += st.size;
      progress.add(st.size);
    });
  });
  await saveManifest(manifestPathFor(o), manifest);
  progress.done();
  return {
    files: Object.keys(manifest.files).length,
    bytes,
    transferred: Object.keys(manifest.files).length,
    transferredBytes: bytes,
    deleted: 0,
    skipped,
    ms: Date.now() - began,
  };
}

function validKey(prefix: string, rel: string): boolean {
  try {
    checkKey(prefix + rel);
    return true;
  } catch {
    return false;
  }
}

/**
 * Uploads what changed since the manifest and deletes objects of removed files. Without a manifest
 * (never restored here) it uploads everything and deletes whatever else is under the prefix.
 */
export async function persist(o: SyncOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const root = resolve(o.dir);
  const manifestPath = manifestPathFor(o);
  const attempts = o.attempts ?? 4;
  const limit = o.concurrency ?? 32;
  const old = await loadManifest(manifestPath);
  const previous: Record<string, ManifestEntry> = old?.prefix === o.prefix ? old.files : {};
  const local = await walk(root);

  const skipped: string[] = [];
  const next: Record<string, ManifestEntry> = {};
  const changed: string[] = [];
  let bytes = 0;
  await forEachLimit([...local], limit, async ([rel, st]) => {
    if (!validKey(o.prefix, rel)) {
      skipped.push(rel);
      return;
    }
    bytes += st.size;
    const before = previous[rel];
    if (before && before.size === st.size && before.mtimeMs === st.mtimeMs && before.ctimeMs === st.ctimeMs) {
      next[rel] = before;
      return;
    }
    // Metadata changed: the content may not have (touch, a rewrite with the same bytes).
    if (before && before.size === st.size && (await hashFile(join(root, rel), o.signal)) === before.sha256) {
      next[rel] = entryOf(st, before.sha256);
      return;
    }
    changed.push(rel);
  });

  let removed = Object.keys(previous).filter((rel) => !local.has(rel));
  if (!old || old.prefix !== o.prefix) {
    const remote = await listAll(o.store, o.prefix, o.signal);
    removed = remote.map((e) => e.key.slice(o.prefix.length)).filter((rel) => rel && !local.has(rel));
  }

  // The blob store deletes by prefix: deleting "a.txt" also deletes "a.txt.bak", which is then uploaded again.
  const toUpload = new Set(changed);
  for (const gone of removed) {
    for (const rel of local.keys()) if (rel !== gone && rel.startsWith(gone) && next[rel]) toUpload.add(rel);
  }
  for (const rel of toUpload) delete next[rel];

  const uploads = [...toUpload];
  const uploadBytes = uploads.reduce((n, rel) => n + (local.get(rel)?.size ?? 0), 0);
  const progress = progressOf("persist", uploads.length + removed.length, uploadBytes, o.onProgress);
  let transferredBytes = 0;
  let deleted = 0;
  try {
    await forEachLimit(removed, limit, async (rel) => {
      await retry(attempts, o.signal, () => o.store.deletePrefix(o.prefix + rel, o.signal));
      deleted++;
      progress.add(0);
    });
    await forEachLimit(uploads, limit, async (rel) => {
      const abs = join(root, rel);
      await retry(attempts, o.signal, async () => {
        const st = await stat(abs).catch(() => undefined);
        if (!st?.isFile()) return; // removed meanwhile: the next persist deletes its object
        let sha256: string;
        if (st.size <= SMALL) {
          const body = await readFile(abs);
          sha256 = createHash("sha256").update(body).digest("hex");
          await o.store.put(o.prefix + rel, body, o.signal);
        } else {
          sha256 = await hashFile(abs, o.signal);
          await o.store.put(o.prefix + rel, createReadStream(abs), o.signal);
        }
        next[rel] = entryOf(st, sha256);
        transferredBytes += st.size;
        progress.add(st.size);
      });
    });
  } finally {
    // Saved on failure too: what was uploaded is not uploaded again, and removals not yet done stay listed.
    // Removals not all done: keep listing them (deleting again is harmless). Without an old manifest
    // they were found by listing, so save nothing and list again next time.
    const removalsDone = deleted === removed.length;
    if (!removalsDone) for (const rel of removed) if (previous[rel]) next[rel] = previous[rel];
    if (removalsDone || (old && old.prefix === o.prefix)) {
      await saveManifest(manifestPath, { version: 1, prefix: o.prefix, files: next });
    }
  }
  progress.done();
  return {
    files: local.size - skipped.length,
    bytes,
    transferred: uploads.length,
    transferredBytes,
    deleted,
    skipped,
    ms: Date.now() - began,
  };
}
