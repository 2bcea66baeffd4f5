/** SearchFiles: glob over paths (minimatch) and a plain or regex content grep, bounded. */
import { readFile } from "node:fs/promises";
import { minimatch } from "minimatch";
import { READ_FLAGS } from "./confined-fs.js";
import { compileMatcher, type LineHit, type LineMatcher, type MatchFile } from "./regex-budget.js";
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

/** Files sent to the matcher thread together (one message each way), unless they reach BATCH_BYTES first. */
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;

async function search(q: SearchQuery, pattern: LineMatcher | undefined): Promise<SearchResult> {
  const result: SearchResult = { paths: [], matches: [], truncated: false };
  const exclude = [...q.exclude, ".git"];
  // Files go to the matcher thread in batches; one batch is matched while the next is read, and
  // `collect` takes its hits in order.
  let batch: MatchFile[] = [];
  let batchBytes = 0;
  let matching: { files: MatchFile[]; hits: Promise<LineHit[]> } | undefined;
  const collect = async (): Promise<boolean> => {
    if (!matching) return false;
    const { files, hits } = matching;
    matching = undefined;
    let lastFile = -1;
    for (const hit of await hits) {
      if (result.matches.length >= q.maxResults) return true;
      const rel = files[hit.file].file;
      if (hit.file !== lastFile) result.paths.push(rel);
      lastFile = hit.file;
      result.matches.push({ path: rel, line: hit.index + 1, text: hit.text.replace(/\r$/, "").slice(0, MAX_LINE) });
    }
    return false;
  };
  const send = async (): Promise<boolean> => {
    if (await collect()) return true;
    if (!pattern || batch.length === 0) return false;
    const hits = pattern.match(batch, q.maxResults - result.matches.length + 1);
    hits.catch(() => {}); // awaited by collect(); until then a failure must not be an unhandled rejection
    matching = { files: batch, hits };
    batch = [];
    batchBytes = 0;
    return false;
  };
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
    if (batchBytes + buf.length > BATCH_BYTES && (await send())) return { ...result, truncated: true };
    batch.push({ file: e.rel, text: buf.toString("utf8") });
    batchBytes += buf.length;
    if (batch.length >= BATCH_FILES && (await send())) return { ...result, truncated: true };
  }
  if ((await send()) || (await collect())) return { ...result, truncated: true };
  return result;
}

/** Plain text is escaped into a regex too: one matcher, and a literal can be slow on huge lines as well. */
function compile(q: SearchQuery): Promise<LineMatcher> {
  const source = q.regex ? q.contentPattern : q.contentPattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return compileMatcher(source, q.caseSensitive ? "" : "i");
}
