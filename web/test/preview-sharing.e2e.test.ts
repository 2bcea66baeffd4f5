/**
 * Preview sharing in Debian's Chromium (playwright-core), against the embedded setup: the owner's
 * IDE shows the private preview; a second browser that never signed in is sent to sign in and never
 * sees the app; the owner's own browser opening the same address gets in through core's sign-in
 * step; the owner shares the port by link in the IDE and copies a link, which opens the app in the
 * anonymous browser without the token staying in its address bar; making the port private again
 * shuts that link out. Each repl's previews have an origin of their own, so in the IDE's frame the
 * page's own requests carry the preview cookie as a partitioned cookie.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, launchChromium, openBrowser, waitConnected } from "./browser.js";

// A page whose script (a sub-resource, which needs the preview cookie) marks that it ran.
const APP = `require("http").createServer((q, r) => {
  if (q.url === "/app.js") { r.setHeader("content-type", "text/javascript"); return r.end("document.body.dataset.script = 'ran'"); }
  r.setHeader("content-type", "text/html");
  r.end("<h1>Shared app</h1><p id=path>" + q.url + "</p><script src=/preview/3000/app.js></script>");
}).listen(3000)`;

describe("preview sharing in Chromium (embedded setup)", function () {
  this.timeout(150_000);
  let s: BrowserSetup;
  let anonymousProfile: string;
  let anonymous: BrowserContext;
  let stranger: Page;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    anonymousProfile = await mkdtemp(join(tmpdir(), "devex-chromium-anonymous-"));
    anonymous = await launchChromium(anonymousProfile);
    stranger = anonymous.pages()[0] ?? (await anonymous.newPage());
  });
  after(async () => {
    await anonymous?.close().catch(() => {});
    await s?.close();
    if (anonymousProfile) await rm(anonymousProfile, { recursive: true, force: true });
  });

  it("private to the owner, shared by a link, then private again", async () => {
    const { page, context } = s;
    const core = coreClientsFor(s.e.core.url, { token: s.token });
    const { repl } = await core.repls.createRepl({ name: "shared", template: "node" });
    const replId = repl!.replId;
    const { runner: access } = await core.repls.startRepl({ replId });
    const runner = runnerClientsFor(access!.url, { token: access!.token });
    await runner.processes.startProcess({ command: { argv: ["node", "-e", APP] } });
    const plain = `${access!.previewUrlTemplate.replace("{port}", "3000")}docs`;

    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: s.e.core.url });
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    await page.goto(`${s.e.core.url}/repls/${replId}`);
    await waitConnected(page);
    const frame = page.frameLocator(".preview-frame");
    for (let i = 0; i < 50; i++) {
      await page.getByRole("button", { name: "Open", exact: true }).click();
      if (
        await frame
          .getByRole("heading", { name: "Shared app" })
          .isVisible({ timeout: 300 })
          .catch(() => false)
      )
        break;
    }
    await frame.getByRole("heading", { name: "Shared app" }).waitFor();
    // Its sub-resources load too: the preview cookie works in the IDE's frame (another site).
    await frame.locator('body[data-script="ran"]').waitFor({ timeout: 5000 });
    const visibility = page.getByLabel("Who can open the preview of port 3000");
    assert.equal(await visibility.inputValue(), "1", "private by default");

    // A browser that never signed in: sent to sign in, never shown the app.
    await stranger.goto(plain);
    await stranger.waitForURL(`${s.e.core.url}/preview?**`);
    await stranger.getByRole("button", { name: "Sign in" }).waitFor();
    assert.equal(await stranger.getByRole("heading", { name: "Shared app" }).count(), 0);

    // The owner's browser opening the same address gets in, through core's sign-in step.
    const ownerTab = await context.newPage();
    await ownerTab.goto(plain);
    await ownerTab.getByRole("heading", { name: "Shared app" }).waitFor();
    assert.equal(await ownerTab.locator("#path").textContent(), "/docs");
    assert.ok(!ownerTab.url().includes("token="), `the token left the address bar: ${ownerTab.url()}`);
    await ownerTab.close();

    // Shared by link in the IDE: the link opens the app for the stranger.
    await visibility.selectOption({ label: "Anyone with a link" });
    await page.getByRole("button", { name: "Copy link" }).click();
    // The field shows once CreatePreviewLink answered (reading it at once raced that call in CI).
    await page.getByLabel("Preview link").waitFor();
    const link = await page.getByLabel("Preview link").inputValue();
    assert.match(link, /\/preview\/3000\/\?token=/);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
    const { repl: saved } = await core.repls.getRepl({ replId });
    assert.equal(saved!.previewSharing?.ports[3000], 2, "core has the port shared by link");
    await stranger.goto(link);
    await stranger.getByRole("heading", { name: "Shared app" }).waitFor();
    assert.ok(!stranger.url().includes("token="), `the token left the address bar: ${stranger.url()}`);

    // Private again: the link no longer opens it. The stranger's cookie from it is dropped (the
    // stranger is sent to sign in, as anyone without a token), and the link itself says it is revoked.
    await visibility.selectOption({ label: "Private" });
    let text = "";
    for (let i = 0; i < 50 && !/revoked/.test(text); i++) {
      await new Promise((r) => setTimeout(r, 100));
      await stranger.goto(link);
      text = (await stranger.textContent("body")) ?? "";
    }
    assert.match(text, /expired or was revoked/);
    await stranger.goto(plain);
    await stranger.waitForURL(`${s.e.core.url}/preview?**`);
    await stranger.getByRole("button", { name: "Sign in" }).waitFor();
    assert.equal(await stranger.getByRole("heading", { name: "Shared app" }).count(), 0);
    assert.deepEqual(s.errors, []);
  });
});
