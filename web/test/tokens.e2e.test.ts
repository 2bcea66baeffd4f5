/**
 * The API tokens page in Debian's Chromium (playwright-core), against the embedded setup: create a
 * token (its secret shown once, the copy button puts it on the clipboard), sign the devex CLI in
 * with it and list repls, see its last use on the page, revoke it there: the CLI is then told to run
 * devex login. Also: the secret is gone from the page after a reload, and no console errors.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Locator } from "playwright-core";
import { cliEnv, runCli } from "../../cli/test/cli-process.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser } from "./browser.js";

const text = async (l: Locator) => (await l.textContent()) ?? "";

describe("API tokens page in Chromium (embedded setup)", function () {
  this.timeout(120_000);
  let s: BrowserSetup;
  let home: string;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    home = await mkdtemp(join(tmpdir(), "devex-tokens-"));
  });
  after(async () => {
    await s?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("create a token → the CLI works with it → revoke it → the CLI is told to log in again", async () => {
    const { page, context } = s;
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: s.e.core.url });
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();

    await page.getByRole("link", { name: "API tokens" }).click();
    await page.waitForURL("**/tokens");
    await page.getByRole("heading", { name: "Your tokens" }).waitFor();
    await page.getByLabel("Name").fill("laptop");
    await page.getByLabel("Expires after").selectOption({ label: "30 days" });
    await page.getByRole("button", { name: "Create token" }).click();
    await page.getByRole("heading", { name: 'Token "laptop" created' }).waitFor();
    const secret = await page.getByLabel("New token").inputValue();
    assert.match(secret, /^dvx_[\w-]{43}$/);
    assert.match(await text(page.locator(".token-usage")), new RegExp(`devex login --url ${s.e.core.url}`));
    await page.getByRole("button", { name: "Copy" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);

    const card = page.locator('li.token-card[data-name="laptop"]');
    await card.waitFor();
    const meta = await text(card.locator(".token-meta"));
    assert.match(meta, /created just now · last used never · expires /);
    const expires = new Date(Date.now() + 30 * 86_400_000).toLocaleDateString("en-US");
    assert.ok(meta.includes(expires), `${meta} names ${expires}`);

    // The CLI, signed in with the token from the page (read from stdin, as the page suggests).
    const env = cliEnv(join(home, "cli"));
    const login = await runCli(["login", "--url", s.e.core.url, "--token", "-"], env, `${secret}\n`);
    assert.equal(login.code, 0, login.stderr);
    const ls = await runCli(["ls"], env);
    assert.equal(ls.code, 0, ls.stderr);
    await page.reload();
    await card.waitFor();
    assert.match(await text(card.locator(".token-meta")), /last used just now/);
    assert.equal(await page.getByLabel("New token").count(), 0, "the secret is shown once only");

    await card.getByRole("button", { name: "Revoke laptop" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke token" }).click();
    await card.waitFor({ state: "detached" });
    const refused = await runCli(["ls"], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /run devex login/);
    assert.deepEqual(s.errors, []);
  });

  it("a token with chosen scopes: the page shows them, and the CLI may list but not create", async () => {
    const { page } = s;
    await page.goto(`${s.e.core.url}/tokens`);
    await page.getByLabel("Name").fill("reader");
    await page.getByLabel("Only:").check();
    await page.getByRole("button", { name: "Create token" }).click();
    await page.getByText("Tick at least one scope, or choose everything you can do.").waitFor();
    await page.getByRole("checkbox", { name: /^repls:read/ }).check();
    await page.getByRole("checkbox", { name: /^files:read/ }).check();
    await page.getByRole("button", { name: "Create token" }).click();
    await page.getByRole("heading", { name: 'Token "reader" created' }).waitFor();
    const secret = await page.getByLabel("New token").inputValue();
    const card = page.locator('li.token-card[data-name="reader"]');
    assert.equal(await text(card.locator(".token-scopes")), "only repls:read, files:read");
    assert.equal(await page.getByLabel("Everything you can do").isChecked(), true, "the form is reset");

    const env = cliEnv(join(home, "reader"));
    assert.equal((await runCli(["login", "--url", s.e.core.url, "--token", "-"], env, `${secret}\n`)).code, 0);
    assert.equal((await runCli(["ls"], env)).code, 0);
    const create = await runCli(["create", "--template", "node", "--name", "nope"], env);
    assert.notEqual(create.code, 0);
    assert.match(create.stderr, /may not call CreateRepl: it needs the scope repls:write/);
  });
});
