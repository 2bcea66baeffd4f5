/**
 * A repl's environment variables and secrets in the browser: the dialog the IDE's top bar opens,
 * listing them (a secret by name only: core never returns its value), removing one, and adding one
 * (a secret's value typed into a masked field that password managers leave alone). Core's refusals
 * (a reserved name, a limit) are shown inline. New terminals and commands get the changes within a
 * second; running ones keep what they started with.
 */
import type { EnvironmentVariable, Repl } from "../../gen/devex/core/v1/repl_pb.js";
import { isEnvironmentName } from "../../lib/contracts/environment-names.js";
import { core } from "./api.js";
import { describeError, h } from "./ui.js";

const note = "New terminals and commands get these; running ones keep what they started with.";

/** Opens the dialog for `repl`; resolves when it is closed. */
export function editEnvironment(repl: Repl): Promise<void> {
  return new Promise((resolve) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const list = h("ul", { class: "env-list", "aria-label": "Variables", "aria-busy": "true" });
    const error = h("p", { class: "form-error", role: "alert", id: `${id}-err` });
    const add = addForm(id, error);
    const dialog = h(
      "dialog",
      { class: "dialog env-dialog", "aria-labelledby": `${id}-t`, "aria-describedby": `${id}-note` },
      h("h2", { id: `${id}-t` }, `Environment of ${repl.name}`),
      h("p", { id: `${id}-note` }, note),
      list,
      error,
      add.form,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "btn", onclick: () => done() }, "Close"),
      ),
    );
    // Each answer holds the whole list: one that arrives after a newer request's (the first List
    // after an Add) is stale and is dropped rather than shown over the newer list.
    let sent = 0;
    let shown = 0;
    const call = async (what: string, request: () => Promise<{ variables: EnvironmentVariable[] }>) => {
      const seq = ++sent;
      error.textContent = "";
      try {
        const { variables } = await request();
        if (seq > shown) {
          shown = seq;
          show(variables);
        }
        return true;
      } catch (err) {
        if (seq > shown) error.textContent = `${what}: ${describeError(err)}`;
        return false;
      }
    };
    const show = (variables: EnvironmentVariable[]) => {
      list.removeAttribute("aria-busy");
      list.replaceChildren(
        ...(variables.length
          ? variables.map((v) => row(v, () => call(`Could not remove ${v.name}`, () => remove(v.name))))
          : [h("li", { class: "env-empty" }, "No variables yet.")]),
      );
    };
    const remove = (name: string) => core.repls.deleteEnvironmentVariable({ replId: repl.replId, name });
    add.onSubmit = (v) =>
      call(`Could not add ${v.name}`, () => core.repls.setEnvironmentVariable({ replId: repl.replId, ...v }));
    const done = () => {
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
    add.focus();
    void call("Could not load the variables", () => core.repls.listEnvironmentVariables({ replId: repl.replId }));
  });
}

/** One variable: its name, its value (a secret's masked) and a Remove button. */
function row(v: EnvironmentVariable, onRemove: () => Promise<boolean>): HTMLLIElement {
  const remove = h("button", { type: "button", class: "btn ghost small", "aria-label": `Remove ${v.name}` }, "Remove");
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    if (!(await onRemove())) remove.disabled = false;
  });
  const value = v.secret
    ? h("span", { class: "env-value secret" }, "•••••• (secret)")
    : h("span", { class: "env-value", title: v.value }, v.value);
  return h("li", { class: "env-row", "data-name": v.name }, h("code", { class: "env-name" }, v.name), value, remove);
}

type NewVariable = { name: string; value: string; secret: boolean };

/** Name, Value (masked while Secret is ticked), Secret and Add. */
function addForm(id: string, error: HTMLElement) {
  const name = h("input", {
    id: `${id}-name`,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "DATABASE_URL",
    "aria-describedby": `${id}-err`,
  });
  // Masked while Secret is ticked, but no password: autocomplete="off" and the password managers'
  // own opt-outs (LastPass, 1Password) keep them from offering to save or generate it.
  const value = h("input", {
    id: `${id}-value`,
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    "data-lpignore": "true",
    "data-1p-ignore": true,
  });
  const secret = h("input", { id: `${id}-secret`, type: "checkbox" });
  secret.addEventListener("change", () => {
    value.type = secret.checked ? "password" : "text";
  });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Add");
  const form = h(
    "form",
    { class: "env-add", "aria-label": "Add a variable" },
    h("div", { class: "env-field" }, h("label", { for: `${id}-name` }, "Name"), name),
    h("div", { class: "env-field grow" }, h("label", { for: `${id}-value` }, "Value"), value),
    h("label", { class: "env-secret", for: `${id}-secret` }, secret, " Secret"),
    submit,
  );
  const self = {
    form,
    onSubmit: (_v: NewVariable): Promise<boolean> => Promise.resolve(false),
    focus: () => name.focus(),
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    name.removeAttribute("aria-invalid");
    const v = { name: name.value.trim(), value: value.value, secret: secret.checked };
    if (!isEnvironmentName(v.name)) {
      error.textContent = "A name is a letter or _, then letters, digits or _ (such as DATABASE_URL).";
      name.setAttribute("aria-invalid", "true");
      name.focus();
      return;
    }
    submit.disabled = true;
    const added = await self.onSubmit(v);
    submit.disabled = false;
    if (!added) {
      name.setAttribute("aria-invalid", "true");
      return;
    }
    form.reset();
    value.type = "text";
    name.focus();
  });
  return self;
}
