/**
 * One checkpoint in the History panel: a row (its title, "auto" for an automatic one, how long ago)
 * that expands (a disclosure button) to its details: its message, what it holds and its id, the
 * Restore, Fork and Delete buttons, and what changed since then (compared each time it opens).
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Checkpoint } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { h, timeAgo } from "../../ui.js";
import { CheckpointChanges } from "./checkpoint-changes.js";
import { autoReason, checkpointContents, checkpointTitle } from "./checkpoint-text.js";

export interface CheckpointItemHost {
  replId: string;
  restore(c: Checkpoint): Promise<void>;
  fork(c: Checkpoint): Promise<void>;
  remove(c: Checkpoint): Promise<void>;
  /** The item was opened (the panel closes the others). */
  opened(item: CheckpointItem): void;
}

export class CheckpointItem {
  readonly el: HTMLLIElement;
  private readonly toggle: HTMLButtonElement;
  private readonly detail: HTMLElement;
  private readonly time: HTMLTimeElement;
  private readonly buttons: HTMLButtonElement[];
  private readonly changes: CheckpointChanges;

  constructor(
    readonly checkpoint: Checkpoint,
    host: CheckpointItemHost,
  ) {
    const c = checkpoint;
    const title = checkpointTitle(c);
    const made = c.createTime ? timestampDate(c.createTime) : undefined;
    const detailId = `checkpoint-${c.checkpointId}`;
    this.time = h("time", { class: "checkpoint-time", datetime: made?.toISOString(), title: made?.toLocaleString() });
    this.toggle = h(
      "button",
      { type: "button", class: "checkpoint-toggle", "aria-expanded": "false", "aria-controls": detailId },
      h("span", { class: "checkpoint-twisty", "aria-hidden": "true" }),
      h("span", { class: "checkpoint-title" }, title),
      c.auto && h("span", { class: "checkpoint-tag", title: `Made automatically ${autoReason(c.auto)}` }, "auto"),
      this.time,
    );
    this.toggle.addEventListener("click", () => {
      this.setOpen(!this.open);
      if (this.open) host.opened(this);
    });
    this.changes = new CheckpointChanges(host.replId, c);
    const action = (label: string, name: string, run: () => Promise<void>, cls = "btn small") => {
      const b = h("button", { type: "button", class: cls, "aria-label": `${name} ${title}` }, label);
      b.addEventListener("click", () => void this.busyWhile(run));
      return b;
    };
    this.buttons = [
      action("Restore…", "Restore", () => host.restore(c)),
      action("Fork…", "Fork", () => host.fork(c)),
      action("Delete…", "Delete", () => host.remove(c), "btn danger ghost small"),
    ];
    const about = [c.auto ? `Made automatically ${autoReason(c.auto)}` : "", checkpointContents(c)].filter(Boolean);
    this.detail = h(
      "div",
      { class: "checkpoint-detail", id: detailId, hidden: true },
      c.message && h("p", { class: "checkpoint-message" }, c.message),
      h("p", { class: "checkpoint-meta" }, `${about.join(" · ")} · id `, h("code", {}, c.checkpointId)),
      h("div", { class: "checkpoint-actions" }, ...this.buttons),
      this.changes.el,
    );
    this.el = h(
      "li",
      { class: c.auto ? "checkpoint auto" : "checkpoint", "data-checkpoint-id": c.checkpointId },
      this.toggle,
      this.detail,
    );
    this.refreshTime();
  }

  get open(): boolean {
    return this.toggle.getAttribute("aria-expanded") === "true";
  }

  /** Opens (comparing with the current files again) or closes the details. */
  setOpen(open: boolean): void {
    if (open === this.open) return;
    this.toggle.setAttribute("aria-expanded", String(open));
    this.detail.hidden = !open;
    this.el.classList.toggle("open", open);
    if (open) void this.changes.load();
  }

  /** Compares with the current files again, when open. */
  compareAgain(): void {
    if (this.open) void this.changes.load();
  }

  /** "5 min ago" from now. */
  refreshTime(): void {
    const made = this.checkpoint.createTime ? timestampDate(this.checkpoint.createTime) : undefined;
    this.time.textContent = timeAgo(made);
  }

  private async busyWhile(run: () => Promise<void>) {
    for (const b of this.buttons) b.disabled = true;
    try {
      await run();
    } finally {
      for (const b of this.buttons) b.disabled = false;
    }
  }
}
