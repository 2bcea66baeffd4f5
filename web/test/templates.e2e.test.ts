/**
 * Templates in the browser (Chromium via playwright-core, the embedded setup with real runners), the
 * issue's must-show flow: a repl created from a template with a setup command runs it once (the
 * IDE shows its state and its output; a stop and a start do not run it again), is saved as a
 * private template from the dashboard (which offers to stop it first), a repl created from that
 * template opens in the IDE, and its Run button runs the saved run command in the terminal. The
 * template is the test's own (added as an operator adds one), so its setup command is cheap and
 * leaves a trace: a line appended to .setup-count.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { SetupStatus } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { addOperatorTemplate } from "../../lib/testing/templates.js";
import { adminSocketPath } from "../../services/core/src/admin/admin-socket.js";
import { type BrowserSetup, openBrowser, waitConnected, waitForTerminalText } from "./browser.js";

describe("web client: templates, setup and the Run button (Chromium, embedded setup)", function () {
  this.timeout(180_000);
  let s: BrowserSetup;
  let core: CoreClients;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    core = coreClientsFor(s.e.core.url, { token: s.token });
    await addOperatorTemplate(
      adminSocketPath(s.e.dir),
      "counted",
      {
        title: "Counted",
        description: "Counts its setup runs.",
        run_command: "cat .setup-count",
        setup_command: "echo setting up; echo ran >> .setup-count",
        preview_port: 5173,
      },
      { "index.js": 'console.log("counted");\n' },
    );
  });
  after(async () => {
    await s?.close();
  });

  /** A file of the repl's workspace, read through its runner (the repl runs). */
  async function readFile(replId: string, path: string): Promise<string> {
    const { runner } = await core.repls.startRepl({ replId });
    const files = runnerClientsFor(runner!.url, { token: runner!.token }).files;
    return Buffer.from((await files.readFile({ path })).content).toString();
  }

  /** Waits for the IDE's setup badge to read `status` (core's WatchRepl brings the change). */
  async function setupBadge(page: Page, status: string): Promise<void> {
    await page.locator(`#repl-setup[data-status="${status}"]`).waitFor({ timeout: 30_000 });
  }

  async function createFromDashboard(page: Page, templateLabel: string, name: string): Promise<string> {
    await page.getByLabel("Template", { exact: true }).selectOption({ label: templateLabel });
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByRole("button", { name: "Create repl" }).click();
    const card = page.locator(`li.repl-card[data-name="${name}"]`);
    await card.waitFor();
    return (await card.getAttribute("data-repl-id"))!;
  }

  it("setup runs once and shows its output; save as template (stopping first); create from it; Run runs its command", async () => {
    const { page } = s;
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    assert.ok(await page.locator("section.own-templates").isHidden(), "no templates of the user's own yet");

    // A repl from the template: its setup is pending until the first start.
    const first = await createFromDashboard(page, "Counted (counted)", "first");
    assert.equal((await core.repls.getRepl({ replId: first })).repl?.setup?.status, SetupStatus.PENDING);
    await page.getByRole("link", { name: "Open first in the IDE" }).click();
    await waitConnected(page);
    await setupBadge(page, "succeeded");
    assert.equal(await page.locator("#repl-setup").textContent(), "Setup: done");
    assert.equal(await readFile(first, ".setup-count"), "ran\n");

    // Its output, from the runner's process named "setup".
    await page.locator("#repl-setup").click();
    const setupDialog = page.getByRole("dialog", { name: "Setup command" });
    await setupDialog.getByText("echo setting up; echo ran >> .setup-count").waitFor();
    await setupDialog.getByLabel("Setup output").getByText("setting up").waitFor();
    await setupDialog.getByRole("button", { name: "Close" }).click();
    await setupDialog.waitFor({ state: "detached" });

    // The preview is set to the template's port; Run runs the repl's run command.
    assert.equal(await page.locator("#preview-port").inputValue(), "5173");
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();
    await page.getByRole("button", { name: "▶ Run" }).click();
    await waitForTerminalText(page, /^ran$/m);

    // Stopped and started again: the setup does not run a second time.
    await page.getByRole("button", { name: "Stop repl" }).click();
    await page.getByRole("button", { name: "Start again" }).click();
    await waitConnected(page);
    await setupBadge(page, "succeeded");
    assert.equal(await readFile(first, ".setup-count"), "ran\n", "the setup ran once");

    // Save as template from the dashboard while it runs: the dialog says to stop it, and does.
    await page.getByRole("link", { name: "Back to all repls" }).click();
    const card = page.locator(`li.repl-card[data-repl-id="${first}"]`);
    await card.getByRole("button", { name: "Save first as a template" }).click();
    const save = page.getByRole("dialog", { name: "Save first as a template" });
    await save.getByText("The repl must be stopped first").waitFor();
    assert.equal(await save.getByLabel("Run command (the Run button)").inputValue(), "cat .setup-count");
    assert.equal(
      await save.getByLabel("Setup command (run once, on a repl's first start)").inputValue(),
      "echo setting up; echo ran >> .setup-count",
    );
    assert.equal(await save.getByLabel("Preview port").inputValue(), "5173");
    await save.getByLabel("Title").fill("My counter");
    await save.getByLabel("Description").fill("counts and answers");
    await save.getByLabel("Run command (the Run button)").fill("echo RUN-OK-$((6 * 7))");
    await save.getByRole("button", { name: "Stop and save" }).click();
    await save.waitFor({ state: "detached", timeout: 60_000 });
    await page.getByText("Saved the template My counter").waitFor();
    assert.equal((await core.repls.getRepl({ replId: first })).repl?.status, 1 /* STOPPED */);

    const own = (await core.repls.listTemplates({})).templates.filter((t) => t.owner);
    assert.deepEqual(
      own.map((t) => [t.title, t.description, t.runCommand, t.setupCommand, t.previewPort]),
      [
        [
          "My counter",
          "counts and answers",
          "echo RUN-OK-$((6 * 7))",
          "echo setting up; echo ran >> .setup-count",
          5173,
        ],
      ],
    );
    const ownList = page.getByRole("list").filter({ has: page.locator("[data-template]") });
    await ownList.getByText("My counter").waitFor();

    // A repl from the private template: its own setup runs on its first start; Run runs the saved command.
    const second = await createFromDashboard(page, "My counter (yours)", "second");
    assert.match((await card.locator(".repl-meta").first().textContent()) ?? "", /^Counted \(counted\)/);
    await page.getByRole("link", { name: "Open second in the IDE" }).click();
    await waitConnected(page);
    await setupBadge(page, "succeeded");
    // The saved files came along (the first repl's line), and its own setup added one.
    assert.equal(await readFile(second, ".setup-count"), "ran\nran\n");
    assert.equal(await readFile(second, "index.js"), 'console.log("counted");\n');
    await page.locator('.term-tab[aria-selected="true"][data-state="connected"]').waitFor();
    const run = page.getByRole("button", { name: "▶ Run" });
    assert.equal(await run.getAttribute("title"), "Run “echo RUN-OK-$((6 * 7))” in the terminal");
    await run.click();
    await waitForTerminalText(page, /^RUN-OK-42$/m);

    // Deleting the private template: gone from the list and the form; the repl keeps its files.
    await page.getByRole("link", { name: "Back to all repls" }).click();
    await page.getByRole("button", { name: "Delete template My counter" }).click();
    await page
      .getByRole("dialog", { name: "Delete the template My counter?" })
      .getByRole("button", { name: "Delete template" })
      .click();
    await page.getByText("Deleted the template My counter.").waitFor();
    await page.locator("section.own-templates").waitFor({ state: "hidden" });
    assert.equal(
      await page.getByLabel("Template", { exact: true }).locator("option", { hasText: "My counter" }).count(),
      0,
    );
    assert.equal((await core.repls.listTemplates({})).templates.filter((t) => t.owner).length, 0);
    assert.equal(await readFile(second, "index.js"), 'console.log("counted");\n');
    assert.deepEqual(s.errors, []);
  });

  it("a setup command that fails shows its exit code and its output", async () => {
    const { page } = s;
    // The user's quota is two repls: make room.
    for (const { replId } of (await core.repls.listRepls({})).repls) await core.repls.deleteRepl({ replId });
    await addOperatorTemplate(adminSocketPath(s.e.dir), "broken", {
      title: "Broken",
      setup_command: "echo 'cannot set up' >&2; exit 3",
    });
    const { repl } = await core.repls.createRepl({ name: "broken", template: "broken" });
    await page.goto(`${s.e.core.url}/repls/${repl!.replId}`);
    await waitConnected(page);
    await setupBadge(page, "failed");
    assert.equal(await page.locator("#repl-setup").textContent(), "Setup: failed (exit 3)");
    assert.equal(await page.getByRole("button", { name: "▶ Run" }).isDisabled(), true, "no run command");
    await page.locator("#repl-setup").click();
    const dialog = page.getByRole("dialog", { name: "Setup command" });
    await dialog.getByRole("status").getByText("Setup: failed (exit 3)").waitFor();
    await dialog.getByLabel("Setup output").getByText("cannot set up").waitFor();
    await dialog.getByRole("button", { name: "Close" }).click();
    assert.deepEqual(s.errors, []);
  });
});
