/**
 * A stored state (a generation, the index, a checkpoint) as a base map plus what differs from it.
 *
 * A full map of a workspace costs about 50 bytes per file gzipped (a sha256 does not compress), so
 * writing one per generation and per checkpoint would soon outweigh the content that changed. A
 * state therefore names an immutable base map (`.devex-sync/maps/<id>`, possibly a lender's: a fork
 * starts on its parent's) and carries only the files and directories that differ from it and the
 * names it dropped. When that difference grows past a quarter of the base, the state becomes a new
 * base. Everything is gzipped; readers take plain JSON as well (indexes before version 3).
 *
 * Where content lives: a file entry without `from` is stored under the prefix of the record or map
 * that holds it; `rehome` rewrites an entry read from one prefix for use under another.
 */
import { randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { BlobStore } from "../blob/store.js";
import type { MapRef, RemoteDir, RemoteFile, StoredIndex } from "./types.js";
import { readAll, retry } from "./util.js";

export const MAPS = ".devex-sync/maps/";

export const newId = () => `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;

export interface FullMap {
  files: Record<string, RemoteFile>;
  dirs?: Record<string, RemoteDir>;
}

/** The fields of a stored state besides its summary and generation list. */
export type StateRecord = Pick<StoredIndex, "files" | "dirs" | "base" | "removed" | "removedDirs">;

export const encodeJson = (v: unknown) => gzipSync(JSON.stringify(v));

export function decodeJson<T>(body: Buffer): T {
  const gzipped = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  return JSON.parse((gzipped ? gunzipSync(body) : body).toString("utf8")) as T;
}

interface Reader {
  store: BlobStore;
  signal?: AbortSignal;
}

/** A JSON record at a full key; undefined when it does not exist. */
export async function getRecord<T>(r: Reader, key: string, attempts: number): Promise<T | undefined> {
  const body = await retry(attempts, r.signal, async () => {
    const b = await r.store.get(key, r.signal);
    return b ? readAll(b) : undefined;
  });
  return body && decodeJson<T>(body);
}

/** `f`, read from a record stored under `at`, as an entry of a record stored under `home`. */
export function rehome(f: RemoteFile, at: string, home: string): RemoteFile {
  const from = f.from ?? at;
  if (from !== home) return f.from === from ? f : { ...f, from };
  if (f.from === undefined) return f;
  const { from: _, ...own } = f;
  return own;
}

export const rehomeAll = (files: Record<string, RemoteFile>, at: string, home: string) => {
  if (at === home) return files;
  const out: Record<string, RemoteFile> = {};
  for (const [rel, f] of Object.entries(files)) out[rel] = rehome(f, at, home);
  return out;
};

/** A map ref written under `at`, as seen from `home`. */
export function rehomeRef(ref: MapRef, at: string, home: string): MapRef {
  const from = ref.from ?? at;
  return from === home ? { key: ref.key } : { key: ref.key, from };
}

/** Base maps are immutable and read by every persist that changes something: a few stay decoded. */
const decoded = new WeakMap<BlobStore, Map<string, FullMap>>();
const DECODED_MAX = 4;

function remember(store: BlobStore, key: string, map: FullMap) {
  const cache = decoded.get(store) ?? new Map<string, FullMap>();
  decoded.set(store, cache);
  cache.set(key, map);
  if (cache.size > DECODED_MAX) cache.delete(cache.keys().next().value!);
}

/** A base map, its entries as seen from `home`. */
export async function readMap(r: Reader, home: string, ref: MapRef, attempts: number): Promise<FullMap> {
  const at = ref.from ?? home;
  const key = at + ref.key;
  let map = decoded.get(r.store)?.get(key);
  if (!map) {
    map = await getRecord<FullMap>(r, key, attempts);
    if (!map) throw new Error(`the base map ${key} is missing`);
    remember(r.store, key, map);
  }
  return { files: rehomeAll(map.files, at, home), dirs: map.dirs };
}

/** The full map of a state stored under `home`. */
export async function resolveState(r: Reader, home: string, s: StateRecord, attempts: number): Promise<FullMap> {
  if (!s.base) return { files: s.files, dirs: s.dirs };
  const base = await readMap(r, home, s.base, attempts);
  const files = { ...base.files };
  for (const rel of s.removed ?? []) delete files[rel];
  Object.assign(files, s.files);
  const dirs = { ...base.dirs };
  for (const rel of s.removedDirs ?? []) delete dirs[rel];
  Object.assign(dirs, s.dirs);
  return { files, dirs };
}

const FIELDS = ["sha256", "size", "mode", "mtimeMs", "pack", "offset", "object", "link", "from"] as const;
const sameFile = (a: RemoteFile | undefined, b: RemoteFile) => !!a && FIELDS.every((k) => a[k] === b[k]);
const sameDir = (a: RemoteDir | undefined, b: RemoteDir) => !!a && a.mode === b.mode && a.mtimeMs === b.mtimeMs;

/** A state as `full` minus `base`; undefined when the difference is too large to be worth it. */
function difference(full: FullMap, base: FullMap): StateRecord | undefined {
  const files: Record<string, RemoteFile> = {};
  const dirs: Record<string, RemoteDir> = {};
  for (const [rel, f] of Object.entries(full.files)) if (!sameFile(base.files[rel], f)) files[rel] = f;
  for (const [rel, d] of Object.entries(full.dirs ?? {})) if (!sameDir(base.dirs?.[rel], d)) dirs[rel] = d;
  const removed = Object.keys(base.files).filter((rel) => !(rel in full.files));
  const removedDirs = Object.keys(base.dirs ?? {}).filter((rel) => !(rel in (full.dirs ?? {})));
  const size = Object.keys(files).length + Object.keys(dirs).length + removed.length + removedDirs.length;
  const baseSize = Object.keys(base.files).length + Object.keys(base.dirs ?? {}).length;
  if (size > Math.max(32, baseSize / 4)) return undefined;
  return { files, dirs, removed, removedDirs };
}

/**
 * The record that stores `full` under `home`: the difference from `base` when it is small, else a
 * new base map, written here (`writeMap` puts it and returns its key).
 */
export async function planState(
  r: Reader,
  home: string,
  full: FullMap,
  base: MapRef | undefined,
  attempts: number,
  writeMap: (body: Buffer) => Promise<string>,
): Promise<StateRecord> {
  if (base) {
    const diff = difference(full, await readMap(r, home, base, attempts));
    if (diff) return { base, ...diff };
  }
  const map: FullMap = { files: full.files, dirs: full.dirs ?? {} };
  const key = await writeMap(encodeJson(map));
  remember(r.store, home + key, map);
  return { base: { key }, files: {}, dirs: {}, removed: [], removedDirs: [] };
}
