/**
 * A directory of the workspace as an archive's bytes (tar or zip), produced while it is walked
 * (walk.ts: descriptors, path order, no symlink followed): each file is opened O_NOFOLLOW from its
 * directory's descriptor, checked to be the regular file the walk saw, and streamed in chunks, so
 * memory stays constant however large the tree. Symlinks are stored as links; FIFOs, sockets and
 * devices are left out. A file that shrinks while it is read is padded with zeros to the size its
 * header declared (a tar header cannot be taken back), one that grows is cut there.
 */
import type { BigIntStats } from "node:fs";
import { open, readlink } from "node:fs/promises";
import { paddingOf, tarEnd, tarHeader } from "../../../../lib/archive/tar.js";
import { ZipWriter } from "../../../../lib/archive/zip.js";
import { resourceExhausted } from "../../../../lib/kit/errors.js";
import { READ_FLAGS } from "./confined-fs.js";
import { walk } from "./walk.js";

export const CHUNK = 256 * 1024;

interface Item {
  rel: string;
  type: "file" | "directory" | "symlink";
  stats: BigIntStats;
  abs: string;
}

export interface ArchiveOptions {
  /** Where the walk starts: a Location's descriptor-relative path. */
  dir: string;
  exclude: string[];
  maxEntries: number;
  /** Called with the number of entries once the archive is complete. */
  onEntries?: (n: number) => void;
}

/** The directory's entries, named relative to it; only kinds an archive holds. */
async function* items(o: ArchiveOptions): AsyncGenerator<Item> {
  let n = 0;
  for await (const e of walk(o.dir, "", {
    maxDepth: Number.POSITIVE_INFINITY,
    exclude: o.exclude,
    includeHidden: true,
  })) {
    const type = e.stats.isFile()
      ? "file"
      : e.stats.isDirectory()
        ? "directory"
        : e.stats.isSymbolicLink()
          ? "symlink"
          : undefined;
    if (!type) continue;
    if (++n > o.maxEntries)
      throw resourceExhausted(
        `the directory has more than ${o.maxEntries} entries, the archive limit (DEVEX_RUNNER_MAX_ARCHIVE_ENTRIES)`,
      );
    yield { rel: e.rel, type, stats: e.stats, abs: e.abs };
  }
  o.onEntries?.(n);
}

/** Exactly `size` bytes of the file the walk saw (zeros past a shrunk end), or nothing if it was swapped. */
async function* fileContent(item: Item, size: number): AsyncGenerator<Buffer> {
  const fh = await open(item.abs, READ_FLAGS).catch(() => undefined);
  const st = await fh?.stat({ bigint: true });
  const same = st?.isFile() && st.ino === item.stats.ino && st.dev === item.stats.dev;
  try {
    let pos = 0;
    while (pos < size) {
      const want = Math.min(CHUNK, size - pos);
      const buf = Buffer.alloc(want);
      const got = same && fh ? (await fh.read(buf, 0, want, pos)).bytesRead : 0;
      pos += want;
      yield got === want ? buf : buf.fill(0, got);
    }
  } finally {
    await fh?.close();
  }
}

/** A tar archive of the directory, in pieces (headers, content chunks, padding). */
export async function* tarOf(o: ArchiveOptions): AsyncGenerator<Buffer> {
  for await (const item of items(o)) {
    const mtime = Number(item.stats.mtimeMs) / 1000;
    const mode = Number(item.stats.mode & 0o777n);
    if (item.type === "file") {
      const size = Number(item.stats.size);
      yield tarHeader({ path: item.rel, type: "file", size, mode, mtime });
      yield* fileContent(item, size);
      if (paddingOf(size)) yield Buffer.alloc(paddingOf(size));
    } else if (item.type === "symlink") {
      const linkTarget = await readlink(item.abs).catch(() => undefined);
      if (linkTarget !== undefined)
        yield tarHeader({ path: item.rel, type: "symlink", size: 0, mode, mtime, linkTarget });
    } else {
      yield tarHeader({ path: item.rel, type: "directory", size: 0, mode, mtime });
    }
  }
  yield tarEnd();
}

/** A zip archive of the directory (zip.ts), in pieces. */
export async function* zipOf(o: ArchiveOptions): AsyncGenerator<Buffer> {
  const zip = new ZipWriter();
  for await (const item of items(o)) {
    const mode = Number(item.stats.mode & 0o777n);
    const mtimeMs = Number(item.stats.mtimeMs);
    if (item.type === "symlink") {
      const linkTarget = await readlink(item.abs).catch(() => undefined);
      if (linkTarget !== undefined) yield* zip.entry({ path: item.rel, type: "symlink", mode, mtimeMs, linkTarget });
    } else if (item.type === "file") {
      yield* zip.entry({
        path: item.rel,
        type: "file",
        mode,
        mtimeMs,
        content: fileContent(item, Number(item.stats.size)),
      });
    } else {
      yield* zip.entry({ path: item.rel, type: "directory", mode, mtimeMs });
    }
  }
  yield zip.end();
}
