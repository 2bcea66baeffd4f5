/**
 * Incremental workspace sync: a directory ⇄ a blob-store prefix (`repl/<user>/<replId>/`).
 *
 * Remote layout under the prefix:
 *   <rel>                       files above 256 KiB, one object each ("loose"), and files copied in
 *                               by CreateRepl from a template (before the first persist)
 *   .devex-sync/packs/<id>      small files concatenated, up to 8 MiB per pack: a 2,000-file
 *                               workspace is a handful of requests instead of 2,000
 *   .devex-sync/index.json      the authoritative list: rel → sha256, size, and pack + offset for
 *                               packed files. Written after every object it names, so a reader sees
 *                               the old or the new state, never a mix. Without an index (a repl
 *                               fresh from its template) every loose object is a file.
 *
 * `restore` downloads into the directory (emptied first) and writes a local manifest: per file its
 * size/mtime/ctime/sha256 (so the next persist re-hashes only what changed) and the remote state.
 * `persist` uploads only files whose content changed, packing the small ones into a new pack,
 * rewrites the index, then deletes what the new index no longer needs (removed loose objects,
 * packs without live files). Packs less than half alive are repacked. Nothing in the directory is
 * touched. A failed persist throws and forgets its remote knowledge; the next one re-reads the index
 * and uploads whatever is still missing.
 *
 * Concurrency: one persist or restore per directory at a time (the caller serialises); objects are
 * transferred in parallel with bounded concurrency, each retried with exponential backoff.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, type Dirent, type Stats } from "node:fs";
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobStore, checkKey, listAll } from "../../services/core/src/blob/store.js";

export interface ManifestEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

/** A file as the remote holds it. */
export interface RemoteFile {
  sha256: string;
  size: number;
  /** Set for packed files. */
  pack?: string;
  offset?: number;
}

export interface RemoteState {
  files: Record<string, RemoteFile>;
  /** Pack id → size. */
  packs: Record<string, number>;
  /** Loose objects known to exist (rel keys), including ones the index no longer names. */
  loose: string[];
}

export interface Manifest {
  version: 2;
  prefix: string;
  files: Record<string, ManifestEntry>;
  /** The remote as of the last successful restore/persist; absent after a failure. */
  remote?: RemoteState;
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
  /** Objects transferred at once (default 16). */
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
  /** Files removed from the remote (persist). */
  deleted: number;
  /** Objects written or read. */
  objects: number;
  /** Files that cannot be stored under a blob key (odd names) and were left out. */
  skipped: string[];
  ms: number;
}

/** The reserved folder at the top of the prefix; a workspace folder of that name is not synced. */
export const SYNC_DIR = ".devex-sync";
const INDEX = `${SYNC_DIR}/index.json`;
const PACKS = `${SYNC_DIR}/packs/`;
/** Files up to this size are packed. */
const PACK_FILE_MAX = 256 * 1024;
/** Loose files up to this size are uploaded from memory (at most 8 at once). */
const BUFFERED_MAX = 16 * 1024 * 1024;
/** A pack is closed at this size. */
const PACK_MAX = 8 * 1024 * 1024;

export const manifestPathFor = (o: Pick<SyncOptions, "dir" | "manifestPath">) =>
  o.manifestPath ?? `${resolve(o.dir)}.manifest.json`;

export async function loadManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as Manifest;
    return m.version === 2 && m.files ? m : undefined;
  } catch {
    return undefined; // missing or corrupt: it only costs a full re-hash and an index read
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

/** Every regular file under `dir` except the reserved folder (symlinks, sockets and the like are not synced). */
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
        if (e.isDirectory()) return abs === dir && e.name === SYNC_DIR ? undefined : visit(p);
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
    add(files: number, bytes: number) {
      p.filesDone += files;
      p.bytesDone += bytes;
      emit(p.filesDone === p.filesTotal);
    },
    done: () => emit(true),
  };
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const entryOf = (st: Stats, sha: string): ManifestEntry => ({
  size: st.size,
  mtimeMs: st.mtimeMs,
  ctimeMs: st.ctimeMs,
  sha256: sha,
});

function validKey(prefix: string, rel: string): boolean {
  try {
    checkKey(prefix + rel);
    return !rel.startsWith(`${SYNC_DIR}/`);
  } catch {
    return false;
  }
}

