/**
 * Who may open the previewed port: Private (the owner, signed in), Anyone with a link (links made
 * here, valid 24 hours) or Public. The choice is core's (SetPreviewVisibility, per port); "Copy link"
 * makes a preview link (CreatePreviewLink) or, for a public port, copies its plain address.
 */
import { type PreviewSharing, PreviewVisibility } from "../../../gen/devex/core/v1/repl_pb.js";
import { portVisibility } from "../../../lib/contracts/preview-visibility.js";
import { core, type RunnerSession } from "../api.js";
import { describeError, h, toast } from "../ui.js";

const labels: [PreviewVisibility, string][] = [
  [PreviewVisibility.PRIVATE, "Private"],
  [PreviewVisibility.LINK, "Anyone with a link"],
  [PreviewVisibility.PUBLIC, "Public"],
];

export class PreviewSharingControl {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly copyButton: HTMLButtonElement;
  private readonly linkField: HTMLInputElement;
  private sharing: PreviewSharing | undefined;

  constructor(
    private readonly session: RunnerSession,
    private readonly port: () => number | undefined,
  ) {
    this.select = h(
      "select",
      { id: "preview-visibility", class: "visibility-select" },
      ...labels.map(([v, label]) => h("option", { value: String(v) }, label)),
    );
    this.select.addEventListener("change", () => void this.setVisibility(Number(this.select.value)));
    this.copyButton = h("button", { type: "button", class: "btn" }, "Copy link");
    this.copyButton.addEventListener("click", () => void this.copyLink());
    this.linkField = h("input", {
      class: "preview-link",
      readonly: true,
      hidden: true,
      "aria-label": "Preview link",
    });
    this.el = h(
      "div",
      { class: "preview-bar preview-sharing" },
      h("label", { for: "preview-visibility" }, "Who can open"),
      this.select,
      this.copyButton,
      this.linkField,
    );
    this.refresh();
  }

  show(sharing: PreviewSharing | undefined): void {
    this.sharing = sharing;
    this.refresh();
  }

  /** Shows the previewed port's visibility (after a change of port or of sharing). */
  refresh(): void {
    const port = this.port();
    const v = port ? portVisibility(this.sharing, port) : PreviewVisibility.PRIVATE;
    this.select.value = String(v);
    this.select.disabled = !port;
    this.select.setAttribute("aria-label", `Who can open the preview of port ${port ?? ""}`);
    this.copyButton.hidden = v === PreviewVisibility.PRIVATE;
    if (v === PreviewVisibility.PRIVATE) this.linkField.hidden = true;
  }

  private async setVisibility(visibility: PreviewVisibility) {
    const port = this.port();
    if (!port) return;
    try {
      const { repl } = await core.repls.setPreviewVisibility({ replId: this.session.replId, port, visibility });
      this.show(repl?.previewSharing);
    } catch (err) {
      toast(`Could not change who can open the preview: ${describeError(err)}`, "error");
      this.refresh();
    }
  }

  private async copyLink() {
    const port = this.port();
    if (!port) return;
    let url: string;
    try {
      url =
        portVisibility(this.sharing, port) === PreviewVisibility.PUBLIC
          ? this.session.previewUrl(port, false)
          : (await core.repls.createPreviewLink({ replId: this.session.replId, port })).url;
    } catch (err) {
      toast(`Could not make a preview link: ${describeError(err)}`, "error");
      return;
    }
    this.linkField.value = url;
    this.linkField.hidden = false;
    try {
      await navigator.clipboard.writeText(url);
      toast("Preview link copied.");
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it for Ctrl-C.
      this.linkField.select();
      toast("Press Ctrl-C to copy the selected link.");
    }
  }
}
