/**
 * The stored side: keys under the prefix, the index and its generations.
 *
 *   <rel>                           files copied in by CreateRepl from a template (no index yet), and
 *                                   large files of version 1 indexes
 *   .devex-sync/packs/<id>          small files concatenated, up to 8 MiB per pack
 *   .devex-sync/objects/<id>        files above 256 KiB, one object each
 *   .devex-sync/maps/<id>           a full map, immutable: every file → sha256, size, mode, mtime
 *                                   and where its content is (pack + offset, object, a symlink's
 *                                   target, or another prefix's: `from`); every directory → mode, mtime
 *   .devex-sync/generations/<n>.json  one immutable generation: a base map and what differs from it
 *                                   (state.ts); before version 3, a full map
 *   .devex-sync/index.json          a copy of the newest generation, plus the list of kept ones
 *   .devex-sync/checkpoints/<id>.json  named states (checkpoints.ts)
 *   .devex-sync/borrowers/<prefix>/<id>.json  keys another prefix (a fork) uses (borrow.ts)
 *
 * Packs, objects and maps get fresh ids and are never overwritten, so a kept generation stays
 * readable until it is dropped; an object is deleted only when no kept generation, checkpoint or
 * borrower names it.
 */
import type { BlobStore } from "../blob/store.js";
import { checkKey, listAll } from "../blob/store.js";
import { getRecord, resolveState } from "./state.js";
import type { GenerationInfo, GenerationSummary, MapRef, RemoteDir, RemoteFile, StoredIndex } from "./types.js";
import { retry } from "./util.js";

/** The reserved folder at the top of the prefix; a workspace folder of that name is not synced. */
export const SYNC_DIR = ".devex-sync";
export const INDEX = `${SYNC_DIR}/index.json`;
export const PACKS = `${SYNC_DIR}/packs/`;
export const OBJECTS = `${SYNC_DIR}/objects/`;
export const GENERATIONS = `${SYNC_DIR}/generations/`;
export const generationKey = (n: number) => `${GENERATIONS}${n}.json`;

/** The remote as persist and restore plan with it (cached in the manifest between runs). */
export interface RemoteState {
  /** An index exists; false: only loose objects from a template. */
  indexed: boolean;
  /** The files of the generation the directory was restored from or last persisted. */
  files: Record<string, RemoteFile>;
  /** The directories of that generation (absent: an index from before directories were stored). */
  dirs?: Record<string, RemoteDir>;
  /** The generation `files` came from, when a restore took an earlier one than the newest. */
  base?: number;
  /** The newest generation number (0: none, or a version 1 index). */
  generation: number;
  /** Kept generations, newest first. */
  generations: GenerationInfo[];
  /** Every object known under the prefix (rel key → size), the index excepted. */
  objects: Record<string, number>;
  /** The base map of the newest generation (state.ts). */
  baseRef?: MapRef;
  /** The borrower record this prefix keeps at each lender (borrow.ts). */
  borrows?: Record<string, string>;
}

export function checkPrefix(prefix: string) {
  if (!prefix.endsWith("/")) throw new Error(`sync prefix must end in "/": ${JSON.stringify(prefix)}`);
  checkKey(prefix.slice(0, -1));
}

/** A workspace path that can be stored: a valid blob key outside the reserved folder. */
export function validKey(prefix: string, rel: string): boolean {
  try {
    checkKey(prefix + rel);
    return !rel.startsWith(`${SYNC_DIR}/`) && rel !== SYNC_DIR;
  } catch {
    return false;
  }
}

/** The key (under the prefix) holding a file's content; undefined for a symlink. */
export function contentKey(rel: string, f: RemoteFile): string | undefined {
  if (f.link !== undefined) return undefined;
  if (f.pack) return PACKS + f.pack;
  if (f.object) return OBJECTS + f.object;
  return rel;
}

/** The summary of a state stored under `home`, with every key it needs: its own and its lenders'. */
/** The full key of a file's content read under `prefix` (its lender's, when borrowed); undefined for a symlink. */
export function contentAt(prefix: string, rel: string, f: RemoteFile): string | undefined {
  const key = contentKey(rel, f);
  return key === undefined ? undefined : (f.from ?? prefix) + key;
}

