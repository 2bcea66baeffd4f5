/**
 * The templates Devex ships (templates/): each one's template.json reads as core reads it, and the
 * static web template is a working Vite project: built with the repo's own Vite (its setup command
 * would install the same major version from the registry, which tests do not reach).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readTemplateFolder } from "../src/repl/templates.js";
import { templatesDir } from "./harness.js";

const run = promisify(execFile);
const repoModules = join(templatesDir, "..", "node_modules");

describe("the shipped templates", () => {
  it("node, python and vite read as core reads them, with what their repls need", async () => {
    const node = await readTemplateFolder(join(templatesDir, "node"), "node");
    assert.equal(node.runCommand, "node index.js");
    const python = await readTemplateFolder(join(templatesDir, "python"), "python");
    assert.equal(python.runCommand, "python3 main.py");
    const vite = await readTemplateFolder(join(templatesDir, "vite"), "vite");
    assert.equal(vite.setupCommand, "npm install --no-audit --no-fund");
    assert.equal(vite.runCommand, "npm run dev");
    assert.equal(vite.previewPort, 5173);
    const pkg = JSON.parse(await readFile(join(templatesDir, "vite", "package.json"), "utf8"));
    assert.match(pkg.scripts.dev, /--port 5173 --strictPort/, "the dev server listens where the preview looks");
    assert.match(pkg.scripts.dev, /--host 0\.0\.0\.0/, "reachable from the preview proxy");
  });

  it("the vite template builds with Vite", async function () {
    this.timeout(60_000);
    const dir = await mkdtemp(join(tmpdir(), "devex-vite-template-"));
    try {
      await cp(join(templatesDir, "vite"), join(dir, "site"), { recursive: true });
      await symlink(repoModules, join(dir, "site", "node_modules"));
      await run(process.execPath, [join(repoModules, "vite", "bin", "vite.js"), "build"], { cwd: join(dir, "site") });
      const html = await readFile(join(dir, "site", "dist", "index.html"), "utf8");
      assert.match(html, /Hello from Devex \(Vite\)/);
      assert.match(html, /<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js">/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
