/**
 * Content matching for SearchFiles off the event loop and under a time budget. A user's regular
 * expression can backtrack exponentially (`^(a+)+$` on 28 × "a" + "!" took 4.6 s, doubling per
 * character), and V8 cannot interrupt a regex on its own thread, so files are matched in a worker
 * thread (in batches, to keep the per-message cost small): the runner keeps answering meanwhile,
 * and a batch that takes longer than its budget terminates the worker and fails the search with
 * ResourceExhausted.
 *
 * Why not V8's linear engine (`--enable-experimental-regexp-engine-on-excessive-backtracks`):
 * it rescues `^(a+)+$` but not patterns it cannot run (backreferences, lookaround: `^(a+)+\1$`
 * still took > 1 s), and a V8 flag changes every regex in the process. A `vm` timeout would
 * still block the event loop for the whole timeout.
 */
import { Worker } from "node:worker_threads";
import { invalidArgument, resourceExhausted } from "../../../../lib/kit/errors.js";

/**
 * Longest one batch's matching may take: a base plus time per MiB, as a sound regex is linear in the
 * text (a 16 MiB file gets 1.85 s; the 29-byte ReDoS file 250 ms).
 */
export const REGEX_BUDGET = { baseMs: 250, perMiBMs: 100 };
/** Matcher threads at once; further searches wait for one (a flood of searches cannot spawn a thread each). */
const MAX_WORKERS = 2;

/** A file to match: its name (for errors) and its text. */
export interface MatchFile {
  file: string;
  text: string;
}

/** A matching line: the file's index in the batch, the line's 0-based index and its text. */
export interface LineHit {
  file: number;
  index: number;
  text: string;
}

export interface LineMatcher {
  /** The lines of the files (split on "\n") that match, in order, at most `limit` of them. */
  match(files: MatchFile[], limit: number): Promise<LineHit[]>;
  /** Returns the thread for the next search; call once when done. */
  release(): void;
}

/** Compiles the pattern (InvalidArgument when it is not a regular expression) and leases a matcher thread. */
export async function compileMatcher(source: string, flags: string, budget = REGEX_BUDGET): Promise<LineMatcher> {
  try {
    new RegExp(source, flags);
  } catch (e) {
    throw invalidArgument(`content_pattern is not a valid regular expression: ${(e as Error).message}`);
  }
  let worker: Worker | undefined = await acquire();
  return {
    async match(files, limit) {
      if (!worker) throw new Error("matcher used after release");
      const w = worker;
      const id = ++calls; // process-wide: a thread released mid-match may still answer an older call
      const chars = files.reduce((n, f) => n + f.text.length, 0);
      const budgetMs = Math.round(budget.baseMs + (budget.perMiBMs * chars) / 2 ** 20);
      return new Promise<LineHit[]>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          w.off("message", onMessage);
          w.off("error", onFailure);
          w.off("exit", onFailure);
        };
        const onMessage = (m: { id: number; hits: LineHit[] }) => {
          if (m.id !== id) return;
          done();
          resolve(m.hits);
        };
        const onFailure = (e?: unknown) => {
          done();
          worker = undefined;
          release(w, false);
          reject(e instanceof Error ? e : new Error("regex matcher thread exited"));
        };
        const timer = setTimeout(() => {
          done();
          worker = undefined;
          release(w, false);
          reject(
            resourceExhausted(
              `the regular expression took longer than ${budgetMs} ms on ${describeFiles(files)} (it backtracks too much): simplify it, for example avoid nested quantifiers such as (a+)+, or search plain text`,
            ),
          );
        }, budgetMs);
        w.on("message", onMessage);
        w.once("error", onFailure);
        w.once("exit", onFailure);
        w.postMessage({ id, source, flags, texts: files.map((f) => f.text), limit });
      });
    },
    release() {
      if (worker) release(worker, true);
      worker = undefined;
    },
  };
}

// The matcher thread: plain JavaScript (no TypeScript loader), walking lines without splitting
// the whole file into an array.
const MATCHER_SOURCE = `
const { parentPort } = require("node:worker_threads");
let key, re;
parentPort.on("message", ({ id, source, flags, texts, limit }) => {
  if (key !== source + "/" + flags) { key = source + "/" + flags; re = new RegExp(source, flags); }
  const hits = [];
  texts.forEach((text, file) => {
    for (let start = 0, index = 0; start <= text.length && hits.length < limit; index++) {
      let end = text.indexOf("\\n", start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end);
      if (re.test(line)) hits.push({ file, index, text: line.slice(0, 1024) });
      start = end + 1;
    }
  });
  parentPort.postMessage({ id, hits });
});
`;

/** `"a.txt"`, or `one of "a.txt", "b.txt" and 3 more files` for a batch. */
function describeFiles(files: MatchFile[]): string {
  const names = files.slice(0, 3).map((f) => `"${f.file}"`);
  if (files.length === 1) return names[0];
  const more = files.length - names.length;
  return `one of ${names.join(", ")}${more ? ` and ${more} more files` : ""}`;
}

let calls = 0;
const idle: Worker[] = [];
const waiting: Array<() => void> = [];
let leased = 0;

async function acquire(): Promise<Worker> {
  while (leased >= MAX_WORKERS) await new Promise<void>((r) => waiting.push(r));
  leased++;
  try {
    const w = idle.pop() ?? (await spawnMatcher());
    w.ref();
    return w;
  } catch (e) {
    leased--;
    waiting.shift()?.();
    throw e;
  }
}

/** A new matcher thread, once it runs: its start-up (80–380 ms on a loaded machine) is not the regex's budget. */
async function spawnMatcher(): Promise<Worker> {
  const w = new Worker(MATCHER_SOURCE, { eval: true, execArgv: [] });
  await new Promise<void>((resolve, reject) => {
    w.once("online", resolve);
    w.once("error", reject);
  });
  return w;
}

/** Keeps a healthy thread for reuse (unref'd: it never holds the process open); ends a failed one. */
function release(w: Worker, healthy: boolean): void {
  leased--;
  if (healthy && idle.length < MAX_WORKERS) {
    w.unref();
    idle.push(w);
  } else {
    void w.terminate();
  }
  waiting.shift()?.();
}
