/**
 * A repl from a git repository in the browser (Chromium via playwright-core, the embedded setup with
 * real runners, a git server on loopback: lib/testing/git-server.ts; the sandbox shares the host
 * network so that the clone reaches it). The dashboard's create form takes the URL and a branch;
 * the row shows the clone, then the repl running with its commit; it opens in the IDE with the
 * branch's files in the tree. A missing branch leaves no row, and the form says why.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startGitServer, type TestGitServer, writeFiles } from "../../lib/testing/git-server.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected } from "./browser.js";

describe("web client: a repl from a git repository (Chromium, embedded setup)", function () {
  this.timeout(180_000);
  let s: BrowserSetup;
  let server: TestGitServer;
  let feature = "";

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    requireProgram(this, "git");
    server = await startGitServer();
    await server.repository("site", async (work, git) => {
      // index.js: what the node template's run command runs, which the IDE opens; the blob makes
      // the clone long enough for git to report its progress.
      await writeFiles(work, {
        "README.md": "the site\n",
        "index.js": "console.log('site');\n",
        "blob.bin": randomBytes(2 * 1024 * 1024),
      });
      git("add", ".");
      git("commit", "-q", "-m", "first");
      git("checkout", "-q", "-b", "feature");
      await writeFiles(work, { "FEATURE.md": "on the branch\n" });
      git("add", ".");
      git("commit", "-q", "-m", "feature");
      feature = git("rev-parse", "HEAD").trim();
      git("checkout", "-q", "main");
    });
    s = await openBrowser(undefined, { sandboxNetwork: true, quota: 5, config: { DEVEX_GIT_ALLOW_HTTP: "true" } });
  });
  after(async () => {
    await s?.close();
    await server?.close();
  });

  it("creates from a URL and branch, shows it running with its commit, opens it with the cloned files", async () => {
    const { page } = s;
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();

    const url = `${server.url}/site.git`;
    await page.getByLabel("Git repository URL (optional)").fill(url);
    await page.getByLabel("Branch, tag or commit").fill("feature");
    await page.getByLabel("Name", { exact: true }).fill("cloned");
    // Every state and progress line the new card shows, as they change.
    await page.evaluate(() => {
      const seen: string[] = [];
      Object.assign(window, { seen });
      new MutationObserver(() => {
        const card = document.querySelector('li.repl-card[data-name="cloned"]');
        const now = `${card?.getAttribute("data-status")} ${card?.querySelector(".badge")?.textContent} ${card?.querySelector(".progress-text")?.textContent}`;
        if (card && seen.at(-1) !== now) seen.push(now);
      }).observe(document.getElementById("repl-list")!, {
        subtree: true,
        childList: true,
        characterData: true,
        attributes: true,
      });
    });
    await page.getByRole("button", { name: "Create repl" }).click();
    const card = page.locator('li.repl-card[data-name="cloned"]');
    await card.waitFor();
    await page.locator('li.repl-card[data-name="cloned"][data-status="running"]').waitFor({ timeout: 60_000 });
    await card.locator(".badge", { hasText: "Running" }).waitFor();
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.ok(seen.includes("cloning Cloning… "), `the card said it was cloning: ${JSON.stringify(seen)}`);
    assert.ok(
      seen.some((s) => /^cloning Cloning… Cloning \d+\/\d+ objects( · [\d.]+ (B|KB|MB))?$/.test(s)),
      `the card showed git's progress: ${JSON.stringify(seen)}`,
    );
    assert.match(
      (await card.locator(".repl-meta").first().textContent()) ?? "",
      new RegExp(`#feature at ${feature.slice(0, 7)}`),
    );
    assert.equal(await page.locator("#create-error").textContent(), "");

    await page.getByRole("link", { name: "Open cloned in the IDE" }).click();
    await waitConnected(page);
    const tree = page.getByRole("tree", { name: "Files" });
    await tree.getByRole("treeitem", { name: "FEATURE.md", exact: true }).waitFor();
    await tree.getByRole("treeitem", { name: "README.md", exact: true }).waitFor();
    assert.deepEqual(s.errors, []);
  });

  it("a missing branch: no repl is left, and the form says why", async () => {
    const { page } = s;
    await page.goto(s.e.core.url);
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    await page.getByLabel("Git repository URL (optional)").fill(`${server.url}/site.git`);
    await page.getByLabel("Branch, tag or commit").fill("nope");
    await page.getByLabel("Name", { exact: true }).fill("broken");
    await page.getByRole("button", { name: "Create repl" }).click();
    const error = page.locator("#create-error", { hasText: "Remote branch nope not found" });
    await error.waitFor({ timeout: 60_000 });
    assert.match(
      (await error.textContent()) ?? "",
      /^Could not create broken from .*site\.git: clone failed: .*The repl was deleted\.$/,
    );
    assert.equal(await page.locator('li.repl-card[data-name="broken"]').count(), 0);
    assert.equal(await page.locator('li.repl-card[data-name="cloned"]').count(), 1);
  });
});
