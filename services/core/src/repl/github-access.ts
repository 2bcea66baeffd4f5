/**
 * What a user's GitHub grant opens: the list of their repositories, and repls whose git reaches a
 * repository on GitHub through core's git route (git-route.ts) with the grant: private ones too,
 * and pushing where the user allowed it when creating the repl.
 */
import type { ListGitHubRepositoriesResponse } from "../../../../gen/devex/core/v1/repl_pb.js";
import { failedPrecondition } from "../../../../lib/kit/errors.js";
import type { GitRecord } from "../state/store.js";
import type { ReplDeps } from "./deps.js";
import type { GitSourceInput } from "./git-source.js";
import { grantOf, listRepositories, NO_GRANT, onGitHub } from "./github.js";

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

/**
 * How the repl's git reaches the repository: with the owner's grant when it is on GitHub and they
 * have one; directly (public repositories only) otherwise. Pushing needs the grant.
 */
export async function gitAccessFor(
  deps: ReplDeps,
  owner: string,
  git: GitSourceInput,
): Promise<Pick<GitRecord, "githubGrant" | "allowPush">> {
  const onHost = deps.github && onGitHub(deps.github, git.url);
  const granted = onHost ? (await grantOf(deps.state, deps.secrets, owner)) !== undefined : false;
  if (git.allowPush) {
    if (!deps.github) throw failedPrecondition(`allow_push: ${NO_GITHUB}`);
    if (!onHost) throw failedPrecondition(`allow_push works for repositories on ${deps.github.gitUrl} only`);
    if (!granted) throw failedPrecondition(`allow_push: ${NO_GRANT}`);
  }
  return granted ? { githubGrant: true, allowPush: git.allowPush ?? false } : {};
}
