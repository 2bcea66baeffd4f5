/**
 * What differs between two stored states (checkpoints, generations, or a checkpoint and now): files
 * added, removed and changed (content, or mode only), compared by sha256 without reading content;
 * and, when asked for, a unified diff of a text file, read from the store.
 */
import { createTwoFilesPatch } from "diff";
import type { BlobStore } from "../blob/store.js";
import { contentAt } from "./remote.js";
import type { FullMap } from "./state.js";
import type { RemoteFile } from "./types.js";
import { readAll, retry } from "./util.js";

export interface FileChange {
  path: string;
  kind: "added" | "removed" | "changed" | "mode";
  /** Absent on the side the file is not on. */
  before?: { size: number; mode?: number; link?: string };
  after?: { size: number; mode?: number; link?: string };
}

const sideOf = (f: RemoteFile) => ({
  size: f.size,
  ...(f.mode !== undefined ? { mode: f.mode } : {}),
  ...(f.link !== undefined ? { link: f.link } : {}),
});

/** The changes from `a` to `b`, by path. */
export function diffMaps(a: FullMap, b: FullMap): FileChange[] {
  const out: FileChange[] = [];
  for (const [path, f] of Object.entries(a.files)) {
    const g = b.files[path];
    if (!g) out.push({ path, kind: "removed", before: sideOf(f) });
    else if (f.sha256 !== g.sha256 || f.size !== g.size || f.link !== g.link)
      out.push({ path, kind: "changed", before: sideOf(f), after: sideOf(g) });
    else if ((f.mode ?? 0o644) !== (g.mode ?? 0o644))
      out.push({ path, kind: "mode", before: sideOf(f), after: sideOf(g) });
  }
  for (const [path, g] of Object.entries(b.files))
    if (!a.files[path]) out.push({ path, kind: "added", after: sideOf(g) });
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** Text files up to this size get a unified diff; larger ones are reported as changed only. */
export const TEXT_DIFF_MAX = 1024 * 1024;

interface Source {
  store: BlobStore;
  /** The prefix the maps were read under. */
  prefix: string;
  signal?: AbortSignal;
  attempts?: number;
}

/** A stored file's content (a regular file), read from its pack or object. */
export async function readStoredFile(s: Source, rel: string, f: RemoteFile): Promise<Buffer> {
  const key = contentAt(s.prefix, rel, f);
  if (key === undefined) return Buffer.from(f.link ?? "");
  const body = await retry(s.attempts ?? 4, s.signal, async () => {
    const b = await s.store.get(key, s.signal);
    if (!b) throw new Error(`${rel}: its stored content is missing`);
    return readAll(b);
  });
  return f.pack ? body.subarray(f.offset ?? 0, (f.offset ?? 0) + f.size) : body;
}

const isText = (b: Buffer) => !b.subarray(0, 8192).includes(0);

/**
 * The unified diff of `path` from `a` to `b`; undefined when either side is binary, a symlink, or
 * larger than TEXT_DIFF_MAX (the change list still says it changed).
 */
export async function unifiedDiff(s: Source, a: FullMap, b: FullMap, path: string): Promise<string | undefined> {
  const sides = [a.files[path], b.files[path]];
  if (sides.some((f) => f && (f.link !== undefined || f.size > TEXT_DIFF_MAX))) return undefined;
  const [before, after] = await Promise.all(sides.map((f) => (f ? readStoredFile(s, path, f) : Buffer.alloc(0))));
  if (!isText(before) || !isText(after)) return undefined;
  const name = (f: RemoteFile | undefined, side: string) => (f ? `${side}/${path}` : "/dev/null");
  return createTwoFilesPatch(name(sides[0], "a"), name(sides[1], "b"), before.toString("utf8"), after.toString("utf8"));
}
