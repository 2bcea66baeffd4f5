/**
 * Preview of a dev server in the repl: the runner's preview proxy (`/preview/<port>/`) in an iframe.
 * The token goes in the first URL only; the runner answers with a cookie scoped to that port's path
 * so the page's own requests load. No sandbox attribute: the app needs scripts and its own origin's
 * cookies, and a sandbox with both is no sandbox (in the embedded setup the preview shares core's
 * origin; the Kubernetes setup serves repls from their own host).
 */
import type { PreviewSharing } from "../../../gen/devex/core/v1/repl_pb.js";
import type { RunnerSession } from "../api.js";
import { h } from "../ui.js";
import { PreviewSharingControl } from "./preview-sharing.js";

export class PreviewPane {
  readonly el: HTMLElement;
  private readonly frame: HTMLIFrameElement;
  private readonly port: HTMLInputElement;
  private readonly openLink: HTMLAnchorElement;
  private readonly empty: HTMLElement;
  private readonly sharing: PreviewSharingControl;

  constructor(private readonly session: RunnerSession) {
    this.port = h("input", {
      id: "preview-port",
      type: "number",
      min: 1,
      max: 65535,
      value: 3000,
      inputmode: "numeric",
      class: "port-input",
    });
    const form = h(
      "form",
      { class: "preview-bar", "aria-label": "Preview a port" },
      h("label", { for: "preview-port" }, "Port"),
      this.port,
      h("button", { type: "submit", class: "btn" }, "Open"),
      h(
        "button",
        {
          type: "button",
          class: "icon-btn",
          "aria-label": "Reload preview",
          title: "Reload",
          onclick: () => this.reload(),
        },
        "⟳",
      ),
    );
    this.openLink = h(
      "a",
      {
        class: "icon-btn",
        target: "_blank",
        rel: "noopener",
        "aria-label": "Open preview in a new tab",
        title: "New tab",
      },
      "↗",
    );
    form.append(this.openLink);
    this.port.addEventListener("input", () => this.sharing.refresh());
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.open();
    });
    this.frame = h("iframe", {
      class: "preview-frame",
      title: "Preview of the app running in the repl",
      hidden: true,
    });
    this.empty = h(
      "p",
      { class: "preview-empty hint" },
      "Start a server in the terminal (for example ",
      h("code", {}, "npx http-server -p 3000"),
      ") and open its port here.",
    );
    this.sharing = new PreviewSharingControl(session, () => this.portNumber());
    this.el = h(
      "section",
      { class: "preview", "aria-label": "Preview" },
      h("div", { class: "panel-head" }, h("h2", {}, "Preview")),
      form,
      this.sharing.el,
      this.empty,
      this.frame,
    );
  }

  private portNumber(): number | undefined {
    const n = Number(this.port.value);
    return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
  }

  open(): void {
    const port = this.portNumber();
    if (!port) {
      this.port.setAttribute("aria-invalid", "true");
      return;
    }
    this.port.removeAttribute("aria-invalid");
    this.frame.src = this.session.previewUrl(port);
    this.openLink.href = this.session.previewUrl(port);
    this.frame.hidden = false;
    this.empty.hidden = true;
  }

  /**
   * The port the repl's dev server listens on (its template's preview port): the port the pane
   * opens, named in its hint. 0 keeps the default.
   */
  showPort(port: number): void {
    if (!port) return;
    this.port.value = String(port);
    this.empty.replaceChildren(`Run the project (▶ Run) and open port ${port} here.`);
    this.sharing.refresh();
  }

  /** The repl's preview sharing, as core last reported it. */
  showSharing(s: PreviewSharing | undefined): void {
    this.sharing.show(s);
  }

  reload(): void {
    if (!this.frame.hidden) this.open();
  }
}
