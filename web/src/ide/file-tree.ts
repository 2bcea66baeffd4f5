/**
 * The file explorer: a lazy tree (a directory is listed when first expanded) kept live by the
 * runner's WatchFiles stream (events reload the affected, already-listed directories). Create,
 * rename, move and delete from the context menu (right-click, the Menu key or Shift+F10) or keys
 * (F2, Delete). ARIA tree with a roving tabindex: arrows move, Right/Left expand and collapse.
 */
import { Code } from "@connectrpc/connect";
import { type FileEvent, FileType } from "../../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { confirmAction, describeError, h, isCode, promptText, toast } from "../ui.js";
import { type MenuItem, showContextMenu } from "./context-menu.js";

interface TreeNode {
  path: string;
  name: string;
  dir: boolean;
  expanded: boolean;
  /** Child paths once listed; undefined until then. */
  children?: string[];
}

export interface FileTreeOptions {
  files: RunnerClients["files"];
  onOpen(path: string): void;
  onMoved(from: string, to: string): void;
  onDeleted(path: string): void;
}

export const parentOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
export const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);
const validName = (v: string) =>
  /[\\\0]/.test(v) || v.split("/").some((s) => s === ".." || s === ".")
    ? "Use a name without \\, '.' or '..' segments."
    : undefined;

