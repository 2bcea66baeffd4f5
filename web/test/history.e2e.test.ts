/**
 * The IDE's History panel in Debian's Chromium against the embedded setup (real core, local driver,
 * real runners): index.js written in the editor → a checkpoint made in the panel → index.js changed
 * → the checkpoint lists it with its diff → restore (confirmed; the repl restarts) → the editor
 * shows the checkpoint's content again and the panel the undo checkpoint. Then the undo checkpoint
 * is deleted, and a fork made from the checkpoint opens from the panel's link with its files.
 * No console errors throughout.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ReplStatus } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected } from "./browser.js";

const screenshotDir = process.env.DEVEX_SCREENSHOT_DIR;

describe("IDE History panel in Chromium (embedded setup)", function () {
  this.timeout(180_000);
  let s: BrowserSetup;
  let core: CoreClients;
  let replId: string;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    core = coreClientsFor(s.e.core.url, { token: s.token });
    replId = (await core.repls.createRepl({ name: "timeline", template: "node" })).repl!.replId;
    await s.page.goto(s.e.core.loginLink!);
    await s.page.getByRole("heading", { name: "Your repls" }).waitFor();
    await s.page.goto(`${s.e.core.url}/repls/${replId}`);
    await waitConnected(s.page);
  });
  after(async () => {
    await s?.close();
  });

  const history = () => s.page.getByRole("region", { name: "History" });

  async function readOnRunner(id: string, path: string): Promise<string> {
    const { runner } = await core.repls.startRepl({ replId: id });
    const files = runnerClientsFor(runner!.url, { token: runner!.token }).files;
    return Buffer.from((await files.readFile({ path })).content).toString();
  }

  /** Replaces index.js in the editor and saves it (Ctrl-S). */
  async function writeInEditor(text: string) {
    const { page } = s;
    await page.getByRole("tab", { name: "index.js" }).click();
    await page.locator(".cm-content").click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.type(text);
    await page.locator('.editor-status[data-state="dirty"]').waitFor();
    await page.keyboard.press("Control+S");
    await page.locator('.editor-status[data-state="saved"]').waitFor();
  }

  it("checkpoint → change → its diff → restore: the editor shows the checkpoint's content, undo is listed", async () => {
    const { page } = s;
    await writeInEditor('console.log("v1");');

    const toggle = page.getByRole("button", { name: "History", exact: true });
    await toggle.click();
    assert.equal(await toggle.getAttribute("aria-pressed"), "true");
    const preview = page.getByRole("button", { name: "Preview", exact: true });
    assert.equal(await preview.getAttribute("aria-pressed"), "false", "the history takes the preview's side");

    await history().getByLabel("Title (optional)").fill("first");
    await history().getByLabel("Message (optional)").fill("prints v1");
    await history().getByRole("button", { name: "Make checkpoint" }).click();
    const item = history().locator("li.checkpoint:not(.auto)", { hasText: "first" });
    await item.waitFor();

    await writeInEditor('console.log("v2");');
    await item.getByRole("button", { name: /^first/ }).click();
    await item.getByText("prints v1").waitFor();
    const row = item.getByRole("button", { name: /index\.js/ });
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /changed\s*index\.js\s*\+1 −1/);
    assert.equal(await row.getAttribute("aria-current"), "true", "the first changed file is shown");
    const diff = item.getByRole("region", { name: "Diff of index.js" });
    await diff.waitFor();
    assert.deepEqual(await diff.locator(".diff-line.del .diff-code").allTextContents(), ['-console.log("v1");']);
    assert.deepEqual(await diff.locator(".diff-line.add .diff-code").allTextContents(), ['+console.log("v2");']);
    if (screenshotDir) {
      await mkdir(screenshotDir, { recursive: true });
      await page.screenshot({ path: join(screenshotDir, "history-diff.png") });
    }

    await item.getByRole("button", { name: "Restore first" }).click();
    const dialog = page.getByRole("dialog", { name: "Restore “first”?" });
    const words = (await dialog.textContent()) ?? "";
    assert.match(words, /running, so it restarts/);
    assert.match(words, /automatic checkpoint, so you can undo/);
    await dialog.getByRole("button", { name: "Restore and restart" }).click();

    const notice = history().locator(".history-notice", { hasText: "Restored “first”" });
    await notice.waitFor({ timeout: 90_000 });
    await waitConnected(page);
    const undoId = (await notice.locator(".undo-id").textContent()) ?? "";
    assert.match(undoId, /^[0-9a-z]{9}-[0-9a-f]+$/);
    await notice.getByRole("button", { name: `Undo the restore (restore ${undoId})` }).waitFor();
    await page.getByRole("tab", { name: "index.js" }).waitFor();
    await page.locator(".cm-content", { hasText: 'console.log("v1");' }).waitFor();
    assert.equal(await readOnRunner(replId, "index.js"), 'console.log("v1");');
    await item.getByText("No changes since this checkpoint.").waitFor();
    const undo = history().locator(`li.checkpoint.auto[data-checkpoint-id="${undoId}"]`);
    await undo.waitFor();
    assert.match((await undo.textContent()) ?? "", /before restoring .*auto/);
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, "history-restored.png") });
    assert.deepEqual(s.errors, []);
  });

  it("delete removes a checkpoint; a fork from one opens from the panel's link with its files", async () => {
    const { page } = s;
    const undo = history().locator("li.checkpoint.auto", { hasText: "before restoring" });
    const undoId = (await undo.getAttribute("data-checkpoint-id"))!;
    await undo.locator(".checkpoint-toggle").click();
    await undo.getByRole("button", { name: /^Delete / }).click();
    await page
      .getByRole("dialog", { name: /^Delete the checkpoint/ })
      .getByRole("button", { name: "Delete checkpoint" })
      .click();
    await undo.waitFor({ state: "detached" });
    const listed = (await core.checkpoints.listCheckpoints({ replId })).checkpoints.map((c) => c.checkpointId);
    assert.ok(!listed.includes(undoId), "deleted in core");

    const first = history().locator("li.checkpoint:not(.auto)", { hasText: "first" });
    if ((await first.locator(".checkpoint-toggle").getAttribute("aria-expanded")) !== "true")
      await first.locator(".checkpoint-toggle").click();
    await first.getByRole("button", { name: "Fork first" }).click();
    const prompt = page.getByRole("dialog", { name: "Fork a new repl from “first”" });
    await prompt.getByLabel("Name of the new repl").fill("timeline copy");
    await prompt.getByRole("button", { name: "OK" }).click();
    const link = history().getByRole("link", { name: "Open timeline copy" });
    await link.waitFor();
    const fork = (await core.repls.listRepls({})).repls.find((r) => r.name === "timeline copy");
    assert.equal(fork?.status, ReplStatus.STOPPED);
    assert.equal(await link.getAttribute("href"), `/repls/${fork!.replId}`);

    await link.click();
    await page.waitForURL(`**/repls/${fork!.replId}`);
    await waitConnected(page);
    await page.locator(".cm-content", { hasText: 'console.log("v1");' }).waitFor();
    assert.deepEqual(s.errors, []);
  });
});
