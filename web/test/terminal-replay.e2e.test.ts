/**
 * The IDE's terminal in Chromium (issue 13): the first terminal's shell starts at the pane's size,
 * and reopening the IDE after `vi` and `printf '\e[c\e[6n'` (queries xterm.js answers) types nothing
 * into the shell: a `cat -v` reading the PTY shows only the marker typed afterwards. The printf runs
 * while no page is attached (typed through the runner API), so no live answer muddles the check.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, terminalText, waitConnected, waitForTerminalText } from "./browser.js";

/**
 * The active terminal's size in cells as its DOM shows it (rows rendered; screen width over the
 * width of one measured cell), and as the tab reports it (data-rows/-cols).
 */
async function paneSize(page: Page) {
  return page.evaluate(() => {
    const panel = document.querySelector<HTMLElement>(".term-panel:not([hidden])")!;
    const measure = panel.querySelector<HTMLElement>(".xterm-char-measure-element")!;
    const cell = measure.getBoundingClientRect().width / (measure.textContent ?? "").length;
    const screen = panel.querySelector<HTMLElement>(".xterm-screen")!.getBoundingClientRect().width;
    return {
      rows: panel.querySelector(".xterm-rows")!.children.length,
      cols: Math.round(screen / cell),
      reported: `${panel.dataset.rows}x${panel.dataset.cols}`,
    };
  });
}

async function typeLine(page: Page, line: string) {
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

describe("web terminal: first size and a quiet reattach (Chromium)", function () {
  this.timeout(120_000);
  let s: BrowserSetup;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    requireProgram(this, "vi");
    s = await openBrowser({ width: 1100, height: 700 });
  });
  after(async () => {
    await s?.close();
  });

  it("the first terminal's stty size is the pane's; a reload after vi and printf '\\e[c\\e[6n' types nothing", async () => {
    const { page } = s;
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByLabel("Template", { exact: true }).selectOption("node");
    await page.getByLabel("Name", { exact: true }).fill("sizes");
    await page.getByRole("button", { name: "Create repl" }).click();
    const card = page.locator('li.repl-card[data-name="sizes"]');
    const replId = (await card.getAttribute("data-repl-id"))!;
    await card.getByRole("link", { name: "Open sizes in the IDE" }).click();
    await waitConnected(page);
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();

    const size = await paneSize(page);
    assert.equal(size.reported, `${size.rows}x${size.cols}`);
    assert.notDeepEqual([size.rows, size.cols], [24, 80], "the pane is not 24x80, so the default would show");
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await typeLine(page, "stty size");
    await waitForTerminalText(page, new RegExp(`^${size.rows} ${size.cols}\\s*$`, "m"));

    await typeLine(page, "echo before-$((6*7)); vi");
    await waitForTerminalText(page, /0,0-1\s+All/);
    await page.keyboard.press("Escape");
    await typeLine(page, ":q");
    await waitForTerminalText(page, /^before-42\s*$/m);

    // Away from the IDE, the queries are printed with no terminal attached to answer them.
    await page.getByRole("link", { name: "Back to all repls" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    const { runner: access } = await coreClientsFor(s.e.core.url, { token: s.token }).repls.startRepl({ replId });
    const { terminals } = runnerClientsFor(access!.url, { token: access!.token });
    const [shell] = (await terminals.listTerminals({})).terminals;
    await waitFor(async () => (await terminals.listTerminals({})).terminals[0].attachedClients === 0);
    await terminals.sendInput({
      terminalId: shell.terminalId,
      data: Buffer.from("printf '\\e[c\\e[6n'; stty -icanon -echo; echo cat-$((1+1))-ready; cat -v\n"),
    });
    await waitFor(async () => {
      const { data } = await terminals.readScrollback({ terminalId: shell.terminalId });
      return Buffer.from(data).toString().includes("\x1b[c\x1b[6ncat-2-ready");
    });

    await page.goto(`${s.e.core.url}/repls/${replId}`);
    await waitConnected(page);
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();
    await waitForTerminalText(page, /^cat-2-ready\s*$/m);
    // xterm has answered whatever the replay asked by now; anything it sent would reach cat first.
    await new Promise((r) => setTimeout(r, 500));
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await typeLine(page, "MARK");
    const text = await waitForTerminalText(page, /MARK\s*$/m);
    assert.match(text, /^before-42\s*$/m);
    assert.match(text, /^cat-2-ready\s*\nMARK\s*$/m, `cat -v printed more than the marker:\n${text}`);
    assert.deepEqual(await paneSize(page), size, "the reattached terminal keeps the pane's size");
    assert.doesNotMatch(await terminalText(page), /\^\[/);
    assert.deepEqual(s.errors, []);
  });
});

async function waitFor(f: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${f}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
