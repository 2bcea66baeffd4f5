/**
 * Words for checkpoints and their changes: a checkpoint's title and why an automatic one was made,
 * what it holds, a changed file's kind and sizes, and why a file's diff is not shown. DOM-free, so
 * the unit tests import it (web/tsconfig.node.json lists it).
 */
import { type Checkpoint, type FileChange, FileChangeKind } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { formatBytes } from "../../repl-status.js";

/** Why core made an automatic checkpoint (checkpoint.proto, Checkpoint.auto). */
const autoReasons: Record<string, string> = {
  "before-stop": "before a stop",
  "before-restore": "before a restore",
  fork: "for a fork",
};

/** "before a stop"; an unknown reason as core wrote it. */
export const autoReason = (auto: string): string => autoReasons[auto] ?? auto;

/** Its name; an unnamed automatic one says why it was made. */
export function checkpointTitle(c: Pick<Checkpoint, "name" | "auto">): string {
  if (c.name) return c.name;
  return c.auto ? `Saved ${autoReason(c.auto)}` : "Unnamed checkpoint";
}

const plural = (n: bigint | number, one: string) => `${n} ${one}${n === 1n || n === 1 ? "" : "s"}`;

/** "12 files · 3.4 KB". */
export const checkpointContents = (c: Pick<Checkpoint, "files" | "bytes">): string =>
  `${plural(c.files, "file")} · ${formatBytes(c.bytes)}`;

export const changeKindLabel: Record<FileChangeKind, string> = {
  [FileChangeKind.UNSPECIFIED]: "changed",
  [FileChangeKind.ADDED]: "added",
  [FileChangeKind.REMOVED]: "removed",
  [FileChangeKind.CHANGED]: "changed",
  [FileChangeKind.MODE]: "mode",
};

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(3, "0");

/** What the change did to the file's size (or, for a mode change, to its permission bits). */
export function changeSize(c: FileChange): string {
  switch (c.kind) {
    case FileChangeKind.ADDED:
      return formatBytes(c.sizeAfter);
    case FileChangeKind.REMOVED:
      return formatBytes(c.sizeBefore);
    case FileChangeKind.MODE:
      return `${octal(c.modeBefore)} → ${octal(c.modeAfter)}`;
    default:
      return c.sizeBefore === c.sizeAfter
        ? formatBytes(c.sizeAfter)
        : `${formatBytes(c.sizeBefore)} → ${formatBytes(c.sizeAfter)}`;
  }
}

/** Why a file's diff is not shown, from FileChange.patch_omitted (or its kind). */
export function noDiffText(c: FileChange): string {
  if (c.kind === FileChangeKind.MODE) return "Only its permissions changed.";
  switch (c.patchOmitted) {
    case "binary":
      return "A binary file: there is no text diff to show.";
    case "too large":
      return "Over 1 MiB: too large to compare line by line.";
    case "symlink":
      return "A symbolic link: its target changed.";
    case "limit reached":
      return "Its diff did not fit in the answer.";
    case "":
      return c.kind === FileChangeKind.ADDED || c.kind === FileChangeKind.REMOVED ? "An empty file." : "No diff.";
    default:
      return `No diff: ${c.patchOmitted}.`;
  }
}

/** "3 files changed since then", or that nothing did. */
export const changesSummary = (n: number): string =>
  n === 0 ? "No changes since this checkpoint." : `${plural(n, "file")} changed since then.`;
