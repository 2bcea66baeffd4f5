/**
 * The IDE page for one repl: starts it (showing restore progress from WatchRepl), then lays out the
 * file explorer, the editor, the terminals and the preview around the repl's runner. Two server
 * streams stay open (WatchRepl on core, WatchFiles on the runner), both re-opened with backoff after
 * a drop; the connection indicator in the top bar sums them up with the terminals' sockets.
 *
 * This file is the page's lifecycle (start, stop, stopped elsewhere, not found); layout.ts builds
 * the page, overlay.ts shows progress and endings, workspace.ts holds what lives on the runner,
 * setup.ts the state and output of the repl's setup command, history/ the History panel (checkpoints,
 * restored with the runner's views down and started again as after a restart). The Run button types
 * the repl's run command (its template's, for a repl from before repls had their own) into the
 * active terminal.
 */
import { Code } from "@connectrpc/connect";
import { type Repl, ReplStatus, type Template, type WatchReplResponse } from "../../../gen/devex/core/v1/repl_pb.js";
import { core } from "../api.js";
import { editEnvironment } from "../environment.js";
import type { Dispose, PageContext } from "../main.js";
import { editNetwork, networkLabel } from "../network.js";
import { statusClass, statusLabel } from "../repl-status.js";
import { describeError, isCode, toast } from "../ui.js";
import type { IdePhase } from "./connection.js";
import { follow, type StreamState } from "./follow.js";
import { HistoryPanel } from "./history/history-panel.js";
import { type IdeLayout, renderIdeLayout } from "./layout.js";
import { SetupIndicator } from "./setup.js";
import { RunnerWorkspace } from "./workspace.js";

export function renderIde(ctx: PageContext, replId: string): Dispose {
  const page = new IdePage(ctx, replId);
  return () => page.dispose();
}

/** Statuses that end a running repl's page when WatchRepl reports them. */
const gone = [ReplStatus.STOPPED, ReplStatus.STOPPING, ReplStatus.DELETING];

class IdePage {
  private readonly abort = new AbortController();
  private readonly ui: IdeLayout;
  private workspace?: RunnerWorkspace;
  private repl?: Repl;
  private template?: Template;
  private replStream: StreamState = "connecting";
  private online = navigator.onLine;
  private phase: IdePhase = "starting";
  private readonly setup = new SetupIndicator(() => this.workspace?.processes);
  private readonly history: HistoryPanel;

