/** The file explorer's rows: an ARIA tree of `<li role=treeitem>` with nested groups for expanded directories. */
import { h } from "../ui.js";
import type { TreeModel, TreeNode } from "./tree-model.js";

export interface TreeViewState {
  /** The row that takes focus (roving tabindex) and shows as selected. */
  selected: string;
  /** The file shown in the editor. */
  activeFile: string;
  onClick(node: TreeNode): void;
}

/** The rows below `dir` (at `level`, the root's children being level 1). */
export function treeItems(model: TreeModel, state: TreeViewState, dir = "", level = 1): HTMLElement[] {
  return model.children(dir).map((n) => {
    const li = h(
      "li",
      {
        role: "treeitem",
        "aria-label": n.name,
        "data-path": n.path,
        "aria-level": level,
        "aria-selected": String(n.path === state.selected),
        "aria-current": n.path === state.activeFile ? "page" : undefined,
        "aria-expanded": n.dir ? String(n.expanded) : undefined,
        tabindex: n.path === state.selected ? 0 : -1,
        title: n.path,
      },
      treeRow(n, level),
    );
    li.addEventListener("click", (ev) => {
      ev.stopPropagation();
      state.onClick(n);
    });
    if (n.dir && n.expanded && n.children?.length) {
      li.append(h("ul", { role: "group" }, ...treeItems(model, state, n.path, level + 1)));
    }
    return li;
  });
}

function treeRow(n: TreeNode, level: number): HTMLElement {
  return h(
    "div",
    { class: "tree-row", style: `padding-left:${8 + (level - 1) * 14}px` },
    h("span", { class: `twisty ${n.dir ? (n.expanded ? "open" : "closed") : "none"}`, "aria-hidden": "true" }),
    h("span", { class: `file-icon ${n.dir ? "dir" : iconFor(n.name)}`, "aria-hidden": "true" }),
    h("span", { class: "tree-label" }, n.name),
  );
}

function iconFor(name: string): string {
  const ext = name.slice(name.lastIndexOf(".") + 1).toLowerCase();
  if (["js", "mjs", "cjs", "ts", "tsx", "jsx"].includes(ext)) return "js";
  if (ext === "py") return "py";
  if (ext === "json") return "json";
  if (ext === "md") return "md";
  return "file";
}
