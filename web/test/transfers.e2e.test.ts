/**
 * Uploads and downloads in the IDE, in Debian's Chromium against the embedded setup: files dropped
 * on a folder of the file tree land in that folder (a PUT through a single-use ticket, checked by
 * SHA-256), and "Download" in the tree's context menu saves a file, and a folder as a zip that unzip
 * reads, through the browser's own download.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerClients } from "../../lib/client/clients.js";
import { coreClientsFor, runnerClientsFor } from "../../lib/client/node.js";
import { requireProgram } from "../../lib/testing/programs.js";
import { type BrowserSetup, openBrowser, waitConnected } from "./browser.js";

describe("IDE uploads and downloads in Chromium (embedded setup)", function () {
  this.timeout(120_000);
  let s: BrowserSetup;
  let replId: string;
  let files: RunnerClients["files"];
  let scratch: string;

  before(async function () {
    this.timeout(180_000);
    requireProgram(this, "/usr/bin/chromium");
    s = await openBrowser();
    scratch = await mkdtemp(join(tmpdir(), "devex-web-xfer-"));
    const core = coreClientsFor(s.e.core.url, { token: s.token });
    replId = (await core.repls.createRepl({ name: "xfer", template: "node" })).repl!.replId;
    const { runner } = await core.repls.startRepl({ replId });
    files = runnerClientsFor(runner!.url, { token: runner!.token }).files;
    await files.createDirectory({ path: "inbox/deep", parents: true });
    await files.writeFile({ path: "inbox/deep/note.txt", content: Buffer.from("deep note") });
    const { page } = s;
    await page.goto(s.e.core.loginLink!);
    await page.getByRole("heading", { name: "Your repls" }).waitFor();
    await page.goto(`${s.e.core.url}/repls/${replId}`);
    await waitConnected(page);
  });
  after(async () => {
    await s?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const tree = () => s.page.getByRole("tree", { name: "Files" });

  it("files dropped on a folder are uploaded into it", async () => {
    const folder = tree().getByRole("treeitem", { name: "inbox", exact: true });
    await folder.waitFor();
    const handle = await folder.elementHandle();
    await s.page.evaluate((li) => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped text"], "dropped.txt", { type: "text/plain" }));
      dt.items.add(new File([new Uint8Array([0, 1, 2, 255])], "bytes.bin"));
      for (const type of ["dragenter", "dragover", "drop"])
        li!.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, handle);
    await s.page.getByText("Uploaded 2 files to inbox.").waitFor();
    assert.equal(Buffer.from((await files.readFile({ path: "inbox/dropped.txt" })).content).toString(), "dropped text");
    assert.deepEqual([...(await files.readFile({ path: "inbox/bytes.bin" })).content], [0, 1, 2, 255]);
    await tree().getByRole("treeitem", { name: "dropped.txt", exact: true }).waitFor();
  });

  it('"Download" saves a file, and a folder as a zip', async function () {
    requireProgram(this, "unzip");
    const download = async (name: string) => {
      // near its top: a folder's item holds its children below its own row
      await tree()
        .getByRole("treeitem", { name, exact: true })
        .click({ button: "right", position: { x: 30, y: 8 } });
      const [d] = await Promise.all([
        s.page.waitForEvent("download"),
        s.page.getByRole("menuitem", { name: "Download" }).click(),
      ]);
      const saved = join(scratch, d.suggestedFilename());
      await d.saveAs(saved);
      return saved;
    };
    const file = await download("dropped.txt");
    assert.ok(file.endsWith("dropped.txt"));
    assert.equal(await readFile(file, "utf8"), "dropped text");
    const zip = await download("inbox");
    assert.ok(zip.endsWith("inbox.zip"), zip);
    const out = join(scratch, "unzipped");
    execFileSync("unzip", ["-q", zip, "-d", out]);
    assert.equal(await readFile(join(out, "deep/note.txt"), "utf8"), "deep note");
    assert.equal(await readFile(join(out, "dropped.txt"), "utf8"), "dropped text");
    assert.deepEqual(s.errors, []);
  });
});
