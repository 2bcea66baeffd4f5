/**
 * Checkpoints: named, immutable states of a stored tree, at `.devex-sync/checkpoints/<id>.json`.
 *
 * A record carries its state as a generation does (a base map plus what differs: state.ts) and every
 * key it needs, so persist's garbage collection keeps a checkpoint's content for as long as the
 * record exists (roots.ts), and retention (`pruneCheckpoints`) deletes records only. Ids sort by
 * time. A running tree is checkpointed by the persist that flushes it (`persist({checkpoint})`), so
 * the record names what was just stored; a stopped one by `checkpointStored`, from its index.
 */
import { randomBytes } from "node:crypto";
import type { BlobStore } from "../blob/store.js";
import { listAll } from "../blob/store.js";
import { CheckpointNotFoundError, NothingStoredError } from "./errors.js";
import { INDEX, SYNC_DIR } from "./remote.js";
import { encodeJson, type FullMap, getRecord, resolveState, type StateRecord } from "./state.js";
import type { CheckpointRequest, CheckpointSummary, GenerationInfo, StoredIndex } from "./types.js";
import { forEachLimit, retry } from "./util.js";

export const CHECKPOINTS = `${SYNC_DIR}/checkpoints/`;
export const checkpointKey = (id: string) => `${CHECKPOINTS}${id}.json`;

export interface CheckpointRecord extends CheckpointSummary {
  version: 3;
  state: StateRecord;
  /** Keys it needs under its own prefix, and under lenders' (GenerationInfo). */
  objects: string[];
  borrowed?: Record<string, string[]>;
}

export interface StoredTree {
  store: BlobStore;
  /** Blob-store prefix ending in "/". */
  prefix: string;
  signal?: AbortSignal;
  attempts?: number;
}

/** Ids a user can type and that sort by time: `<ms base36>-<8 random hex>`. */
const newCheckpointId = () => `${Date.now().toString(36).padStart(9, "0")}-${randomBytes(4).toString("hex")}`;
const ID = /^[0-9a-z]{9}-[0-9a-f]{8}$/;

const NAME_MAX = 200;
const MESSAGE_MAX = 4000;

/** Writes a checkpoint of a state stored under `t.prefix` whose summary is `info`. */
export async function writeCheckpoint(
  t: StoredTree,
  state: StateRecord,
  info: GenerationInfo,
  req: CheckpointRequest,
): Promise<CheckpointSummary> {
  if (req.id !== undefined && !ID.test(req.id)) throw new Error(`not a checkpoint id: ${JSON.stringify(req.id)}`);
  const summary: CheckpointSummary = {
    id: req.id ?? newCheckpointId(),
    time: Date.now(),
    generation: info.generation,
    files: info.files,
    bytes: info.bytes,
    ...(req.name ? { name: req.name.slice(0, NAME_MAX) } : {}),
    ...(req.message ? { message: req.message.slice(0, MESSAGE_MAX) } : {}),
    ...(req.auto ? { auto: req.auto } : {}),
  };
  const { base, files, dirs, removed, removedDirs } = state;
  const record: CheckpointRecord = {
    version: 3,
    ...summary,
    state: { base, files, dirs, removed, removedDirs },
    objects: info.objects,
    ...(info.borrowed ? { borrowed: info.borrowed } : {}),
  };
  const body = encodeJson(record);
  await retry(t.attempts ?? 4, t.signal, () => t.store.put(t.prefix + checkpointKey(summary.id), body, t.signal));
  return summary;
}

/**
 * A checkpoint of the newest stored state, read from the index: a stopped tree's, or a running one's
 * just after a persist. A persist running meanwhile may drop that state from its kept generations
 * and collect its garbage before the record exists; so the record stands only if the index still
 * keeps the state once the record is written (every later collection then sees the record).
 * Otherwise it is deleted and the whole is tried again.
 */
export async function checkpointStored(t: StoredTree, req: CheckpointRequest): Promise<CheckpointSummary> {
  const made = await checkpointNewest(t, req, () => true);
  if (!made) throw new NothingStoredError(t.prefix);
  return made;
}

/**
 * checkpointStored, but only of a newest state `accept` takes (persist's walk-free path: the
 * generation it stored last); undefined when nothing is stored or the newest is another.
 */
