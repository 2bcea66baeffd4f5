/**
 * The browser client end to end in Debian's Chromium (playwright-core), against the embedded setup
 * with real runner processes: sign in by pasting the one-time link → create a node repl → open it → edit
 * index.js and save (Ctrl-S) → run it in the terminal → reload: the terminal replays its scrollback
 * → stop from the dashboard → it shows stopped. Also: the file tree's context menu, the save
 * conflict prompt, and no console errors throughout.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected, waitForTerminalText } from "./browser.js";

const screenshotDir = process.env.DEVEX_SCREENSHOT_DIR;

describe("web client in Chromium (embedded setup)", function () {
  this.timeout(90_000);
  let s: BrowserSetup;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
  });
  after(async () => {
    await s?.close();
  });

  async function readOnRunner(replId: string, path: string): Promise<string> {
    const core = coreClientsFor(s.e.core.url, { token: s.token });
    const { runner } = await core.repls.startRepl({ replId });
    const files = runnerClientsFor(runner!.url, { token: runner!.token }).files;
    return Buffer.from((await files.readFile({ path })).content).toString();
  }

  it("sign in → create → edit and save → run in a terminal → reload replays scrollback → stop", async () => {
    const { page } = s;
    // An API token works on the sign-in page too (kept in this browser until signing out).
    await page.goto(s.e.core.url);
    const secret = page.getByRole("textbox", { name: "Login link or API token" });
    await secret.fill(s.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Devex" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.length), 0);

    await secret.fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();

    await page.getByLabel("Template", { exact: true }).selectOption("node");
    await page.getByLabel("Name", { exact: true }).fill("hello");
    await page.getByRole("button", { name: "Create repl" }).click();
    const card = page.locator('li.repl-card[data-name="hello"]');
    await card.waitFor();
    assert.equal(await card.getAttribute("data-status"), "stopped");
    const replId = (await card.getAttribute("data-repl-id"))!;

    await card.getByRole("link", { name: "Open hello in the IDE" }).click();
    await page.waitForURL(`**/repls/${replId}`);
    await waitConnected(page);
    await page
      .getByRole("tree", { name: "Files" })
      .getByRole("treeitem", { name: "package.json", exact: true })
      .waitFor();
    await page.getByRole("tab", { name: "index.js" }).waitFor();

    // Edit index.js in CodeMirror and save with Ctrl-S.
    const content = page.locator(".cm-content");
    await content.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.type('console.log("answer", 6 * 7);');
    await page.locator('.editor-status[data-state="dirty"]').waitFor();
    await page.keyboard.press("Control+S");
    await page.locator('.editor-status[data-state="saved"]').waitFor();
    assert.equal((await readOnRunner(replId, "index.js")).trim(), 'console.log("answer", 6 * 7);');

    // Run it in the terminal by typing, as a person would.
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await page.keyboard.type("node index.js");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, /answer 42/);
    if (screenshotDir) {
      await mkdir(screenshotDir, { recursive: true });
      await page.screenshot({ path: join(screenshotDir, "ide.png") });
    }

    // Reload: the terminal reattaches and replays its scrollback.
    await page.reload();
    await waitConnected(page);
    await waitForTerminalText(page, /answer 42/);

    // Stop from the dashboard.
    await page.getByRole("link", { name: "Back to all repls" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, "dashboard.png") });
    await card.getByRole("button", { name: "Stop hello" }).click();
    await page.locator('li.repl-card[data-name="hello"][data-status="stopped"]').waitFor({ timeout: 30_000 });
    assert.equal(await card.locator(".badge").textContent(), "Stopped");
    assert.deepEqual(s.errors, []);
  });

  it("context menu creates a file; save conflict prompt; terminal reconnects after a drop; preview; quota", async () => {
    const { page } = s;
    const card = page.locator('li.repl-card[data-name="hello"]');
    const replId = (await card.getAttribute("data-repl-id"))!;
    await page.goto(`${s.e.core.url}/repls/${replId}`);
    await waitConnected(page);

    const tree = page.getByRole("tree", { name: "Files" });
    await tree.getByRole("treeitem", { name: "index.js", exact: true }).click({ button: "right" });
    await page.getByRole("menuitem", { name: "New file…" }).click();
    await page.getByLabel("Name").fill("notes.md");
    await page.getByRole("button", { name: "OK" }).click();
    await tree.getByRole("treeitem", { name: "notes.md", exact: true }).waitFor();
    await page.getByRole("tab", { name: "notes.md" }).waitFor();

    // Type into notes.md, then change it behind the editor's back, then save: a conflict prompt.
    await page.locator(".cm-content").click();
    await page.keyboard.type("# mine");
    const core = coreClientsFor(s.e.core.url, { token: s.token });
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = runnerClientsFor(access!.url, { token: access!.token });
    await runner.files.writeFile({
      path: "notes.md",
      content: Buffer.from("# theirs\n"),
    });
    await page.keyboard.press("Control+S");
    const dialog = page.getByRole("dialog", { name: "notes.md changed on disk" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Overwrite" }).click();
    await page.locator('.editor-status[data-state="saved"]').waitFor();
    assert.equal(await readOnRunner(replId, "notes.md"), "# mine");

    // Rename from the keyboard (F2): the tree and the editor tab follow.
    await tree.getByRole("treeitem", { name: "notes.md", exact: true }).focus();
    await page.keyboard.press("F2");
    const renameBox = page.getByRole("textbox", { name: "New name" });
    await renameBox.fill("todo.md");
    await renameBox.press("Enter");
    await tree.getByRole("treeitem", { name: "todo.md", exact: true }).waitFor();
    await page.getByRole("tab", { name: "todo.md" }).waitFor();
    assert.equal(await tree.getByRole("treeitem", { name: "notes.md", exact: true }).count(), 0);

    // Delete from the context menu, after confirming. A file the shell writes meanwhile (.bash_history)
    // can re-render the tree and shift its rows under the pointer, so the right-click is repeated until
    // the menu is the one for scratch.txt.
    await runner.files.writeFile({ path: "scratch.txt", content: Buffer.from("tmp") });
    for (let attempt = 0; ; attempt++) {
      await tree.getByRole("treeitem", { name: "scratch.txt", exact: true }).click({ button: "right" });
      const menu = await page.locator(".context-menu").getAttribute("aria-label");
      if (menu === "Actions for scratch.txt") break;
      assert.ok(attempt < 5, `the context menu kept opening for another row: ${menu}`);
      await page.keyboard.press("Escape");
    }
    await page.getByRole("menuitem", { name: "Delete" }).click();
    await page.getByRole("dialog", { name: "Delete scratch.txt?" }).getByRole("button", { name: "Delete" }).click();
    await tree.getByRole("treeitem", { name: "scratch.txt", exact: true }).waitFor({ state: "detached" });
    await assert.rejects(runner.files.statFile({ path: "scratch.txt" }));

    // The network drops under the terminal's WebSocket: it reconnects and replays its scrollback.
    const sockets = new Set<Duplex>();
    const track = (_req: unknown, socket: Duplex) => sockets.add(socket);
    s.e.core.server.http1.on("upgrade", track);
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await page.keyboard.type("echo before-the-drop");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, /^before-the-drop/m);
    // The socket attached before tracking began: reload so the next attach is tracked.
    await page.reload();
    await waitConnected(page);
    assert.ok(sockets.size > 0, "the terminal attached through core's upgrade path");
    for (const socket of sockets) socket.destroy();
    s.e.core.server.http1.off("upgrade", track);
    await page.locator('.term-tab[data-state="reconnecting"], #connection[data-state="busy"]').first().waitFor();
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor({ timeout: 15_000 });
    await waitForTerminalText(page, /^before-the-drop/m);
    await page.locator(".term-panel:not([hidden]) .xterm").click();
    await page.keyboard.type("echo after-the-drop");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, /^after-the-drop/m);

    // A dev server in a second terminal tab, shown in the preview pane.
    await runner.files.writeFile({
      path: "server.js",
      content: Buffer.from(
        'import { createServer } from "node:http";\n' +
          'createServer((q, r) => r.end("<h1>Hello from the preview</h1>")).listen(3000, () => console.log("listening on", 3000));\n',
      ),
    });
    // The watch stream brings a file written elsewhere into the tree.
    await tree.getByRole("treeitem", { name: "server.js", exact: true }).waitFor();
    await page.getByRole("button", { name: "New terminal" }).click();
    await page.getByRole("tab", { name: /Shell 2/ }).waitFor();
    assert.equal(await page.getByRole("tablist", { name: "Terminals" }).getByRole("tab").count(), 2);
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();
    await page.keyboard.type("node server.js");
    await page.keyboard.press("Enter");
    await waitForTerminalText(page, /^listening on 3000/m);
    await page.getByRole("spinbutton", { name: "Port" }).fill("3000");
    await page.getByRole("button", { name: "Open", exact: true }).click();
    await page.frameLocator(".preview-frame").getByRole("heading", { name: "Hello from the preview" }).waitFor();

    // A narrow window: the panes stack (no sideways scrolling) and the explorer is a toggle away.
    await page.setViewportSize({ width: 420, height: 860 });
    await page.reload();
    await waitConnected(page);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 420);
    await page.locator(".cm-editor").waitFor();
    await page.locator(".term-panel:not([hidden]) .xterm").waitFor();
    const files = page.getByRole("button", { name: "Files", exact: true });
    assert.equal(await files.getAttribute("aria-pressed"), "false");
    await files.click();
    await tree.getByRole("treeitem", { name: "todo.md", exact: true }).waitFor();
    await page.setViewportSize({ width: 1280, height: 800 });

    // The quota (2 per user in the embedded setup) is explained in plain words.
    await page.getByRole("link", { name: "Back to all repls" }).click();
    // The form sends the chosen template: wait until the templates are there (slow under load).
    await page.getByLabel("Template").locator("option").first().waitFor({ state: "attached" });
    await page.getByLabel("Name", { exact: true }).fill("second");
    await page.getByRole("button", { name: "Create repl" }).click();
    await page.locator('li.repl-card[data-name="second"]').waitFor();
    await page.getByLabel("Name", { exact: true }).fill("third");
    await page.getByRole("button", { name: "Create repl" }).click();
    await page.getByRole("alert").filter({ hasText: "You have reached your repl quota" }).waitFor();

    // The conflict is an HTTP 400 (FailedPrecondition) that Chromium logs; nothing else may be.
    // So is the quota refusal (429, ResourceExhausted).
    const expected = [
      /status of 400 .*\/devex\.runner\.v1\.FileService\/WriteFile\)$/,
      /status of 429 .*\/devex\.core\.v1\.ReplService\/CreateRepl\)$/,
    ];
    assert.deepEqual(
      s.errors.filter((e) => !expected.some((re) => re.test(e))),
      [],
    );
    assert.equal(s.errors.length, 2, "exactly the conflict and the quota responses");
  });
});
