/**
 * The editor: CodeMirror 6 with a tab per open file. Saving (Ctrl/Cmd-S) writes with the version
 * read from the runner as `expected_version`; when someone else changed the file meanwhile the
 * runner answers FailedPrecondition and the user chooses: overwrite, load theirs, or keep editing.
 * Watch events reload open files that have no unsaved changes and flag the others.
 */
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { indentUnit } from "@codemirror/language";
import { Compartment, EditorState, type Extension, type Text } from "@codemirror/state";
import { oneDark } from "@codemirror/theme-one-dark";
import { EditorView, keymap } from "@codemirror/view";
import { Code } from "@connectrpc/connect";
import { basicSetup } from "codemirror";
import { type FileEvent, FileEventType } from "../../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { choose, describeError, h, isCode, toast } from "../ui.js";
import { baseName } from "./file-tree.js";

interface OpenFile {
  path: string;
  state: EditorState;
  version: string;
  saved: Text;
  onDisk: "same" | "changed" | "deleted";
  tab: HTMLElement;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function languageFor(path: string): Extension {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  if (["js", "mjs", "cjs", "jsx"].includes(ext)) return javascript({ jsx: ext === "jsx" });
  if (["ts", "tsx", "mts", "cts"].includes(ext)) return javascript({ typescript: true, jsx: ext === "tsx" });
  if (ext === "py") return python();
  if (ext === "json") return json();
  if (ext === "md" || ext === "markdown") return markdown();
  return [];
}

export interface EditorOptions {
  files: RunnerClients["files"];
  onActiveChange(path: string): void;
}

export class Editor {
  readonly el: HTMLElement;
  private readonly tabs: HTMLElement;
  private readonly host: HTMLElement;
  private readonly status: HTMLElement;
  private readonly position: HTMLElement;
  private readonly placeholder: HTMLElement;
  private readonly open = new Map<string, OpenFile>();
  private readonly language = new Compartment();
  private view: EditorView | undefined;
  private active: OpenFile | undefined;
  private saving = false;

  constructor(private readonly o: EditorOptions) {
    this.tabs = h("div", { role: "tablist", class: "editor-tabs", "aria-label": "Open files" });
    this.host = h("div", { class: "editor-host", id: "editor-panel", role: "tabpanel", hidden: true });
    this.placeholder = h(
      "div",
      { class: "editor-empty" },
      h("p", {}, "Open a file from the explorer."),
      h("p", { class: "hint" }, h("kbd", {}, "Ctrl"), " + ", h("kbd", {}, "S"), " saves."),
    );
    this.status = h("div", { class: "editor-status-text", role: "status", "aria-live": "polite" });
    this.position = h("div", { class: "editor-position", "aria-label": "Cursor position" });
    this.el = h(
      "section",
      { class: "editor", "aria-label": "Editor" },
      this.tabs,
      this.host,
      this.placeholder,
      h("div", { class: "editor-status" }, this.status, this.position),
    );
    this.tabs.addEventListener("keydown", (ev) => {
      const tabs = [...this.tabs.querySelectorAll<HTMLElement>("[role=tab]")];
      const i = tabs.indexOf(document.activeElement as HTMLElement);
      if (i < 0) return;
      let j = i;
      if (ev.key === "ArrowRight") j = (i + 1) % tabs.length;
      else if (ev.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
      else if (ev.key === "Home") j = 0;
      else if (ev.key === "End") j = tabs.length - 1;
      else if (ev.key === "Delete") {
        void this.close(tabs[i].dataset.path!);
        ev.preventDefault();
        return;
      } else return;
      ev.preventDefault();
      tabs[j].focus();
      this.show(tabs[j].dataset.path!);
    });
  }

  get activePath(): string | undefined {
    return this.active?.path;
  }

  get dirty(): boolean {
    this.syncActive();
    return [...this.open.values()].some((f) => !f.state.doc.eq(f.saved));
  }

  async openFile(path: string): Promise<void> {
    if (this.open.has(path)) {
      this.show(path);
      this.view?.focus();
      return;
    }
    let text: string;
    let version: string;
    try {
      const res = await this.o.files.readFile({ path });
      if (res.truncated || res.content.includes(0)) {
        toast(`${path} is ${res.truncated ? "too large" : "a binary file"} and cannot be edited here.`, "error");
        return;
      }
      text = decoder.decode(res.content);
      version = res.info?.version ?? "";
    } catch (err) {
      toast(`Could not open ${path}: ${describeError(err)}`, "error");
      return;
    }
    if (this.open.has(path)) return this.show(path);
    const state = this.makeState(path, text);
    const tab = this.makeTab(path);
    this.open.set(path, { path, state, version, saved: state.doc, onDisk: "same", tab });
    this.show(path);
    this.view?.focus();
  }

  private makeState(path: string, text: string): EditorState {
    return EditorState.create({
      doc: text,
      extensions: [
        basicSetup,
        oneDark,
        indentUnit.of("  "),
        EditorState.tabSize.of(2),
        this.language.of(languageFor(path)),
        keymap.of([
          {
            key: "Mod-s",
            preventDefault: true,
            run: () => {
              void this.save();
              return true;
            },
          },
        ]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged || u.selectionSet) this.refreshChrome();
        }),
        EditorView.contentAttributes.of({ "aria-label": `Contents of ${path}` }),
      ],
    });
  }

