/**
 * A repl's environment variables and secrets in the browser (Chromium via playwright-core, the
 * embedded setup): the IDE's Environment dialog adds a plain variable and a secret, shows the secret
 * masked (its value nowhere in the page, its field one password managers leave alone), refuses a
 * reserved name inline, removes a variable, drops a List answer older than an Add's;
 * ListEnvironmentVariables agrees, and a new terminal in the IDE gets the secret while the terminal
 * already open keeps the environment it started with.
 */
import assert from "node:assert/strict";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected, waitForTerminalText } from "./browser.js";

const SECRET = "pa55-web-9c1e7f";

describe("web client: a repl's environment variables (Chromium, embedded setup)", function () {
  this.timeout(120_000);
  let s: BrowserSetup;
  let core: CoreClients;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    core = coreClientsFor(s.e.core.url, { token: s.token });
  });
  after(async () => {
    await s?.close();
  });

  /** Waits until a command started in the repl now sees `name` as `value`. */
  async function runnerSees(replId: string, name: string, value: string) {
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = runnerClientsFor(access!.url, { token: access!.token });
    const deadline = Date.now() + 5_000;
    for (;;) {
      let out = "";
      for await (const m of runner.processes.exec({ command: { argv: ["printenv", name] } }))
        if (m.event.case === "stdout") out += Buffer.from(m.event.value).toString();
      if (out.trim() === value) return;
      assert.ok(Date.now() < deadline, `the runner never gave ${name} to a command`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("adds a variable and a secret (masked, nowhere in the page), refuses a reserved name, removes one; new terminals get them", async () => {
    const { page } = s;
    const { repl } = await core.repls.createRepl({ name: "envs", template: "node" });
    const replId = repl!.replId;
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    const card = page.locator(`li.repl-card[data-repl-id="${replId}"]`);
    await card.getByRole("link", { name: "Open envs in the IDE" }).click();
    await waitConnected(page);
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();

    await page.getByRole("button", { name: "Environment" }).click();
    const dialog = page.getByRole("dialog", { name: "Environment of envs" });
    await dialog.getByText("New terminals and commands get these; running ones keep what they started with.").waitFor();
    const list = dialog.getByRole("list", { name: "Variables" });
    await list.getByText("No variables yet.").waitFor();
    const name = dialog.getByLabel("Name");
    const value = dialog.getByLabel("Value");
    const add = dialog.getByRole("button", { name: "Add" });

    await name.fill("GREETING");
    await value.fill("hello web");
    await add.click();
    const greeting = list.getByRole("listitem").filter({ hasText: "GREETING" });
    await greeting.getByText("hello web").waitFor();
    assert.equal(await name.inputValue(), "", "the form is cleared after adding");

    await name.fill("WEB_SECRET");
    await dialog.getByRole("checkbox", { name: "Secret" }).check();
    assert.equal(await value.getAttribute("type"), "password", "a secret is typed into a masked field");
    // ...that password managers neither save nor fill: not a login or new password.
    assert.equal(await value.getAttribute("autocomplete"), "off");
    assert.equal(await value.getAttribute("data-lpignore"), "true");
    assert.notEqual(await value.getAttribute("data-1p-ignore"), null);
    await value.fill(SECRET);
    await add.click();
    const secretRow = list.getByRole("listitem").filter({ hasText: "WEB_SECRET" });
    await secretRow.getByText("•••••• (secret)").waitFor();
    assert.equal(await value.inputValue(), "");
    assert.equal(await value.getAttribute("type"), "text", "the form is back to a plain variable");

    // A reserved name: core's refusal, inline. A name that is no shell name: refused before asking.
    await name.fill("HOME");
    await value.fill("/elsewhere");
    await add.click();
    await dialog
      .getByRole("alert")
      .filter({ hasText: /Could not add HOME: .*HOME is set by the repl itself/ })
      .waitFor();
    assert.equal(await name.getAttribute("aria-invalid"), "true");
    await name.fill("1BAD");
    await add.click();
    await dialog
      .getByRole("alert")
      .filter({ hasText: /A name is a letter or _/ })
      .waitFor();

    assert.ok(!(await page.content()).includes(SECRET), "the secret's value is nowhere in the page");

    await dialog.getByRole("button", { name: "Remove GREETING" }).click();
    await greeting.waitFor({ state: "detached" });
    assert.equal(await list.getByRole("listitem").count(), 1);
    const listed = await core.repls.listEnvironmentVariables({ replId });
    assert.deepEqual(
      listed.variables.map((v) => [v.name, v.value, v.secret]),
      [["WEB_SECRET", "", true]],
    );

    // Reopened, the dialog lists what core has; its first List answer, held back until an Add has
    // answered, is older than the Add's list and is dropped.
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "detached" });
    const isList = (url: URL) => url.pathname.endsWith("/devex.core.v1.ReplService/ListEnvironmentVariables");
    let releaseList!: () => void;
    const listHeld = new Promise<void>((resolve) => {
      releaseList = resolve;
    });
    await page.route(
      isList,
      async (route) => {
        const response = await route.fetch();
        await listHeld;
        await route.fulfill({ response });
      },
      { times: 1 },
    );
    await page.getByRole("button", { name: "Environment" }).click();
    await name.fill("LATE");
    await value.fill("1");
    await add.click();
    const late = list.getByRole("listitem").filter({ hasText: "LATE" });
    await late.waitFor();
    const staleAnswered = page.waitForResponse((r) => isList(new URL(r.url())));
    releaseList();
    await staleAnswered;
    await page.waitForTimeout(300);
    assert.equal(await list.getByRole("listitem").count(), 2, "the stale list did not replace the newer one");
    await dialog.getByRole("button", { name: "Remove LATE" }).click();
    await late.waitFor({ state: "detached" });
    await page.unroute(isList);
    await list.getByRole("listitem").filter({ hasText: "WEB_SECRET" }).getByText("(secret)").waitFor();
    assert.equal(await list.getByRole("listitem").count(), 1);
    assert.ok(!(await page.content()).includes(SECRET));
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });

    // The open terminal keeps what it started with; a new one gets the secret.
    await runnerSees(replId, "WEB_SECRET", SECRET);
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await page.keyboard.type("printenv WEB_SECRET || echo not-in-this-one");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, /^not-in-this-one$/m);
    await page.getByRole("button", { name: "New terminal" }).click();
    await page.getByRole("tab", { name: /Shell 2/ }).waitFor();
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await page.keyboard.type("printenv WEB_SECRET");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, new RegExp(`^${SECRET}$`, "m"));

    // The refused name is an HTTP 400 (InvalidArgument) that Chromium logs; nothing else may be.
    const expected = /status of 400 .*\/devex\.core\.v1\.ReplService\/SetEnvironmentVariable\)$/;
    assert.deepEqual(
      s.errors.filter((e) => !expected.test(e)),
      [],
    );
  });
});
