/**
 * What a user's GitHub grant opens: the list of their repositories, and repls whose git reaches a
 * repository on GitHub through core's git route (git-route.ts) with the grant. The grant is used
 * only where it is needed: a private repository, or pushing where the user allowed it; a public
 * repository is cloned without it, as by anyone, so a grant GitHub no longer accepts does not
 * stop public clones.
 */
import type { ListGitHubRepositoriesResponse } from "../../../../gen/devex/core/v1/repl_pb.js";
import { ApiScope } from "../../../../lib/contracts/api-scopes.js";
import { failedPrecondition, permissionDenied, unavailable } from "../../../../lib/kit/errors.js";
import type { GitRecord } from "../state/store.js";
import type { ReplDeps } from "./deps.js";
import type { GitSourceInput } from "./git-source.js";
import { grantOf, listRepositories, NO_GRANT, onGitHub, repositoryAccess } from "./github.js";

const NO_GITHUB = "this server has no GitHub sign-in with access to repositories";

export async function listGitHubRepositories(
  deps: ReplDeps,
  userId: string,
  page: number,
  signal: AbortSignal,
): Promise<Omit<ListGitHubRepositoriesResponse, "$typeName">> {
  if (!deps.github) throw failedPrecondition(NO_GITHUB);
  const token = await grantOf(deps.state, deps.secrets, userId);
  if (!token) throw failedPrecondition(`listing your GitHub repositories: ${NO_GRANT}`);
  return listRepositories(deps.github, token, page, signal);
}

/** How the repl's git reaches the repository: with the owner's grant, or directly as anyone does. */
export async function gitAccessFor(
  deps: ReplDeps,
  owner: string,
  git: GitSourceInput,
  scopes: readonly ApiScope[],
  signal: AbortSignal,
): Promise<Pick<GitRecord, "githubGrant" | "allowPush">> {
  const push = git.allowPush ?? false;
  if (push && !scopes.includes(ApiScope.exec)) {
    throw permissionDenied(
      "allow_push lets code in the repl push to the repository with your GitHub grant: this API token needs the scope exec",
    );
  }
  const fullName = deps.github && onGitHub(deps.github, git.url);
  if (push && !deps.github) throw failedPrecondition(`allow_push: ${NO_GITHUB}`);
  if (push && !fullName) throw failedPrecondition(`allow_push works for repositories on ${deps.github!.gitUrl} only`);
  const token = fullName ? await grantOf(deps.state, deps.secrets, owner) : undefined;
  if (push && !token) throw failedPrecondition(`allow_push: ${NO_GRANT}`);
  if (!fullName || !token) return {};

  const access = await repositoryAccess(deps.github!, token, fullName.replace(/\.git$/, ""), signal);
  if (access.kind === "visible") {
    if (push && !access.push) {
      throw failedPrecondition(`allow_push: your GitHub account cannot push to ${fullName}`);
    }
    return access.private || push ? { githubGrant: true, allowPush: push } : {};
  }
  if (!push) return {}; // not one the grant reaches: cloned as anyone would (and refused if private)
  if (access.kind === "refused")
    throw failedPrecondition(`allow_push: GitHub no longer accepts your sign-in: ${NO_GRANT}`);
  if (access.kind === "missing")
    throw failedPrecondition(`allow_push: GitHub shows your account no repository ${fullName}`);
  throw unavailable("allow_push: GitHub did not answer whether you can push to the repository; try again");
}
