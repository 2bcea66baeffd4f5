/**
 * The IDE's History panel: a form that makes a checkpoint of the repl's files (name and message
 * optional), a notice for what an action left to follow up (the undo checkpoint, a fork's link),
 * and the repl's checkpoints, newest first, automatic ones quieter, each expanding to its changes
 * and actions (checkpoint-item.ts, checkpoint-actions.ts). It talks to core only, so it lives as
 * long as the page, across the runner's restarts. Listed when shown and after each change; items
 * are kept across listings (an open one stays open) and their relative times tick.
 */
import type { Checkpoint } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { core } from "../../api.js";
import { describeError, h } from "../../ui.js";
import { type CheckpointActionHost, CheckpointActions } from "./checkpoint-actions.js";
import { CheckpointItem } from "./checkpoint-item.js";

export type HistoryPanelOptions = Omit<CheckpointActionHost, "notify" | "refresh" | "filesReplaced">;

export class HistoryPanel {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "checkpoint-list", "aria-label": "Checkpoints" });
  private readonly empty = h(
    "p",
    { class: "hint history-empty", hidden: true },
    "No checkpoints yet. Make one to come back to these files later, compare with them, or fork from them.",
  );
  private readonly listError = h("p", { class: "form-error", role: "alert" });
  private readonly notice = h("div", { class: "history-notice", role: "status", "aria-live": "polite" });
  private readonly items = new Map<string, CheckpointItem>();
  private readonly actions: CheckpointActions;
  private readonly ticker: ReturnType<typeof setInterval>;
  private seq = 0;

  constructor(private readonly o: HistoryPanelOptions) {
    this.actions = new CheckpointActions({
      ...o,
      notify: (...content) => this.notify(...content),
      refresh: () => this.refresh(),
      filesReplaced: () => {
        for (const item of this.items.values()) item.compareAgain();
      },
    });
    const refresh = h(
      "button",
      { type: "button", class: "icon-btn", title: "Refresh", "aria-label": "Refresh checkpoints" },
      "⟳",
    );
    refresh.addEventListener("click", () => void this.refresh());
    this.notice.hidden = true;
    this.el = h(
      "section",
      { class: "history", "aria-label": "History" },
      h("div", { class: "panel-head" }, h("h2", {}, "History"), h("div", { class: "panel-tools" }, refresh)),
      this.createForm(),
      this.notice,
      this.listError,
      this.empty,
      this.list,
    );
    this.ticker = setInterval(() => {
      for (const item of this.items.values()) item.refreshTime();
    }, 30_000);
  }

  /** Lists the checkpoints again (an answer older than a later call's is dropped). */
  async refresh(): Promise<void> {
    const seq = ++this.seq;
    this.list.setAttribute("aria-busy", "true");
    try {
      const { checkpoints } = await core.checkpoints.listCheckpoints({ replId: this.o.replId });
      if (seq !== this.seq) return;
      this.listError.textContent = "";
      this.show(checkpoints);
    } catch (err) {
      if (seq === this.seq) this.listError.textContent = `Could not list the checkpoints: ${describeError(err)}`;
    } finally {
      if (seq === this.seq) this.list.removeAttribute("aria-busy");
    }
  }

  dispose(): void {
    clearInterval(this.ticker);
  }

  /** New items go in their place; kept ones are not moved (a moved node would lose the focus). */
  private show(checkpoints: Checkpoint[]) {
    const ids = new Set(checkpoints.map((c) => c.checkpointId));
    for (const [id, item] of this.items) {
      if (ids.has(id)) continue;
      item.el.remove();
      this.items.delete(id);
    }
    checkpoints.forEach((c, i) => {
      let item = this.items.get(c.checkpointId);
      if (item) item.refreshTime();
      else {
        item = this.item(c);
        this.items.set(c.checkpointId, item);
      }
      const at = this.list.children[i] ?? null;
      if (at !== item.el) this.list.insertBefore(item.el, at);
    });
    this.empty.hidden = checkpoints.length > 0;
  }

  private item(c: Checkpoint): CheckpointItem {
    return new CheckpointItem(c, {
      replId: this.o.replId,
      restore: (x) => this.actions.restore(x),
      fork: (x) => this.actions.fork(x),
      remove: async (x) => {
        const next = this.items.get(x.checkpointId)?.el.nextElementSibling;
        if (await this.actions.remove(x)) (next?.querySelector("button") ?? this.el.querySelector("input"))?.focus();
      },
      opened: (open) => {
        for (const item of this.items.values()) if (item !== open) item.setOpen(false);
      },
    });
  }

  private notify(...content: (Node | string)[]) {
    const close = h(
      "button",
      { type: "button", class: "icon-btn notice-close", "aria-label": "Dismiss", title: "Dismiss" },
      "×",
    );
    close.addEventListener("click", () => {
      this.notice.hidden = true;
      this.notice.replaceChildren();
    });
    this.notice.replaceChildren(h("p", { class: "notice-text" }, ...content), close);
    this.notice.hidden = false;
  }

  /** Name and message (both optional) and the button; core's refusal shown under it. */
  private createForm(): HTMLFormElement {
    const name = h("input", {
      id: "checkpoint-name",
      maxlength: 200,
      autocomplete: "off",
      placeholder: "tests pass",
      "aria-describedby": "checkpoint-error",
    });
    const message = h("textarea", { id: "checkpoint-message", rows: 2, maxlength: 4000, spellcheck: "true" });
    const error = h("p", { class: "form-error", role: "alert", id: "checkpoint-error" });
    const submit = h("button", { type: "submit", class: "btn primary" }, "Make checkpoint");
    const form = h(
      "form",
      { class: "checkpoint-form", "aria-label": "Make a checkpoint" },
      h("label", { for: "checkpoint-name" }, "Title (optional)"),
      name,
      h("label", { for: "checkpoint-message" }, "Message (optional)"),
      message,
      h("div", { class: "checkpoint-form-buttons" }, submit),
      error,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      submit.textContent = "Saving files…";
      try {
        await this.actions.create(name.value.trim(), message.value.trim());
        form.reset();
      } catch (err) {
        error.textContent = `Could not make a checkpoint: ${describeError(err)}`;
      } finally {
        submit.disabled = false;
        submit.textContent = "Make checkpoint";
      }
    });
    return form;
  }
}