/** The remote as it is: one listing plus the index. Loose objects without an index are all files (sha unknown). */
async function readRemote(o: SyncOptions, attempts: number): Promise<RemoteState & { indexed: boolean }> {
  const keys = await retry(attempts, o.signal, () => listAll(o.store, o.prefix, o.signal));
  const loose: string[] = [];
  const packs: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const e of keys) {
    const rel = e.key.slice(o.prefix.length);
    if (!rel) continue;
    if (rel.startsWith(PACKS)) packs[rel.slice(PACKS.length)] = e.size;
    else if (!rel.startsWith(`${SYNC_DIR}/`)) {
      loose.push(rel);
      sizes[rel] = e.size;
    }
  }
  const body = await retry(attempts, o.signal, async () => {
    const b = await o.store.get(o.prefix + INDEX, o.signal);
    return b ? readAll(b) : undefined;
  });
  if (body) {
    const index = JSON.parse(body.toString("utf8")) as { files: Record<string, RemoteFile> };
    return { files: index.files, packs, loose, indexed: true };
  }
  const files: Record<string, RemoteFile> = {};
  for (const rel of loose) files[rel] = { sha256: "", size: sizes[rel] };
  return { files, packs, loose, indexed: false };
}

/** Downloads the workspace into `dir` (emptied first) and writes the manifest. */
export async function restore(o: SyncOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const root = resolve(o.dir);
  const attempts = o.attempts ?? 4;
  const remote = await readRemote(o, attempts);
  // Empty it rather than remove it: it may be a mount point (a Kubernetes volume).
  await mkdir(root, { recursive: true });
  for (const name of await readdir(root)) await rm(join(root, name), { recursive: true, force: true });

  const skipped: string[] = [];
  const target = (rel: string) => {
    const abs = resolve(root, ...rel.split("/"));
    if (abs.startsWith(root + sep) && validKey(o.prefix, rel)) return abs;
    skipped.push(rel);
    return undefined;
  };
  const byPack = new Map<string, string[]>();
  const loose: string[] = [];
  for (const [rel, f] of Object.entries(remote.files)) {
    if (f.pack) byPack.set(f.pack, [...(byPack.get(f.pack) ?? []), rel]);
    else loose.push(rel);
  }
  const total = Object.values(remote.files).reduce((n, f) => n + f.size, 0);
  const progress = progressOf("restore", Object.keys(remote.files).length, total, o.onProgress);
  const local: Record<string, ManifestEntry> = {};
  const files = remote.files;
  let bytes = 0;
  let objects = 2;
  const write = async (rel: string, abs: string, content: Buffer) => {
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
    local[rel] = entryOf(await stat(abs), sha256(content));
    bytes += content.length;
    progress.add(1, content.length);
  };
  const concurrency = o.concurrency ?? 16;
  await forEachLimit([...byPack], concurrency, async ([pack, rels]) => {
    const body = await retry(attempts, o.signal, async () => {
      const b = await o.store.get(`${o.prefix}${PACKS}${pack}`, o.signal);
      if (!b) throw new Error(`pack ${pack} named by the index is missing`);
      return readAll(b);
    });
    objects++;
    await forEachLimit(rels, 32, async (rel) => {
      const abs = target(rel);
      const f = files[rel];
      if (!abs || f.offset === undefined) return;
      const content = body.subarray(f.offset, f.offset + f.size);
      if (sha256(content) !== f.sha256) throw new Error(`pack ${pack}: ${rel} does not match its hash`);
      await write(rel, abs, content);
    });
  });
  await forEachLimit(loose, concurrency, async (rel) => {
    const abs = target(rel);
    if (!abs) return;
    await retry(attempts, o.signal, async () => {
      const body = await o.store.get(o.prefix + rel, o.signal);
      if (!body) throw new Error(`object ${rel} vanished during restore`);
      if (files[rel].size <= BUFFERED_MAX) {
        const content = await readAll(body);
        await write(rel, abs, content);
        files[rel] = { sha256: local[rel].sha256, size: content.length };
        objects++;
        return;
      }
      await mkdir(dirname(abs), { recursive: true });
      const hash = createHash("sha256");
      const hashing = new Transform({
        transform(chunk, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      await pipeline(body, hashing, createWriteStream(abs), { signal: o.signal });
      const st = await stat(abs);
      local[rel] = entryOf(st, hash.digest("hex"));
      files[rel] = { sha256: local[rel].sha256, size: st.size };
      bytes += st.size;
      objects++;
      progress.add(1, st.size);
    });
  });
  await saveManifest(manifestPathFor(o), {
    version: 2,
    prefix: o.prefix,
    files: local,
    remote: { files, packs: remote.packs, loose: remote.loose },
  });
  progress.done();
  const n = Object.keys(local).length;
  return {
    files: n,
    bytes,
    transferred: n,
    transferredBytes: bytes,
    deleted: 0,
    objects,
    skipped,
    ms: Date.now() - began,
  };
}

interface LocalFile {
  st: Stats;
  sha256: string;
}

/** Uploads what changed since the last restore/persist and drops what was removed. */
export async function persist(o: SyncOptions): Promise<SyncResult> {
  const began = Date.now();
  checkPrefix(o.prefix);
  const root = resolve(o.dir);
  const manifestPath = manifestPathFor(o);
  const attempts = o.attempts ?? 4;
  const concurrency = o.concurrency ?? 16;
  const old = await loadManifest(manifestPath);
  const cache: Record<string, ManifestEntry> = old?.prefix === o.prefix ? old.files : {};
  const stats = await walk(root);

  // 1. What is local: size/mtime/ctime unchanged → the cached hash; otherwise hash again.
  const skipped: string[] = [];
  const local = new Map<string, LocalFile>();
  let bytes = 0;
  await forEachLimit([...stats], 32, async ([rel, st]) => {
    if (!validKey(o.prefix, rel)) {
      skipped.push(rel);
      return;
    }
    bytes += st.size;
    const c = cache[rel];
    const same = c && c.size === st.size && c.mtimeMs === st.mtimeMs && c.ctimeMs === st.ctimeMs;
    local.set(rel, { st, sha256: same ? c.sha256 : await hashFile(join(root, rel), o.signal) });
  });
  const nextCache: Record<string, ManifestEntry> = {};
  for (const [rel, f] of local) nextCache[rel] = entryOf(f.st, f.sha256);

  try {
    // 2. What is remote, and the plan.
    const remote = old?.prefix === o.prefix && old.remote ? old.remote : await readRemote(o, attempts);
    const next: Record<string, RemoteFile> = {};
    const toPack: string[] = [];
    const toLoose: string[] = [];
    for (const [rel, f] of local) {
      const r = remote.files[rel];
      if (r && r.sha256 === f.sha256 && r.size === f.st.size) next[rel] = r;
      else if (f.st.size <= PACK_FILE_MAX) toPack.push(rel);
      else toLoose.push(rel);
    }
    const removed = Object.keys(remote.files).filter((rel) => !local.has(rel));
    // Packs less than half alive are rewritten: their live files go into the new pack.
    const live: Record<string, number> = {};
    for (const f of Object.values(next)) if (f.pack) live[f.pack] = (live[f.pack] ?? 0) + f.size;
    for (const [pack, size] of Object.entries(remote.packs)) {
      if ((live[pack] ?? 0) * 2 >= size) continue;
      for (const [rel, f] of Object.entries(next)) {
        if (f.pack === pack) {
          delete next[rel];
          toPack.push(rel);
        }
      }
    }

    const uploadBytes = [...toPack, ...toLoose].reduce((n, rel) => n + local.get(rel)!.st.size, 0);
    const progress = progressOf("persist", toPack.length + toLoose.length, uploadBytes, o.onProgress);
    let transferredBytes = 0;
    let objects = 0;
    const put = (key: string, body: () => Buffer | Readable) =>
      retry(attempts, o.signal, () => o.store.put(o.prefix + key, body(), o.signal)).then(() => {
        objects++;
      });

    // 3. Large files as loose objects.
    await forEachLimit(toLoose, Math.min(concurrency, 8), async (rel) => {
      const abs = join(root, rel);
      const st = await stat(abs);
      let sha: string;
      if (st.size <= BUFFERED_MAX) {
        // One read: hashed and uploaded from the same bytes, in a single PUT.
        const body = await readFile(abs);
        sha = sha256(body);
        await put(rel, () => body);
      } else {
        sha = await hashFile(abs, o.signal);
        await put(rel, () => createReadStream(abs));
      }
      next[rel] = { sha256: sha, size: st.size };
      nextCache[rel] = entryOf(st, sha);
      transferredBytes += st.size;
      progress.add(1, st.size);
    });

    // 4. Small files into new packs (read, hashed and uploaded from the same bytes).
    const packs: Array<{ id: string; rels: string[]; size: number }> = [];
    for (const rel of toPack) {
      const size = local.get(rel)!.st.size;
      let p = packs.at(-1);
      if (!p || (p.size + size > PACK_MAX && p.rels.length > 0)) {
        p = { id: `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`, rels: [], size: 0 };
        packs.push(p);
      }
      p.rels.push(rel);
      p.size += size;
    }
    const newPacks: Record<string, number> = {};
    await forEachLimit(packs, concurrency, async (p) => {
      const parts: Buffer[] = [];
      const entries: Array<[string, RemoteFile, Stats]> = [];
      let offset = 0;
      for (const rel of p.rels) {
        const abs = join(root, rel);
        const st = await stat(abs).catch(() => undefined);
        const content = st?.isFile() ? await readFile(abs).catch(() => undefined) : undefined;
        if (!st || !content) continue; // removed meanwhile: the next persist drops it
        parts.push(content);
        entries.push([rel, { sha256: sha256(content), size: content.length, pack: p.id, offset }, st]);
        offset += content.length;
      }
      const body = Buffer.concat(parts);
      await put(`${PACKS}${p.id}`, () => body);
      newPacks[p.id] = body.length;
      for (const [rel, f, st] of entries) {
        next[rel] = f;
        nextCache[rel] = { ...entryOf(st, f.sha256), size: f.size };
      }
      transferredBytes += body.length;
      progress.add(p.rels.length, body.length);
    });

    // 5. The index: from here on readers see the new state.
    const packSizes: Record<string, number> = { ...newPacks };
    for (const f of Object.values(next))
      if (f.pack && !(f.pack in packSizes)) packSizes[f.pack] = remote.packs[f.pack] ?? 0;
    const unindexed = "indexed" in remote && remote.indexed === false;
    if (toPack.length || toLoose.length || removed.length || unindexed) {
      await put(INDEX, () => Buffer.from(JSON.stringify({ version: 1, files: next })));
    }

    // 6. Garbage: loose objects the index no longer names, packs nothing lives in. Deleting is by
    // prefix, so a loose object whose key starts another key ("a" vs "a.bak") is left (the index
    // ignores it) rather than taking its neighbours along.
    const keep = new Set(
      Object.entries(next)
        .filter(([, f]) => !f.pack)
        .map(([rel]) => rel),
    );
    const known = [
      ...remote.loose,
      ...toLoose,
      INDEX,
      ...Object.keys({ ...remote.packs, ...newPacks }).map((p) => PACKS + p),
    ];
    const looseGone = [...new Set(remote.loose)].filter((rel) => !keep.has(rel));
    const deletable = looseGone.filter((rel) => !known.some((k) => k !== rel && k.startsWith(rel)));
    const packsGone = Object.keys(remote.packs).filter((p) => !(p in packSizes));
    let deleted = 0;
    await forEachLimit([...deletable, ...packsGone.map((p) => PACKS + p)], concurrency, async (key) => {
      await retry(attempts, o.signal, () => o.store.deletePrefix(o.prefix + key, o.signal));
      objects++;
    });
    deleted = removed.length;
    const stillLoose = [...new Set([...remote.loose.filter((rel) => !deletable.includes(rel)), ...toLoose])];

    await saveManifest(manifestPath, {
      version: 2,
      prefix: o.prefix,
      files: nextCache,
      remote: { files: next, packs: packSizes, loose: stillLoose },
    });
    progress.done();
    return {
      files: local.size,
      bytes,
      transferred: toPack.length + toLoose.length,
      transferredBytes,
      deleted,
      objects,
      skipped,
      ms: Date.now() - began,
    };
  } catch (err) {
    // Keep the hashes (they describe the local files), forget the remote: the next persist reads it again.
    await saveManifest(manifestPath, { version: 2, prefix: o.prefix, files: nextCache }).catch(() => {});
    throw err;
  }
}

/** The workspace stored under a prefix, read the way `restore` reads it: rel → content. For tests and tools. */
export async function readStoredWorkspace(store: BlobStore, prefix: string): Promise<Map<string, Buffer>> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const tmp = await mkdtemp(join(tmpdir(), "devex-sync-read-"));
  try {
    const dir = join(tmp, "ws");
    await restore({ store, prefix, dir, manifestPath: join(tmp, "m.json") });
    const out = new Map<string, Buffer>();
    for (const rel of (await walk(dir)).keys()) out.set(rel, await readFile(join(dir, rel)));
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