  private makeTab(path: string): HTMLElement {
    const close = h(
      "span",
      { class: "tab-close", role: "button", "aria-label": `Close ${baseName(path)}`, title: "Close" },
      "×",
    );
    const tab = h(
      "div",
      {
        role: "tab",
        class: "editor-tab",
        "data-path": path,
        "aria-controls": "editor-panel",
        title: path,
        tabindex: -1,
      },
      h("span", { class: "tab-name" }, baseName(path)),
      h("span", { class: "tab-dirty", "aria-hidden": "true" }),
      close,
    );
    tab.addEventListener("click", (ev) => {
      if (ev.target === close) void this.close(tab.dataset.path!);
      else this.show(tab.dataset.path!);
    });
    tab.addEventListener("auxclick", (ev) => {
      if (ev.button === 1) void this.close(tab.dataset.path!);
    });
    this.tabs.append(tab);
    return tab;
  }

  private syncActive() {
    if (this.active && this.view) this.active.state = this.view.state;
  }

  private show(path: string) {
    const f = this.open.get(path);
    if (!f) return;
    this.syncActive();
    this.active = f;
    if (!this.view) this.view = new EditorView({ state: f.state, parent: this.host });
    else this.view.setState(f.state);
    this.host.hidden = false;
    this.placeholder.hidden = true;
    this.refreshChrome();
    this.o.onActiveChange(path);
  }

  private refreshChrome() {
    this.syncActive();
    for (const f of this.open.values()) {
      const on = f === this.active;
      f.tab.setAttribute("aria-selected", String(on));
      f.tab.tabIndex = on ? 0 : -1;
      const dirty = !f.state.doc.eq(f.saved);
      f.tab.classList.toggle("dirty", dirty);
      f.tab.classList.toggle("gone", f.onDisk === "deleted");
      f.tab.setAttribute("aria-label", `${baseName(f.path)}${dirty ? ", unsaved changes" : ""}`);
    }
    const f = this.active;
    if (!f) {
      this.status.textContent = "";
      this.position.textContent = "";
      return;
    }
    const dirty = !f.state.doc.eq(f.saved);
    const disk =
      f.onDisk === "deleted" ? " · deleted on disk" : f.onDisk === "changed" ? " · changed on disk since opened" : "";
    const head = f.state.selection.main.head;
    const line = f.state.doc.lineAt(head);
    this.status.textContent = `${f.path} — ${this.saving ? "saving…" : dirty ? "unsaved changes" : "saved"}${disk}`;
    this.position.textContent = `Ln ${line.number}, Col ${head - line.from + 1}`;
    this.status.dataset.state = this.saving ? "saving" : dirty ? "dirty" : "saved";
    this.status.parentElement!.dataset.state = this.status.dataset.state;
  }

  async save(force = false): Promise<void> {
    const f = this.active;
    if (!f || this.saving) return;
    this.syncActive();
    const doc = f.state.doc;
    this.saving = true;
    this.refreshChrome();
    try {
      const res = await this.o.files.writeFile({
        path: f.path,
        content: encoder.encode(doc.toString()),
        expectedVersion: force ? "" : f.version,
        createParents: true,
      });
      f.version = res.info?.version ?? "";
      f.saved = doc;
      f.onDisk = "same";
    } catch (err) {
      this.saving = false;
      if (isCode(err, Code.FailedPrecondition)) await this.conflict(f);
      else toast(`Could not save ${f.path}: ${describeError(err)}`, "error");
    } finally {
      this.saving = false;
      this.refreshChrome();
    }
  }

