/**
 * What changed since a checkpoint: DiffCheckpoints from it to the repl's current files (core saves
 * a running repl's files first), with the unified diffs of text files. A list of the changed files
 * (kind, path, lines added and removed); choosing one shows its diff below. A diff left out of the
 * answer because all of them together were too large is asked for on its own when chosen.
 */
import type { Checkpoint, FileChange } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { core } from "../../api.js";
import { describeError, h } from "../../ui.js";
import { changeKindLabel, changeSize, changesSummary, noDiffText } from "./checkpoint-text.js";
import { parseUnifiedDiff } from "./diff-rows.js";
import { renderDiff } from "./diff-view.js";

export class CheckpointChanges {
  readonly el: HTMLElement;
  private readonly status = h("p", { class: "changes-status", role: "status" });
  private readonly list = h("ul", { class: "change-list", "aria-label": "Changed files" });
  private readonly detail = h("div", { class: "change-detail" });
  private changes: FileChange[] = [];
  private selected = "";
  private seq = 0;

  constructor(
    private readonly replId: string,
    private readonly checkpoint: Checkpoint,
  ) {
    const again = h(
      "button",
      {
        type: "button",
        class: "icon-btn",
        title: "Compare again",
        "aria-label": "Compare again with the current files",
      },
      "⟳",
    );
    again.addEventListener("click", () => void this.load());
    this.el = h(
      "div",
      { class: "changes" },
      h("div", { class: "changes-head" }, h("h3", {}, "Changes since then"), again),
      this.status,
      this.list,
      this.detail,
    );
  }

  /** Compares the checkpoint with the current files and shows the result (the chosen file kept if it still differs). */
  async load(): Promise<void> {
    const seq = ++this.seq;
    this.el.setAttribute("aria-busy", "true");
    this.status.textContent = "Comparing with the current files…";
    try {
      const { changes } = await core.checkpoints.diffCheckpoints({
        replId: this.replId,
        fromCheckpointId: this.checkpoint.checkpointId,
        includePatches: true,
      });
      if (seq !== this.seq) return;
      this.changes = changes;
      this.status.textContent = changesSummary(changes.length);
      const keep = changes.find((c) => c.path === this.selected) ?? changes[0];
      this.selected = keep?.path ?? "";
      this.render();
      if (keep) await this.show(keep);
      else this.detail.replaceChildren();
    } catch (err) {
      if (seq === this.seq) this.status.textContent = `Could not compare: ${describeError(err)}`;
    } finally {
      if (seq === this.seq) this.el.removeAttribute("aria-busy");
    }
  }

  private render() {
    this.list.replaceChildren(
      ...this.changes.map((c) => {
        const { added, removed } = parseUnifiedDiff(c.patch);
        const button = h(
          "button",
          {
            type: "button",
            class: "change-row",
            "data-path": c.path,
            "aria-current": String(c.path === this.selected),
          },
          h("span", { class: `change-kind k-${changeKindLabel[c.kind]}` }, changeKindLabel[c.kind]),
          h("span", { class: "change-path", title: c.path }, c.path),
          (added > 0 || removed > 0) && h("span", { class: "change-lines" }, `+${added} −${removed}`),
        );
        button.addEventListener("click", () => void this.choose(c));
        return h("li", {}, button);
      }),
    );
  }

  private async choose(c: FileChange) {
    this.selected = c.path;
    for (const b of this.list.querySelectorAll<HTMLElement>(".change-row"))
      b.setAttribute("aria-current", String(b.dataset.path === c.path));
    await this.show(c);
  }

  /** The chosen file's diff, or why there is none; asks for a diff left out of the answer. */
  private async show(c: FileChange) {
    const seq = this.seq;
    let change = c;
    if (c.patchOmitted === "limit reached") {
      this.detail.replaceChildren(h("p", { class: "change-note hint" }, `Loading the diff of ${c.path}…`));
      try {
        const { changes } = await core.checkpoints.diffCheckpoints({
          replId: this.replId,
          fromCheckpointId: this.checkpoint.checkpointId,
          includePatches: true,
          paths: [c.path],
        });
        change = changes.find((x) => x.path === c.path) ?? c;
      } catch (err) {
        if (seq === this.seq && this.selected === c.path)
          this.detail.replaceChildren(
            h("p", { class: "change-note form-error" }, `Could not load the diff: ${describeError(err)}`),
          );
        return;
      }
      if (seq !== this.seq || this.selected !== c.path) return;
    }
    const head = h(
      "p",
      { class: "change-title" },
      h("code", {}, change.path),
      ` ${changeKindLabel[change.kind]} · ${changeSize(change)}`,
    );
    const diff = parseUnifiedDiff(change.patch);
    const body = diff.rows.length
      ? renderDiff(change.path, diff)
      : h("p", { class: "change-note hint" }, noDiffText(change));
    this.detail.replaceChildren(head, body);
  }
}
