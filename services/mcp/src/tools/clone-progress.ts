/**
 * create_repl with a git repository: core's CreateRepl returns at once and clones in the repl's
 * sandbox; this follows WatchRepl until the repl runs cloned (the result) or is deleted (the clone
 * failed: its last message says why), reporting git's progress (objects and bytes received) as
 * progress notifications and log messages, as start_repl reports a restore. Bounded by a timeout,
 * past which the call fails saying the clone goes on and how to see it end.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { CloneStatus, type Progress, type Repl, ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../../../lib/client/clients.js";
import { cancelled, deadlineExceeded, failedPrecondition } from "../../../../lib/kit/errors.js";
import type { ToolReport } from "../tool-report.js";

/** "cloning", "done", or "" for a repl not made from a repository. */
export function cloneStatusName(s: CloneStatus): string {
  return s === CloneStatus.CLONING ? "cloning" : s === CloneStatus.DONE ? "done" : "";
}

const MiB = 1024 * 1024;

/** "cloning https://…: 450 of 1000 objects, 1.2 MiB". */
export function describeClone(url: string, p: Progress): string {
  const objects = p.filesTotal > 0n ? `${p.filesDone} of ${p.filesTotal} objects` : `${p.filesDone} objects`;
  return `cloning ${url}: ${objects}, ${(Number(p.bytesDone) / MiB).toFixed(1)} MiB`;
}

/** Waits for the clone of a just-created repl; returns it running, or throws why it did not get there. */
export async function waitForClone(
  core: CoreClients,
  created: Repl,
  report: ToolReport,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Repl> {
  const url = created.git?.source?.url ?? "";
  const { replId } = created;
  const timeout = AbortSignal.timeout(timeoutMs);
  const step = (value: number, message: string, level: "info" | "debug") => {
    report.progress(value, 1, message);
    report.log(level, "create_repl", message);
  };
  step(0.05, `cloning ${url} into repl ${replId}`, "info");
  let last: Repl = created;
  try {
    for await (const m of core.repls.watchRepl({ replId }, { signal: AbortSignal.any([signal, timeout]) })) {
      if (m.repl) last = m.repl;
      if (m.progress?.phase === "clone") {
        const total = Number(m.progress.filesTotal);
        const f = total > 0 ? Math.min(1, Number(m.progress.filesDone) / total) : 0;
        step(0.1 + 0.85 * f, describeClone(url, m.progress), "debug");
      }
      if (last.status === ReplStatus.RUNNING && last.git?.status === CloneStatus.DONE) {
        step(1, `repl ${replId} is running, cloned at ${last.git.commit.slice(0, 12)}`, "info");
        return last;
      }
    }
  } catch (e) {
    if (signal.aborted) throw cancelled("create_repl was cancelled; the clone goes on (see list_repls)");
    if (timeout.aborted)
      throw deadlineExceeded(
        `repl ${replId} is still being cloned from ${url} after ${Math.round(timeoutMs / 1000)} s; the clone goes on: get_repl_status shows it running once done (or no such repl if the clone failed)`,
      );
    // Deleted before the watch opened: the clone failed at once, and its reason went with the repl.
    const err = ConnectError.from(e);
    // Gone before the watch opened: core's NotFound says why ("repl … was deleted: clone failed: …").
    if (err.code === Code.NotFound)
      throw failedPrecondition(
        /was deleted: /.test(err.rawMessage)
          ? err.rawMessage
          : `the clone of ${url} failed and repl ${replId} was deleted`,
      );
    throw e;
  }
  // The stream ends when the repl is deleted: its last message says why.
  throw failedPrecondition(
    `${last.lastError || "clone failed"} (repl ${replId} was deleted: create_repl again once that is fixed)`,
  );
}
