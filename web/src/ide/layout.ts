/**
 * The IDE's page structure: the top bar (back link, name, status, network policy, environment,
 * connection, pane toggles, Run and Stop) and the five panes (explorer, editor, terminals, and on
 * the right the preview or the history) under the overlay. The Files, Preview and History toggles
 * hide their pane; Preview and History share the right side, so showing one hides the other. The
 * history starts hidden, and on a narrow window the explorer and the preview do too.
 */
import type { PageContext } from "../main.js";
import { topBar } from "../shell.js";
import { h } from "../ui.js";
import { ConnectionIndicator } from "./connection.js";
import { IdeOverlay } from "./overlay.js";

export interface IdePanes {
  explorer: HTMLElement;
  editor: HTMLElement;
  terminal: HTMLElement;
  preview: HTMLElement;
  history: HTMLElement;
}

export interface IdeLayout {
  title: HTMLElement;
  badge: HTMLElement;
  /** Shows the repl's network policy and opens its dialog. */
  networkButton: HTMLButtonElement;
  /** Opens the dialog of the repl's environment variables and secrets. */
  environmentButton: HTMLButtonElement;
  connection: ConnectionIndicator;
  runButton: HTMLButtonElement;
  stopButton: HTMLButtonElement;
  /** Shows and hides the history pane. */
  historyToggle: HTMLButtonElement;
  overlay: IdeOverlay;
  /** The page body, busy (aria-busy) until the repl is usable. */
  main: HTMLElement;
  panes: IdePanes;
}

/** Appends the IDE's page to `ctx.root`; `onPaneToggled` runs after a pane is shown or hidden. */
export function renderIdeLayout(ctx: PageContext, onPaneToggled: () => void): IdeLayout {
  const connection = new ConnectionIndicator();
  const overlay = new IdeOverlay();
  const panes: IdePanes = {
    explorer: h("div", { class: "pane explorer-pane", id: "explorer-pane" }),
    editor: h("div", { class: "pane editor-pane" }),
    terminal: h("div", { class: "pane terminal-pane" }),
    preview: h("div", { class: "pane preview-pane", id: "preview-pane" }),
    history: h("div", { class: "pane history-pane", id: "history-pane" }),
  };
  const main = h(
    "main",
    { class: "ide", id: "main", "aria-busy": "true" },
    panes.explorer,
    h("div", { class: "center" }, panes.editor, panes.terminal),
    panes.preview,
    panes.history,
    overlay.el,
  );
  const bar = {
    title: h("h1", { class: "page-title" }, "…"),
    badge: h("span", { class: "badge unknown", id: "repl-status" }, "…"),
    networkButton: h("button", { type: "button", class: "btn ghost", id: "repl-network", disabled: true }, "Network"),
    environmentButton: h(
      "button",
      { type: "button", class: "btn ghost", id: "repl-environment", disabled: true },
      "Environment",
    ),
    runButton: h(
      "button",
      { type: "button", class: "btn primary", id: "run", disabled: true, title: "Run the project in the terminal" },
      "▶ Run",
    ),
    stopButton: h("button", { type: "button", class: "btn", id: "stop-repl", disabled: true }, "Stop repl"),
  };
  const filesToggle = paneToggle("Files", panes.explorer, main, onPaneToggled);
  const previewToggle = paneToggle("Preview", panes.preview, main, onPaneToggled);
  const historyToggle = paneToggle("History", panes.history, main, onPaneToggled);
  shareSide(previewToggle, historyToggle);
  historyToggle.click();
  const header = topBar(
    ctx,
    h("a", { href: "/", "data-link": true, class: "back", "aria-label": "Back to all repls" }, "← Repls"),
    bar.title,
    bar.badge,
    bar.networkButton,
    bar.environmentButton,
    connection.el,
    h("div", { class: "spacer" }),
    h(
      "div",
      { class: "pane-toggles", role: "group", "aria-label": "Panes" },
      filesToggle,
      previewToggle,
      historyToggle,
    ),
    bar.runButton,
    bar.stopButton,
  );
  header.classList.add("ide-topbar");
  ctx.root.append(header, main);
  if (matchMedia("(max-width: 900px)").matches) {
    previewToggle.click();
    filesToggle.click();
  }
  return { ...bar, historyToggle, connection, overlay, main, panes };
}

/** A top-bar button that shows and hides `pane` (the page gets a `no-<pane id>` class while it is hidden). */
function paneToggle(label: string, pane: HTMLElement, main: HTMLElement, onToggled: () => void): HTMLButtonElement {
  const button = h(
    "button",
    { type: "button", class: "btn ghost toggle", "aria-pressed": "true", "aria-controls": pane.id },
    label,
  );
  button.addEventListener("click", () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(on));
    pane.hidden = !on;
    main.classList.toggle(`no-${pane.id}`, !on);
    onToggled();
  });
  return button;
}

const pressed = (b: HTMLButtonElement) => b.getAttribute("aria-pressed") === "true";

/** Toggles of two panes on the same side: showing one hides the other. */
function shareSide(a: HTMLButtonElement, b: HTMLButtonElement) {
  for (const [shown, other] of [
    [a, b],
    [b, a],
  ]) {
    shown.addEventListener("click", () => {
      if (pressed(shown) && pressed(other)) other.click();
    });
  }
}
