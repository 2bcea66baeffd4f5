/**
 * API tokens page (`/tokens`): the tokens that let the CLI, CI and agents act as the user. Create one
 * (name, lifetime, full access or some scopes; its secret shown once, with a copy button and the
 * `devex login` line that uses it), see each one's creation, last use, expiry and scopes, revoke one
 * (it stops working at once).
 */
import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { ApiToken } from "../../gen/devex/core/v1/auth_pb.js";
import { ALL_API_SCOPES, type ApiScope } from "../../lib/contracts/api-scopes.js";
import { core } from "./api.js";
import type { Dispose, PageContext } from "./main.js";
import { topBar } from "./shell.js";
import { confirmAction, describeError, h, timeAgo, toast } from "./ui.js";

const DAY_MS = 86_400_000;
const lifetimes = [
  { label: "7 days", ms: 7 * DAY_MS },
  { label: "30 days", ms: 30 * DAY_MS },
  { label: "90 days", ms: 90 * DAY_MS, selected: true },
  { label: "1 year", ms: 365 * DAY_MS },
];

const scopeLabels: Record<ApiScope, string> = {
  "repls:read": "see repls",
  "repls:write": "create, stop and delete repls",
  "files:read": "read files",
  "files:write": "change files",
  exec: "run commands and terminals",
  admin: "manage API tokens",
};

/** "Full access", or which scopes (with a radio to switch and a box per scope). */
function accessFieldset() {
  const full = h("input", { type: "radio", name: "access", id: "access-full", value: "full", checked: true });
  const only = h("input", { type: "radio", name: "access", id: "access-only", value: "only" });
  const boxes = ALL_API_SCOPES.map((scope) =>
    h("input", {
      type: "checkbox",
      name: "scope",
      id: `scope-${scope.replace(":", "-")}`,
      value: scope,
      disabled: true,
    }),
  );
  const sync = () => {
    for (const b of boxes) b.disabled = full.checked;
  };
  full.addEventListener("change", sync);
  only.addEventListener("change", sync);
  const fieldset = h(
    "fieldset",
    { class: "token-access" },
    h("legend", {}, "Access"),
    h("label", { for: "access-full" }, full, " Everything you can do"),
    h("label", { for: "access-only" }, only, " Only:"),
    h(
      "div",
      { class: "scope-boxes" },
      ...ALL_API_SCOPES.map((scope, i) =>
        h("label", { for: boxes[i].id }, boxes[i], ` ${scope} `, h("span", { class: "repl-meta" }, scopeLabels[scope])),
      ),
    ),
  );
  /** The scopes chosen ([] for full access), or undefined when "Only" has none ticked. */
  const chosen = (): string[] | undefined => {
    if (full.checked) return [];
    const picked = boxes.filter((b) => b.checked).map((b) => b.value);
    return picked.length ? picked : undefined;
  };
  const reset = () => {
    full.checked = true;
    for (const b of boxes) b.checked = false;
    sync();
  };
  return { fieldset, chosen, reset };
}

