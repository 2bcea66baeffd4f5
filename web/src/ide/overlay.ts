/**
 * The overlay over the IDE while the repl is not usable: the start (and stop) progress from
 * WatchRepl with its bar, and once the repl stopped or could not start, what happened and what the
 * user can do next.
 */
import type { Progress } from "../../../gen/devex/core/v1/repl_pb.js";
import { describeProgress, progressFraction } from "../repl-status.js";
import { h } from "../ui.js";

export class IdeOverlay {
  private readonly text = h("p", { class: "overlay-text" }, "Starting…");
  private readonly bar = h("progress", { max: 1, "aria-label": "Start progress" });
  private readonly actions = h("div", { class: "overlay-actions" });
  readonly el = h(
    "div",
    { class: "overlay", role: "status", "aria-live": "polite" },
    h("div", { class: "spinner", "aria-hidden": "true" }),
    this.text,
    this.bar,
    this.actions,
  );

  show(text: string, fraction?: number, actions: HTMLElement[] = []) {
    this.el.hidden = false;
    this.text.textContent = text;
    this.bar.hidden = fraction === undefined;
    if (fraction !== undefined) this.bar.value = fraction;
    this.actions.replaceChildren(...actions);
    this.el.classList.toggle("idle", actions.length > 0);
    actions[0]?.focus();
  }

  /** A WatchRepl progress report, when it says something. */
  showProgress(progress: Progress | undefined) {
    const text = describeProgress(progress);
    if (text) this.show(`${text}…`, progressFraction(progress));
  }

  /** The repl is not usable: `reason`, with a button that runs `again` (if any) and a way back. */
  showEnd(reason: string, again?: { label: string; run: () => void }) {
    const back = h("a", { href: "/", "data-link": true, class: again ? "btn" : "btn primary" }, "Back to repls");
    if (!again) return this.show(reason, undefined, [back]);
    const button = h("button", { type: "button", class: "btn primary" }, again.label);
    button.addEventListener("click", again.run);
    this.show(reason, undefined, [button, back]);
  }

  hide() {
    this.el.hidden = true;
  }
}
