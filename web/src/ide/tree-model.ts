/**
 * What the file explorer knows of the workspace: a lazy tree (a directory is listed when first
 * expanded) and the directories waiting to be listed again because the watch stream or an action of
 * ours touched them. Only ListFiles reaches the runner from here.
 */
import { Code } from "@connectrpc/connect";
import { type FileEvent, FileType } from "../../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { isCode } from "../ui.js";
import { baseName, joinPath, parentOf } from "./paths.js";

export interface TreeNode {
  path: string;
  name: string;
  dir: boolean;
  expanded: boolean;
  /** Child paths once listed; undefined until then. */
  children?: string[];
}

export class TreeModel {
  private readonly nodes = new Map<string, TreeNode>();
  /** Listed directories to list again. */
  private readonly stale = new Set<string>();

  constructor(private readonly files: RunnerClients["files"]) {
    this.nodes.set("", { path: "", name: "", dir: true, expanded: true });
  }

  get(path: string): TreeNode | undefined {
    return this.nodes.get(path);
  }

  /** The listed children of a directory, in display order (directories first, then by name). */
  children(dir: string): TreeNode[] {
    return (this.nodes.get(dir)?.children ?? []).flatMap((p) => this.nodes.get(p) ?? []);
  }

  /** The nodes a reader sees, top to bottom: the root's children and those of every expanded directory. */
  visible(): TreeNode[] {
    const out: TreeNode[] = [];
    const walk = (dir: string) => {
      for (const n of this.children(dir)) {
        out.push(n);
        if (n.dir && n.expanded) walk(n.path);
      }
    };
    walk("");
    return out;
  }

  /** Marks the listed directories that watch events touch; true when one is now stale. */
  noteEvents(events: FileEvent[]): boolean {
    for (const e of events) {
      const parent = parentOf(e.path);
      if (this.nodes.get(parent)?.children) this.stale.add(parent);
    }
    return this.stale.size > 0;
  }

  /** Marks `path`'s directory stale (an entry in it was moved or deleted). */
  noteChangeIn(path: string) {
    this.stale.add(parentOf(path));
  }

  /** Marks every listed directory stale (the watch stream reconnected and may have missed events). */
  noteAllStale() {
    for (const [p, n] of this.nodes) if (n.children) this.stale.add(p);
  }

  /** Lists the stale directories again. */
  async reloadStale(): Promise<void> {
    const dirs = [...this.stale];
    this.stale.clear();
    await Promise.all(dirs.map((d) => this.list(d)));
  }

  /** Lists the stale directories, then lists and expands every directory down to a path's parent, so it shows. */
  async expandTo(path: string): Promise<void> {
    const parts = path.split("/");
    let dir = "";
    const dirs = [""];
    for (const part of parts.slice(0, -1)) {
      dir = joinPath(dir, part);
      dirs.push(dir);
    }
    for (const d of [...this.stale, ...dirs]) {
      if (!this.nodes.has(d)) this.nodes.set(d, { path: d, name: baseName(d), dir: true, expanded: true });
      const node = this.nodes.get(d)!;
      node.expanded = true;
      await this.list(d);
    }
    this.stale.clear();
  }

  /** Expands or collapses a directory (`expand` undefined: the other way), listing it the first time. */
  async toggle(node: TreeNode, expand?: boolean): Promise<void> {
    node.expanded = expand ?? !node.expanded;
    if (node.expanded && !node.children) await this.list(node.path);
  }

  /** Lists a known directory; a directory that is gone is forgotten with everything below it. */
  async list(dir: string): Promise<void> {
    const node = this.nodes.get(dir);
    if (!node) return;
    let entries: { path: string; name: string; type: FileType }[];
    try {
      ({ entries } = await this.files.listFiles({ path: dir, depth: 1, includeHidden: true }));
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
}
