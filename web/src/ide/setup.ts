/**
 * The repl's setup command in the IDE: a top-bar button that shows where it is (pending, running,
 * succeeded, failed with its exit code), kept current by the IDE's WatchRepl stream, and the dialog
 * it opens with the command and its output: the runner's background process named "setup"
 * (ReadProcessOutput), followed while it runs. Hidden for a repl without a setup command.
 */
import type { Client } from "@connectrpc/connect";
import { type Setup, SetupStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import type { ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { describeError, h } from "../ui.js";

/** The runner's process that runs the setup command (repl.proto, SetupStatus.RUNNING). */
const SETUP_PROCESS = "setup";

type Processes = Client<typeof ProcessService>;

const labels: Record<SetupStatus, string> = {
  [SetupStatus.UNSPECIFIED]: "",
  [SetupStatus.PENDING]: "Setup: pending",
  [SetupStatus.RUNNING]: "Setup: running…",
  [SetupStatus.SUCCEEDED]: "Setup: done",
  [SetupStatus.FAILED]: "Setup: failed",
};

const classes: Record<SetupStatus, string> = {
  [SetupStatus.UNSPECIFIED]: "unknown",
  [SetupStatus.PENDING]: "stopped",
  [SetupStatus.RUNNING]: "busy",
  [SetupStatus.SUCCEEDED]: "running",
  [SetupStatus.FAILED]: "failed",
};

/** "Setup: failed (exit 2)", "Setup: running…", ... */
export function setupText(s: Setup): string {
  if (s.status !== SetupStatus.FAILED) return labels[s.status];
  return s.message ? `${labels[s.status]}: ${s.message}` : `${labels[s.status]} (exit ${s.exitCode})`;
}

export class SetupIndicator {
  readonly el = h(
    "button",
    { type: "button", class: "badge setup-badge", id: "repl-setup", hidden: true },
    "Setup",
  ) as HTMLButtonElement;
  private setup: Setup | undefined;
  private listeners = new Set<() => void>();

  /** `processes`: the runner's ProcessService while the repl runs (the output comes from it). */
  constructor(private readonly processes: () => Processes | undefined) {
    this.el.addEventListener("click", () => void this.open());
  }

  show(setup: Setup | undefined): void {
    this.setup = setup?.command ? setup : undefined;
    this.el.hidden = !this.setup;
    if (!this.setup) return;
    const text = setupText(this.setup);
    this.el.textContent = text;
    this.el.className = `badge setup-badge ${classes[this.setup.status]}`;
    this.el.dataset.status = SetupStatus[this.setup.status].toLowerCase();
    this.el.setAttribute("aria-label", `${text}: show the setup command's output`);
    for (const l of this.listeners) l();
  }

  /** The dialog with the command, its state and its output, followed while it runs. */
  private open(): Promise<void> {
    const setup = this.setup;
    if (!setup) return Promise.resolve();
    return new Promise((resolve) => {
      const id = `dlg-${Math.random().toString(36).slice(2)}`;
      const state = h("p", { class: "setup-state", role: "status" }, setupText(setup));
      const output = h("pre", { class: "setup-output", "aria-label": "Setup output", tabindex: 0 });
      const note = h("p", { class: "hint" });
      const dialog = h(
        "dialog",
        { class: "dialog setup-dialog", "aria-labelledby": `${id}-t` },
        h("h2", { id: `${id}-t` }, "Setup command"),
        h("p", {}, "Run once, in the workspace, on the repl's first start."),
        h("pre", { class: "setup-command" }, setup.command),
        state,
        output,
        note,
        h(
          "div",
          { class: "dialog-buttons" },
          h("button", { type: "button", class: "btn", onclick: () => done() }, "Close"),
        ),
      );
      const onChange = () => {
        if (this.setup) state.textContent = setupText(this.setup);
      };
      this.listeners.add(onChange);
      const abort = new AbortController();
      const done = () => {
        abort.abort();
        this.listeners.delete(onChange);
        dialog.close();
        dialog.remove();
        resolve();
      };
      dialog.addEventListener("cancel", (ev) => {
        ev.preventDefault();
        done();
      });
      document.body.append(dialog);
      dialog.showModal();
      void this.follow(output, note, abort.signal);
    });
  }

  /** Appends the setup process's output to `output` until it has ended (or the dialog closed). */
  private async follow(output: HTMLElement, note: HTMLElement, signal: AbortSignal): Promise<void> {
    const processes = this.processes();
    if (!processes) {
      note.textContent = "Its output can be read while the repl runs.";
      return;
    }
    const decoder = new TextDecoder();
    try {
      const { processes: list } = await processes.listProcesses({}, { signal });
      const proc = list.findLast((p) => p.name === SETUP_PROCESS);
      if (!proc) {
        note.textContent =
          this.setup?.status === SetupStatus.PENDING
            ? "It has not started yet."
            : "It ran on an earlier start of the repl; its output is kept only while that runner runs.";
        return;
      }
      let offset = 0n;
      let ended = false;
      while (!signal.aborted) {
        const res = await processes.readProcessOutput({ processId: proc.processId, offset }, { signal });
        output.append(decoder.decode(res.data, { stream: true }));
        output.scrollTop = output.scrollHeight;
        offset = res.nextOffset;
        // One more read after it ended takes what it wrote just before.
        if (ended) break;
        ended = !res.process?.running;
        if (!ended && res.data.length === 0) await new Promise((r) => setTimeout(r, 300));
      }
      if (!output.textContent) note.textContent = "It printed nothing.";
    } catch (err) {
      if (!signal.aborted) note.textContent = `Could not read its output: ${describeError(err)}`;
    }
  }
}
