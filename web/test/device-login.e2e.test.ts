/**
 * Device login (RFC 8628) end to end: `devex login --url` under a real PTY prints a URL and a code;
 * in Debian's Chromium (playwright-core), signed in to the embedded setup, the /device page shows
 * which device asks and approves it; the CLI then holds a token of that user's (whoami works, its
 * config file is 0600). A denied login ends the CLI with a clear message; a used code is refused.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliEnv, devexBin, PtyRun, runCli } from "../../cli/test/cli-process.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser } from "./browser.js";

describe("device login: the CLI in a PTY, approved in Chromium (embedded setup)", function () {
  this.timeout(120_000);
  let s: BrowserSetup;
  let home: string;
  const ptys: PtyRun[] = [];

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    home = await mkdtemp(join(tmpdir(), "devex-device-"));
    await s.page.goto(s.e.core.url);
    await s.page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await s.page.getByRole("button", { name: "Sign in" }).click();
    await s.page.getByRole("heading", { name: "Your repls" }).waitFor();
  });
  after(async () => {
    for (const p of ptys) p.kill();
    await s?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  function devexLogin(env: NodeJS.ProcessEnv, ...extra: string[]): PtyRun {
    const args = [devexBin, "login", "--url", s.e.core.url, ...extra];
    const p = new PtyRun(process.execPath, args, env, { cols: 220, rows: 30 });
    ptys.push(p);
    return p;
  }

  it("devex login prints a code; approving it in the browser signs the CLI in, once", async () => {
    const { page } = s;
    const env = cliEnv(join(home, "approved"));
    const cli = devexLogin(env);
    const [, url, code] = await cli.waitFor(/open (\S+\/device\?code=([B-Z]{4}-[B-Z]{4}))\s/);
    assert.ok(url.startsWith(`${s.e.core.url}/device?code=`), url);
    await cli.waitFor(new RegExp(`shows the code ${code}`));

    await page.goto(url);
    const ask = page.getByRole("heading", { name: /^devex CLI on .+ asks to sign in as local$/ });
    await ask.waitFor();
    assert.match((await page.locator("#main").textContent()) ?? "", new RegExp(`shows the code ${code}`));
    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByText(/^Approved: devex CLI on .+ is signed in as local\. Return to your terminal\.$/).waitFor();

    assert.equal(await cli.exited, 0, cli.output);
    assert.match(cli.output, /logged in to http:\/\/127\.0\.0\.1:\d+ as local/);
    const who = await runCli(["whoami"], env);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^local at /);
    assert.equal((await stat(join(env.XDG_CONFIG_HOME!, "devex", "config.json"))).mode & 0o777, 0o600);

    // The code is used up: the page refuses it now, and the new token is on the tokens page.
    await page.reload();
    await page.getByText(`no device login waits for the code ${code}`).waitFor();
    await page.goto(`${s.e.core.url}/tokens`);
    await page.locator('li.token-card[data-name^="devex CLI on "]').waitFor();
    // Chromium logs a response that is an error by contract: the used code's NotFound, and only that.
    assert.deepEqual(
      s.errors.map((e) => e.replace(/\d+\.\d+\.\d+\.\d+:\d+/, "core")),
      [
        "console: Failed to load resource: the server responded with a status of 404 (Not Found) (http://core/devex.core.v1.AuthService/GetDeviceLogin)",
      ],
    );
  });

  it("a denied login ends the CLI saying so; a code nobody issued is refused on the page", async () => {
    const { page } = s;
    const env = cliEnv(join(home, "denied"));
    const cli = devexLogin(env);
    const [, url] = await cli.waitFor(/open (\S+\/device\?code=[B-Z]{4}-[B-Z]{4})\s/);
    await page.goto(url);
    await page.getByRole("button", { name: "Deny" }).click();
    await page.getByText(/^Denied: devex CLI on .+ is not signed in\.$/).waitFor();
    assert.equal(await cli.exited, 1, cli.output);
    assert.match(cli.output, /the sign-in was denied in the browser/);
    const who = await runCli(["whoami"], env);
    assert.notEqual(who.code, 0);

    await page.goto(`${s.e.core.url}/device`);
    await page.getByLabel("Code").fill("bcdf-ghjk");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByText("no device login waits for the code bcdf-ghjk").waitFor();
  });

  it("devex login --scopes asks for less: the page says what, and the token may only that", async () => {
    const { page } = s;
    const env = cliEnv(join(home, "scoped"));
    const cli = devexLogin(env, "--scopes", "repls:read,files:read");
    const [, url] = await cli.waitFor(/open (\S+\/device\?code=[B-Z]{4}-[B-Z]{4})\s/);
    await page.goto(url);
    await page.getByText(/may only: repls:read, files:read/).waitFor();
    await page.getByRole("button", { name: "Approve" }).click();
    assert.equal(await cli.exited, 0, cli.output);
    const who = await runCli(["whoami"], env);
    assert.match(who.stdout, /^local at \S+, may only: repls:read, files:read$/m);
    const create = await runCli(["create", "--template", "node", "--name", "nope"], env);
    assert.match(create.stderr, /it needs the scope repls:write/);
  });
});
