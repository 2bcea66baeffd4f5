/**
 * BlobStore in a local directory (the default). An object is a file at `<root>/<key>`; keys are
 * checked by `checkKey`, so none escapes the root. Writes go to a temp file that is renamed into
 * place, which makes `put` atomic per object.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobEntry, type BlobStore, backendCall, checkKey, listAll } from "./store.js";

async function walk(dir: string, root: string, out: string[]): Promise<void> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, root, out);
    else if (e.isFile() && !e.name.startsWith(".tmp-")) out.push(relative(root, p).split(sep).join("/"));
  }
}

export function createLocalBlobStore(root: string): BlobStore {
  const guard = <T>(fn: () => Promise<T>) => backendCall("the blob store (local directory) failed, try again", fn);
  const pathOf = (key: string) => {
    checkKey(key);
    return join(root, ...key.split("/"));
  };

  const store: BlobStore = {
    put: (key, body, signal) =>
      guard(async () => {
        const path = pathOf(key);
        await mkdir(dirname(path), { recursive: true });
        const tmp = join(dirname(path), `.tmp-${randomBytes(6).toString("hex")}`);
        try {
          const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
          await pipeline(source, createWriteStream(tmp), { signal });
          await rename(tmp, path);
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
      }),
    get: (key, signal) =>
      guard(async () => {
        const path = pathOf(key);
        try {
          if (!(await stat(path)).isFile()) return undefined;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR")
            return undefined;
          throw e;
        }
        return createReadStream(path, { signal });
      }),
    list: (prefix, page = {}, signal) =>
      guard(async () => {
        signal?.throwIfAborted();
        const keys: string[] = [];
        // Walk only the deepest directory the prefix names, not the whole store.
        const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
        if (base) checkKey(base);
        await walk(base ? join(root, ...base.split("/")) : root, root, keys);
        keys.sort();
        const after = page.pageToken ?? "";
        const size = Math.max(1, Math.min(page.pageSize ?? 1000, 1000));
        const matching = keys.filter((k) => k.startsWith(prefix) && k > after);
        const slice = matching.slice(0, size);
        const entries: BlobEntry[] = [];
        for (const key of slice) entries.push({ key, size: (await stat(join(root, ...key.split("/")))).size });
        return { entries, nextPageToken: matching.length > size ? slice[slice.length - 1] : "" };
      }),
    deletePrefix: (prefix, signal) =>
      guard(async () => {
        const entries = await listAll(store, prefix, signal);
        for (const e of entries) await rm(pathOf(e.key), { force: true });
        if (prefix.endsWith("/") && prefix.length > 1) {
          checkKey(prefix.slice(0, -1));
          await rm(join(root, ...prefix.slice(0, -1).split("/")), { recursive: true, force: true });
        }
        return entries.length;
      }),
    copyPrefix: (from, to, signal) =>
      guard(async () => {
        const entries = await listAll(store, from, signal);
        for (const e of entries) {
          const body = await store.get(e.key, signal);
          if (body) await store.put(to + e.key.slice(from.length), body, signal);
        }
        return entries.length;
      }),
    close: async () => {},
  };
  return store;
}
