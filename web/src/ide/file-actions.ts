/**
 * What the file explorer does to files: create, rename, move, delete and download (asked for with a
 * prompt or a confirmation, errors as toasts), and the context menu that offers them.
 */
import { Code } from "@connectrpc/connect";
import { confirmAction, describeError, isCode, promptText, toast } from "../ui.js";
import type { MenuItem } from "./context-menu.js";
import type { FileTreeOptions } from "./file-tree.js";
import { joinPath, parentOf } from "./paths.js";
import { downloadPath } from "./transfers.js";
import type { TreeModel, TreeNode } from "./tree-model.js";

export interface FileActionHost extends FileTreeOptions {
  model: TreeModel;
  /** Lists what changed, expands down to `path` and selects it. */
  reveal(path: string): Promise<void>;
  /** Lists the stale directories again and shows them. */
  refresh(): Promise<void>;
}

const validName = (v: string) =>
  /[\\\0]/.test(v) || v.split("/").some((s) => s === ".." || s === ".")
    ? "Use a name without \\, '.' or '..' segments."
    : undefined;

export class FileActions {
  constructor(private readonly host: FileActionHost) {}

  /** The context menu for `n` (or for the empty space, when undefined); new entries go in `dir`. */
  menuItems(n: TreeNode | undefined, dir: string): MenuItem[] {
    const items: MenuItem[] = [
      { label: "New file…", run: () => void this.createIn(dir, false) },
      { label: "New folder…", run: () => void this.createIn(dir, true) },
    ];
    if (n?.path) {
      if (!n.dir) items.unshift({ label: "Open", run: () => this.host.onOpen(n.path) });
      items.push(
        { label: "Rename…", shortcut: "F2", run: () => void this.rename(n) },
        { label: "Move to…", run: () => void this.move(n) },
        { label: "Download", run: () => void downloadPath(this.host, n.path) },
        { label: "Delete", shortcut: "Del", danger: true, run: () => void this.remove(n) },
      );
    }
    return items;
  }

  /** Lists what changed and selects `path` (after an upload). */
  async revealPath(path: string) {
    if (path) await this.host.reveal(path);
    else await this.host.refresh();
  }

  async createIn(dir: string, folder: boolean) {
    const { files } = this.host;
    const where = dir ? ` in ${dir}/` : "";
    const name = await promptText(folder ? "New folder" : "New file", `Name${where}`, "", validName);
    if (!name) return;
    const path = joinPath(dir, name);
    try {
      if (folder) await files.createDirectory({ path, parents: true });
      else await files.writeFile({ path, content: new Uint8Array(), exclusive: true, createParents: true });
      await this.host.reveal(path);
      if (!folder) this.host.onOpen(path);
    } catch (err) {
      toast(
        isCode(err, Code.AlreadyExists) ? `${path} already exists.` : `Could not create ${path}: ${describeError(err)}`,
        "error",
      );
    }
  }

  async rename(n: TreeNode) {
    const name = await promptText(`Rename ${n.name}`, "New name", n.name, (v) =>
      v.includes("/") ? "A name cannot contain /. Use Move to… instead." : validName(v),
    );
    if (!name || name === n.name) return;
    await this.moveTo(n, joinPath(parentOf(n.path), name));
  }

  async move(n: TreeNode) {
    const dest = await promptText(
      `Move ${n.name}`,
      "Destination folder (relative to the workspace root; / for the root)",
      parentOf(n.path) || "/",
      (v) => validName(v.replace(/^\/+|\/+$/g, "") || "x"),
    );
    if (dest === undefined) return;
    const folder = dest.replace(/^\/+|\/+$/g, "");
    await this.moveTo(n, joinPath(folder, n.name));
  }

  private async moveTo(n: TreeNode, destination: string) {
    if (destination === n.path) return;
    try {
      await this.host.files.moveFile({ source: n.path, destination });
      this.host.onMoved(n.path, destination);
      this.host.model.noteChangeIn(n.path);
      await this.host.reveal(destination);
    } catch (err) {
      toast(`Could not move ${n.path}: ${describeError(err)}`, "error");
    }
  }

  async remove(n: TreeNode) {
    const what = n.dir ? `the folder ${n.path} and everything in it` : n.path;
    if (!(await confirmAction(`Delete ${n.name}?`, `This deletes ${what}.`, "Delete"))) return;
    try {
      await this.host.files.deleteFile({ path: n.path, recursive: n.dir });
      this.host.onDeleted(n.path);
      this.host.model.noteChangeIn(n.path);
      await this.host.refresh();
    } catch (err) {
      toast(`Could not delete ${n.path}: ${describeError(err)}`, "error");
    }
  }
}
