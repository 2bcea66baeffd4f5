/**
 * What the History panel does to checkpoints: make one, restore one (confirmed, saying the repl
 * restarts and how to undo; the IDE page restarts around it), fork a new repl from one (named in a
 * prompt) and delete one (confirmed). What the user needs afterwards (the undo checkpoint, a link to
 * the fork) goes in the panel's notice; failures are toasts, as the file explorer's are.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Checkpoint } from "../../../../gen/devex/core/v1/checkpoint_pb.js";
import { type Repl, ReplStatus } from "../../../../gen/devex/core/v1/repl_pb.js";
import { core } from "../../api.js";
import { confirmAction, describeError, h, promptText, timeAgo, toast } from "../../ui.js";
import { checkpointTitle } from "./checkpoint-text.js";

export interface CheckpointActionHost {
  replId: string;
  /** The repl as the page last saw it. */
  repl(): Repl | undefined;
  /** The editor has unsaved changes (no checkpoint has them). */
  dirty(): boolean;
  /** Runs `restore` with the IDE's runner views down, then starts them again as after a restart. */
  restarting<T>(what: string, restore: () => Promise<T>): Promise<T>;
  /** Shows a lasting message in the panel. */
  notify(...content: (Node | string)[]): void;
  /** Lists the checkpoints again. */
  refresh(): Promise<void>;
  /** The repl's files were replaced (a restore): what is compared with them is compared again. */
  filesReplaced(): void;
}

/** CreateRepl's rule for a name (repl.proto), which a fork's name should follow too. */
const REPL_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
const replNameProblem = (v: string) =>
  REPL_NAME.test(v) ? undefined : "Use 1 to 64 letters, digits, spaces, dots, dashes or underscores.";

const quoted = (c: Checkpoint) => `“${checkpointTitle(c)}”`;

export class CheckpointActions {
  constructor(private readonly host: CheckpointActionHost) {}

  /** Makes a checkpoint of the current files; failures are thrown (the form shows them). */
  async create(name: string, message: string): Promise<void> {
    if (this.host.dirty())
      toast("Unsaved editor changes are not part of the checkpoint; save first to keep them.", "error");
    const { checkpoint } = await core.checkpoints.createCheckpoint({ replId: this.host.replId, name, message });
    if (checkpoint) toast(`Made the checkpoint ${quoted(checkpoint)}.`);
    await this.host.refresh();
  }

  async restore(c: Checkpoint): Promise<void> {
    const running = this.host.repl()?.status === ReplStatus.RUNNING;
    const made = c.createTime ? timestampDate(c.createTime) : undefined;
    const message = [
      `The repl's files go back to how they were at this checkpoint${made ? `, made ${timeAgo(made)} (${made.toLocaleString()})` : ""}.`,
      running ? "The repl is running, so it restarts on them: its terminals and programs end." : "",
      this.host.dirty() ? "Unsaved editor changes are lost." : "",
      "Your current files are saved first in an automatic checkpoint, so you can undo the restore.",
    ];
    const sure = await confirmAction(
      `Restore ${quoted(c)}?`,
      message.filter(Boolean).join(" "),
      running ? "Restore and restart" : "Restore",
    );
    if (!sure) return;
    try {
      const { undo } = await this.host.restarting(`Restoring ${quoted(c)}`, () =>
        core.checkpoints.restoreCheckpoint({ replId: this.host.replId, checkpointId: c.checkpointId }),
      );
      if (undo) this.restored(c, undo);
    } catch (err) {
      toast(`Could not restore ${quoted(c)}: ${describeError(err)}`, "error");
    }
    this.host.filesReplaced();
    await this.host.refresh();
  }

  /** The notice after a restore: the undo checkpoint's id, and a button that restores it. */
  private restored(c: Checkpoint, undo: Checkpoint) {
    const button = h(
      "button",
      {
        type: "button",
        class: "btn small notice-action",
        "aria-label": `Undo the restore (restore ${undo.checkpointId})`,
      },
      "Undo restore…",
    );
    button.addEventListener("click", () => void this.restore(undo));
    this.host.notify(
      `Restored ${quoted(c)}. The files from before it are in the automatic checkpoint `,
      h("code", { class: "undo-id" }, undo.checkpointId),
      ". ",
      button,
    );
  }

  async fork(c: Checkpoint): Promise<void> {
    const base = this.host.repl()?.name ?? "repl";
    const name = await promptText(
      `Fork a new repl from ${quoted(c)}`,
      "Name of the new repl",
      `${base.slice(0, 59)} fork`,
      replNameProblem,
    );
    if (!name) return;
    try {
      const { repls } = await core.checkpoints.forkRepl({
        replId: this.host.replId,
        checkpointId: c.checkpointId,
        name,
      });
      const fork = repls[0];
      if (!fork) return;
      this.host.notify(
        `Made the repl “${fork.name}” from ${quoted(c)}, stopped. `,
        h("a", { href: `/repls/${fork.replId}`, "data-link": true, class: "fork-link" }, `Open ${fork.name}`),
      );
    } catch (err) {
      toast(`Could not fork from ${quoted(c)}: ${describeError(err)}`, "error");
    }
  }

  /** Resolves true once deleted. */
  async remove(c: Checkpoint): Promise<boolean> {
    const sure = await confirmAction(
      `Delete the checkpoint ${quoted(c)}?`,
      "It can no longer be restored or compared with. Repls forked from it keep their files.",
      "Delete checkpoint",
    );
    if (!sure) return false;
    try {
      await core.checkpoints.deleteCheckpoint({ replId: this.host.replId, checkpointId: c.checkpointId });
      toast(`Deleted the checkpoint ${quoted(c)}.`);
      return true;
    } catch (err) {
      toast(`Could not delete ${quoted(c)}: ${describeError(err)}`, "error");
      return false;
    } finally {
      await this.host.refresh();
    }
  }
}
