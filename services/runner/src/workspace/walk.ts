/** Depth-first walk of a directory in path order, never following symlinks. */
import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { minimatch } from "minimatch";
import { isAtomicWriteTemp } from "./atomic-write.js";

export interface WalkEntry {
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

export async function* walk(abs: string, rel: string, options: WalkOptions, depth = 1): AsyncGenerator<WalkEntry> {
  let names: string[];
  try {
    names = await readdir(abs);
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
    const childAbs = path.join(abs, name);
    const stats = await lstat(childAbs, { bigint: true }).catch(() => undefined);
    if (!stats) continue;
    yield { abs: childAbs, rel: childRel, name, depth, stats };
    if (stats.isDirectory() && depth < options.maxDepth) yield* walk(childAbs, childRel, options, depth + 1);
  }
}
