/**
 * The IDE page for one repl: starts it (showing restore progress from WatchRepl), then lays out the
 * file explorer, the editor, the terminals and the preview around the repl's runner. Two server
 * streams stay open (WatchRepl on core, WatchFiles on the runner), both re-opened with backoff after
 * a drop; the connection indicator in the top bar sums them up with the terminals' sockets.
 */
import { Code } from "@connectrpc/connect";
import { type Repl, ReplStatus, type Template } from "../../../gen/devex/core/v1/repl_pb.js";
import { core, RunnerSession } from "../api.js";
import type { Dispose, PageContext } from "../main.js";
import { describeProgress, progressFraction, statusClass, statusLabel } from "../repl-status.js";
import { topBar } from "../shell.js";
import { describeError, h, isCode, toast } from "../ui.js";
import { Editor } from "./editor.js";
import { FileTree } from "./file-tree.js";
import { PreviewPane } from "./preview.js";
import { TerminalPanel } from "./terminals.js";

type StreamState = "connecting" | "connected" | "reconnecting";

/** Runs a server stream forever: re-opens it with backoff after it ends or fails, until aborted. */
async function follow<T>(
  open: (signal: AbortSignal, onHeader: () => void) => AsyncIterable<T>,
  onMessage: (m: T) => void | Promise<void>,
  onState: (s: StreamState) => void,
  signal: AbortSignal,
  extra: { onReconnected?: () => void; probe?: () => Promise<unknown> } = {},
): Promise<void> {
  let attempt = 0;
  while (!signal.aborted) {
    onState(attempt ? "reconnecting" : "connecting");
    let open_ = true;
    try {
      // Connected once the response headers arrive. Servers send them with the first message, and
      // a quiet stream (no file changes) has none for a while: a successful probe call counts too.
      let seen = false;
      const connected = () => {
        if (seen || !open_) return;
        seen = true;
        onState("connected");
        if (attempt) extra.onReconnected?.();
        attempt = 0;
      };
      extra.probe?.().then(connected, () => {});
      for await (const m of open(signal, connected)) {
        connected();
        await onMessage(m);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.PermissionDenied)) throw err;
    } finally {
      open_ = false;
    }
    if (signal.aborted) return;
    attempt++;
    onState("reconnecting");
    await new Promise((r) => setTimeout(r, Math.min(5000, 300 * 2 ** Math.min(attempt, 4))));
  }
}

