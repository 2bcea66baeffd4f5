/**
 * A repl created from a git repository: CreateRepl records it (no files) and returns; this starts
 * the repl and runs `git clone` in its own sandbox through the runner's Exec, as the repl's user and
 * through its egress policy, never as core's user on a tree the repl controls. Git's progress goes
 * to WatchRepl (phase "clone"); a repository past the size limit is stopped as it arrives and
 * refused. A failed clone deletes the repl, its last WatchRepl message saying why, so none is left
 * half made.
 */

import { runnerClientsFor } from "../../../../lib/client/node.js";
import { ALL_API_SCOPES } from "../../../../lib/contracts/api-scopes.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { ReplRecord } from "../state/store.js";
import { move } from "./common.js";
import { deleteRepl } from "./delete.js";
import type { ReplDeps } from "./deps.js";
import { type CloneProgress, parseGitProgress } from "./git-progress.js";
import { startRepl } from "./start.js";

/** The clone, as a script run by bash with the URL, ref and depth as its arguments (never interpolated). */
const CLONE_SCRIPT = `set -e
url="$1"; ref="$2"; depth="$3"
if [ -n "$depth" ]; then shallow="--depth=$depth"; else shallow=""; fi
if printf '%s' "$ref" | grep -Eq '^[0-9a-f]{40}$'; then
  git init -q .
  git remote add origin "$url"
  git fetch --progress $shallow origin "$ref"
  git checkout -q --detach FETCH_HEAD
elif [ -n "$ref" ]; then
  git clone --progress $shallow --branch "$ref" -- "$url" .
else
  git clone --progress $shallow -- "$url" .
fi
echo "commit=$(git rev-parse HEAD)"
echo "bytes=$(du -sb . | cut -f1)"
`;

export interface CloneLimits {
  /** Largest repository (what arrives, and the checked-out tree) in bytes. */
  maxBytes: number;
  timeoutMs: number;
}

export const formatBytes = (n: number) =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;

class CloneError extends Error {}

const TOMBSTONE_TTL_MS = 60 * 60_000;

/** Starts the clone of a freshly created repl in the background. */
export function startClone(deps: ReplDeps, r: ReplRecord): void {
  void cloneRepl(deps, r).catch((err) => deps.log.error({ err, replId: r.replId }, "clone failed unexpectedly"));
}

async function cloneRepl(deps: ReplDeps, r: ReplRecord): Promise<void> {
  const git = r.git!;
  const signal = AbortSignal.timeout(deps.clone.timeoutMs);
  try {
    const user = { userId: r.owner, scopes: ALL_API_SCOPES, cloning: true };
    const { repl: running, runner } = await startRepl(deps, user, r.replId, signal);
    // Progress goes out with the repl as it now is (running), not as it was created.
    const commit = await runClone(deps, running, runner!, signal);
    await move(deps, r.replId, ["running"], { git: { ...git, status: "done", commit } });
    deps.log.info({ replId: r.replId, commit }, "repository cloned");
  } catch (err) {
    const reason = `clone failed: ${cloneFailure(err, deps.clone)}`;
    deps.log.info({ replId: r.replId, reason }, "clone failed; deleting the repl");
    // Its owner may not be watching yet: GetRepl and WatchRepl say why for an hour.
    await deps.state
      .putReplTombstone({ replId: r.replId, owner: r.owner, reason }, TOMBSTONE_TTL_MS)
      .catch((e) => deps.log.warn({ err: e, replId: r.replId }, "could not record why the repl goes"));
    await deleteRepl(deps, r.owner, r.replId, AbortSignal.timeout(deps.operationTimeoutMs), reason).catch((e) =>
      deps.log.error({ err: e, replId: r.replId }, "could not delete the repl of a failed clone"),
    );
  }
}

function cloneFailure(err: unknown, limits: CloneLimits): string {
  if (err instanceof CloneError || err instanceof DomainError) return err.message;
  if ((err as Error)?.name === "TimeoutError" || (err as Error)?.name === "AbortError")
    return `it took longer than ${Math.round(limits.timeoutMs / 1000)} s`;
  return "internal error";
}

async function runClone(
  deps: ReplDeps,
  r: ReplRecord,
  access: { url: string; token: string },
  signal: AbortSignal,
): Promise<string> {
  const git = r.git!;
  const runner = runnerClientsFor(access.url, { token: access.token });
  const tooBig = new AbortController();
  const depth = git.fullHistory ? "" : "1";
  const command = {
    argv: ["bash", "-c", CLONE_SCRIPT, "devex-clone", git.url, git.ref, depth],
    // No prompt: a repository that asks for a password fails at once instead of hanging.
    env: { GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "true" },
  };
  let out = "";
  let err = "";
  let exitCode = -1;
  let shown = 0;
  const report = (p: CloneProgress) => {
    if (p.bytes > deps.clone.maxBytes) tooBig.abort();
    if (Date.now() - shown < 250) return;
    shown = Date.now();
    deps.events.publish(r.replId, {
      repl: r,
      progress: { phase: "clone", filesDone: p.objects, filesTotal: p.objectsTotal, bytesDone: p.bytes },
    });
  };
  try {
    const calls = runner.processes.exec({ command }, { signal: AbortSignal.any([signal, tooBig.signal]) });
    for await (const m of calls) {
      if (m.event.case === "stdout") out += Buffer.from(m.event.value).toString();
      if (m.event.case === "stderr") {
        err = (err + Buffer.from(m.event.value).toString()).slice(-64 * 1024);
        const p = parseGitProgress(err);
        if (p) report(p);
      }
      if (m.event.case === "exit") exitCode = m.event.value.exitCode;
    }
  } catch (e) {
    if (tooBig.signal.aborted) throw overLimit(deps.clone.maxBytes);
    throw e;
  }
  if (exitCode !== 0) throw new CloneError(gitFailure(err));
  const commit = /^commit=([0-9a-f]{40})$/m.exec(out)?.[1] ?? "";
  const bytes = Number(/^bytes=(\d+)$/m.exec(out)?.[1] ?? 0);
  if (bytes > deps.clone.maxBytes) throw overLimit(deps.clone.maxBytes);
  return commit;
}

const overLimit = (max: number) =>
  new CloneError(`the repository is larger than this server's limit of ${formatBytes(max)} (DEVEX_GIT_MAX_SIZE)`);

/** Git's own words for what went wrong (its last "fatal:" line), which name the URL or ref the user gave. */
function gitFailure(stderr: string): string {
  const lines = stderr.split(/[\r\n]+/).filter((l) => l.trim());
  const fatal = lines.filter((l) => l.startsWith("fatal:")).at(-1) ?? lines.at(-1) ?? "git failed";
  const said = fatal.replace(/^fatal:\s*/, "").slice(0, 300);
  if (/could not read Username|Authentication failed|terminal prompts disabled/i.test(said))
    return `the repository asks for credentials: a private repository can be cloned only from GitHub, by a user signed in with GitHub (${said})`;
  return said;
}