  constructor(
    ctx: PageContext,
    private readonly replId: string,
  ) {
    document.title = "Devex";
    this.ui = renderIdeLayout(ctx, () => this.workspace?.terminals.current?.fitNow());
    this.history = new HistoryPanel({
      replId,
      repl: () => this.repl,
      dirty: () => this.workspace?.editor.dirty ?? false,
      restarting: (what, restore) => this.restarting(what, restore),
    });
    this.ui.panes.history.replaceChildren(this.history.el);
    this.ui.historyToggle.addEventListener("click", () => {
      if (!this.ui.panes.history.hidden) void this.history.refresh();
    });
    this.watchRepl();
    this.ui.runButton.addEventListener("click", () => {
      const command = this.runCommand();
      if (command) this.workspace?.terminals.run(command);
    });
    this.ui.stopButton.addEventListener("click", () => void this.stop());
    this.ui.networkButton.addEventListener("click", () => void this.editNetwork());
    this.ui.environmentButton.addEventListener("click", () => {
      if (this.repl) void editEnvironment(this.repl);
    });
    document.addEventListener("keydown", this.onKey);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOnline);
    window.addEventListener("beforeunload", this.onBeforeUnload);
    void core.repls
      .getRepl({ replId }, { signal: this.abort.signal })
      .then(({ repl: r }) => {
        if (r) this.showRepl(r);
        return this.start();
      })
      .catch((err) => {
        if (!this.abort.signal.aborted) this.notFound(err);
      });
  }

  dispose() {
    this.abort.abort();
    this.teardownRunner();
    this.history.dispose();
    document.removeEventListener("keydown", this.onKey);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOnline);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
  }

  /** The repl's own run command; for a repl made before repls had one, its template's. */
  private runCommand(): string {
    return this.repl?.runCommand || this.template?.runCommand || "";
  }

  private updateConnection = () => {
    this.ui.connection.show({
      online: this.online,
      phase: this.phase,
      replStream: this.replStream,
      filesStream: this.workspace?.filesStream ?? "off",
      terminals: this.workspace?.terminals.state ?? "none",
    });
  };

  private showRepl(r: Repl) {
    const { title, badge, stopButton } = this.ui;
    this.repl = r;
    title.textContent = r.name;
    document.title = `${r.name} · Devex`;
    badge.textContent = statusLabel[r.status];
    badge.className = `badge ${statusClass[r.status]}`;
    this.ui.networkButton.textContent = `Network: ${networkLabel(r.egress)}`;
    this.ui.networkButton.setAttribute("aria-label", `Network policy: ${networkLabel(r.egress)}`);
    this.ui.networkButton.disabled = false;
    this.ui.environmentButton.disabled = false;
    stopButton.disabled = r.status !== ReplStatus.RUNNING || this.phase !== "ready";
    this.workspace?.preview.showSharing(r.previewSharing);
    this.setup.show(r.setup);
  }

  private async editNetwork() {
    if (!this.repl) return;
    const saved = await editNetwork(this.repl);
    if (saved && !this.abort.signal.aborted) this.showRepl(saved);
  }

  /** WatchRepl for the page's lifetime: state changes, progress, and stops made elsewhere. */
  private watchRepl() {
    const { signal } = this.abort;
    void follow(
      (sig, onHeader) => core.repls.watchRepl({ replId: this.replId }, { signal: sig, onHeader }),
      (m) => this.onReplUpdate(m),
      (s) => {
        this.replStream = s;
        this.updateConnection();
      },
      signal,
    ).catch((err) => {
      if (!signal.aborted) this.notFound(err);
    });
  }

  private onReplUpdate(m: WatchReplResponse) {
    if (m.repl) this.showRepl(m.repl);
    if (this.phase === "starting" || this.phase === "stopping") this.ui.overlay.showProgress(m.progress);
    if (this.phase === "ready" && m.repl && gone.includes(m.repl.status)) {
      this.stopped(
        m.repl.status === ReplStatus.STOPPED
          ? `This repl was stopped${m.repl.lastError ? `: ${m.repl.lastError}` : "."}`
          : `This repl is ${statusLabel[m.repl.status].toLowerCase()}`,
      );
    }
  }

  private async start() {
    const { main, overlay, runButton, stopButton } = this.ui;
    const { signal } = this.abort;
    this.phase = "starting";
    main.setAttribute("aria-busy", "true");
    overlay.show("Starting the repl…");
    this.updateConnection();
    try {
      const [{ repl: r, runner }, templates] = await Promise.all([
        core.repls.startRepl({ replId: this.replId }, { signal }),
        core.repls.listTemplates({}, { signal }).then((t) => t.templates),
      ]);
      if (!r || !runner) throw new Error("the repl did not start");
      this.template = templates.find((t) => t.name === r.template);
      this.phase = "ready";
      this.showRepl(r);
      this.workspace = new RunnerWorkspace(this.replId, runner, this.ui.panes, this.updateConnection, this.setup.el);
      this.workspace.preview.showSharing(this.repl?.previewSharing);
      this.workspace.preview.showPort(r.previewPort);
      const command = this.runCommand();
      await this.workspace.load(command);
      overlay.hide();
      main.setAttribute("aria-busy", "false");
      runButton.disabled = !command;
      runButton.title = command ? `Run “${command}” in the terminal` : "";
      stopButton.disabled = false;
      this.updateConnection();
      // A stop made an automatic checkpoint; a restore another.
      if (!this.ui.panes.history.hidden) void this.history.refresh();
    } catch (err) {
      if (signal.aborted) return;
      if (isCode(err, Code.NotFound)) return this.notFound(err);
      this.phase = "stopped";
      this.teardownRunner();
      overlay.showEnd(`Could not start the repl: ${describeError(err)}`, { label: "Try again", run: this.startAgain });
      this.updateConnection();
    }
  }

  private startAgain = () => void this.start();

  private async stop() {
    if (!this.repl) return;
    if (this.workspace?.editor.dirty) {
      toast("Unsaved editor changes are not part of the stop; save first to keep them.", "error");
    }
    this.phase = "stopping";
    this.ui.stopButton.disabled = true;
    this.ui.runButton.disabled = true;
    this.teardownRunner();
    this.ui.overlay.show("Saving files and stopping…");
    this.updateConnection();
    try {
      await core.repls.stopRepl({ replId: this.replId });
      this.phase = "ready"; // let stopped() run
      this.stopped("This repl is stopped. Its files are saved.");
    } catch (err) {
      this.phase = "ready";
      this.stopped(`Could not stop the repl: ${describeError(err)}`);
    }
  }

  /**
   * Runs `restore` (which restarts a running repl on other files) with the runner's views down and
   * the page "stopping", so WatchRepl's stop is not taken for an end; then starts again as after a
   * restart: a new file tree, editor and terminals on the repl's new runner.
   */
  private async restarting<T>(what: string, restore: () => Promise<T>): Promise<T> {
    this.phase = "stopping";
    this.ui.stopButton.disabled = true;
    this.ui.runButton.disabled = true;
    this.ui.main.setAttribute("aria-busy", "true");
    this.teardownRunner();
    this.ui.overlay.show(`${what}…`);
    this.updateConnection();
    try {
      return await restore();
    } finally {
      if (!this.abort.signal.aborted) await this.start();
    }
  }

  private stopped(reason: string) {
    if (this.phase === "stopped") return;
    this.phase = "stopped";
    this.teardownRunner();
    this.ui.runButton.disabled = true;
    this.ui.stopButton.disabled = true;
    this.ui.overlay.showEnd(reason, { label: "Start again", run: this.startAgain });
    this.updateConnection();
  }

  private notFound(err: unknown) {
    this.phase = "stopped";
    this.teardownRunner();
    this.ui.overlay.showEnd(
      isCode(err, Code.NotFound) ? "This repl does not exist (or is not yours)." : describeError(err),
    );
    this.updateConnection();
  }

  private teardownRunner() {
    this.workspace?.dispose();
    this.workspace = undefined;
  }

  private onKey = (ev: KeyboardEvent) => {
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && !ev.shiftKey && ev.key.toLowerCase() === "s") {
      ev.preventDefault();
      void this.workspace?.editor.save();
    } else if (mod && ev.shiftKey && (ev.key === "`" || ev.key === "~")) {
      ev.preventDefault();
      void this.workspace?.terminals.create();
    }
  };

  private onOnline = () => {
    this.online = navigator.onLine;
    if (this.online) this.workspace?.terminals.reconnectNow();
    this.updateConnection();
  };

  private onBeforeUnload = (ev: BeforeUnloadEvent) => {
    if (this.workspace?.editor.dirty) ev.preventDefault();
  };
}
