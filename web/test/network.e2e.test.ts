/**
 * A repl's network policy in the browser (Chromium via playwright-core, the embedded setup): the
 * dashboard shows it on each repl's card and its dialog changes it (GetRepl sees the change); a bad
 * entry is refused inline and changes nothing; the IDE's top bar shows it and changes it too.
 */
import assert from "node:assert/strict";
import { EgressMode } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected } from "./browser.js";

describe("web client: a repl's network policy (Chromium, embedded setup)", function () {
  this.timeout(90_000);
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

  const egressOf = async (replId: string) => (await core.repls.getRepl({ replId })).repl?.egress;

  it("the dashboard's dialog sets an allowlist; a bad entry is refused inline; the IDE's top bar shows and changes it", async () => {
    const { page } = s;
    const { repl } = await core.repls.createRepl({ name: "netted", template: "node" });
    const replId = repl!.replId;
    await page.goto(s.e.core.url);
    await page.getByRole("textbox", { name: "Login link or API token" }).fill(s.e.core.loginLink!);
    await page.getByRole("button", { name: "Sign in" }).click();
    const card = page.locator(`li.repl-card[data-repl-id="${replId}"]`);
    await card.locator(".repl-network", { hasText: "Network: Allow all" }).waitFor();

    await card.getByRole("button", { name: "Network policy of netted" }).click();
    const dialog = page.getByRole("dialog", { name: "Network of netted" });
    await dialog.getByLabel("Mode").selectOption({ label: "Allowlist" });
    const entries = dialog.getByLabel("Domains and CIDRs, one per line");
    await entries.fill("Registry.npmjs.org\n*.github.com\n\n203.0.113.0/24\n");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });
    await card.locator(".repl-network", { hasText: "Network: Allowlist (3)" }).waitFor();
    const saved = await egressOf(replId);
    assert.equal(saved?.mode, EgressMode.ALLOWLIST);
    assert.deepEqual(saved?.allowDomains, ["registry.npmjs.org", "*.github.com"]);
    assert.deepEqual(saved?.allowCidrs, ["203.0.113.0/24"]);

    // The dialog opens with the saved policy; a loopback range is refused by core, shown in the dialog.
    await card.getByRole("button", { name: "Network policy of netted" }).click();
    assert.equal(await entries.inputValue(), "registry.npmjs.org\n*.github.com\n203.0.113.0/24");
    await entries.fill("registry.npmjs.org\n127.0.0.0/8");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog
      .getByRole("alert")
      .filter({ hasText: /Could not save: .*127\.0\.0\.0\/8/ })
      .waitFor();
    assert.equal(await entries.getAttribute("aria-invalid"), "true");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "detached" });
    assert.deepEqual(await egressOf(replId), saved, "a refused policy changes nothing");

    // The IDE's top bar: the same policy, and the same dialog.
    await card.getByRole("link", { name: "Open netted in the IDE" }).click();
    await waitConnected(page);
    const network = page.getByRole("button", { name: "Network policy: Allowlist (3)" });
    await network.click();
    await dialog.getByLabel("Mode").selectOption({ label: "Deny all" });
    assert.equal(await entries.isDisabled(), true, "a deny-all policy lists nothing");
    await dialog.getByRole("button", { name: "Save" }).click();
    await page.getByRole("button", { name: "Network policy: Deny all" }).waitFor();
    assert.equal((await egressOf(replId))?.mode, EgressMode.DENY_ALL);

    await page.getByRole("button", { name: "Network policy: Deny all" }).click();
    await dialog.getByLabel("Mode").selectOption({ label: "Default" });
    await dialog.getByRole("button", { name: "Save" }).click();
    // The server's default (DEVEX_EGRESS_DEFAULT) is allow_all.
    await page.getByRole("button", { name: "Network policy: Allow all" }).waitFor();
    assert.equal((await egressOf(replId))?.mode, EgressMode.ALLOW_ALL);

    // The refusal is an HTTP 400 (InvalidArgument) that Chromium logs; nothing else may be.
    const expected = /status of 400 .*\/devex\.core\.v1\.ReplService\/SetEgressPolicy\)$/;
    assert.deepEqual(
      s.errors.filter((e) => !expected.test(e)),
      [],
    );
  });
});
