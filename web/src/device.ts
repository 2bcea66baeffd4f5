/**
 * Device login page (`/device?code=…`): where `devex login` sends the user (RFC 8628). Shows which
 * device asks and the code it showed, and approves or denies it (AuthService.GetDeviceLogin,
 * ApproveDeviceLogin). Approving gives that device an API token of the signed-in user's.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { core } from "./api.js";
import type { Dispose, PageContext } from "./main.js";
import { topBar } from "./shell.js";
import { describeError, h } from "./ui.js";

export function renderDevice(ctx: PageContext): Dispose {
  document.title = "Sign in a device · Devex";
  const codeInput = h("input", {
    id: "device-code",
    name: "code",
    required: true,
    maxlength: 16,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "BCDF-GHJK",
    value: new URLSearchParams(location.search).get("code") ?? "",
    "aria-describedby": "device-error",
  });
  const error = h("p", { class: "form-error", role: "alert", id: "device-error" });
  const decision = h("section", { class: "token-created", "aria-labelledby": "device-ask", hidden: true });
  const done = h("p", { class: "device-done", role: "status" });
  const form = h(
    "form",
    { class: "create-form", "aria-labelledby": "device-title" },
    h("h2", { id: "device-title" }, "Sign in a device"),
    h("p", { class: "page-help" }, "Enter the code that devex login shows in your terminal."),
    h(
      "div",
      { class: "fields" },
      h("div", { class: "field grow" }, h("label", { for: "device-code" }, "Code"), codeInput),
      h("button", { type: "submit", class: "btn primary" }, "Continue"),
    ),
    error,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    done.textContent = "";
    const userCode = codeInput.value.trim();
    try {
      const found = await core.auth.getDeviceLogin({ userCode });
      ask(userCode, found.clientName, found.scopes, found.expireTime ? timestampDate(found.expireTime) : undefined);
    } catch (err) {
      decision.hidden = true;
      error.textContent = describeError(err);
    }
  });

  function ask(userCode: string, clientName: string, scopes: string[], expires: Date | undefined) {
    const approve = h("button", { type: "button", class: "btn primary" }, "Approve");
    const deny = h("button", { type: "button", class: "btn danger" }, "Deny");
    const answer = async (yes: boolean) => {
      approve.disabled = deny.disabled = true;
      try {
        await core.auth.approveDeviceLogin({ userCode, approve: yes });
        decision.hidden = true;
        done.textContent = yes
          ? `Approved: ${clientName} is signed in as ${ctx.user.userId}. Return to your terminal.`
          : `Denied: ${clientName} is not signed in.`;
      } catch (err) {
        error.textContent = describeError(err);
        approve.disabled = deny.disabled = false;
      }
    };
    approve.addEventListener("click", () => void answer(true));
    deny.addEventListener("click", () => void answer(false));
    decision.replaceChildren(
      h("h2", { id: "device-ask" }, `${clientName} asks to sign in as ${ctx.user.userId}`),
      h(
        "p",
        {},
        `Approve only if you started devex login and it shows the code ${userCode.toUpperCase()}. `,
        scopes.length
          ? `It gets an API token of yours that may only: ${scopes.join(", ")}. You can revoke it on the API tokens page`
          : "It gets an API token of yours with full access, which you can revoke on the API tokens page",
        expires ? ` (this request ends at ${expires.toLocaleTimeString()}).` : ".",
      ),
      h("div", { class: "repl-actions" }, approve, deny),
    );
    decision.hidden = false;
    // Nothing is focused: a stray Enter must not approve a login someone else started (RFC 8628 §5.4).
    decision.querySelector("h2")?.setAttribute("tabindex", "-1");
    (decision.querySelector("h2") as HTMLElement | null)?.focus();
  }

  ctx.root.append(
    topBar(ctx, h("h1", { class: "page-title" }, "Device login")),
    h("main", { class: "dashboard", id: "main" }, form, decision, done),
  );
  if (codeInput.value) form.requestSubmit();
  else codeInput.focus();
  return () => {};
}