export class FileTree {
  readonly el: HTMLElement;
  private readonly tree: HTMLUListElement;
  private readonly nodes = new Map<string, TreeNode>();
  private selected = "";
  private activeFile = "";
  private pendingReload = new Set<string>();
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly o: FileTreeOptions) {
    this.nodes.set("", { path: "", name: "", dir: true, expanded: true });
    this.tree = h("ul", { role: "tree", class: "tree", "aria-label": "Files", id: "file-tree" });
    const newFile = h(
      "button",
      { type: "button", class: "icon-btn", title: "New file", "aria-label": "New file" },
      "+",
    );
    const newDir = h(
      "button",
      { type: "button", class: "icon-btn", title: "New folder", "aria-label": "New folder" },
      "⊞",
    );
    newFile.addEventListener("click", () => void this.createIn(this.targetDir(), false));
    newDir.addEventListener("click", () => void this.createIn(this.targetDir(), true));
    this.el = h(
      "nav",
      { class: "explorer", "aria-label": "File explorer" },
      h("div", { class: "panel-head" }, h("h2", {}, "Files"), h("div", { class: "panel-tools" }, newFile, newDir)),
      this.tree,
    );
    this.tree.addEventListener("keydown", (ev) => this.onKey(ev));
    this.tree.addEventListener("contextmenu", (ev) => {
      ev.preventDefault();
      const li = (ev.target as Element).closest<HTMLElement>("[role=treeitem]");
      const path = li?.dataset.path ?? "";
      if (li) this.select(path, false);
      this.menu(path, ev.clientX, ev.clientY);
    });
  }

  async load(): Promise<void> {
    await this.list("");
    this.render();
  }

  /** Highlights the file shown in the editor. */
  setActive(path: string): void {
    this.activeFile = path;
    this.render();
  }

  /** Watch events: reload the listed directories they touch (batched). */
  applyEvents(events: FileEvent[]): void {
    for (const e of events) {
      const parent = parentOf(e.path);
      if (this.nodes.get(parent)?.children) this.pendingReload.add(parent);
    }
    if (!this.pendingReload.size) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => void this.flushReloads(), 30);
  }

  /** Re-lists every listed directory (after the watch stream reconnects and may have missed events). */
  async reloadAll(): Promise<void> {
    for (const [p, n] of this.nodes) if (n.children) this.pendingReload.add(p);
    await this.flushReloads();
  }

  private async flushReloads() {
    const dirs = [...this.pendingReload];
    this.pendingReload.clear();
    await Promise.all(dirs.map((d) => this.list(d)));
    this.render();
  }

  private async list(dir: string): Promise<void> {
    const node = this.nodes.get(dir);
    if (!node) return;
    let entries: { path: string; name: string; type: FileType }[];
    try {
      ({ entries } = await this.o.files.listFiles({ path: dir, depth: 1, includeHidden: true }));
    } catch (err) {
      if (isCode(err, Code.NotFound)) return this.forget(dir);
      throw err;
    }
    const children = entries
      .filter((e) => e.path !== dir && e.name !== ".git")
      .sort((a, b) => {
        const ad = a.type === FileType.DIRECTORY ? 0 : 1;
        const bd = b.type === FileType.DIRECTORY ? 0 : 1;
        return ad - bd || a.name.localeCompare(b.name);
      });
    const keep = new Set(children.map((c) => c.path));
    for (const old of node.children ?? []) if (!keep.has(old)) this.forget(old);
    for (const c of children) {
      const existing = this.nodes.get(c.path);
      const dirType = c.type === FileType.DIRECTORY;
      if (!existing || existing.dir !== dirType)
        this.nodes.set(c.path, { path: c.path, name: c.name, dir: dirType, expanded: false });
    }
    node.children = children.map((c) => c.path);
  }

  private forget(path: string) {
    const node = this.nodes.get(path);
    if (!node || path === "") return;
    for (const c of node.children ?? []) this.forget(c);
    this.nodes.delete(path);
  }

  private async toggle(path: string, expand?: boolean) {
    const node = this.nodes.get(path);
    if (!node?.dir) return;
    node.expanded = expand ?? !node.expanded;
    if (node.expanded && !node.children) {
      try {
        await this.list(path);
      } catch (err) {
        toast(`Could not list ${path}: ${describeError(err)}`, "error");
      }
    }
    this.render();
  }

  private visible(): TreeNode[] {
    const out: TreeNode[] = [];
    const walk = (dir: string) => {
      for (const p of this.nodes.get(dir)?.children ?? []) {
        const n = this.nodes.get(p);
        if (!n) continue;
        out.push(n);
        if (n.dir && n.expanded) walk(p);
      }
    };
    walk("");
    return out;
  }

  private render() {
    const hadFocus = this.tree.contains(document.activeElement);
    const items = this.visible();
    if (!items.some((n) => n.path === this.selected)) this.selected = items[0]?.path ?? "";
    const build = (dir: string, level: number): HTMLElement[] =>
      (this.nodes.get(dir)?.children ?? []).flatMap((p) => {
        const n = this.nodes.get(p);
        if (!n) return [];
        const row = h(
          "div",
          { class: "tree-row", style: `padding-left:${8 + (level - 1) * 14}px` },
          h("span", { class: `twisty ${n.dir ? (n.expanded ? "open" : "closed") : "none"}`, "aria-hidden": "true" }),
          h("span", { class: `file-icon ${n.dir ? "dir" : iconFor(n.name)}`, "aria-hidden": "true" }),
          h("span", { class: "tree-label" }, n.name),
        );
        const li = h(
          "li",
          {
            role: "treeitem",
            "aria-label": n.name,
            "data-path": n.path,
            "aria-level": level,
            "aria-selected": String(n.path === this.selected),
            "aria-current": n.path === this.activeFile ? "page" : undefined,
            "aria-expanded": n.dir ? String(n.expanded) : undefined,
            tabindex: n.path === this.selected ? 0 : -1,
            title: n.path,
          },
          row,
        );
        li.addEventListener("click", (ev) => {
          ev.stopPropagation();
          this.select(n.path, false);
          if (n.dir) void this.toggle(n.path);
          else this.o.onOpen(n.path);
        });
        if (n.dir && n.expanded && n.children?.length) {
          li.append(h("ul", { role: "group" }, ...build(n.path, level + 1)));
        }
        return [li];
      });
    this.tree.replaceChildren(...build("", 1));
    if (!items.length) this.tree.append(h("li", { class: "tree-empty", role: "none" }, "No files"));
    if (hadFocus) this.focusSelected();
  }

  private select(path: string, focus = true) {
    this.selected = path;
    for (const li of this.tree.querySelectorAll<HTMLElement>("[role=treeitem]")) {
      const on = li.dataset.path === path;
      li.tabIndex = on ? 0 : -1;
      li.setAttribute("aria-selected", String(on));
    }
    if (focus) this.focusSelected();
  }

  private focusSelected() {
    this.tree.querySelector<HTMLElement>(`[role=treeitem][data-path="${CSS.escape(this.selected)}"]`)?.focus();
  }

  private onKey(ev: KeyboardEvent) {
    const items = this.visible();
    const i = items.findIndex((n) => n.path === this.selected);
    const n = items[i];
    const go = (j: number) => items[j] && this.select(items[j].path);
    switch (ev.key) {
      case "ArrowDown":
        go(Math.min(items.length - 1, i + 1));
        break;
      case "ArrowUp":
        go(Math.max(0, i - 1));
        break;
      case "Home":
        go(0);
        break;
      case "End":
        go(items.length - 1);
        break;
      case "ArrowRight":
        if (n?.dir && !n.expanded) void this.toggle(n.path, true);
        else if (n?.dir) go(i + 1);
        break;
      case "ArrowLeft":
        if (n?.dir && n.expanded) void this.toggle(n.path, false);
        else if (n && parentOf(n.path)) this.select(parentOf(n.path));
        break;
      case "Enter":
      case " ":
        if (n?.dir) void this.toggle(n.path);
        else if (n) this.o.onOpen(n.path);
        break;
      case "F2":
        if (n) void this.rename(n);
        break;
      case "Delete":
        if (n) void this.remove(n);
        break;
      case "ContextMenu":
        this.menuAtSelection();
        break;
      default:
        if (ev.key === "F10" && ev.shiftKey) {
          this.menuAtSelection();
          break;
        }
        return;
    }
    ev.preventDefault();
  }

  private menuAtSelection() {
    const li = this.tree.querySelector<HTMLElement>(`[data-path="${CSS.escape(this.selected)}"]`);
    const r = (li ?? this.tree).getBoundingClientRect();
    this.menu(this.selected, r.left + 24, r.top + Math.min(r.height, 22));
  }

  private targetDir(): string {
    const n = this.nodes.get(this.selected);
    if (!n) return "";
    return n.dir ? n.path : parentOf(n.path);
  }

  private menu(path: string, x: number, y: number) {
    const n = this.nodes.get(path);
    const dir = n ? (n.dir ? n.path : parentOf(n.path)) : "";
    const items: MenuItem[] = [
      { label: "New file…", run: () => void this.createIn(dir, false) },
      { label: "New folder…", run: () => void this.createIn(dir, true) },
    ];
    if (n?.path) {
      if (!n.dir) items.unshift({ label: "Open", run: () => this.o.onOpen(n.path) });
      items.push(
        { label: "Rename…", shortcut: "F2", run: () => void this.rename(n) },
        { label: "Move to…", run: () => void this.move(n) },
        { label: "Delete", shortcut: "Del", danger: true, run: () => void this.remove(n) },
      );
    }
    showContextMenu(x, y, items, n?.path ? `Actions for ${n.name}` : "File actions");
  }

  private async createIn(dir: string, folder: boolean) {
    const where = dir ? ` in ${dir}/` : "";
    const name = await promptText(folder ? "New folder" : "New file", `Name${where}`, "", validName);
    if (!name) return;
    const path = join(dir, name);
    try {
      if (folder) await this.o.files.createDirectory({ path, parents: true });
      else await this.o.files.writeFile({ path, content: new Uint8Array(), exclusive: true, createParents: true });
      await this.expandTo(path);
      this.select(path);
      if (!folder) this.o.onOpen(path);
    } catch (err) {
      toast(
        isCode(err, Code.AlreadyExists) ? `${path} already exists.` : `Could not create ${path}: ${describeError(err)}`,
        "error",
      );
    }
  }

  private async rename(n: TreeNode) {
    const name = await promptText(`Rename ${n.name}`, "New name", n.name, (v) =>
      v.includes("/") ? "A name cannot contain /. Use Move to… instead." : validName(v),
    );
    if (!name || name === n.name) return;
    await this.moveTo(n, join(parentOf(n.path), name));
  }

  private async move(n: TreeNode) {
    const dest = await promptText(
      `Move ${n.name}`,
      "Destination folder (relative to the workspace root; / for the root)",
      parentOf(n.path) || "/",
      (v) => validName(v.replace(/^\/+|\/+$/g, "") || "x"),
    );
    if (dest === undefined) return;
    const folder = dest.replace(/^\/+|\/+$/g, "");
    await this.moveTo(n, join(folder, n.name));
  }

  private async moveTo(n: TreeNode, destination: string) {
    if (destination === n.path) return;
    try {
      await this.o.files.moveFile({ source: n.path, destination });
      this.o.onMoved(n.path, destination);
      this.pendingReload.add(parentOf(n.path));
      await this.expandTo(destination);
      this.select(destination);
    } catch (err) {
      toast(`Could not move ${n.path}: ${describeError(err)}`, "error");
    }
  }

  private async remove(n: TreeNode) {
    const what = n.dir ? `the folder ${n.path} and everything in it` : n.path;
    if (!(await confirmAction(`Delete ${n.name}?`, `This deletes ${what}.`, "Delete"))) return;
    try {
      await this.o.files.deleteFile({ path: n.path, recursive: n.dir });
      this.o.onDeleted(n.path);
      this.pendingReload.add(parentOf(n.path));
      await this.flushReloads();
    } catch (err) {
      toast(`Could not delete ${n.path}: ${describeError(err)}`, "error");
    }
  }

  /** Lists and expands every directory down to a path's parent, so it shows. */
  private async expandTo(path: string) {
    const parts = path.split("/");
    let dir = "";
    const dirs = [""];
    for (const part of parts.slice(0, -1)) {
      dir = join(dir, part);
      dirs.push(dir);
    }
    for (const d of [...this.pendingReload, ...dirs]) {
      if (!this.nodes.has(d)) this.nodes.set(d, { path: d, name: baseName(d), dir: true, expanded: true });
      const node = this.nodes.get(d)!;
      node.expanded = true;
      await this.list(d);
    }
    this.pendingReload.clear();
    this.render();
  }
}

function iconFor(name: string): string {
  const ext = name.slice(name.lastIndexOf(".") + 1).toLowerCase();
  if (["js", "mjs", "cjs", "ts", "tsx", "jsx"].includes(ext)) return "js";
  if (ext === "py") return "py";
  if (ext === "json") return "json";
  if (ext === "md") return "md";
  return "file";
}
