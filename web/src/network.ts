/**
 * A repl's network (egress) policy in the browser: a short label for cards and the IDE's top bar, and
 * the dialog in which the owner changes it (mode, domains and CIDRs one per line; SetEgressPolicy on
 * Save, core's refusal shown inline). Core checks every entry; the dialog only sorts lines into
 * address ranges and names.
 */
import { EgressMode, type EgressPolicy, type Repl } from "../../gen/devex/core/v1/repl_pb.js";
import { core } from "./api.js";
import { describeError, h } from "./ui.js";

const modeLabels: Record<EgressMode, string> = {
  [EgressMode.UNSPECIFIED]: "Default",
  [EgressMode.ALLOW_ALL]: "Allow all",
  [EgressMode.DENY_ALL]: "Deny all",
  [EgressMode.ALLOWLIST]: "Allowlist",
};

const modeHelp: Record<EgressMode, string> = {
  [EgressMode.UNSPECIFIED]: "The template's or the server's policy.",
  [EgressMode.ALLOW_ALL]: "Any public address. Listed CIDRs open private ranges too.",
  [EgressMode.DENY_ALL]: "No connection leaves the repl; names do not resolve.",
  [EgressMode.ALLOWLIST]: "Only the listed domains (*.example.com for every name below it) and CIDRs.",
};

/** "Allow all", "Deny all", "Allowlist (3)". */
export function networkLabel(p: EgressPolicy | undefined): string {
  const mode = p?.mode ?? EgressMode.UNSPECIFIED;
  const entries = (p?.allowDomains.length ?? 0) + (p?.allowCidrs.length ?? 0);
  return mode === EgressMode.ALLOWLIST || entries > 0 ? `${modeLabels[mode]} (${entries})` : modeLabels[mode];
}

/** An IPv4 address or range, or anything with a colon (IPv6): the rest are names. */
const looksLikeAddress = (entry: string) => /^[\d.]+(\/\d+)?$/.test(entry) || entry.includes(":");

function policyFromForm(mode: EgressMode, text: string) {
  if (mode === EgressMode.UNSPECIFIED || mode === EgressMode.DENY_ALL) return { mode };
  const entries = text
    .split(/[\s,]+/)
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  return {
    mode,
    allowDomains: entries.filter((e) => !looksLikeAddress(e)),
    allowCidrs: entries.filter(looksLikeAddress),
  };
}

/** The dialog that changes the repl's policy; resolves with the repl as saved, or undefined when cancelled. */
export function editNetwork(repl: Repl): Promise<Repl | undefined> {
  return new Promise((resolve) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const current = repl.egress;
    const select = h("select", { id: `${id}-mode` });
    for (const mode of [EgressMode.ALLOW_ALL, EgressMode.DENY_ALL, EgressMode.ALLOWLIST, EgressMode.UNSPECIFIED])
      select.append(h("option", { value: mode, selected: mode === (current?.mode ?? 0) }, modeLabels[mode]));
    const help = h("p", { class: "field-help", id: `${id}-help` });
    const entries = h("textarea", {
      id: `${id}-entries`,
      rows: 6,
      spellcheck: "false",
      autocomplete: "off",
      placeholder: "registry.npmjs.org\n*.github.com\n203.0.113.0/24",
      "aria-describedby": `${id}-err`,
    });
    entries.value = [...(current?.allowDomains ?? []), ...(current?.allowCidrs ?? [])].join("\n");
    const error = h("p", { class: "form-error", role: "alert", id: `${id}-err` });
    const save = h("button", { type: "submit", class: "btn primary" }, "Save");
    const denied = repl.egressDeniedCidrs.join(", ");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: `${id}-t` }, `Network of ${repl.name}`),
      h("label", { for: `${id}-mode` }, "Mode"),
      select,
      help,
      h("label", { for: `${id}-entries` }, "Domains and CIDRs, one per line"),
      entries,
      error,
      denied && h("details", { class: "denied" }, h("summary", {}, "Always denied"), h("p", {}, denied)),
      repl.egressNotEnforced &&
        h("p", { class: "form-error", role: "note" }, `Not enforced: ${repl.egressNotEnforced}`),
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "button", class: "btn", onclick: () => done(undefined) }, "Cancel"),
        save,
      ),
    );
    const dialog = h("dialog", { class: "dialog network-dialog", "aria-labelledby": `${id}-t` }, form);
    const showMode = () => {
      const mode = Number(select.value) as EgressMode;
      help.textContent = modeHelp[mode];
      entries.disabled = mode === EgressMode.DENY_ALL || mode === EgressMode.UNSPECIFIED;
    };
    select.addEventListener("change", showMode);
    showMode();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      entries.removeAttribute("aria-invalid");
      save.disabled = true;
      try {
        const egress = policyFromForm(Number(select.value) as EgressMode, entries.value);
        const res = await core.repls.setEgressPolicy({ replId: repl.replId, egress });
        done(res.repl ?? repl);
      } catch (err) {
        error.textContent = `Could not save: ${describeError(err)}`;
        entries.setAttribute("aria-invalid", "true");
      } finally {
        save.disabled = false;
      }
    });
    const done = (r: Repl | undefined) => {
      dialog.close();
      dialog.remove();
      resolve(r);
    };
    dialog.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      done(undefined);
    });
    document.body.append(dialog);
    dialog.showModal();
    select.focus();
  });
}
