/**
 * `devex diff <repl> <from> [<to>] [--patch] [--json] [-- path...]`: what changed between two
 * checkpoints, or from one to the repl's current files (CheckpointService.DiffCheckpoints). A
 * summary as `git diff --name-status` prints it (A added, D removed, M changed: content or mode),
 * with sizes and modes; with --patch, then the unified diffs, and for each file without one why.
 */
import { posix } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { type FileChange, FileChangeKind, FileChangeSchema } from "../../gen/devex/core/v1/checkpoint_pb.js";
import { printable } from "../../lib/client/audit-listing.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { checkpointError } from "./checkpoints.js";
import { UsageError } from "./cli-error.js";
import { resolveRepl } from "./repls.js";
import { formatBytes, formatColumns } from "./table.js";

export interface DiffOptions {
  from: string;
  /** Undefined: the repl's current files (a running repl's are saved first). */
  to?: string;
  patch: boolean;
  json: boolean;
  /** Workspace paths (files or folders) to limit it to; empty: all. */
  paths: string[];
}

/**
 * Paths as core matches them: relative to the workspace, without "./" or a trailing "/"; "." is the
 * whole workspace (no limit).
 */
export function workspacePaths(args: string[]): string[] {
  const paths = args.map((arg) => {
    const p = posix.normalize(arg).replace(/\/+$/, "");
    if (arg === "" || posix.isAbsolute(p) || p === ".." || p.startsWith("../"))
      throw new UsageError(`${JSON.stringify(arg)}: diff paths are relative to the repl's workspace, inside it`);
    return p;
  });
  return paths.includes(".") ? [] : [...new Set(paths)];
}

const letters: Record<FileChangeKind, string> = {
  [FileChangeKind.UNSPECIFIED]: "?",
  [FileChangeKind.ADDED]: "A",
  [FileChangeKind.REMOVED]: "D",
  [FileChangeKind.CHANGED]: "M",
  [FileChangeKind.MODE]: "M",
};

const octal = (mode: number) => (mode & 0o7777).toString(8);

/** Sizes and modes: "4 B" for an added or removed file, "3 B → 5 B", "mode 644 → 755". */
function detail(c: FileChange, withPatch: boolean): string {
  const mode = `mode ${octal(c.modeBefore)} → ${octal(c.modeAfter)}`;
  const modeChanged = c.modeBefore !== 0 && c.modeAfter !== 0 && c.modeBefore !== c.modeAfter;
  const parts: string[] = [];
  switch (c.kind) {
    case FileChangeKind.ADDED:
      parts.push(formatBytes(c.sizeAfter));
      break;
    case FileChangeKind.REMOVED:
      parts.push(formatBytes(c.sizeBefore));
      break;
    case FileChangeKind.CHANGED:
      parts.push(`${formatBytes(c.sizeBefore)} → ${formatBytes(c.sizeAfter)}`);
      if (modeChanged) parts.push(mode);
      break;
    case FileChangeKind.MODE:
      parts.push(mode);
      break;
  }
  const text = parts.join(", ");
  return withPatch && c.patchOmitted ? `${text}  (no patch: ${printable(c.patchOmitted)})` : text;
}

/** "3 files changed from A to B: 1 added, 2 changed". */
function footer(changes: FileChange[], from: string, to: string | undefined): string {
  const count = (kinds: FileChangeKind[]) => changes.filter((c) => kinds.includes(c.kind)).length;
  const parts = [
    [count([FileChangeKind.ADDED]), "added"],
    [count([FileChangeKind.REMOVED]), "removed"],
    [count([FileChangeKind.CHANGED, FileChangeKind.MODE]), "changed"],
  ]
    .filter(([n]) => n)
    .map(([n, what]) => `${n} ${what}`);
  const files = changes.length === 1 ? "1 file" : `${changes.length} files`;
  return `${files} changed from ${from} to ${to ?? "the current files"}: ${parts.join(", ")}\n`;
}

/** The summary, then (with patches) each unified diff as core made it. */
export function formatDiff(changes: FileChange[], o: DiffOptions): string {
  if (!changes.length) {
    const under = o.paths.length ? ` under ${o.paths.map(printable).join(", ")}` : "";
    return `no changes from ${o.from} to ${o.to ?? "the current files"}${under}\n`;
  }
  const rows = changes.map((c) => [letters[c.kind], printable(c.path), detail(c, o.patch)]);
  let text = formatColumns(rows) + footer(changes, o.from, o.to);
  const patches = changes.filter((c) => c.patch);
  if (patches.length) text += `\n${patches.map((c) => (c.patch.endsWith("\n") ? c.patch : `${c.patch}\n`)).join("")}`;
  return text;
}

export async function diffCheckpoints(
  core: CoreClients,
  ref: string,
  o: DiffOptions,
  out: NodeJS.WritableStream,
): Promise<void> {
  const { replId } = await resolveRepl(core, ref);
  const req = {
    replId,
    fromCheckpointId: o.from,
    toCheckpointId: o.to ?? "",
    includePatches: o.patch,
    paths: o.paths,
  };
  // A path given where the second checkpoint goes is taken for one: say how to give paths.
  const hint = (message: string) =>
    o.to !== undefined && message.endsWith(`checkpoint ${JSON.stringify(o.to)}`)
      ? `; if ${printable(o.to)} is a path: devex diff ${replId} ${o.from} -- ${printable(o.to)}`
      : "";
  const { changes } = await core.checkpoints.diffCheckpoints(req).catch((e) => {
    throw checkpointError(e, ref, replId, hint);
  });
  out.write(
    o.json ? changes.map((c) => `${JSON.stringify(toJson(FileChangeSchema, c))}\n`).join("") : formatDiff(changes, o),
  );
}
