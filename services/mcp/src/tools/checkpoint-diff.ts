/**
 * diff_checkpoints' result as an agent reads it: core's changes (by path) with plain names, bounded
 * for a context window rather than for a client (core allows 4 MiB of patches): at most
 * `diffFiles` files and `patchChars` characters of patches, a summary of every change, and a note
 * saying what was cut and how to narrow the diff.
 */
import { type FileChange, FileChangeKind } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import type { ToolLimits } from "./tool-context.js";

const changeNames: Record<FileChangeKind, string> = {
  [FileChangeKind.UNSPECIFIED]: "changed",
  [FileChangeKind.ADDED]: "added",
  [FileChangeKind.REMOVED]: "removed",
  [FileChangeKind.CHANGED]: "changed",
  [FileChangeKind.MODE]: "mode",
};

const octal = (mode: number) => (mode ? mode.toString(8).padStart(4, "0") : "");

/** "3 files differ: 1 added, 2 changed", in the order added, removed, changed, mode. */
export function diffSummary(changes: FileChange[]): string {
  if (changes.length === 0) return "no files differ";
  const counts = new Map<string, number>();
  for (const c of changes) counts.set(changeNames[c.kind], (counts.get(changeNames[c.kind]) ?? 0) + 1);
  const parts = ["added", "removed", "changed", "mode"].flatMap((k) =>
    counts.has(k) ? [`${counts.get(k)} ${k}`] : [],
  );
  return `${changes.length} ${changes.length === 1 ? "file differs" : "files differ"}: ${parts.join(", ")}`;
}

export function boundedDiff(changes: FileChange[], limits: Pick<ToolLimits, "diffFiles" | "patchChars">) {
  const listed = changes.slice(0, limits.diffFiles);
  let room = limits.patchChars;
  let patchesCut = 0;
  const summaries = listed.map((c) => {
    let { patch, patchOmitted } = c;
    if (patch.length > room) {
      patch = "";
      patchOmitted = "limit reached";
      patchesCut++;
    } else room -= patch.length;
    return {
      path: c.path,
      change: changeNames[c.kind],
      sizeBefore: c.sizeBefore,
      sizeAfter: c.sizeAfter,
      modeBefore: octal(c.modeBefore),
      modeAfter: octal(c.modeAfter),
      patch,
      patchOmitted,
    };
  });
  const notes: string[] = [];
  if (listed.length < changes.length)
    notes.push(`only the first ${listed.length} of ${changes.length} files (by path) are listed`);
  if (patchesCut) {
    const were = patchesCut === 1 ? "patch was" : "patches were";
    notes.push(`${patchesCut} ${were} left out past ${limits.patchChars} characters of patches`);
  }
  const note = notes.length ? `${notes.join("; ")}: narrow the diff with paths` : "";
  return { changes: summaries, summary: diffSummary(changes), note };
}
