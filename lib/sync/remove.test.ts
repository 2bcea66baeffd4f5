/**
 * Removing a runner's folder when core is not root: core owns the repl's files but cannot bypass
 * modes, and a restore (or `go mod download`) leaves read-only (0555) and unreadable (0000)
 * directories. emptyDirectory makes them its owner's again through their own descriptors. As root
 * the test runs the removal as an unprivileged uid that owns the tree, which is core's situation.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireProgram } from "../testing/programs.js";

const fixture = fileURLToPath(new URL("./remove-fixture.ts", import.meta.url));
const OWNER = 23456;

/** Every path under `dir`, owned by `uid`. */
function chownTree(dir: string, uid: number) {
  chownSync(dir, uid, uid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid);
    else chownSync(p, uid, uid);
  }
}

describe("lib/sync: emptying a tree its owner locked", function () {
  this.timeout(60_000);
  let root: string;
  const asRoot = process.getuid?.() === 0;

  before(function () {
    if (asRoot) requireProgram(this, "setpriv");
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "devex-remove-"));
    mkdirSync(join(root, "go/pkg/mod/x/y"), { recursive: true });
    writeFileSync(join(root, "go/pkg/mod/x/y/f"), "a");
    writeFileSync(join(root, "go/pkg/mod/x/g"), "b");
    mkdirSync(join(root, "locked/inner/deeper"), { recursive: true });
    writeFileSync(join(root, "locked/inner/deeper/h"), "c");
    writeFileSync(join(root, "keep-out"), "d");
    if (asRoot) chownTree(root, OWNER);
    chmodSync(join(root, "go/pkg/mod/x/y"), 0o555);
    chmodSync(join(root, "go/pkg/mod/x"), 0o555);
    chmodSync(join(root, "locked/inner/deeper"), 0o000);
    chmodSync(join(root, "locked/inner"), 0o000);
    chmodSync(join(root, "locked"), 0o500);
  });
  afterEach(() => {
    execFileSync("chmod", ["-R", "u+rwx", root]);
    rmSync(root, { recursive: true, force: true });
  });

  it("removes 0555 and 0000 directories with their contents, as the tree's unprivileged owner", () => {
    const run = asRoot
      ? ["setpriv", `--reuid=${OWNER}`, `--regid=${OWNER}`, "--clear-groups", process.execPath]
      : [process.execPath];
    const out = execFileSync(run[0]!, [...run.slice(1), "--import", "tsx", fixture, root], {
      env: { ...process.env, HOME: tmpdir() },
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(out), []);
    assert.equal(lstatSync(root).isDirectory(), true, "the directory itself stays");
  });
});
