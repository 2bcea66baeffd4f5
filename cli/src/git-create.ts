/**
 * `devex create --git <url>[#ref]` (or `--github`, the repository picked from the user's: github.ts):
 * core creates the repl and clones the repository in its sandbox; this prints the repl's id, follows
 * WatchRepl (git's objects and MiB received, on one line of a terminal) and ends when the repl runs
 * cloned (printing the commit) or is gone (the clone failed: WatchRepl's last message says why,
 * which becomes the error). With --allow-push, git in the repl pushes through core with the user's
 * GitHub grant.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { CloneStatus, type GitOrigin, type Progress, type Repl, ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { CliError, UsageError } from "./cli-error.js";
import { describeError, redact } from "./errors.js";
import type { PolicyInit } from "./network.js";

export interface GitCreate {
  url: string;
  ref: string;
  fullHistory: boolean;
  /** Git in the repl may push to the repository, through core with the user's GitHub grant. */
  allowPush: boolean;
  /** Empty: no template (its settings only: run command, port, variables). */
  template: string;
  name: string;
  egress: PolicyInit | undefined;
}

/** `<url>[#ref]`: the ref (a branch, tag or full commit id) after the last `#`. */
export function parseGitArgument(text: string): { url: string; ref: string } {
  const hash = text.lastIndexOf("#");
  const url = hash < 0 ? text : text.slice(0, hash);
  const ref = hash < 0 ? "" : text.slice(hash + 1);
  if (!url) throw new UsageError("--git needs a repository URL, such as https://github.com/owner/project.git");
  if (hash >= 0 && !ref) throw new UsageError("--git <url>#<ref>: the ref after # is empty");
  return { url, ref };
}

/** A repl name from the repository's: "https://host/owner/my-app.git" → "my-app". */
export function nameFromUrl(url: string): string {
  const last =
    url
      .replace(/[?#].*$/, "")
      .replace(/\/+$/, "")
      .split("/")
      .at(-1) ?? "";
  const name = last
    .replace(/\.git$/, "")
    .replace(/[^A-Za-z0-9 ._-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 64);
  return name || "repo";
}

/**
 * "<url>#<ref> @<commit>", "<url> (cloning)": where a repl's files came from, then how its git
 * reaches the repository ("[github grant, push allowed]"); "" for a template's.
 */
export function gitLabel(git: GitOrigin | undefined): string {
  if (!git?.source) return "";
  const from = git.source.ref ? `${git.source.url}#${git.source.ref}` : git.source.url;
  const at = git.status === CloneStatus.CLONING ? " (cloning)" : git.commit ? ` @${git.commit.slice(0, 12)}` : "";
  const access = [git.githubGrant && "github grant", git.source.allowPush && "push allowed"].filter(Boolean);
  return `${from}${at}${access.length ? ` [${access.join(", ")}]` : ""}`;
}

const MiB = 1024 * 1024;

function progressLine(p: Progress): string {
  const objects = p.filesTotal > 0n ? `${p.filesDone}/${p.filesTotal} objects` : `${p.filesDone} objects`;
  return `cloning: ${objects}, ${(Number(p.bytesDone) / MiB).toFixed(1)} MiB`;
}

export async function createFromGit(
  core: CoreClients,
  o: GitCreate,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream },
): Promise<void> {
  const { repl } = await core.repls
    .createRepl({
      name: o.name,
      template: o.template,
      egress: o.egress,
      git: { url: o.url, ref: o.ref, fullHistory: o.fullHistory, allowPush: o.allowPush },
    })
    .catch((e) => {
      // Core's refusal of allow_push (no GitHub sign-in, another host) names the field: here it is the flag.
      if (e instanceof ConnectError && e.code === Code.FailedPrecondition)
        throw new CliError(redact(e.rawMessage).replace(/^allow_push: /, "--allow-push: "));
      throw describeError(e);
    });
  const replId = repl?.replId ?? "";
  io.stdout.write(`${replId}\n`);
  const tty = io.stderr.isTTY === true;
  io.stderr.write(`cloning ${o.ref ? `${o.url}#${o.ref}` : o.url} into ${replId}…\n`);
  let line = false;
  const show = (text: string) => {
    if (!tty) return;
    io.stderr.write(`\r\u001b[K${text}`);
    line = true;
  };
  const endLine = () => {
    if (line) io.stderr.write("\r\u001b[K");
    line = false;
  };
  let last: Repl | undefined = repl;
  try {
    for await (const m of core.repls.watchRepl({ replId })) {
      if (m.repl) last = m.repl;
      if (m.progress?.phase === "clone") show(progressLine(m.progress));
      if (last?.status === ReplStatus.RUNNING && last.git?.status === CloneStatus.DONE) {
        endLine();
        io.stderr.write(`${replId} runs, cloned at ${last.git.commit}: devex attach ${replId}\n`);
        if (last.git.source?.allowPush)
          io.stderr.write(
            `git push in ${replId} goes to ${o.url} with your GitHub grant (no credential in the repl)\n`,
          );
        io.stdout.write(`${last.git.commit}\n`);
        return;
      }
    }
  } catch (e) {
    endLine();
    // Gone before the watch opened: the clone failed at once; core's NotFound says why ("was deleted: …").
    if (e instanceof ConnectError && e.code === Code.NotFound)
      throw new CliError(
        /was deleted: /.test(e.rawMessage) ? e.rawMessage : `clone failed, and the repl ${replId} was deleted`,
      );
    throw describeError(e);
  }
  endLine();
  // WatchRepl ends when the repl is deleted; its last message says why.
  throw new CliError(`${last?.lastError || "clone failed"} (the repl ${replId} was deleted)`);
}
