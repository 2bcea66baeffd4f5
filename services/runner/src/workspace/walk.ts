/**
 * Depth-first walk of a directory in path order, never following symlinks: each directory is held
 * open while its entries are listed and lstat'ed relative to that descriptor, and a subdirectory is
 * entered by opening its name in the held one with O_NOFOLLOW, so a directory swapped for a symlink
 * between the lstat and the descent is not entered.
 */
import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { minimatch } from "minimatch";
import { isAtomicWriteTemp } from "./atomic-write.js";
import { at, closeFd, DIR_FLAGS, fdPath, openDirAt, openFd } from "./confined-fs.js";

export interface WalkEntry {
  /** The entry's descriptor-relative path (`/proc/self/fd/<dir>/<name>`), valid until the walk moves on. */
  abs: string;
  rel: string;
  name: string;
  depth: number;
  stats: BigIntStats;
}

export interface WalkOptions {
  /** 1 = only the directory's children. */
  maxDepth: number;
  exclude: string[];
  includeHidden: boolean;
}

/** Whether `rel` (or its name) matches one of the exclude globs; a bare name matches at any depth. */
export function excluded(rel: string, patterns: string[]): boolean {
  return patterns.some((p) => minimatch(rel, p, { dot: true, matchBase: !p.includes("/") }));
}

/**
 * Walks the directory at `dir`: the root, or a Location's `path` (its final name is not followed
 * either: ENOTDIR when it is not a directory).
 */
export async function* walk(dir: string, rel: string, options: WalkOptions): AsyncGenerator<WalkEntry> {
  const fd = await openFd(dir, DIR_FLAGS);
  try {
    yield* walkFd(fd, rel, options, 1);
  } finally {
    await closeFd(fd);
  }
}

async function* walkFd(dir: number, rel: string, options: WalkOptions, depth: number): AsyncGenerator<WalkEntry> {
  let names: string[];
  try {
    names = await readdir(fdPath(dir));
  } catch (e) {
    if (depth === 1) throw e;
    return; // a directory that vanished or is unreadable below the top is skipped
  }
  names.sort();
  for (const name of names) {
    if (!options.includeHidden && name.startsWith(".")) continue;
    if (isAtomicWriteTemp(name)) continue;
    const childRel = rel ? `${rel}/${name}` : name;
    if (excluded(childRel, options.exclude)) continue;
    const stats = await lstat(at(dir, name), { bigint: true }).catch(() => undefined);
    if (!stats) continue;
    yield { abs: at(dir, name), rel: childRel, name, depth, stats };
    if (!stats.isDirectory() || depth >= options.maxDepth) continue;
    const child = await openDirAt(dir, name).catch(() => undefined); // swapped for a link: not entered
    if (child === undefined) continue;
    try {
      yield* walkFd(child, childRel, options, depth + 1);
    } finally {
      await closeFd(child);
    }
  }
}
