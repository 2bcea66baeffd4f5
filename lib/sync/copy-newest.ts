/**
 * Copies the newest stored state of a workspace to another prefix, as a fresh index of one
 * generation holding what that state needs and nothing else: a template saved from a repl must not
 * carry files that were deleted before it was saved, not even as dead bytes inside a shared pack.
 * So small files are repacked (read out of their packs, written into new ones); objects, which hold
 * one file each, are copied as they are. Every object the index names must be there: a copy racing
 * a delete of its source fails instead of making a workspace with holes. A prefix that was never
 * persisted (loose files only) is copied whole.
 */
import { randomBytes } from "node:crypto";
import type { BlobStore } from "../blob/store.js";
import { checkPrefix, contentAt, contentKey, generationKey, INDEX, PACKS, readRemote, summarize } from "./remote.js";
import type { RemoteFile, StoredIndex } from "./types.js";
import { forEachLimit, readAll, retry } from "./util.js";

export interface CopiedState {
  files: number;
  bytes: number;
}

const PACK_MAX = 8 * 1024 * 1024;
const newPackId = () => `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;

interface Copy {
  store: BlobStore;
  from: string;
  to: string;
  signal?: AbortSignal;
  attempts: number;
}

/** `key` is a full key: the source's, or a lender's for borrowed content. */
async function getAll(c: Copy, key: string): Promise<Buffer> {
  return retry(c.attempts, c.signal, async () => {
    const body = await c.store.get(key, c.signal);
    if (!body) throw new Error(`the stored workspace lacks ${key}, which its index names`);
    return readAll(body);
  });
}

/** Packed files into new packs of live bytes only; returns their entries pointing at the new packs. */
async function repack(c: Copy, files: Record<string, RemoteFile>): Promise<Record<string, RemoteFile>> {
  const bySource = new Map<string, string[]>();
  for (const [rel, f] of Object.entries(files)) {
    if (f.pack && f.link === undefined) {
      const key = contentAt(c.from, rel, f)!;
      const rels = bySource.get(key) ?? [];
      if (!rels.length) bySource.set(key, rels);
      rels.push(rel);
    }
  }
  const out: Record<string, RemoteFile> = {};
  let parts: Buffer[] = [];
  let size = 0;
  let id = newPackId();
  const flush = async () => {
    if (parts.length === 0) return;
    const body = Buffer.concat(parts);
    const key = PACKS + id;
    await retry(c.attempts, c.signal, () => c.store.put(c.to + key, body, c.signal));
    parts = [];
    size = 0;
    id = newPackId();
  };
  for (const [pack, rels] of bySource) {
    const source = await getAll(c, pack);
    for (const rel of rels) {
      const f = files[rel];
      const offset = f.offset ?? 0;
      if (offset + f.size > source.length) throw new Error(`pack ${pack} is shorter than the index says (${rel})`);
      if (size + f.size > PACK_MAX && parts.length) await flush();
      const { from: _, ...own } = f;
      out[rel] = { ...own, pack: id, offset: size };
      parts.push(source.subarray(offset, offset + f.size));
      size += f.size;
    }
  }
  await flush();
  return out;
}

export async function copyNewestGeneration(
  store: BlobStore,
  from: string,
  to: string,
  signal?: AbortSignal,
  attempts = 4,
): Promise<CopiedState> {
  checkPrefix(from);
  checkPrefix(to);
  const c: Copy = { store, from, to, signal, attempts };
  const remote = await readRemote({ store, prefix: from, signal }, attempts);
  if (!remote.indexed) {
    await retry(attempts, signal, () => store.copyPrefix(from, to, signal));
    const sizes = Object.values(remote.files).map((f) => f.size);
    return { files: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) };
  }
  const files = { ...remote.files, ...(await repack(c, remote.files)) };
  // Objects hold one file each: copied as they are, under their own key (a lender's included).
  const loose = new Map<string, string>();
  for (const [rel, f] of Object.entries(files)) {
    if (f.pack || f.link !== undefined) continue;
    loose.set(contentAt(from, rel, f)!, contentKey(rel, f)!);
    if (f.from) {
      const { from: _, ...own } = f;
      files[rel] = own;
    }
  }
  await forEachLimit([...loose], 8, ([source, key]) =>
    retry(attempts, signal, async () => {
      const body = await store.get(source, signal);
      if (!body) throw new Error(`the stored workspace lacks ${source}, which its index names`);
      await store.put(to + key, body, signal);
    }),
  );
  const time = Date.now();
  const info = summarize(1, time, files);
  const index: StoredIndex = {
    version: 2,
    generation: 1,
    time,
    files,
    ...(remote.dirs ? { dirs: remote.dirs } : {}),
    generations: [info],
  };
  const body = Buffer.from(JSON.stringify(index));
  await retry(attempts, signal, () => store.put(to + generationKey(1), body, signal));
  // The index last: until it is there, the copy is loose objects no restore reads as a workspace.
  await retry(attempts, signal, () => store.put(to + INDEX, body, signal));
  return { files: info.files, bytes: info.bytes };
}
