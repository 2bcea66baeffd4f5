/** Words and styles for repl states and lifecycle progress, shared by the dashboard and the IDE. */
import { CloneStatus, type GitOrigin, type Progress, ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";

export const statusLabel: Record<ReplStatus, string> = {
  [ReplStatus.UNSPECIFIED]: "Unknown",
  [ReplStatus.STOPPED]: "Stopped",
  [ReplStatus.STARTING]: "Starting…",
  [ReplStatus.RUNNING]: "Running",
  [ReplStatus.STOPPING]: "Stopping…",
  [ReplStatus.DELETING]: "Deleting…",
};

export const statusClass: Record<ReplStatus, string> = {
  [ReplStatus.UNSPECIFIED]: "unknown",
  [ReplStatus.STOPPED]: "stopped",
  [ReplStatus.STARTING]: "busy",
  [ReplStatus.RUNNING]: "running",
  [ReplStatus.STOPPING]: "busy",
  [ReplStatus.DELETING]: "busy",
};

/** "512 B", "12.0 KB", "3.4 MB". */
export function formatBytes(n: bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KB`;
  return `${(v / 1024 / 1024).toFixed(1)} MB`;
}

const phases: Record<string, string> = {
  restore: "Restoring files",
  persist: "Saving files",
  schedule: "Scheduling",
  start: "Starting the runner",
  clone: "Cloning",
};

/** "Restoring files 3/10 · 12.0 KB", or "" when there is nothing to say. */
export function describeProgress(p: Progress | undefined): string {
  if (!p?.phase) return "";
  const what = phases[p.phase] ?? p.phase;
  // A clone counts git's objects, not files.
  const unit = p.phase === "clone" ? " objects" : "";
  const files = p.filesTotal ? ` ${p.filesDone}/${p.filesTotal}${unit}` : p.filesDone ? ` ${p.filesDone}${unit}` : "";
  const size = p.bytesDone ? ` · ${formatBytes(p.bytesDone)}` : "";
  return `${what}${files}${size}`;
}

/** 0..1 when the total is known. */
export function progressFraction(p: Progress | undefined): number | undefined {
  if (!p) return undefined;
  if (p.bytesTotal) return Number(p.bytesDone) / Number(p.bytesTotal);
  if (p.filesTotal) return Number(p.filesDone) / Number(p.filesTotal);
  return undefined;
}

/**
 * "https://host/app.git#main at 0123abc" (or "… (cloning)"), then how its git reaches the repository
 * ("· GitHub grant, push allowed"): where a repl's files came from; "" for a template's.
 */
export function gitSourceLabel(git: GitOrigin | undefined): string {
  if (!git?.source) return "";
  const from = git.source.ref ? `${git.source.url}#${git.source.ref}` : git.source.url;
  const at = git.status === CloneStatus.CLONING ? " (cloning)" : git.commit ? ` at ${git.commit.slice(0, 7)}` : "";
  const access = [git.githubGrant && "GitHub grant", git.source.allowPush && "push allowed"].filter(Boolean);
  return `${from}${at}${access.length ? ` · ${access.join(", ")}` : ""}`;
}
