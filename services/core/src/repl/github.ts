/**
 * A user's GitHub grant: the OAuth access token GitHub gave core when they signed in (scope "repo"
 * where the operator asks for it), sealed under the secrets key in their user record. Core alone
 * uses it: to list their repositories, and in its git route (git-route.ts) to fetch from and push
 * to a repl's repository. It never reaches a runner, a repl or a client.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type GitHubRepository, GitHubRepositorySchema } from "../../../../gen/devex/core/v1/repl_pb.js";
import { failedPrecondition, unavailable } from "../../../../lib/kit/errors.js";
import type { StateStore } from "../state/store.js";
import type { SecretBox } from "./secret-box.js";

/** Where GitHub is: github.com, GitHub Enterprise, or a test's stand-in. */
export interface GitHubHosts {
  /** The REST API's base, https://api.github.com. */
  apiUrl: string;
  /** Where repositories are cloned from, https://github.com. */
  gitUrl: string;
}

export const GITHUB_DOT_COM: GitHubHosts = { apiUrl: "https://api.github.com", gitUrl: "https://github.com" };

const grantContext = (userId: string) => `github-grant:${userId}`;

export const sealGrant = (box: SecretBox, userId: string, accessToken: string) =>
  box.seal(accessToken, grantContext(userId));

/** The user's GitHub access token, or undefined when they have none (or it no longer opens). */
export async function grantOf(state: StateStore, box: SecretBox, userId: string): Promise<string | undefined> {
  const sealed = (await state.getUser(userId))?.github;
  if (!sealed) return undefined;
  try {
    return box.open(sealed, grantContext(userId));
  } catch {
    return undefined; // sealed under an older key: the user signs in again
  }
}

/** The repository's URL when it is on the GitHub host ("owner/name" path), else undefined. */
export function onGitHub(hosts: GitHubHosts, url: string): string | undefined {
  const base = hosts.gitUrl.replace(/\/+$/, "");
  if (!url.startsWith(`${base}/`)) return undefined;
  const path = url.slice(base.length + 1).replace(/\/+$/, "");
  return /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(path) ? path : undefined;
}

export const NO_GRANT =
  "this needs a GitHub sign-in that grants core access to your repositories: sign out and sign in with GitHub again";

interface ApiRepository {
  full_name: string;
  clone_url: string;
  private: boolean;
  default_branch: string;
  description: string | null;
  pushed_at: string | null;
}

const PAGE_SIZE = 100;

/** One page of the repositories the user's grant reaches, most recently pushed first. */
export async function listRepositories(
  hosts: GitHubHosts,
  token: string,
  page: number,
  signal: AbortSignal,
): Promise<{ repositories: GitHubRepository[]; more: boolean }> {
  const url = new URL(`${hosts.apiUrl.replace(/\/+$/, "")}/user/repos`);
  url.searchParams.set("per_page", String(PAGE_SIZE));
  url.searchParams.set("page", String(Math.max(1, page)));
  url.searchParams.set("sort", "pushed");
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: "application/vnd.github+json", "user-agent": "devex" },
      signal: AbortSignal.any([signal, AbortSignal.timeout(20_000)]),
    });
  } catch (err) {
    throw unavailable("GitHub did not answer; try again", err);
  }
  if (res.status === 401) throw failedPrecondition(`GitHub no longer accepts your sign-in: ${NO_GRANT}`);
  if (!res.ok) throw unavailable(`GitHub answered ${res.status} when listing your repositories; try again`);
  const body = (await res.json().catch(() => undefined)) as ApiRepository[] | undefined;
  if (!Array.isArray(body)) throw unavailable("GitHub's answer was not a list of repositories; try again");
  return {
    repositories: body.map((r) =>
      create(GitHubRepositorySchema, {
        fullName: r.full_name,
        cloneUrl: r.clone_url,
        private: r.private,
        defaultBranch: r.default_branch,
        description: r.description ?? "",
        pushTime: r.pushed_at ? timestampFromMs(Date.parse(r.pushed_at)) : undefined,
      }),
    ),
    more: body.length === PAGE_SIZE,
  };
}

/** What the grant gives on one repository ("owner/name"), as GitHub's API says. */
export type RepositoryAccess =
  | { kind: "visible"; private: boolean; push: boolean }
  | { kind: "missing" | "refused" | "unreachable" };

export async function repositoryAccess(
  hosts: GitHubHosts,
  token: string,
  fullName: string,
  signal: AbortSignal,
): Promise<RepositoryAccess> {
  try {
    const res = await fetch(`${hosts.apiUrl.replace(/\/+$/, "")}/repos/${fullName}`, {
      headers: { authorization: `Bearer ${token}`, accept: "application/vnd.github+json", "user-agent": "devex" },
      signal: AbortSignal.any([signal, AbortSignal.timeout(20_000)]),
    });
    if (res.status === 401) return { kind: "refused" };
    if (res.status === 404 || res.status === 403) return { kind: "missing" };
    if (!res.ok) return { kind: "unreachable" };
    const r = (await res.json()) as { private?: boolean; permissions?: { push?: boolean } };
    return { kind: "visible", private: r.private === true, push: r.permissions?.push === true };
  } catch {
    return { kind: "unreachable" };
  }
}