export async function checkpointNewest(
  t: StoredTree,
  req: CheckpointRequest,
  accept: (newest: GenerationInfo) => boolean,
): Promise<CheckpointSummary | undefined> {
  const attempts = t.attempts ?? 4;
  for (let tries = 1; ; tries++) {
    const index = await getRecord<StoredIndex>(t, t.prefix + INDEX, attempts);
    const info = index?.generations?.[0];
    if (!index || !info || !accept(info)) return undefined;
    const summary = await writeCheckpoint(t, index, info, req);
    const after = await getRecord<StoredIndex>(t, t.prefix + INDEX, attempts);
    if (after?.generations?.some((g) => g.generation === info.generation)) return summary;
    await retry(attempts, t.signal, () => t.store.deletePrefix(t.prefix + checkpointKey(summary.id), t.signal));
    if (tries >= 5) throw new Error("the tree kept changing while it was checkpointed; try again");
  }
}

export async function readCheckpoint(t: StoredTree, id: string): Promise<CheckpointRecord> {
  if (!ID.test(id)) throw new CheckpointNotFoundError(id);
  const record = await getRecord<CheckpointRecord>(t, t.prefix + checkpointKey(id), t.attempts ?? 4);
  if (!record) throw new CheckpointNotFoundError(id);
  return record;
}

/** The files and directories a checkpoint names. */
export async function checkpointMap(t: StoredTree, id: string): Promise<FullMap> {
  return resolveState(t, t.prefix, (await readCheckpoint(t, id)).state, t.attempts ?? 4);
}

/** The ids of the stored checkpoints, oldest first (ids sort by time). */
export async function checkpointIds(t: StoredTree): Promise<string[]> {
  const listed = await retry(t.attempts ?? 4, t.signal, () => listAll(t.store, t.prefix + CHECKPOINTS, t.signal));
  return listed
    .map((e) => e.key.slice(t.prefix.length + CHECKPOINTS.length).replace(/\.json$/, ""))
    .filter((id) => ID.test(id))
    .sort();
}

/** Every checkpoint, newest first. One deleted while this runs is left out. */
export async function listCheckpoints(t: StoredTree): Promise<CheckpointSummary[]> {
  const ids = await checkpointIds(t);
  const out: CheckpointSummary[] = [];
  await forEachLimit(ids, 8, async (id) => {
    const r = await readCheckpoint(t, id).catch((e) =>
      e instanceof CheckpointNotFoundError ? undefined : Promise.reject(e),
    );
    if (!r) return;
    const { version: _, state: _s, objects: _o, borrowed: _b, ...summary } = r;
    out.push(summary);
  });
  return out.sort((a, b) => (a.id < b.id ? 1 : -1));
}

/** Deletes a checkpoint's record; its content goes with the next garbage collection that no longer needs it. */
export async function deleteCheckpoint(t: StoredTree, id: string): Promise<void> {
  await readCheckpoint(t, id);
  await retry(t.attempts ?? 4, t.signal, () => t.store.deletePrefix(t.prefix + checkpointKey(id), t.signal));
}

export interface Retention {
  /** Checkpoints kept at most (the newest); undefined: no limit. */
  maxCount?: number;
  /** Checkpoints older than this are deleted (ms); undefined: no limit. */
  maxAgeMs?: number;
}

/** Deletes the checkpoints beyond the retention limits, oldest first; returns their ids. */
export async function pruneCheckpoints(t: StoredTree, r: Retention, now = Date.now()): Promise<string[]> {
  const ids = await checkpointIds(t);
  const timeOf = (id: string) => Number.parseInt(id.slice(0, 9), 36);
  const excess = r.maxCount === undefined ? 0 : Math.max(0, ids.length - r.maxCount);
  const gone = ids.filter((id, i) => i < excess || (r.maxAgeMs !== undefined && now - timeOf(id) > r.maxAgeMs));
  await forEachLimit(gone, 8, (id) =>
    retry(t.attempts ?? 4, t.signal, () => t.store.deletePrefix(t.prefix + checkpointKey(id), t.signal)).then(() => {}),
  );
  return gone;
}
