/** SearchFiles: glob over paths (minimatch) and a plain or regex content grep, bounded. */
import { readFile } from "node:fs/promises";
import { minimatch } from "minimatch";
import { READ_FLAGS } from "./confined-fs.js";
import { compileMatcher, type LineMatcher } from "./regex-budget.js";
import { walk } from "./walk.js";

export interface SearchQuery {
  abs: string;
  rel: string;
  glob: string;
  contentPattern: string;
  regex: boolean;
  caseSensitive: boolean;
  exclude: string[];
  maxResults: number;
  maxFileBytes: number;
}

export interface SearchResult {
  paths: string[];
  matches: Array<{ path: string; line: number; text: string }>;
  truncated: boolean;
}

const MAX_LINE = 500;

export async function searchFiles(q: SearchQuery): Promise<SearchResult> {
  const pattern = q.contentPattern ? await compile(q) : undefined;
  try {
    return await search(q, pattern);
  } finally {
    pattern?.release();
  }
}

async function search(q: SearchQuery, pattern: LineMatcher | undefined): Promise<SearchResult> {
  const result: SearchResult = { paths: [], matches: [], truncated: false };
  const exclude = [...q.exclude, ".git"];
  for await (const e of walk(q.abs, q.rel, { maxDepth: 64, exclude, includeHidden: true })) {
    if (!e.stats.isFile()) continue;
    const inDir = q.rel ? e.rel.slice(q.rel.length + 1) : e.rel;
    if (q.glob && !minimatch(inDir, q.glob, { dot: true, matchBase: !q.glob.includes("/") })) continue;
    if (!pattern) {
      if (result.paths.length >= q.maxResults) return { ...result, truncated: true };
      result.paths.push(e.rel);
      continue;
    }
    if (e.stats.size > BigInt(q.maxFileBytes)) continue;
    const buf = await readFile(e.abs, { flag: READ_FLAGS }).catch(() => undefined); // never through a link
    if (!buf || buf.subarray(0, 8192).includes(0)) continue; // unreadable or binary
    const hits = await pattern.match(buf.toString("utf8"), e.rel, q.maxResults - result.matches.length + 1);
    let found = false;
    for (const hit of hits) {
      if (result.matches.length >= q.maxResults) return { ...result, truncated: true };
      if (!found) result.paths.push(e.rel);
      found = true;
      result.matches.push({ path: e.rel, line: hit.index + 1, text: hit.text.replace(/\r$/, "").slice(0, MAX_LINE) });
    }
  }
  return result;
}

/** Plain text is escaped into a regex too: one matcher, and a literal can be slow on huge lines as well. */
function compile(q: SearchQuery): Promise<LineMatcher> {
  const source = q.regex ? q.contentPattern : q.contentPattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return compileMatcher(source, q.caseSensitive ? "" : "i");
}