export function summarize(
  generation: number,
  time: number,
  files: Record<string, RemoteFile>,
  base?: MapRef,
): GenerationInfo {
  const objects = new Set<string>();
  const borrowed = new Map<string, Set<string>>();
  const need = (from: string | undefined, key: string) => {
    if (from === undefined) objects.add(key);
    else borrowed.set(from, (borrowed.get(from) ?? new Set()).add(key));
  };
  let bytes = 0;
  for (const [rel, f] of Object.entries(files)) {
    bytes += f.size;
    const key = contentKey(rel, f);
    if (key) need(f.from, key);
  }
  if (base) need(base.from, base.key);
  const info: GenerationInfo = { generation, time, files: Object.keys(files).length, bytes, objects: [...objects] };
  if (borrowed.size) info.borrowed = Object.fromEntries([...borrowed].map(([p, keys]) => [p, [...keys]]));
  return info;
}

const getJson = (o: Store, key: string, attempts: number) => getRecord<StoredIndex>(o, o.prefix + key, attempts);

interface Store {
  store: BlobStore;
  prefix: string;
  signal?: AbortSignal;
}

/** The index and the newest state's files and directories, without listing the prefix; undefined: no index. */
export async function readNewest(
  o: Store,
  attempts: number,
): Promise<(Pick<StoredIndex, "files" | "dirs"> & { index: StoredIndex }) | undefined> {
  const index = await getJson(o, INDEX, attempts);
  return index && { index, ...(await resolveState(o, o.prefix, index, attempts)) };
}

/** The remote as it is: one listing plus the index. Loose objects without an index are all files (sha unknown). */
export async function readRemote(o: Store, attempts: number): Promise<RemoteState> {
  const listed = await retry(attempts, o.signal, () => listAll(o.store, o.prefix, o.signal));
  const objects: Record<string, number> = {};
  for (const e of listed) {
    const rel = e.key.slice(o.prefix.length);
    if (rel && rel !== INDEX) objects[rel] = e.size;
  }
  const newest = await readNewest(o, attempts);
  if (newest) {
    const { index, files, dirs } = newest;
    const generation = index.generation ?? 0;
    const generations = index.generations ?? [];
    return {
      indexed: true,
      files,
      dirs,
      generation,
      generations,
      objects,
      baseRef: index.base,
      borrows: index.borrows,
    };
  }
  const files: Record<string, RemoteFile> = {};
  for (const [rel, size] of Object.entries(objects))
    if (!rel.startsWith(`${SYNC_DIR}/`)) files[rel] = { sha256: "", size };
  return { indexed: false, files, generation: 0, generations: [], objects };
}

/** The files and directories of a kept generation (the newest is the index itself). */
export async function readGeneration(
  o: Store,
  remote: RemoteState,
  generation: number,
  attempts: number,
): Promise<Pick<StoredIndex, "files" | "dirs">> {
  if (generation === remote.generation) return remote;
  const kept = remote.generations.map((g) => g.generation);
  const stored = kept.includes(generation) ? await getJson(o, generationKey(generation), attempts) : undefined;
  if (!stored) throw new Error(`generation ${generation} is not kept (kept: ${kept.join(", ") || "none"})`);
  return resolveState(o, o.prefix, stored, attempts);
}

/** The stored generations, newest first; [] when nothing was persisted yet. */
export async function listGenerations(o: Store & { attempts?: number }): Promise<GenerationSummary[]> {
  const index = await getJson(o, INDEX, o.attempts ?? 4);
  if (!index) return [];
  if (!index.generations) return [summaryOf(summarize(0, 0, index.files))]; // a version 1 index
  return index.generations.map(summaryOf);
}

const summaryOf = (g: GenerationSummary): GenerationSummary => ({
  generation: g.generation,
  time: g.time,
  files: g.files,
  bytes: g.bytes,
});
