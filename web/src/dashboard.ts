/**
 * Dashboard: the user's repls with their state and network policy, a form to create one from a
 * template (the operator's or the user's own, listed with Delete buttons: templates.ts),
 * start/stop/delete, "Save as template", and the network dialog (network.ts). While an operation
 * runs, the repl's WatchRepl stream shows its progress (restoring or persisting files). The list is refreshed
 * every few seconds while the tab is visible; long-lived streams are opened only for repls being
 * acted on (HTTP/1.1 allows few connections) or cloned: a repl created from a git repository shows
 * git's progress until it runs, and a failed clone's reason appears under the form. A user signed in
 * with GitHub picks the repository from theirs (github-repos.ts), and may let git in the repl push.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { CloneStatus, type Progress, type Repl, ReplStatus, type Template } from "../../gen/devex/core/v1/repl_pb.js";
import { core } from "./api.js";
import { gitHubPicker } from "./github-repos.js";
import type { Dispose, PageContext } from "./main.js";
import { editNetwork, networkLabel } from "./network.js";
import { describeProgress, gitSourceLabel, progressFraction, statusClass, statusLabel } from "./repl-status.js";
import { topBar } from "./shell.js";
import { OwnTemplates, saveAsTemplate, templateLabel } from "./templates.js";
import { confirmAction, describeError, h, isCode, timeAgo, toast } from "./ui.js";

interface Row {
  el: HTMLLIElement;
  update(repl: Repl, progress?: Progress): void;
  setBusy(busy: boolean): void;
}

export function renderDashboard(ctx: PageContext): Dispose {
  document.title = "Repls · Devex";
  const abort = new AbortController();
  const rows = new Map<string, Row>();
  const busy = new Set<string>();
  let templates: Template[] = [];

  const list = h("ul", { class: "repl-list", "aria-labelledby": "repls-title", id: "repl-list" });
  const empty = h("p", { class: "empty", hidden: true }, "No repls yet. Create one from a template above.");
  const listError = h("p", { class: "form-error", role: "alert" });

  // Create form
  const nameInput = h("input", {
    id: "new-name",
    name: "name",
    required: true,
    maxlength: 64,
    pattern: "[A-Za-z0-9][A-Za-z0-9 ._\\-]*",
    autocomplete: "off",
    "aria-describedby": "create-error",
  });
  const templateSelect = h("select", { id: "new-template", name: "template", "aria-describedby": "create-error" });
  const createError = h("p", { class: "form-error", role: "alert", id: "create-error" });
  // Optional: a repository (public, or one the user's GitHub grant reaches) cloned into the repl
  // instead of the template's files.
  const gitInput = h("input", {
    id: "new-git",
    name: "git",
    type: "url",
    placeholder: "https://github.com/owner/project.git",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "git-hint create-error",
  });
  const refInput = h("input", {
    id: "new-git-ref",
    name: "ref",
    maxlength: 200,
    pattern: "[A-Za-z0-9][A-Za-z0-9._\\/\\-]*",
    placeholder: "default branch",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "git-hint create-error",
  });
  const allowPush = h("input", {
    id: "new-git-push",
    name: "allow-push",
    type: "checkbox",
    disabled: true,
    "aria-describedby": "git-push-hint",
  });
  let pickedName = "";
  // Pushing goes through the user's GitHub grant: without one, core would refuse the box.
  let granted = false;
  const picker = gitHubPicker((r) => {
    gitInput.value = r.cloneUrl;
    refInput.value = "";
    refInput.placeholder = r.defaultBranch || "default branch";
    allowPush.disabled = false;
    const name = r.fullName
      .split("/")
      .at(-1)!
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 64);
    if (name && (!nameInput.value || /^[a-z0-9-]+-\d+$/.test(nameInput.value) || nameInput.value === pickedName))
      nameInput.value = name;
    pickedName = name;
  });
  gitInput.addEventListener("input", () => {
    picker.clear();
    refInput.placeholder = "default branch";
    allowPush.disabled = !granted || !gitInput.value.trim();
  });
  const createButton = h("button", { type: "submit", class: "btn primary" }, "Create repl");
  const form = h(
    "form",
    { class: "create-form", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New repl"),
    h(
      "div",
      { class: "fields" },
      h("div", { class: "field" }, h("label", { for: "new-template" }, "Template"), templateSelect),
      h("div", { class: "field grow" }, h("label", { for: "new-name" }, "Name"), nameInput),
      createButton,
    ),
    h(
      "div",
      { class: "fields" },
      h("div", { class: "field grow" }, h("label", { for: "new-git" }, "Git repository URL (optional)"), gitInput),
      h("div", { class: "field" }, h("label", { for: "new-git-ref" }, "Branch, tag or commit"), refInput),
      h("label", { class: "check-field", for: "new-git-push" }, allowPush, " Allow push"),
    ),
    h(
      "p",
      { class: "hint", id: "git-hint" },
      "With a repository, the repl gets its files instead of the template's; the template gives only its settings (run command, preview port).",
    ),
    h(
      "p",
      { class: "hint", id: "git-push-hint" },
      "Allow push: git in the repl can push to this repository (only this one) with your GitHub sign-in; no credential is stored in the repl.",
    ),
    picker.el,
    createError,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    createError.textContent = "";
    createButton.disabled = true;
    try {
      const url = gitInput.value.trim();
      const git = url ? { url, ref: refInput.value.trim(), allowPush: allowPush.checked } : undefined;
      const { repl } = await core.repls.createRepl({
        name: nameInput.value.trim(),
        template: templateSelect.value,
        git,
      });
      if (repl) upsert(repl);
      if (repl && git) void followClone(repl);
      toast(git ? `Cloning into ${repl?.name}…` : `Created ${repl?.name}.`);
      nameInput.value = suggestName();
      gitInput.value = "";
      refInput.value = "";
      refInput.placeholder = "default branch";
      allowPush.checked = false;
      allowPush.disabled = true;
      pickedName = "";
      picker.clear();
      rows
        .get(repl?.replId ?? "")
        ?.el.querySelector<HTMLAnchorElement>("a")
        ?.focus();
    } catch (err) {
      createError.textContent = isCode(err, Code.ResourceExhausted)
        ? `You have reached your repl quota. ${describeError(err)}`
        : `Could not create the repl: ${describeError(err)}`;
    } finally {
      createButton.disabled = false;
    }
  });

  const ownTemplates = new OwnTemplates(() => void loadTemplates());

  ctx.root.append(
    topBar(ctx, h("h1", { class: "page-title" }, "Repls")),
    h(
      "main",
      { class: "dashboard", id: "main" },
      form,
      ownTemplates.el,
      h(
        "section",
        { "aria-labelledby": "repls-title" },
        h("h2", { id: "repls-title" }, "Your repls"),
        listError,
        empty,
        list,
      ),
    ),
  );

  function suggestName(): string {
    const chosen = templates.find((x) => x.name === templateSelect.value);
    // The user's own templates have names core made up: their title says more.
    const fromTitle =
      chosen?.owner &&
      chosen.title
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "");
    const t = (fromTitle || templateSelect.value || "repl").slice(0, 56);
    const taken = new Set([...rows.values()].map((r) => r.el.dataset.name));
    for (let i = 1; ; i++) if (!taken.has(`${t}-${i}`)) return `${t}-${i}`;
  }

  function makeRow(repl: Repl): Row {
    const link = h("a", { href: `/repls/${repl.replId}`, "data-link": true, class: "repl-name" });
    const badge = h("span", { class: "badge" });
    const meta = h("p", { class: "repl-meta" });
    const networkLine = h("p", { class: "repl-meta repl-network" });
    const progressText = h("span", { class: "progress-text" });
    const bar = h("progress", { max: 1, hidden: true, "aria-label": "Progress" });
    const toggle = h("button", { type: "button", class: "btn" });
    const network = h("button", { type: "button", class: "btn ghost" }, "Network…");
    const saveTemplate = h("button", { type: "button", class: "btn ghost" }, "Save as template…");
    const remove = h("button", { type: "button", class: "btn danger ghost" }, "Delete");
    const errorLine = h("p", { class: "repl-error", role: "alert" });
    const el = h(
      "li",
      { class: "repl-card", "data-repl-id": repl.replId },
      h("div", { class: "repl-head" }, link, badge),
      meta,
      networkLine,
      h("div", { class: "repl-progress", "aria-live": "polite" }, progressText, bar),
      errorLine,
      h("div", { class: "repl-actions" }, toggle, network, saveTemplate, remove),
    );
    let current = repl;
    toggle.addEventListener("click", () => {
      if (current.status === ReplStatus.RUNNING) void act(current, "stop");
      else void act(current, "start");
    });
    remove.addEventListener("click", () => void act(current, "delete"));
    saveTemplate.addEventListener("click", async () => {
      busy.add(current.replId);
      row.setBusy(true);
      try {
        const saved = await saveAsTemplate(
          current,
          templates.find((t) => t.name === current.template),
        );
        if (saved) {
          toast(`Saved the template ${saved.title}: create repls from it above.`);
          await loadTemplates();
        }
      } finally {
        busy.delete(current.replId);
        row.setBusy(false);
        await refresh();
      }
    });
    network.addEventListener("click", async () => {
      const saved = await editNetwork(current);
      if (saved) {
        row.update(saved);
        toast(`${saved.name}'s network: ${networkLabel(saved.egress)}.`);
      }
    });
    const row: Row = {
      el,
      update(r, progress) {
        current = r;
        // Until cloned it cannot be opened (core refuses to start it): no link, a "Cloning…" badge.
        const cloning = r.git?.status === CloneStatus.CLONING && r.status !== ReplStatus.DELETING;
        el.dataset.name = r.name;
        el.dataset.status = cloning ? "cloning" : statusLabel[r.status].replace("…", "").toLowerCase();
        link.textContent = r.name;
        link.setAttribute("aria-label", `Open ${r.name} in the IDE`);
        if (cloning) link.removeAttribute("href");
        else link.setAttribute("href", `/repls/${r.replId}`);
        badge.textContent = cloning ? "Cloning…" : statusLabel[r.status];
        badge.className = `badge ${statusClass[r.status]}`;
        const updated = r.updateTime ? timestampDate(r.updateTime) : undefined;
        const saved = r.persistTime ? timestampDate(r.persistTime) : undefined;
        const from = templates.find((t) => t.name === r.template);
        const source = gitSourceLabel(r.git) || (from ? templateLabel(from) : r.template);
        meta.textContent = `${source} · changed ${timeAgo(updated)} · saved ${timeAgo(saved)}`;
        networkLine.textContent = `Network: ${networkLabel(r.egress)}`;
        network.setAttribute("aria-label", `Network policy of ${r.name}`);
        toggle.textContent = r.status === ReplStatus.RUNNING ? "Stop" : "Start";
        toggle.setAttribute("aria-label", `${toggle.textContent} ${r.name}`);
        remove.setAttribute("aria-label", `Delete ${r.name}`);
        const transitional = (r.status !== ReplStatus.RUNNING && r.status !== ReplStatus.STOPPED) || cloning;
        toggle.disabled = transitional || busy.has(r.replId);
        // A delete that failed stays deleting, with its error: deleting again finishes it.
        remove.disabled = (r.status === ReplStatus.DELETING && !r.lastError) || busy.has(r.replId);
        network.disabled = r.status === ReplStatus.DELETING;
        saveTemplate.setAttribute("aria-label", `Save ${r.name} as a template`);
        saveTemplate.disabled = transitional || busy.has(r.replId);
        errorLine.textContent = r.lastError ? `Last error: ${r.lastError}` : "";
        if (progress !== undefined || !transitional) {
          progressText.textContent = describeProgress(progress);
          const f = progressFraction(progress);
          bar.hidden = f === undefined;
          if (f !== undefined) bar.value = f;
        }
      },
      setBusy(b) {
        el.setAttribute("aria-busy", String(b));
        row.update(current);
      },
    };
    row.update(repl);
    return row;
  }

  function upsert(repl: Repl, progress?: Progress) {
    let row = rows.get(repl.replId);
    if (!row) {
      row = makeRow(repl);
      rows.set(repl.replId, row);
      list.prepend(row.el);
    } else row.update(repl, progress);
    empty.hidden = rows.size > 0;
  }

  async function act(repl: Repl, action: "start" | "stop" | "delete") {
    if (
      action === "delete" &&
      !(await confirmAction(
        `Delete ${repl.name}?`,
        "Its files are deleted from storage. This cannot be undone.",
        "Delete repl",
      ))
    )
      return;
    const row = rows.get(repl.replId);
    busy.add(repl.replId);
    row?.setBusy(true);
    const watch = new AbortController();
    abort.signal.addEventListener("abort", () => watch.abort(), { once: true });
    const watching = (async () => {
      try {
        for await (const m of core.repls.watchRepl({ replId: repl.replId }, { signal: watch.signal })) {
          if (m.repl) rows.get(repl.replId)?.update(m.repl, m.progress);
        }
      } catch {}
    })();
    try {
      if (action === "start") await core.repls.startRepl({ replId: repl.replId });
      else if (action === "stop") await core.repls.stopRepl({ replId: repl.replId });
      else {
        await core.repls.deleteRepl({ replId: repl.replId });
        rows.get(repl.replId)?.el.remove();
        rows.delete(repl.replId);
        empty.hidden = rows.size > 0;
        toast(`Deleted ${repl.name}.`);
      }
    } catch (err) {
      toast(`Could not ${action} ${repl.name}: ${describeError(err)}`, "error");
    } finally {
      watch.abort();
      await watching;
      busy.delete(repl.replId);
      row?.setBusy(false);
      await refresh();
    }
  }

  /** Repls whose clone this page follows (one WatchRepl stream each). */
  const cloning = new Set<string>();

  /**
   * Follows a repl's clone: its row shows git's progress until it runs cloned; a failed clone
   * deletes the repl, and the create form then says why (WatchRepl's last message).
   */
  async function followClone(repl: Repl) {
    if (cloning.has(repl.replId)) return;
    cloning.add(repl.replId);
    let last = repl;
    let done = false;
    let failure = "";
    try {
      for await (const m of core.repls.watchRepl({ replId: repl.replId }, { signal: abort.signal })) {
        if (m.repl) last = m.repl;
        rows.get(repl.replId)?.update(last, m.progress);
        done = last.status === ReplStatus.RUNNING && last.git?.status === CloneStatus.DONE;
        if (done) break;
      }
      // Ended without running: deleted, by the failed clone (saying why) or by the user (silently).
      failure = done ? "" : last.lastError;
    } catch (err) {
      if (abort.signal.aborted) return;
      // Gone before the watch opened: core's NotFound says why ("repl … was deleted: clone failed: …").
      const said = err instanceof ConnectError ? /was deleted: (.*)$/.exec(err.rawMessage)?.[1] : undefined;
      failure = isCode(err, Code.NotFound) ? (said ?? "clone failed") : "";
    } finally {
      cloning.delete(repl.replId);
    }
    if (done) toast(`Cloned ${last.name} at ${last.git?.commit.slice(0, 7)}: it is running.`);
    if (failure) {
      rows.get(repl.replId)?.el.remove();
      rows.delete(repl.replId);
      const from = repl.git?.source?.url ?? "the repository";
      createError.textContent = `Could not create ${repl.name} from ${from}: ${failure}. The repl was deleted.`;
      toast(`Could not clone into ${repl.name}: ${failure}`, "error");
    }
    await refresh();
  }

  async function refresh() {
    if (abort.signal.aborted) return;
    try {
      const { repls } = await core.repls.listRepls({ pageSize: 200 }, { signal: abort.signal });
      listError.textContent = "";
      const seen = new Set(repls.map((r) => r.replId));
      for (const [id, row] of rows) {
        if (!seen.has(id) && !busy.has(id)) {
          row.el.remove();
          rows.delete(id);
        }
      }
      // Newest first: add in reverse so prepend keeps the order.
      for (const r of [...repls].reverse()) if (!busy.has(r.replId)) upsert(r, undefined);
      // Clones begun elsewhere (or before a reload) show their progress too.
      for (const r of repls) if (r.git?.status === CloneStatus.CLONING) void followClone(r);
      empty.hidden = rows.size > 0;
      list.setAttribute("aria-busy", "false");
    } catch (err) {
      if (abort.signal.aborted) return;
      if (isCode(err, Code.Unauthenticated)) location.assign("/");
      else listError.textContent = `Could not load your repls: ${describeError(err)}`;
    }
  }

  /** The operator's templates, then the user's own (marked as theirs), keeping the chosen one. */
  async function loadTemplates() {
    try {
      ({ templates } = await core.repls.listTemplates({}, { signal: abort.signal }));
      const chosen = templateSelect.value;
      const sorted = [...templates.filter((t) => !t.owner), ...templates.filter((t) => t.owner)];
      templateSelect.replaceChildren(
        ...sorted.map((t) => h("option", { value: t.name, selected: t.name === chosen }, templateLabel(t))),
      );
      ownTemplates.show(templates);
    } catch (err) {
      if (!abort.signal.aborted) createError.textContent = `Could not load templates: ${describeError(err)}`;
    }
  }

  void picker.load(abort.signal).then((g) => {
    granted = g;
  });
  void (async () => {
    await loadTemplates();
    await refresh();
    // Never overwrite a name typed while the list was loading.
    if (!nameInput.value) nameInput.value = suggestName();
  })();
  templateSelect.addEventListener("change", () => {
    if (/^[a-z0-9-]+-\d+$/.test(nameInput.value) || !nameInput.value) nameInput.value = suggestName();
  });

  const timer = setInterval(() => {
    if (document.visibilityState === "visible") void refresh();
  }, 5000);
  return () => {
    clearInterval(timer);
    abort.abort();
  };
}
