/**
 * The file explorer: a lazy tree (a directory is listed when first expanded) kept live by the
 * runner's WatchFiles stream (events reload the affected, already-listed directories). Create,
 * rename, move and delete from the context menu (right-click, the Menu key or Shift+F10) or keys
 * (F2, Delete). ARIA tree with a roving tabindex: arrows move, Right/Left expand and collapse.
 * Files and folders dropped on the tree are uploaded into the folder they are dropped on; "Download"
 * saves a file or a folder (as a zip) through the browser (transfers.ts).
 *
 * This file is the explorer's element, selection and keys; tree-model.ts holds the listed tree,
 * tree-view.ts draws it, file-actions.ts changes files.
 */
import type { FileEvent } from "../../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { describeError, h, toast } from "../ui.js";
import { showContextMenu } from "./context-menu.js";
import { FileActions } from "./file-actions.js";
import { parentOf } from "./paths.js";
import { droppedFiles, uploadDropped } from "./transfers.js";
import { TreeModel } from "./tree-model.js";
import { treeItems } from "./tree-view.js";

export { baseName, parentOf } from "./paths.js";

export interface FileTreeOptions {
  files: RunnerClients["files"];
  /** The runner's base URL, for the transfer route (downloads and dropped files). */
  runnerUrl(): string;
  onOpen(path: string): void;
  onMoved(from: string, to: string): void;
  onDeleted(path: string): void;
}

export class FileTree {
  readonly el: HTMLElement;
  private readonly tree = h("ul", { role: "tree", class: "tree", "aria-label": "Files", id: "file-tree" });
  private readonly model: TreeModel;
  private readonly actions: FileActions;
  private selected = "";
  private activeFile = "";
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly status = h("div", { class: "transfer-status", role: "status", "aria-live": "polite" });

  constructor(private readonly o: FileTreeOptions) {
    this.model = new TreeModel(o.files);
    this.actions = new FileActions({
      ...o,
      model: this.model,
      reveal: async (path) => {
        await this.model.expandTo(path);
        this.render();
        this.select(path);
      },
      refresh: () => this.flushReloads(),
    });
    this.el = h(
      "nav",
      { class: "explorer", "aria-label": "File explorer" },
      h("div", { class: "panel-head" }, h("h2", {}, "Files"), h("div", { class: "panel-tools" }, ...this.newButtons())),
      this.status,
      this.tree,
    );
    this.tree.addEventListener("keydown", (ev) => this.onKey(ev));
    this.acceptDrops();
    this.tree.addEventListener("contextmenu", (ev) => {
      ev.preventDefault();
      const li = (ev.target as Element).closest<HTMLElement>("[role=treeitem]");
      const path = li?.dataset.path ?? "";
      if (li) this.select(path, false);
      this.menu(path, ev.clientX, ev.clientY);
    });
  }

  async load(): Promise<void> {
    await this.model.list("");
    this.render();
  }

  /** Highlights the file shown in the editor. */
  setActive(path: string): void {
    this.activeFile = path;
    this.render();
  }

  /** Watch events: reload the listed directories they touch (batched). */
  applyEvents(events: FileEvent[]): void {
    if (!this.model.noteEvents(events)) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => void this.flushReloads(), 30);
  }

  /** Re-lists every listed directory (after the watch stream reconnects and may have missed events). */
  async reloadAll(): Promise<void> {
    this.model.noteAllStale();
    await this.flushReloads();
  }

  /** Drops of files or folders upload into the folder under the pointer (a file's own folder; else the root). */
  private acceptDrops() {
    const folderAt = (ev: DragEvent) => {
      const li = (ev.target as Element).closest<HTMLElement>("[role=treeitem]");
      const n = li ? this.model.get(li.dataset.path ?? "") : undefined;
      return n ? (n.dir ? n.path : parentOf(n.path)) : "";
    };
    this.el.addEventListener("dragover", (ev) => {
      if (!ev.dataTransfer?.types.includes("Files")) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
      this.el.classList.add("drop-target");
    });
    this.el.addEventListener("dragleave", (ev) => {
      if (!this.el.contains(ev.relatedTarget as Node)) this.el.classList.remove("drop-target");
    });
    this.el.addEventListener("drop", (ev) => {
      if (!ev.dataTransfer?.types.includes("Files")) return;
      ev.preventDefault();
      this.el.classList.remove("drop-target");
      const dir = folderAt(ev);
      void droppedFiles(ev.dataTransfer)
        .then((dropped) => uploadDropped(this.o, dir, dropped, (text) => (this.status.textContent = text)))
        .then(async (written) => {
          if (!written.length) return;
          toast(`Uploaded ${written.length} file${written.length > 1 ? "s" : ""} to ${dir || "the workspace"}.`);
          this.model.noteChangeIn(written[0]);
          await this.actions.revealPath(written.length === 1 ? written[0] : dir);
        })
        .catch((err) => toast(`Could not upload: ${describeError(err)}`, "error"));
    });
  }

  private newButtons(): HTMLElement[] {
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
    newFile.addEventListener("click", () => void this.actions.createIn(this.targetDir(), false));
    newDir.addEventListener("click", () => void this.actions.createIn(this.targetDir(), true));
    return [newFile, newDir];
  }

  private async flushReloads() {
    await this.model.reloadStale();
    this.render();
  }

  private async toggle(path: string, expand?: boolean) {
    const node = this.model.get(path);
    if (!node?.dir) return;
    try {
      await this.model.toggle(node, expand);
    } catch (err) {
      toast(`Could not list ${path}: ${describeError(err)}`, "error");
    }
    this.render();
  }

  private render() {
    const hadFocus = this.tree.contains(document.activeElement);
    const items = this.model.visible();
    if (!items.some((n) => n.path === this.selected)) this.selected = items[0]?.path ?? "";
    this.tree.replaceChildren(
      ...treeItems(this.model, {
        selected: this.selected,
        activeFile: this.activeFile,
        onClick: (n) => {
          this.select(n.path, false);
          if (n.dir) void this.toggle(n.path);
          else this.o.onOpen(n.path);
        },
      }),
    );
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
    const items = this.model.visible();
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
        if (n) void this.actions.rename(n);
        break;
      case "Delete":
        if (n) void this.actions.remove(n);
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

  /** The directory new entries go in: the selected one, or the selected file's. */
  private targetDir(): string {
    const n = this.model.get(this.selected);
    if (!n) return "";
    return n.dir ? n.path : parentOf(n.path);
  }

  private menu(path: string, x: number, y: number) {
    const n = this.model.get(path);
    const dir = n ? (n.dir ? n.path : parentOf(n.path)) : "";
    showContextMenu(x, y, this.actions.menuItems(n, dir), n?.path ? `Actions for ${n.name}` : "File actions");
  }
}
