/**
 * Templates in the browser: how the create form names them (the user's own marked as theirs), the
 * list of the user's own templates with a Delete button each, and the "Save as template" dialog: a
 * title, a description and the repl's run command, setup command and preview port to keep or
 * change. A template is made from the repl's stored files, so a running repl must be stopped
 * first: the dialog says so and offers to stop it before saving.
 */
import { type Repl, ReplStatus, type Template } from "../../gen/devex/core/v1/repl_pb.js";
import { core } from "./api.js";
import { confirmAction, describeError, h, toast } from "./ui.js";

/** "Node.js (node)", or "My API (yours)" for the user's own (their names are core's, not telling). */
export function templateLabel(t: Template): string {
  return `${t.title} (${t.owner ? "yours" : t.name})`;
}

/**
 * The user's own templates, each with what it runs and a Delete button; `onDeleted` runs after one
 * is deleted. Hidden while there are none.
 */
export class OwnTemplates {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "template-list", "aria-labelledby": "own-templates-title" });

  constructor(private readonly onDeleted: (name: string) => void) {
    this.el = h(
      "section",
      { "aria-labelledby": "own-templates-title", class: "own-templates", hidden: true },
      h("h2", { id: "own-templates-title" }, "Your templates"),
      this.list,
    );
  }

  show(templates: Template[]): void {
    const own = templates.filter((t) => t.owner);
    this.el.hidden = own.length === 0;
    this.list.replaceChildren(...own.map((t) => this.row(t)));
  }

  private row(t: Template): HTMLLIElement {
    const remove = h(
      "button",
      { type: "button", class: "btn danger ghost small", "aria-label": `Delete template ${t.title}` },
      "Delete",
    );
    remove.addEventListener("click", async () => {
      const sure = await confirmAction(
        `Delete the template ${t.title}?`,
        "Repls created from it keep their files.",
        "Delete template",
      );
      if (!sure) return;
      remove.disabled = true;
      try {
        await core.repls.deleteTemplate({ name: t.name });
        toast(`Deleted the template ${t.title}.`);
        this.onDeleted(t.name);
      } catch (err) {
        remove.disabled = false;
        toast(`Could not delete the template ${t.title}: ${describeError(err)}`, "error");
      }
    });
    const what = [
      t.runCommand && `runs ${t.runCommand}`,
      t.setupCommand && `setup ${t.setupCommand}`,
      t.previewPort && `port ${t.previewPort}`,
    ].filter(Boolean);
    return h(
      "li",
      { class: "template-row", "data-template": t.name },
      h("span", { class: "template-title" }, t.title),
      h("span", { class: "template-meta" }, what.join(" · ")),
      remove,
    );
  }
}

/** One labelled field of the dialog. */
function field(id: string, label: string, input: HTMLInputElement | HTMLTextAreaElement): HTMLElement {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

const textInput = (attrs: Record<string, string | number | boolean> = {}) =>
  h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });

/**
 * The "Save as template" dialog for `repl`; resolves with the new template, or undefined when
 * cancelled. A running repl is stopped first when the user chooses "Stop and save". `from` is the
 * template the repl was made from: its run command for a repl from before repls had their own.
 */
export function saveAsTemplate(repl: Repl, from?: Template): Promise<Template | undefined> {
  return new Promise((resolve) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const running = repl.status !== ReplStatus.STOPPED;
    const title = textInput({ required: true, maxlength: 64, value: repl.name });
    const description = h("textarea", { rows: 2, maxlength: 1024, spellcheck: "true" });
    const run = textInput({ value: repl.runCommand || from?.runCommand || "", class: "mono" });
    const setup = textInput({ value: repl.setup?.command ?? "", class: "mono", placeholder: "npm install" });
    const port = h("input", {
      type: "number",
      min: 0,
      max: 65535,
      inputmode: "numeric",
      value: repl.previewPort || "",
      placeholder: "none",
    });
    const error = h("p", { class: "form-error", role: "alert", id: `${id}-err` });
    const save = h("button", { type: "submit", class: "btn primary" }, running ? "Stop and save" : "Save template");
    const form = h(
      "form",
      { method: "dialog", "aria-describedby": `${id}-note` },
      h("h2", { id: `${id}-t` }, `Save ${repl.name} as a template`),
      h(
        "p",
        { id: `${id}-note`, class: running ? "template-stop-note" : undefined },
        running
          ? "The repl must be stopped first: a template is made from its saved files. Stop and save stops it (its files are saved), then saves the template."
          : "Only you see it. Repls created from it get its files, commands, port, network policy and plain environment variables (never secrets), and run its setup command on their first start.",
      ),
      field(`${id}-title`, "Title", title),
      field(`${id}-description`, "Description", description),
      field(`${id}-run`, "Run command (the Run button)", run),
      field(`${id}-setup`, "Setup command (run once, on a repl's first start)", setup),
      field(`${id}-port`, "Preview port", port),
      error,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "btn", onclick: () => done(undefined) }, "Cancel"),
        save,
      ),
    );
    const dialog = h("dialog", { class: "dialog template-dialog", "aria-labelledby": `${id}-t` }, form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const previewPort = port.value === "" ? 0 : Number(port.value);
      if (!title.value.trim()) {
        error.textContent = "Give the template a title.";
        title.focus();
        return;
      }
      if (!Number.isInteger(previewPort) || previewPort < 0 || previewPort > 65535) {
        error.textContent = "A port is a number from 1 to 65535 (empty: none).";
        port.focus();
        return;
      }
      save.disabled = true;
      try {
        if (running) {
          error.textContent = "";
          save.textContent = "Stopping…";
          await core.repls.stopRepl({ replId: repl.replId });
          save.textContent = "Saving…";
        }
        const { template } = await core.repls.saveTemplate({
          replId: repl.replId,
          title: title.value.trim(),
          description: description.value.trim(),
          runCommand: run.value.trim(),
          setupCommand: setup.value.trim(),
          previewPort,
        });
        done(template);
      } catch (err) {
        error.textContent = `Could not save the template: ${describeError(err)}`;
        save.textContent = "Save template";
      } finally {
        save.disabled = false;
      }
    });
    const done = (t: Template | undefined) => {
      dialog.close();
      dialog.remove();
      resolve(t);
    };
    dialog.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      done(undefined);
    });
    document.body.append(dialog);
    dialog.showModal();
    title.focus();
    title.select();
  });
}
