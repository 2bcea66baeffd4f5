/**
 * The repl's runner on the page, for as long as the repl runs: its session, the file tree, editor,
 * terminals and preview in their panes, and the WatchFiles stream that keeps the tree and the open
 * files current (re-opened with backoff; the tree is reloaded after a reconnect).
 */
import type { RunnerAccess } from "../../../gen/devex/core/v1/repl_pb.js";
import { RunnerSession } from "../api.js";
import { describeError, toast } from "../ui.js";
import { Editor } from "./editor.js";
import { FileTree } from "./file-tree.js";
import { follow, type StreamState } from "./follow.js";
import type { IdePanes } from "./layout.js";
import { PreviewPane } from "./preview.js";
import { TerminalPanel } from "./terminals.js";

export class RunnerWorkspace {
  readonly editor: Editor;
  readonly terminals: TerminalPanel;
  readonly preview: PreviewPane;
  filesStream: StreamState | "off" = "off";
  private readonly session: RunnerSession;
  private readonly tree: FileTree;
  private readonly abort = new AbortController();

  /**
   * `onConnectionChange` runs when the files stream's or the terminals' state changes; `setupBadge`
   * goes in the terminals' head.
   */
  constructor(
    replId: string,
    access: RunnerAccess,
    private readonly panes: IdePanes,
    private readonly onConnectionChange: () => void,
    setupBadge?: HTMLElement,
  ) {
    this.session = new RunnerSession(replId, access, (err) =>
      toast(`Could not refresh access to the repl: ${describeError(err)}`, "error"),
    );
    const files = this.session.clients.files;
    const editor = new Editor({ files, onActiveChange: (p) => this.tree.setActive(p) });
    this.tree = new FileTree({
      files,
      runnerUrl: () => this.session.access.url,
      onOpen: (p) => void editor.openFile(p),
      onMoved: (a, b) => editor.renamed(a, b),
      onDeleted: (p) => editor.deleted(p),
    });
    this.editor = editor;
    this.terminals = new TerminalPanel(this.session, onConnectionChange, setupBadge);
    const preview = new PreviewPane(this.session);
    this.preview = preview;
    panes.explorer.replaceChildren(this.tree.el);
    panes.editor.replaceChildren(editor.el);
    panes.terminal.replaceChildren(this.terminals.el);
    panes.preview.replaceChildren(preview.el);
  }

  /** The runner's background processes (the setup command's output). */
  get processes() {
    return this.session.clients.processes;
  }

  /** Loads the tree and the terminals, starts watching files and opens the file the run command runs. */
  async load(runCommand: string) {
    await Promise.all([this.tree.load(), this.terminals.load()]);
    this.watchFiles();
    // Open the file the repl runs ("node index.js" → index.js), if there is one.
    const main = runCommand.split(/\s+/).find((w) => /\.\w+$/.test(w));
    if (main) {
      const { info } = await this.session.clients.files.statFile({ path: main }).catch(() => ({ info: undefined }));
      if (info) await this.editor.openFile(main);
    }
  }

  private watchFiles() {
    const { files } = this.session.clients;
    const { signal } = this.abort;
    void follow(
      (sig, onHeader) => files.watchFiles({ path: "", recursive: true }, { signal: sig, onHeader }),
      async (m) => {
        this.tree.applyEvents(m.events);
        await this.editor.onFileEvents(m.events);
      },
      (st) => {
        this.filesStream = st;
        this.onConnectionChange();
      },
      signal,
      {
        onReconnected: () => void this.tree.reloadAll().catch(() => {}),
        probe: () => files.statFile({ path: "" }, { signal }),
      },
    ).catch(() => {});
  }

  dispose() {
    this.abort.abort();
    this.terminals.dispose();
    this.editor.destroy();
    this.session.close();
    const { explorer, editor, terminal, preview } = this.panes; // the history pane is the page's
    for (const pane of [explorer, editor, terminal, preview]) pane.replaceChildren();
  }
}