export function renderTokens(ctx: PageContext): Dispose {
  document.title = "API tokens · Devex";
  let disposed = false;
  const list = h("ul", { class: "token-list", "aria-labelledby": "tokens-title" });
  const empty = h("p", { class: "empty", hidden: true }, "No API tokens yet.");
  const listError = h("p", { class: "form-error", role: "alert" });
  const created = h("section", { class: "token-created", "aria-labelledby": "created-title", hidden: true });

  const nameInput = h("input", {
    id: "token-name",
    name: "name",
    required: true,
    maxlength: 64,
    pattern: "[A-Za-z0-9][A-Za-z0-9 ._:@\\-]*",
    autocomplete: "off",
    placeholder: "laptop, ci, my-agent",
    "aria-describedby": "token-error",
  });
  const lifetime = h(
    "select",
    { id: "token-ttl", name: "ttl" },
    ...lifetimes.map((l) => h("option", { value: String(l.ms), selected: l.selected }, l.label)),
  );
  const access = accessFieldset();
  const formError = h("p", { class: "form-error", role: "alert", id: "token-error" });
  const createButton = h("button", { type: "submit", class: "btn primary" }, "Create token");
  const form = h(
    "form",
    { class: "create-form", "aria-labelledby": "new-token-title" },
    h("h2", { id: "new-token-title" }, "New API token"),
    h(
      "div",
      { class: "fields" },
      h("div", { class: "field grow" }, h("label", { for: "token-name" }, "Name"), nameInput),
      h("div", { class: "field" }, h("label", { for: "token-ttl" }, "Expires after"), lifetime),
      createButton,
    ),
    access.fieldset,
    formError,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError.textContent = "";
    const scopes = access.chosen();
    if (!scopes) {
      formError.textContent = "Tick at least one scope, or choose everything you can do.";
      return;
    }
    createButton.disabled = true;
    try {
      const res = await core.auth.createApiToken({
        name: nameInput.value.trim(),
        ttl: durationFromMs(Number(lifetime.value)),
        scopes,
      });
      showSecret(res.token?.name ?? "", res.secret);
      nameInput.value = "";
      access.reset();
      await refresh();
    } catch (err) {
      formError.textContent = `Could not create the token: ${describeError(err)}`;
    } finally {
      createButton.disabled = false;
    }
  });

  ctx.root.append(
    topBar(ctx, h("h1", { class: "page-title" }, "API tokens")),
    h(
      "main",
      { class: "dashboard", id: "main" },
      h(
        "p",
        { class: "page-help" },
        "An API token lets the devex CLI, CI jobs and AI agents (MCP) act as you. Give each its own, ",
        "so you can revoke one without the others.",
      ),
      form,
      created,
      h(
        "section",
        { "aria-labelledby": "tokens-title" },
        h("h2", { id: "tokens-title" }, "Your tokens"),
        listError,
        empty,
        list,
      ),
    ),
  );

  /** The new secret, once: shown until the user leaves the page, with a copy button. */
  function showSecret(name: string, secret: string) {
    const field = h("input", {
      id: "token-secret",
      readonly: true,
      value: secret,
      spellcheck: "false",
      "aria-describedby": "created-help",
    });
    const copy = h("button", { type: "button", class: "btn primary" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(secret);
        toast("Copied the token.");
      } catch {
        // No clipboard access (an insecure origin, a denied permission): select it for Ctrl-C.
        field.select();
        toast("Press Ctrl-C to copy the selected token.");
      }
    });
    created.replaceChildren(
      h("h2", { id: "created-title" }, `Token "${name}" created`),
      h("p", { id: "created-help" }, "Copy it now: it is not shown again."),
      h(
        "div",
        { class: "fields" },
        h("label", { for: "token-secret", class: "visually-hidden" }, "New token"),
        field,
        copy,
      ),
      h("p", {}, "Sign the CLI in with it:"),
      h("pre", { class: "token-usage" }, `devex login --url ${location.origin} --token -`),
    );
    created.hidden = false;
    field.focus();
    field.select();
  }

  function row(t: ApiToken): HTMLLIElement {
    const expires = t.expireTime ? timestampDate(t.expireTime) : undefined;
    const expired = expires !== undefined && expires.getTime() <= Date.now();
    const revoke = h(
      "button",
      { type: "button", class: "btn danger ghost", "aria-label": `Revoke ${t.name}` },
      "Revoke",
    );
    revoke.addEventListener("click", async () => {
      const sure = await confirmAction(
        `Revoke ${t.name}?`,
        "Whatever uses it (a CLI, a CI job, an agent) is refused from now on.",
        "Revoke token",
      );
      if (!sure) return;
      revoke.disabled = true;
      try {
        await core.auth.revokeApiToken({ tokenId: t.tokenId });
        toast(`Revoked ${t.name}.`);
        await refresh();
      } catch (err) {
        revoke.disabled = false;
        toast(`Could not revoke ${t.name}: ${describeError(err)}`, "error");
      }
    });
    const created = t.createTime ? timestampDate(t.createTime) : undefined;
    const used = t.lastUseTime ? timestampDate(t.lastUseTime) : undefined;
    return h(
      "li",
      { class: "token-card", "data-token-id": t.tokenId, "data-name": t.name },
      h("span", { class: "token-name" }, t.name),
      h(
        "p",
        { class: "repl-meta token-meta" },
        `created ${timeAgo(created)} · last used ${timeAgo(used)} · `,
        expired ? "expired" : expires ? `expires ${expires.toLocaleDateString()}` : "never expires",
      ),
      h("p", { class: "repl-meta token-scopes" }, t.scopes.length ? `only ${t.scopes.join(", ")}` : "full access"),
      h("div", { class: "repl-actions" }, revoke),
    );
  }

  async function refresh() {
    try {
      const { tokens } = await core.auth.listApiTokens({});
      if (disposed) return;
      list.replaceChildren(...tokens.map(row));
      empty.hidden = tokens.length > 0;
      listError.textContent = "";
    } catch (err) {
      listError.textContent = `Could not list your tokens: ${describeError(err)}`;
    }
  }

  void refresh();
  nameInput.focus();
  return () => {
    disposed = true;
  };
}
