/**
 * The create form's picker of the user's GitHub repositories (ListGitHubRepositories: private ones
 * too, most recently pushed first), filtered by name as the user types; a pick fills the form's URL.
 * Asked only when core has GitHub sign-in (web-config.json); a user signed in another way
 * (FailedPrecondition) gets a hint to sign in with GitHub instead, and other failures leave the
 * form as it was: a URL can always be typed.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { GitHubRepository } from "../../gen/devex/core/v1/repl_pb.js";
import { core, webConfig } from "./api.js";
import { h, isCode, timeAgo } from "./ui.js";

/** Repositories whose full name (or description) contains every word of `query`, case-insensitively. */
export function filterRepositories(repositories: GitHubRepository[], query: string): GitHubRepository[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return repositories.filter((r) => {
    const text = `${r.fullName} ${r.description}`.toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

export interface GitHubPicker {
  el: HTMLElement;
  /** Asks core for the repositories (the picker shows when there are some), or shows the hint to sign in with GitHub; true when core keeps the user's grant. */
  load(signal: AbortSignal): Promise<boolean>;
  /** Forgets the pick (the form was sent, or its URL changed by hand). */
  clear(): void;
}

export function gitHubPicker(onPick: (repository: GitHubRepository) => void): GitHubPicker {
  let repositories: GitHubRepository[] = [];
  let picked = "";
  const search = h("input", {
    id: "github-search",
    type: "search",
    placeholder: "Filter by name",
    autocomplete: "off",
    spellcheck: "false",
    "aria-controls": "github-repos",
  });
  const list = h("ul", { class: "github-repos", id: "github-repos", "aria-label": "Your GitHub repositories" });
  const none = h("p", { class: "hint", hidden: true }, "No repository matches.");
  const more = h("p", { class: "hint", hidden: true });
  const picker = h(
    "div",
    { class: "github-picker", hidden: true },
    h("div", { class: "field" }, h("label", { for: "github-search" }, "Your GitHub repositories"), search),
    list,
    none,
    more,
  );
  const signIn = h(
    "p",
    { class: "hint", hidden: true },
    h("a", { href: "/auth/login" }, "Sign in with GitHub"),
    " to pick from your GitHub repositories, private ones included.",
  );

  function item(r: GitHubRepository) {
    const button = h(
      "button",
      {
        type: "button",
        class: "github-repo",
        "aria-pressed": String(r.cloneUrl === picked),
        title: r.description || r.fullName,
      },
      h("span", { class: "github-repo-name" }, r.fullName),
      r.private ? h("span", { class: "badge private" }, "Private") : null,
      h(
        "span",
        { class: "github-repo-meta" },
        `${r.defaultBranch}${r.pushTime ? ` · pushed ${timeAgo(timestampDate(r.pushTime))}` : ""}`,
      ),
    );
    button.addEventListener("click", () => {
      picked = r.cloneUrl;
      show();
      onPick(r);
    });
    return h("li", {}, button);
  }

  function show() {
    const shown = filterRepositories(repositories, search.value);
    list.replaceChildren(...shown.map(item));
    none.hidden = shown.length > 0;
  }
  search.addEventListener("input", show);

  return {
    el: h("div", {}, picker, signIn),
    async load(signal) {
      if (!(await webConfig()).github || signal.aborted) return false;
      try {
        // Signed in without GitHub: say how to get the picker, without asking for a list core refuses.
        if (!(await core.auth.getCurrentUser({}, { signal })).githubGrant) {
          signIn.hidden = signal.aborted;
          return false;
        }
        const res = await core.repls.listGitHubRepositories({ page: 1 }, { signal });
        repositories = res.repositories;
        more.textContent = res.more
          ? `The ${repositories.length} most recently pushed: paste another one's URL above.`
          : "";
        more.hidden = !res.more;
        picker.hidden = repositories.length === 0;
        show();
        return true;
      } catch (err) {
        // Signed in without GitHub: say how to get the picker; anything else leaves the form as is.
        signIn.hidden = signal.aborted || !isCode(err, Code.FailedPrecondition);
        return false;
      }
    },
    clear() {
      picked = "";
      if (repositories.length) show();
    },
  };
}
