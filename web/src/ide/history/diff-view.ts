/**
 * A file's unified diff drawn readably: each line with its numbers before and after, added lines
 * green, removed ones red, hunk headers between them. The lines keep their +, - or space (screen
 * readers read the sign; the numbers are hidden from them), and the block scrolls sideways rather
 * than wrapping code. Very long diffs are cut, saying how much was left out.
 */
import { h } from "../../ui.js";
import type { DiffRow, ParsedDiff } from "./diff-rows.js";

/** Rows drawn at most (a 1 MiB file changed everywhere would be tens of thousands of nodes). */
export const DIFF_ROWS_MAX = 3000;

const signs: Record<DiffRow["kind"], string> = { add: "+", del: "-", ctx: " ", hunk: "", note: "" };

function row(r: DiffRow): HTMLElement {
  if (r.kind === "hunk" || r.kind === "note") return h("div", { class: `diff-line ${r.kind}` }, r.text);
  return h(
    "div",
    { class: `diff-line ${r.kind}` },
    h("span", { class: "diff-num", "aria-hidden": "true" }, r.before?.toString() ?? ""),
    h("span", { class: "diff-num", "aria-hidden": "true" }, r.after?.toString() ?? ""),
    h("span", { class: "diff-code" }, signs[r.kind] + r.text),
  );
}

/** The diff of `path` as a focusable, scrollable region. */
export function renderDiff(path: string, diff: ParsedDiff): HTMLElement {
  const shown = diff.rows.slice(0, DIFF_ROWS_MAX);
  const left = diff.rows.length - shown.length;
  return h(
    "div",
    { class: "diff", role: "region", "aria-label": `Diff of ${path}`, tabindex: 0 },
    ...shown.map(row),
    left > 0 && h("div", { class: "diff-line note" }, `… ${left} more lines not shown`),
  );
}
