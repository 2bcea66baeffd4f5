/**
 * A unified diff (DiffCheckpoints' FileChange.patch, as the `diff` package writes it) as rows to
 * draw: hunk headers, added, removed and unchanged lines with their line numbers before and after,
 * and git's "\ No newline at end of file" notes. The file headers above the first hunk are dropped
 * (the panel names the file). DOM-free, so the unit tests import it (web/tsconfig.node.json).
 */

export type DiffRowKind = "hunk" | "add" | "del" | "ctx" | "note";

export interface DiffRow {
  kind: DiffRowKind;
  /** The line without its +, - or space; a hunk header or a note as it is. */
  text: string;
  /** Its number in the file before (removed and unchanged lines). */
  before?: number;
  /** Its number in the file after (added and unchanged lines). */
  after?: number;
}

export interface ParsedDiff {
  rows: DiffRow[];
  added: number;
  removed: number;
}

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

export function parseUnifiedDiff(patch: string): ParsedDiff {
  const lines = patch.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const rows: DiffRow[] = [];
  let before = 0;
  let after = 0;
  let inHunk = false;
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    const hunk = HUNK.exec(line);
    if (hunk) {
      before = Number(hunk[1]);
      after = Number(hunk[2]);
      inHunk = true;
      rows.push({ kind: "hunk", text: line });
    } else if (!inHunk) {
      // "====…", "--- a/x", "+++ b/x"
    } else if (line.startsWith("+")) {
      added++;
      rows.push({ kind: "add", text: line.slice(1), after: after++ });
    } else if (line.startsWith("-")) {
      removed++;
      rows.push({ kind: "del", text: line.slice(1), before: before++ });
    } else if (line.startsWith("\\")) {
      rows.push({ kind: "note", text: line.slice(1).trim() });
    } else {
      rows.push({ kind: "ctx", text: line.slice(1), before: before++, after: after++ });
    }
  }
  return { rows, added, removed };
}
