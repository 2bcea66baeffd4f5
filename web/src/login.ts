/**
 * Sign-in page: GitHub when core has it configured; otherwise the embedded setup's one-time login
 * link (printed by `npm start`), which can also be pasted here, or an API token.
 */
import { checkToken, storedToken, type WebConfig } from "./api.js";
import { describeError, h } from "./ui.js";

export function renderLogin(root: HTMLElement, config: WebConfig): () => void {
  const error = h("p", { class: "form-error", role: "alert", id: "login-error" });
  const input = h("input", {
    id: "login-secret",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "http://…/auth/login?code=…  or  dvx_…",
    "aria-describedby": "login-help login-error",
  });
  const form = h(
    "form",
    { class: "login-form", "aria-label": "Sign in with a login link or API token" },
    h("label", { for: "login-secret" }, "Login link or API token"),
    input,
    h(
      "p",
      { id: "login-help", class: "hint" },
      "The embedded setup prints a one-time login link when it starts (",
      h("code", {}, "npm start"),
      "). Open it, or paste it here. An API token (",
      h("code", {}, "dvx_…"),
      ") works too; it is kept in this browser only.",
    ),
    error,
    h("button", { type: "submit", class: "btn primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const secret = input.value.trim();
    if (/^https?:\/\//.test(secret)) {
      const url = new URL(secret);
      if (url.origin !== location.origin || url.pathname !== "/auth/login") {
        error.textContent = `That is not a login link for ${location.origin}.`;
        return;
      }
      location.assign(url.pathname + url.search);
      return;
    }
    if (!/^dvx_[A-Za-z0-9_-]{20,}$/.test(secret)) {
      error.textContent = "Paste the whole login link, or an API token starting with dvx_.";
      return;
    }
    try {
      await checkToken(secret);
      storedToken.set(secret);
      location.assign("/");
    } catch (err) {
      error.textContent = describeError(err);
    }
  });
  root.append(
    h(
      "main",
      { class: "login", id: "main" },
      h(
        "section",
        { class: "login-card", "aria-labelledby": "login-title" },
        h("div", { class: "brand big", "aria-hidden": "true" }, "▸ devex"),
        h("h1", { id: "login-title" }, "Sign in to Devex"),
        config.github
          ? h("a", { class: "btn primary github", href: "/auth/login" }, "Sign in with GitHub")
          : h("p", { class: "hint" }, "This Devex runs in the embedded single-user setup."),
        config.github ? h("p", { class: "divider" }, "or") : null,
        form,
      ),
    ),
  );
  if (!config.github) input.focus();
  return () => {};
}
