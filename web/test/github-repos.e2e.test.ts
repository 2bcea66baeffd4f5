/**
 * The dashboard's picker of the user's GitHub repositories and its "Allow push" box in the browser
 * (Chromium via playwright-core, the embedded setup with real runners in the default sandbox, GitHub
 * sign-in against a fake GitHub, lib/testing/fake-github.ts, whose git host is git's own
 * http-backend on loopback). The browser signs in through GitHub and keeps core's session cookie;
 * the picker lists the user's repositories (the private one marked), the filter narrows them as the
 * user types, a pick fills the form, and the repl is created with push allowed and the user's grant,
 * cloned through the runner's relay and core's git route (the private repository answers only the
 * grant) and opened in the IDE. A user signed in with a login link instead gets a hint to sign in
 * with GitHub, and no picker.
 */
import assert from "node:assert/strict";
import { CloneStatus, ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";
import { type FakeGitHub, fakeGitHub } from "../../lib/testing/fake-github.js";
import { startGitServer, type TestGitServer, writeFiles } from "../../lib/testing/git-server.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { issueLoginLink } from "../../services/core/src/auth/login-links.js";
import { type BrowserSetup, openBrowser, waitConnected } from "./browser.js";

describe("web client: a repl from the user's GitHub repositories (Chromium, embedded setup)", function () {
  this.timeout(180_000);
  let s: BrowserSetup;
  let server: TestGitServer;
  let github: FakeGitHub;
  let commit = "";

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    requireProgram(this, "git");
    github = fakeGitHub({ clientId: "test-client", clientSecret: "test-secret", login: "octocat" });
    // The private repository answers only the grant, as GitHub does.
    server = await startGitServer({ "octocat/private.git": github.accessToken }, (req, res) => github.handle(req, res));
    await server.repository("octocat/private", async (work, git) => {
      await writeFiles(work, { "SECRET.md": "private\n" });
      git("add", ".");
      git("commit", "-q", "-m", "first");
      commit = git("rev-parse", "HEAD").trim();
    });
    await server.repository("octocat/public", async (work, git) => {
      await writeFiles(work, { "PUBLIC.md": "public\n" });
      git("add", ".");
      git("commit", "-q", "-m", "public");
    });
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
    github.repositories = [
      {
        full_name: "octocat/private",
        clone_url: `${server.url}/octocat/private.git`,
        private: true,
        default_branch: "main",
        description: "the team's secret plans",
        pushed_at: hoursAgo(3),
      },
      {
        full_name: "octocat/public",
        clone_url: `${server.url}/octocat/public.git`,
        private: false,
        default_branch: "trunk",
        description: null,
        pushed_at: null,
      },
    ];
    s = await openBrowser(undefined, {
      quota: 5,
      config: {
        DEVEX_GIT_ALLOW_HTTP: "true",
        GITHUB_CLIENT_ID: "test-client",
        GITHUB_CLIENT_SECRET: "test-secret",
        DEVEX_GITHUB_URL: server.url,
        DEVEX_GITHUB_API_URL: `${server.url}/api`,
      },
    });
  });
  after(async () => {
    await s?.close();
    await server?.close();
  });

  it("signs in with GitHub, picks the private repository with push allowed, and the repl runs cloned", async () => {
    const { page } = s;
    await page.goto(s.e.core.url);
    // The sign-in page's button: /auth/login → the fake GitHub's authorize → core's callback → /.
    await page.getByRole("link", { name: "Sign in with GitHub" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    assert.deepEqual(github.scopesAsked, ["repo"]);
    assert.ok(
      (await s.context.cookies(s.e.core.url)).some((c) => c.name === "devex_session" && c.httpOnly),
      "the browser keeps core's session cookie",
    );

    const repos = page.getByRole("list", { name: "Your GitHub repositories" });
    const items = repos.getByRole("button");
    // Each shown repository: its name, its badge and its branch and push time.
    const shown = () =>
      items.evaluateAll((buttons) =>
        buttons.map((b) =>
          [".github-repo-name", ".badge", ".github-repo-meta"].map((c) => b.querySelector(c)?.textContent ?? ""),
        ),
      );
    await items.first().waitFor();
    assert.deepEqual(await shown(), [
      ["octocat/private", "Private", "main · pushed 3 h ago"],
      ["octocat/public", "", "trunk"],
    ]);
    const privateOne = items.filter({ hasText: "octocat/private" });
    const publicOne = items.filter({ hasText: "octocat/public" });
    await privateOne.locator(".badge.private").waitFor();
    assert.equal(await publicOne.locator(".badge").count(), 0, "the public one has no badge");
    const allowPush = page.getByRole("checkbox", { name: "Allow push" });
    assert.equal(await allowPush.isDisabled(), true, "nothing to push to before a repository is chosen");

    // The filter narrows as the user types: by name, by description, to nothing and back.
    const search = page.getByRole("searchbox", { name: "Your GitHub repositories" });
    const noMatch = page.getByText("No repository matches.");
    await search.fill("PUB");
    assert.deepEqual(await shown(), [["octocat/public", "", "trunk"]]);
    await search.fill("secret plans");
    assert.deepEqual(await shown(), [["octocat/private", "Private", "main · pushed 3 h ago"]]);
    assert.equal(await noMatch.isVisible(), false);
    await search.fill("nothing-like-it");
    await noMatch.waitFor();
    assert.equal(await items.count(), 0);
    await search.fill("octocat priv");
    assert.deepEqual(
      (await shown()).map(([name]) => name),
      ["octocat/private"],
    );
    assert.equal(await noMatch.isVisible(), false);

    await privateOne.click();
    assert.equal(await privateOne.getAttribute("aria-pressed"), "true");
    const urlField = page.getByLabel("Git repository URL (optional)");
    assert.equal(await urlField.inputValue(), `${server.url}/octocat/private.git`);
    assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "private");
    assert.equal(await page.getByLabel("Branch, tag or commit").getAttribute("placeholder"), "main");
    await allowPush.check();
    await page.getByRole("button", { name: "Create repl" }).click();

    const card = page.locator('li.repl-card[data-name="private"]');
    await card.waitFor();
    // The form is reset for the next one: no URL, push off until another pick.
    assert.equal(await urlField.inputValue(), "");
    assert.equal(await allowPush.isChecked(), false);
    assert.equal(await allowPush.isDisabled(), true);
    await page.locator('li.repl-card[data-name="private"][data-status="running"]').waitFor({ timeout: 90_000 });
    assert.equal(await page.locator("#create-error").textContent(), "");
    assert.equal(
      await card
        .locator(".repl-meta")
        .first()
        .textContent()
        .then((t) => t?.split(" · changed")[0]),
      `${server.url}/octocat/private.git at ${commit.slice(0, 7)} · GitHub grant, push allowed`,
    );

    // What core recorded, asked with an API token of the signed-in user.
    const octocat = await s.e.login("octocat");
    const { repls } = await octocat.repls.listRepls({});
    assert.equal(repls.length, 1);
    const [repl] = repls;
    assert.equal(repl.name, "private");
    assert.equal(repl.status, ReplStatus.RUNNING);
    assert.equal(repl.git?.status, CloneStatus.DONE);
    assert.equal(repl.git?.commit, commit);
    assert.equal(repl.git?.source?.url, `${server.url}/octocat/private.git`);
    assert.equal(repl.git?.source?.ref, "");
    assert.equal(repl.git?.source?.allowPush, true);
    assert.equal(repl.git?.githubGrant, true);

    // The cloned files, in the IDE.
    await page.getByRole("link", { name: "Open private in the IDE" }).click();
    await waitConnected(page);
    await page.getByRole("tree", { name: "Files" }).getByRole("treeitem", { name: "SECRET.md", exact: true }).waitFor();
    // The IDE looks for the file the template's run command runs (index.js), which this repository
    // lacks: the NotFound (an HTTP 404) is what Chromium logs; nothing else may be.
    const expected = /status of 404 .*\/devex\.runner\.v1\.FileService\/StatFile\)$/;
    assert.deepEqual(
      s.errors.filter((e) => !expected.test(e)),
      [],
    );
  });

  it("a user signed in with a login link gets a hint to sign in with GitHub, not the picker", async () => {
    const { page } = s;
    const errorsBefore = s.errors.length;
    await s.context.clearCookies();
    const link = await issueLoginLink(s.e.state, s.e.core.publicUrl, "alice");
    await page.goto(link.url);
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    const hint = page.getByText("to pick from your GitHub repositories, private ones included.");
    await hint.waitFor();
    assert.equal(await hint.getByRole("link", { name: "Sign in with GitHub" }).getAttribute("href"), "/auth/login");
    assert.equal(await page.getByRole("searchbox", { name: "Your GitHub repositories" }).isVisible(), false);
    assert.equal(await page.getByRole("list", { name: "Your GitHub repositories" }).isVisible(), false);
    assert.equal(await page.getByRole("checkbox", { name: "Allow push" }).isDisabled(), true);
    // Without a grant there is nothing to push with, whatever the URL.
    await page.getByLabel("Git repository URL (optional)").fill(`${server.url}/octocat/private.git`);
    assert.equal(await page.getByRole("checkbox", { name: "Allow push" }).isDisabled(), true);
    // GetCurrentUser says there is no grant, so the list core would refuse is not even asked for.
    assert.deepEqual(s.errors.slice(errorsBefore), []);
  });
});