export function renderIde(ctx: PageContext, replId: string): Dispose {
  document.title = "Devex";
  const abort = new AbortController();
  let session: RunnerSession | undefined;
  let runnerAbort: AbortController | undefined;
  let terminals: TerminalPanel | undefined;
  let editor: Editor | undefined;
  let repl: Repl | undefined;
  let template: Template | undefined;
  let replStream: StreamState = "connecting";
  let filesStream: StreamState | "off" = "off";
  let online = navigator.onLine;
  let phase: "starting" | "ready" | "stopped" | "stopping" = "starting";

  // Top bar
  const title = h("h1", { class: "page-title" }, "…");
  const badge = h("span", { class: "badge unknown", id: "repl-status" }, "…");
  const conn = h(
    "span",
    { class: "conn", id: "connection", role: "status", "aria-live": "polite" },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "conn-text" }, "Connecting…"),
  );
  const runButton = h(
    "button",
    { type: "button", class: "btn primary", id: "run", disabled: true, title: "Run the project in the terminal" },
    "▶ Run",
  );
  const stopButton = h("button", { type: "button", class: "btn", id: "stop-repl", disabled: true }, "Stop repl");
  const filesToggle = h(
    "button",
    { type: "button", class: "btn ghost toggle", "aria-pressed": "true", "aria-controls": "explorer-pane" },
    "Files",
  );
  const previewToggle = h(
    "button",
    { type: "button", class: "btn ghost toggle", "aria-pressed": "true", "aria-controls": "preview-pane" },
    "Preview",
  );

  // Body
  const overlayText = h("p", { class: "overlay-text" }, "Starting…");
  const overlayBar = h("progress", { max: 1, "aria-label": "Start progress" });
  const overlayActions = h("div", { class: "overlay-actions" });
  const overlay = h(
    "div",
    { class: "overlay", role: "status", "aria-live": "polite" },
    h("div", { class: "spinner", "aria-hidden": "true" }),
    overlayText,
    overlayBar,
    overlayActions,
  );
  const explorerPane = h("div", { class: "pane explorer-pane", id: "explorer-pane" });
  const editorPane = h("div", { class: "pane editor-pane" });
  const terminalPane = h("div", { class: "pane terminal-pane" });
  const previewPane = h("div", { class: "pane preview-pane", id: "preview-pane" });
  const layout = h(
    "main",
    { class: "ide", id: "main", "aria-busy": "true" },
    explorerPane,
    h("div", { class: "center" }, editorPane, terminalPane),
    previewPane,
    overlay,
  );
  ctx.root.append(
    topBar(
      ctx,
      h("a", { href: "/", "data-link": true, class: "back", "aria-label": "Back to all repls" }, "← Repls"),
      title,
      badge,
      conn,
      h("div", { class: "spacer" }),
      filesToggle,
      previewToggle,
      runButton,
      stopButton,
    ),
    layout,
  );
  for (const [button, pane] of [
    [filesToggle, explorerPane],
    [previewToggle, previewPane],
  ] as const) {
    button.addEventListener("click", () => {
      const on = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(on));
      pane.hidden = !on;
      layout.classList.toggle(`no-${pane.id}`, !on);
      terminals?.current?.fitNow();
    });
  }
  if (matchMedia("(max-width: 900px)").matches) {
    previewToggle.click();
    filesToggle.click();
  }

  function updateConnection() {
    const term = terminals?.state ?? "none";
    let text: string;
    let cls: string;
    if (!online) [text, cls] = ["Offline — waiting for the network", "bad"];
    else if (phase === "stopped") [text, cls] = ["Repl stopped", "off"];
    else if (phase === "starting" || phase === "stopping") [text, cls] = ["Connecting…", "busy"];
    else if (replStream === "reconnecting" || filesStream === "reconnecting" || term === "reconnecting")
      [text, cls] = ["Reconnecting…", "busy"];
    else if (replStream === "connecting" || filesStream === "connecting" || term === "connecting")
      [text, cls] = ["Connecting…", "busy"];
    else [text, cls] = ["Connected", "ok"];
    conn.className = `conn ${cls}`;
    conn.dataset.state = cls;
    conn.querySelector(".conn-text")!.textContent = text;
  }

  function showRepl(r: Repl) {
    repl = r;
    title.textContent = r.name;
    document.title = `${r.name} · Devex`;
    badge.textContent = statusLabel[r.status];
    badge.className = `badge ${statusClass[r.status]}`;
    stopButton.disabled = r.status !== ReplStatus.RUNNING || phase !== "ready";
  }

  function showOverlay(text: string, fraction?: number, actions: HTMLElement[] = []) {
    overlay.hidden = false;
    overlayText.textContent = text;
    overlayBar.hidden = fraction === undefined;
    if (fraction !== undefined) overlayBar.value = fraction;
    overlayActions.replaceChildren(...actions);
    overlay.classList.toggle("idle", actions.length > 0);
    actions[0]?.focus();
  }

  function stopped(reason: string) {
    if (phase === "stopped") return;
    phase = "stopped";
    teardownRunner();
    runButton.disabled = true;
    stopButton.disabled = true;
    const again = h("button", { type: "button", class: "btn primary" }, "Start again");
    again.addEventListener("click", () => void start());
    const back = h("a", { href: "/", "data-link": true, class: "btn" }, "Back to repls");
    showOverlay(reason, undefined, [again, back]);
    updateConnection();
  }

  function teardownRunner() {
    runnerAbort?.abort();
    runnerAbort = undefined;
    terminals?.dispose();
    terminals = undefined;
    editor?.destroy();
    editor = undefined;
    session?.close();
    session = undefined;
    filesStream = "off";
    explorerPane.replaceChildren();
    editorPane.replaceChildren();
    terminalPane.replaceChildren();
    previewPane.replaceChildren();
  }

  // WatchRepl for the page's lifetime: state changes, progress, and stops made elsewhere.
  void follow(
    (signal, onHeader) => core.repls.watchRepl({ replId }, { signal, onHeader }),
    (m) => {
      if (m.repl) showRepl(m.repl);
      if (phase === "starting" || phase === "stopping") {
        const text = describeProgress(m.progress);
        if (text) showOverlay(`${text}…`, progressFraction(m.progress));
      }
      const gone = [ReplStatus.STOPPED, ReplStatus.STOPPING, ReplStatus.DELETING];
      if (phase === "ready" && m.repl && gone.includes(m.repl.status)) {
        stopped(
          m.repl.status === ReplStatus.STOPPED
            ? `This repl was stopped${m.repl.lastError ? `: ${m.repl.lastError}` : "."}`
            : `This repl is ${statusLabel[m.repl.status].toLowerCase()}`,
        );
      }
    },
    (s) => {
      replStream = s;
      updateConnection();
    },
    abort.signal,
  ).catch((err) => {
    if (!abort.signal.aborted) notFound(err);
  });

  function notFound(err: unknown) {
    phase = "stopped";
    teardownRunner();
    const back = h("a", { href: "/", "data-link": true, class: "btn primary" }, "Back to repls");
    showOverlay(
      isCode(err, Code.NotFound) ? "This repl does not exist (or is not yours)." : describeError(err),
      undefined,
      [back],
    );
    updateConnection();
  }

  async function start() {
    phase = "starting";
    layout.setAttribute("aria-busy", "true");
    showOverlay("Starting the repl…");
    updateConnection();
    try {
      const [{ repl: r, runner }, templates] = await Promise.all([
        core.repls.startRepl({ replId }, { signal: abort.signal }),
        core.repls.listTemplates({}, { signal: abort.signal }).then((t) => t.templates),
      ]);
      if (!r || !runner) throw new Error("the repl did not start");
      template = templates.find((t) => t.name === r.template);
      phase = "ready";
      showRepl(r);
      session = new RunnerSession(replId, runner, (err) =>
        toast(`Could not refresh access to the repl: ${describeError(err)}`, "error"),
      );
      await mountRunner(session);
      overlay.hidden = true;
      layout.setAttribute("aria-busy", "false");
      runButton.disabled = !template?.runCommand;
      runButton.title = template?.runCommand ? `Run “${template.runCommand}” in the terminal` : "";
      stopButton.disabled = false;
      updateConnection();
    } catch (err) {
      if (abort.signal.aborted) return;
      if (isCode(err, Code.NotFound)) return notFound(err);
      phase = "stopped";
      teardownRunner();
      const retry = h("button", { type: "button", class: "btn primary" }, "Try again");
      retry.addEventListener("click", () => void start());
      const back = h("a", { href: "/", "data-link": true, class: "btn" }, "Back to repls");
      showOverlay(`Could not start the repl: ${describeError(err)}`, undefined, [retry, back]);
      updateConnection();
    }
  }

  async function mountRunner(s: RunnerSession) {
    runnerAbort = new AbortController();
    const signal = runnerAbort.signal;
    const ed = new Editor({ files: s.clients.files, onActiveChange: (p) => tree.setActive(p) });
    const tree = new FileTree({
      files: s.clients.files,
      onOpen: (p) => void ed.openFile(p),
      onMoved: (a, b) => ed.renamed(a, b),
      onDeleted: (p) => ed.deleted(p),
    });
    const term = new TerminalPanel(s, updateConnection);
    const preview = new PreviewPane(s);
    editor = ed;
    terminals = term;
    explorerPane.replaceChildren(tree.el);
    editorPane.replaceChildren(ed.el);
    terminalPane.replaceChildren(term.el);
    previewPane.replaceChildren(preview.el);
    await Promise.all([tree.load(), term.load()]);
    void follow(
      (sig, onHeader) => s.clients.files.watchFiles({ path: "", recursive: true }, { signal: sig, onHeader }),
      async (m) => {
        tree.applyEvents(m.events);
        await ed.onFileEvents(m.events);
      },
      (st) => {
        filesStream = st;
        updateConnection();
      },
      signal,
      {
        onReconnected: () => void tree.reloadAll().catch(() => {}),
        probe: () => s.clients.files.statFile({ path: "" }, { signal }),
      },
    ).catch(() => {});
    // Open the file the template runs ("node index.js" → index.js), if there is one.
    const main = template?.runCommand.split(/\s+/).find((w) => /\.\w+$/.test(w));
    if (main) {
      const { info } = await s.clients.files.statFile({ path: main }).catch(() => ({ info: undefined }));
      if (info) await ed.openFile(main);
    }
  }

  runButton.addEventListener("click", () => {
    if (template?.runCommand) terminals?.run(template.runCommand);
  });
  stopButton.addEventListener("click", async () => {
    if (!repl) return;
    if (editor?.dirty) toast("Unsaved editor changes are not part of the stop; save first to keep them.", "error");
    phase = "stopping";
    stopButton.disabled = true;
    runButton.disabled = true;
    teardownRunner();
    showOverlay("Saving files and stopping…");
    updateConnection();
    try {
      await core.repls.stopRepl({ replId });
      phase = "ready"; // let stopped() run
      stopped("This repl is stopped. Its files are saved.");
    } catch (err) {
      phase = "ready";
      stopped(`Could not stop the repl: ${describeError(err)}`);
    }
  });

  const onKey = (ev: KeyboardEvent) => {
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && !ev.shiftKey && ev.key.toLowerCase() === "s") {
      ev.preventDefault();
      void editor?.save();
    } else if (mod && ev.shiftKey && (ev.key === "`" || ev.key === "~")) {
      ev.preventDefault();
      void terminals?.create();
    }
  };
  const onOnline = () => {
    online = navigator.onLine;
    if (online) terminals?.reconnectNow();
    updateConnection();
  };
  const onBeforeUnload = (ev: BeforeUnloadEvent) => {
    if (editor?.dirty) ev.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  window.addEventListener("online", onOnline);
  window.addEventListener("offline", onOnline);
  window.addEventListener("beforeunload", onBeforeUnload);

  void core.repls
    .getRepl({ replId }, { signal: abort.signal })
    .then(({ repl: r }) => {
      if (r) showRepl(r);
      return start();
    })
    .catch((err) => {
      if (!abort.signal.aborted) notFound(err);
    });

  return () => {
    abort.abort();
    teardownRunner();
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("offline", onOnline);
    window.removeEventListener("beforeunload", onBeforeUnload);
  };
}
