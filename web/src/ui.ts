/** Small DOM helpers: element builder, modal dialogs (native <dialog>), messages for errors. */
import { Code, ConnectError } from "@connectrpc/connect";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** Builds an element: attributes (`on<event>` become listeners, booleans toggle), then children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

/** A human sentence for an error from a call; never a stack trace. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unavailable && /fetch|network/i.test(e.rawMessage)) return "The server cannot be reached.";
  return e.rawMessage || "Something went wrong.";
}

export function isCode(err: unknown, code: Code): boolean {
  return ConnectError.from(err).code === code;
}

export interface Choice<T extends string> {
  value: T;
  label: string;
  primary?: boolean;
  danger?: boolean;
}

/** A modal dialog with a message and buttons; resolves with the chosen value, or "cancel" on Escape. */
export function choose<T extends string>(title: string, message: string, choices: Choice<T>[]): Promise<T | "cancel"> {
  return new Promise((resolve) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": `${id}-t`, "aria-describedby": `${id}-m` },
      h("h2", { id: `${id}-t` }, title),
      h("p", { id: `${id}-m` }, message),
    );
    const row = h("div", { class: "dialog-buttons" });
    for (const c of choices) {
      const cls = c.primary ? "btn primary" : c.danger ? "btn danger" : "btn";
      row.append(h("button", { type: "button", class: cls, onclick: () => done(c.value) }, c.label));
    }
    dialog.append(row);
    const done = (v: T | "cancel") => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    dialog.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      done("cancel");
    });
    document.body.append(dialog);
    dialog.showModal();
    (row.querySelector<HTMLButtonElement>(".primary") ?? row.querySelector("button"))?.focus();
  });
}

export async function confirmAction(title: string, message: string, action: string): Promise<boolean> {
  const v = await choose(title, message, [
    { value: "cancel", label: "Cancel" },
    { value: "ok", label: action, danger: true },
  ]);
  return v === "ok";
}

/** A modal text prompt; resolves with the text, or undefined when cancelled. */
export function promptText(
  title: string,
  label: string,
  initial = "",
  validate?: (v: string) => string | undefined,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const input = h("input", { id: `${id}-i`, type: "text", value: initial, autocomplete: "off", spellcheck: "false" });
    const error = h("p", { class: "form-error", role: "alert" });
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: `${id}-t` }, title),
      h("label", { for: `${id}-i` }, label),
      input,
      error,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "btn", onclick: () => done(undefined) }, "Cancel"),
        h("button", { type: "submit", class: "btn primary" }, "OK"),
      ),
    );
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": `${id}-t` }, form);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      const problem = v ? validate?.(v) : "Enter a value.";
      if (problem) {
        error.textContent = problem;
        input.setAttribute("aria-invalid", "true");
        return;
      }
      done(v);
    });
    const done = (v: string | undefined) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    dialog.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      done(undefined);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    const dot = initial.lastIndexOf(".");
    input.setSelectionRange(0, dot > 0 ? dot : initial.length);
  });
}

/** Short-lived notice in the corner (role=status, so screen readers hear it). */
export function toast(text: string, kind: "info" | "error" = "info"): void {
  let region = document.getElementById("toasts");
  if (!region) {
    region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const item = h("div", { class: `toast ${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

export function timeAgo(d: Date | undefined): string {
  if (!d) return "never";
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return d.toLocaleDateString();
}
