/**
 * `devex create --github`, `--allow-push` and `devex github repos` without a server: the flags a
 * command refuses before it signs in, the repository table, the picker on a terminal (a stream that
 * says it is one) and without one (the list, then an error saying to pass --git <clone_url>), and how
 * `ls` shows a repl whose git goes through the user's GitHub grant.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CloneStatus, GitHubRepositorySchema, GitOriginSchema } from "../../gen/devex/core/v1/repl_pb.js";
import { CliError, UsageError } from "../src/cli-error.js";
import { run } from "../src/commands.js";
import { gitLabel } from "../src/git-create.js";
import { formatRepositories, parsePick, pickRepository } from "../src/github.js";

const repositories = [
  create(GitHubRepositorySchema, {
    fullName: "alice/secret-app",
    cloneUrl: "https://github.com/alice/secret-app.git",
    private: true,
    defaultBranch: "main",
    pushTime: timestampFromDate(new Date("2026-11-30T12:00:00Z")),
  }),
  create(GitHubRepositorySchema, {
    fullName: "acme/site",
    cloneUrl: "https://github.com/acme/site.git",
    private: false,
    defaultBranch: "trunk",
  }),
];

function collect() {
  let text = "";
  const stream = new PassThrough();
  stream.on("data", (d) => {
    text += d;
  });
  return { stream, text: () => text };
}

describe("devex create --github / --allow-push, devex github repos", () => {
  it("refuses flag mistakes as usage errors before signing in", async () => {
    for (const [args, message] of [
      [["create", "--template", "node", "--allow-push"], /--allow-push goes with --git <url> or --github/],
      [["create", "--template", "node", "--full-history"], /--full-history goes with/],
      [["create", "--github", "--git", "https://github.com/acme/site.git"], /give one of them/],
      [["create", "--github=yes"], /--github/],
      [["create"], /--template <t> .*, --git <url> or --github/],
      [["github"], /github needs repos/],
      [["github", "clone"], /unknown github command: clone/],
      [["github", "repos", "extra"], /unexpected arguments/],
    ] as const) {
      await assert.rejects(
        run([...args]),
        (e: unknown) => e instanceof UsageError && message.test(e.message),
        args.join(" "),
      );
    }
  });

  it("lists repositories with their visibility, default branch, last push and clone URL", () => {
    const table = formatRepositories(repositories).split("\n");
    assert.match(table[0], /^NAME\s+VISIBILITY\s+DEFAULT BRANCH\s+PUSHED\s+CLONE URL$/);
    assert.match(
      table[1],
      /^alice\/secret-app\s+private\s+main\s+2026-11-30\s+https:\/\/github\.com\/alice\/secret-app\.git$/,
    );
    assert.match(table[2], /^acme\/site\s+public\s+trunk\s+https:\/\/github\.com\/acme\/site\.git$/);
    assert.match(formatRepositories(repositories, true).split("\n")[2], /^2\s+acme\/site\s/);
  });

  it("a pick is a number in the list or a full name", () => {
    assert.equal(parsePick("2", repositories)?.fullName, "acme/site");
    assert.equal(parsePick(" Alice/Secret-App ", repositories)?.fullName, "alice/secret-app");
    for (const bad of ["0", "3", "-1", "site", "1.5"]) assert.equal(parsePick(bad, repositories), undefined, bad);
  });

  it("without a terminal: prints the list on stdout and says to pass --git <clone_url>", async () => {
    const stdout = collect();
    const stderr = collect();
    const stdin = Object.assign(new PassThrough(), { isTTY: false });
    await assert.rejects(
      pickRepository({ repositories, more: false }, { stdin, stdout: stdout.stream, stderr: stderr.stream }),
      (e: unknown) => e instanceof CliError && e.exitCode === 1 && /pass one with --git <clone_url>/.test(e.message),
    );
    assert.match(stdout.text(), /https:\/\/github\.com\/acme\/site\.git/);
    assert.equal(stderr.text(), "");
  });

  it("on a terminal: asks again after an answer not in the list, returns the one picked", async () => {
    const stdout = collect();
    const stderr = collect();
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    const picked = pickRepository(
      { repositories, more: true },
      { stdin, stdout: stdout.stream, stderr: stderr.stream },
    );
    stdin.write("7\n");
    await new Promise((r) => setTimeout(r, 20));
    stdin.write("2\n");
    assert.equal((await picked).cloneUrl, "https://github.com/acme/site.git");
    assert.equal(stdout.text(), "", "the list and the question go to stderr");
    assert.match(stderr.text(), /^#\s+NAME/);
    assert.match(stderr.text(), /the 2 most recently pushed; devex github repos lists them all/);
    assert.match(stderr.text(), /"7" is not in the list: give a number from 1 to 2/);
  });

  it("on a terminal: an empty answer or Ctrl-D creates nothing; no repository at all is an error", async () => {
    for (const input of ["\n", ""]) {
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      const picked = pickRepository(
        { repositories, more: false },
        { stdin, stdout: collect().stream, stderr: collect().stream },
      );
      stdin.end(input);
      await assert.rejects(picked, /no repository chosen: nothing created/);
    }
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    await assert.rejects(
      pickRepository({ repositories: [], more: false }, { stdin, stdout: collect().stream, stderr: collect().stream }),
      /reaches no repository/,
    );
  });

  it("ls's source says when git goes through the GitHub grant and may push", () => {
    const url = "https://github.com/alice/secret-app.git";
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const origin = (allowPush: boolean, githubGrant: boolean, status = CloneStatus.DONE) =>
      create(GitOriginSchema, { source: { url, ref: "main", allowPush }, status, commit, githubGrant });
    assert.equal(gitLabel(origin(false, false)), `${url}#main @0123456789ab`);
    assert.equal(gitLabel(origin(false, true)), `${url}#main @0123456789ab [github grant]`);
    assert.equal(gitLabel(origin(true, true)), `${url}#main @0123456789ab [github grant, push allowed]`);
    assert.equal(
      gitLabel(origin(true, true, CloneStatus.CLONING)),
      `${url}#main (cloning) [github grant, push allowed]`,
    );
  });
});
