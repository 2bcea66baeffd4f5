/**
 * A table of path attacks against the FileService, with real symlinks under a temp dir: every
 * attack is refused or stays inside the workspace, and the files outside are neither read nor
 * changed.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Client } from "@connectrpc/connect";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { Workspace } from "../src/workspace/paths.js";
import { codeOf, connectClient, startTestRunner, type TestRunner } from "./helpers.js";

const SECRET = "TOP SECRET outside the workspace\n";

describe("runner path confinement (table of attacks)", () => {
  let t: TestRunner;
  let files: Client<typeof FileService>;
  let outside: string;

  before(async () => {
    t = await startTestRunner();
    files = connectClient(FileService, t.runner.url, t.token);
    outside = path.join(t.dir, "outside");
    await mkdir(path.join(outside, "dir"), { recursive: true });
    await writeFile(path.join(outside, "secret.txt"), SECRET);
    const ws = t.workspace;
    await mkdir(path.join(ws, "sub"));
    await writeFile(path.join(ws, "sub", "ok.txt"), "inside\n");
    await symlink("/etc", path.join(ws, "link-etc"));
    await symlink("../outside", path.join(ws, "link-out"));
    await symlink("../outside/secret.txt", path.join(ws, "link-secret"));
    await symlink("../outside/created-through-dangling.txt", path.join(ws, "dangling"));
    await symlink("sub", path.join(ws, "in-link"));
    await mkdir(path.join(ws, "tree"));
    await symlink("../../outside/secret.txt", path.join(ws, "tree", "escape"));
  });
  after(() => t?.close());

  const content = new TextEncoder().encode("pwned\n");
  const attacks: Array<[string, () => Promise<unknown>, string[]]> = [
    ["absolute path read", () => files.readFile({ path: "/etc/passwd" }), ["InvalidArgument"]],
    ["absolute path write", () => files.writeFile({ path: "/tmp/devex-pwned", content }), ["InvalidArgument"]],
    ["dot-dot read", () => files.readFile({ path: "../outside/secret.txt" }), ["InvalidArgument"]],
    ["nested dot-dot read", () => files.readFile({ path: "sub/../../outside/secret.txt" }), ["InvalidArgument"]],
    ["dot-dot write", () => files.writeFile({ path: "../outside/secret.txt", content }), ["InvalidArgument"]],
    ["dot-dot list", () => files.listFiles({ path: ".." }), ["InvalidArgument"]],
    ["encoded %2e%2e is a literal name", () => files.readFile({ path: "%2e%2e/outside/secret.txt" }), ["NotFound"]],
    ["backslashes are literal on Linux", () => files.readFile({ path: "..\\outside\\secret.txt" }), ["NotFound"]],
    ["NUL byte", () => files.readFile({ path: "sub/ok.txt\0../../outside/secret.txt" }), ["InvalidArgument"]],
    ["symlink to /etc", () => files.readFile({ path: "link-etc/passwd" }), ["PermissionDenied"]],
    ["list through symlink to /etc", () => files.listFiles({ path: "link-etc" }), ["PermissionDenied"]],
    ["symlinked parent dir read", () => files.readFile({ path: "link-out/secret.txt" }), ["PermissionDenied"]],
    [
      "symlinked parent dir write",
      () => files.writeFile({ path: "link-out/secret.txt", content }),
      ["PermissionDenied"],
    ],
    ["symlinked parent new file", () => files.writeFile({ path: "link-out/new.txt", content }), ["PermissionDenied"]],
    [
      "create parents through symlink",
      () => files.writeFile({ path: "link-out/a/b.txt", content, createParents: true }),
      ["PermissionDenied"],
    ],
    ["mkdir through symlink", () => files.createDirectory({ path: "link-out/d", parents: true }), ["PermissionDenied"]],
    ["symlink to outside file read", () => files.readFile({ path: "link-secret" }), ["PermissionDenied"]],
    [
      "edit through symlink",
      () => files.editFile({ path: "link-secret", edits: [{ oldText: "TOP", newText: "X" }] }),
      ["PermissionDenied"],
    ],
    [
      "patch through symlink",
      () => files.patchFile({ path: "link-out/secret.txt", patch: "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n" }),
      ["PermissionDenied"],
    ],
    ["dangling symlink out read", () => files.readFile({ path: "dangling" }), ["PermissionDenied"]],
    ["delete through symlinked dir", () => files.deleteFile({ path: "link-out/secret.txt" }), ["PermissionDenied"]],
    [
      "move out of the workspace",
      () => files.moveFile({ source: "sub/ok.txt", destination: "link-out/ok.txt" }),
      ["PermissionDenied"],
    ],
    [
      "move from outside",
      () => files.moveFile({ source: "link-out/secret.txt", destination: "stolen.txt" }),
      ["PermissionDenied"],
    ],
    [
      "copy from outside via link",
      () => files.copyFile({ source: "link-secret", destination: "stolen.txt" }),
      ["PermissionDenied"],
    ],
    [
      "copy into outside dir",
      () => files.copyFile({ source: "sub/ok.txt", destination: "link-out/c.txt" }),
      ["PermissionDenied"],
    ],
    [
      "search through symlink",
      () => files.searchFiles({ path: "link-out", contentPattern: "SECRET" }),
      ["PermissionDenied"],
    ],
    ["watch through symlink", () => drain(files.watchFiles({ path: "link-etc" })), ["PermissionDenied"]],
    ["stat through symlinked dir", () => files.statFile({ path: "link-out/secret.txt" }), ["PermissionDenied"]],
    ["delete the root", () => files.deleteFile({ path: ".", recursive: true }), ["InvalidArgument"]],
  ];

  for (const [name, attack, codes] of attacks) {
    it(`refuses: ${name}`, async () => {
      const code = await codeOf(attack());
      assert.ok(codes.includes(code), `${name}: got ${code}, want ${codes.join("|")}`);
    });
  }

  it("writing over a symlink replaces the link, never writes through it", async () => {
    await files.writeFile({ path: "dangling", content });
    await files.writeFile({ path: "link-secret", content });
    assert.equal(readFileSync(path.join(t.workspace, "link-secret"), "utf8"), "pwned\n");
    assert.equal(existsSync(path.join(outside, "created-through-dangling.txt")), false);
  });

  it("deleting a symlinked dir removes only the link", async () => {
    await files.deleteFile({ path: "link-out", recursive: true });
    assert.equal(readFileSync(path.join(outside, "secret.txt"), "utf8"), SECRET);
    await symlink("../outside", path.join(t.workspace, "link-out"));
  });

  it("copying a tree copies inner symlinks as links, not their targets' content", async () => {
    await files.copyFile({ source: "tree", destination: "tree-copy" });
    assert.equal(await readlink(path.join(t.workspace, "tree-copy", "escape")), "../../outside/secret.txt");
    assert.equal(await codeOf(files.readFile({ path: "tree-copy/escape" })), "PermissionDenied");
  });

  it("listing shows symlinks as symlinks without descending into them", async () => {
    const res = await files.listFiles({ path: "", depth: 5 });
    const names = res.entries.map((e) => e.path);
    assert.ok(names.includes("link-etc"));
    assert.ok(!names.some((n) => n.startsWith("link-etc/") || n.startsWith("link-out/")));
  });

  it("symlinks inside the workspace keep working", async () => {
    const res = await files.readFile({ path: "in-link/ok.txt" });
    assert.equal(new TextDecoder().decode(res.content), "inside\n");
  });

  it("a directory swapped for a symlink after the walk cannot redirect the operation", async () => {
    const ws = await Workspace.open(t.workspace);
    await mkdir(path.join(t.workspace, "swap"));
    await writeFile(path.join(t.workspace, "swap", "secret.txt"), "inside\n");
    const read = await ws.at("swap/secret.txt", { follow: "all" }, async (loc) => {
      await rename(path.join(t.workspace, "swap"), path.join(t.workspace, "swap-old"));
      await symlink("../outside", path.join(t.workspace, "swap"));
      return readFile(loc.path, "utf8"); // through the held descriptor of the real directory
    });
    assert.equal(read, "inside\n");
    await assert.rejects(ws.resolve("swap/secret.txt"), /outside the workspace/);
    await rm(path.join(t.workspace, "swap"));
  });

  it("left every file outside the workspace unchanged", () => {
    assert.equal(readFileSync(path.join(outside, "secret.txt"), "utf8"), SECRET);
    assert.equal(existsSync(path.join(outside, "new.txt")), false);
    assert.equal(existsSync(path.join(outside, "a")), false);
    assert.equal(existsSync(path.join(outside, "d")), false);
    assert.equal(existsSync(path.join(outside, "ok.txt")), false);
    assert.equal(existsSync(path.join(outside, "c.txt")), false);
    assert.equal(existsSync("/tmp/devex-pwned"), false);
    assert.equal(existsSync(path.join(t.workspace, "stolen.txt")), false);
  });
});

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) return;
}
