/**
 * What CreateRepl accepts as a repository to clone: an https:// URL (http:// where the operator
 * allows it, DEVEX_GIT_ALLOW_HTTP) with a host and without credentials, since git would keep them
 * in the workspace's .git/config. Other schemes (ssh, git, file, ext) are refused: file:// would
 * read the runner's own disk, and ext:: runs commands.
 */
import { invalidArgument } from "../../../../lib/kit/errors.js";

export interface GitSourceInput {
  url: string;
  ref: string;
  fullHistory: boolean;
  /** Git in the repl may push to it (github-access.ts). */
  allowPush?: boolean;
}

export function checkGitSource(source: GitSourceInput, allowHttp: boolean): GitSourceInput {
  let url: URL;
  try {
    url = new URL(source.url);
  } catch {
    throw invalidArgument(`"${source.url}" is not a URL; give the repository's https:// URL`);
  }
  const schemes = allowHttp ? ["https:", "http:"] : ["https:"];
  if (!schemes.includes(url.protocol)) {
    throw invalidArgument(
      `a repository URL must start with ${schemes.map((s) => `${s}//`).join(" or ")}, not ${url.protocol}`,
    );
  }
  if (url.username || url.password) {
    throw invalidArgument("a repository URL must not hold a user name or password: git would store it in the repl");
  }
  if (!url.hostname) throw invalidArgument(`"${source.url}" names no host`);
  // A full commit id is fetched by id (clone.ts), in git's lower case; anything else names a branch or tag.
  const ref = /^[0-9a-fA-F]{40}$/.test(source.ref) ? source.ref.toLowerCase() : source.ref;
  return { url: url.href, ref, fullHistory: source.fullHistory, allowPush: source.allowPush ?? false };
}