  private async conflict(f: OpenFile) {
    const choice = await choose(
      `${baseName(f.path)} changed on disk`,
      `Someone (a terminal, a tool or another tab) changed ${f.path} after you opened it. Overwrite their version with yours, or load theirs and drop your changes?`,
      [
        { value: "keep", label: "Keep editing" },
        { value: "theirs", label: "Load their version", danger: true },
        { value: "overwrite", label: "Overwrite", primary: true },
      ],
    );
    if (choice === "overwrite") await this.save(true);
    else if (choice === "theirs") await this.reload(f);
    this.view?.focus();
  }

  private async reload(f: OpenFile) {
    try {
      const res = await this.o.files.readFile({ path: f.path });
      const text = decoder.decode(res.content);
      f.version = res.info?.version ?? "";
      this.syncActive();
      const tr = f.state.update({ changes: { from: 0, to: f.state.doc.length, insert: text } });
      f.state = tr.state;
      f.saved = f.state.doc;
      f.onDisk = "same";
      if (f === this.active) this.view?.setState(f.state);
    } catch (err) {
      if (isCode(err, Code.NotFound)) f.onDisk = "deleted";
      else toast(`Could not reload ${f.path}: ${describeError(err)}`, "error");
    }
    this.refreshChrome();
  }

  /** Watch events for open files: reload clean ones that changed, flag the rest. */
  async onFileEvents(events: FileEvent[]): Promise<void> {
    // The last word on each path: a file whose last event is a deletion (a rename's old name, say) is
    // gone without asking the runner, whose NotFound the browser would log as a failed request.
    const last = new Map(events.map((e) => [e.path, e.type]));
    for (const f of this.open.values()) {
      const type = last.get(f.path);
      if (type === undefined) continue;
      if (type === FileEventType.DELETED) {
        f.onDisk = "deleted";
        continue;
      }
      try {
        const { info } = await this.o.files.statFile({ path: f.path });
        if (!info || info.version === f.version) {
          if (f.onDisk === "deleted") f.onDisk = "same";
          continue;
        }
        this.syncActive();
        if (f.state.doc.eq(f.saved)) await this.reload(f);
        else f.onDisk = "changed";
      } catch (err) {
        if (isCode(err, Code.NotFound)) f.onDisk = "deleted";
      }
    }
    if (events.some((e) => e.type === FileEventType.DELETED)) this.refreshChrome();
    this.refreshChrome();
  }

  renamed(from: string, to: string): void {
    for (const f of [...this.open.values()]) {
      if (f.path !== from && !f.path.startsWith(`${from}/`)) continue;
      const next = to + f.path.slice(from.length);
      this.open.delete(f.path);
      f.path = next;
      f.tab.dataset.path = next;
      f.tab.title = next;
      f.tab.querySelector(".tab-name")!.textContent = baseName(next);
      f.state = f.state.update({ effects: this.language.reconfigure(languageFor(next)) }).state;
      if (f === this.active) this.view?.setState(f.state);
      this.open.set(next, f);
    }
    if (this.active) this.o.onActiveChange(this.active.path);
    this.refreshChrome();
  }

  deleted(path: string): void {
    for (const f of this.open.values()) if (f.path === path || f.path.startsWith(`${path}/`)) f.onDisk = "deleted";
    this.refreshChrome();
  }

  async close(path: string): Promise<void> {
    const f = this.open.get(path);
    if (!f) return;
    this.syncActive();
    if (!f.state.doc.eq(f.saved)) {
      const c = await choose(`Close ${baseName(path)}?`, "It has unsaved changes.", [
        { value: "cancel", label: "Cancel" },
        { value: "discard", label: "Discard changes", danger: true },
      ]);
      if (c !== "discard") return;
    }
    const order = [...this.open.keys()];
    this.open.delete(path);
    f.tab.remove();
    if (this.active === f) {
      this.active = undefined;
      const next = order[order.indexOf(path) + 1] ?? order[order.indexOf(path) - 1];
      if (next && this.open.has(next)) this.show(next);
      else {
        this.host.hidden = true;
        this.placeholder.hidden = false;
        this.o.onActiveChange("");
        this.refreshChrome();
      }
    }
  }

  destroy(): void {
    this.view?.destroy();
  }
}
