/**
 * The caller's GitHub repositories (ListGitHubRepositories, private ones included when they signed
 * in with GitHub): `devex github repos` lists them; `devex create --github` lets the user pick one by
 * number (or full name) on a terminal, and without one prints the list and says to pass
 * `--git <clone_url>`.
 */
import { createInterface } from "node:readline/promises";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { GitHubRepository } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { CliError } from "./cli-error.js";
import { describeError, redact } from "./errors.js";
import { formatTable } from "./table.js";

export interface RepositoryPage {
  repositories: GitHubRepository[];
  /** More repositories follow than were fetched. */
  more: boolean;
}

/** Pages of 100, most recently pushed first: the first `pages` of them (all when undefined). */
export async function fetchRepositories(core: CoreClients, pages?: number): Promise<RepositoryPage> {
  const repositories: GitHubRepository[] = [];
  for (let page = 1; ; page++) {
    const res = await core.repls.listGitHubRepositories({ page }).catch((e) => {
      throw describeGitHubError(e);
    });
    repositories.push(...res.repositories);
    if (!res.more || !res.repositories.length) return { repositories, more: false };
    if (pages !== undefined && page >= pages) return { repositories, more: true };
  }
}

/** Core's FailedPrecondition (no GitHub sign-in, or none on the server) says what to do: as it is. */
function describeGitHubError(e: unknown): CliError {
  if (e instanceof ConnectError && e.code === Code.FailedPrecondition) return new CliError(redact(e.rawMessage));
  return describeError(e);
}

/** The table `devex github repos` prints; numbered (#) for the picker. */
export function formatRepositories(repositories: GitHubRepository[], numbered = false): string {
  const header = ["NAME", "VISIBILITY", "DEFAULT BRANCH", "PUSHED", "CLONE URL"];
  const rows = repositories.map((r) => [
    r.fullName,
    r.private ? "private" : "public",
    r.defaultBranch,
    r.pushTime ? timestampDate(r.pushTime).toISOString().slice(0, 10) : "",
    r.cloneUrl,
  ]);
  if (!numbered) return formatTable(header, rows);
  return formatTable(
    ["#", ...header],
    rows.map((row, i) => [String(i + 1), ...row]),
  );
}

export async function listGitHubRepositories(core: CoreClients, out: NodeJS.WritableStream): Promise<void> {
  const { repositories } = await fetchRepositories(core);
  out.write(repositories.length ? formatRepositories(repositories) : "no GitHub repositories\n");
}

/** The repository an answer names: its number in the list or its full name; undefined for anything else. */
export function parsePick(answer: string, repositories: GitHubRepository[]): GitHubRepository | undefined {
  const text = answer.trim();
  if (/^\d+$/.test(text)) return repositories[Number(text) - 1];
  return repositories.find((r) => r.fullName.toLowerCase() === text.toLowerCase());
}

export interface PickIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Asks on the terminal which repository to clone. Without one (stdin piped), prints the list on
 * stdout and fails saying to pass --git <clone_url>: a script names its repository.
 */
export async function pickRepository(page: RepositoryPage, io: PickIo): Promise<GitHubRepository> {
  const { repositories, more } = page;
  if (!repositories.length) throw new CliError("your GitHub account reaches no repository: nothing to create from");
  const moreNote = more
    ? `(the ${repositories.length} most recently pushed; devex github repos lists them all, and --git <clone_url> takes any)\n`
    : "";
  if (!io.stdin.isTTY) {
    io.stdout.write(formatRepositories(repositories));
    io.stderr.write(moreNote);
    throw new CliError(
      "--github picks a repository on a terminal: pass one with --git <clone_url> (the CLONE URL column above)",
    );
  }
  io.stderr.write(formatRepositories(repositories, true) + moreNote);
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  const closed = new Promise<undefined>((resolve) => rl.once("close", () => resolve(undefined)));
  try {
    for (;;) {
      const question = rl.question(`Repository to clone (1-${repositories.length} or owner/name): `);
      // Ctrl-D (stdin ended) closes the interface and leaves the question unanswered.
      const answer = await Promise.race([question.catch(() => undefined), closed]);
      if (answer === undefined || !answer.trim()) throw new CliError("no repository chosen: nothing created");
      const chosen = parsePick(answer, repositories);
      if (chosen) return chosen;
      io.stderr.write(`"${answer.trim()}" is not in the list: give a number from 1 to ${repositories.length}\n`);
    }
  } finally {
    rl.close();
  }
}
