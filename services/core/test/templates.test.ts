/**
 * Templates through core's API with the test driver (no runners): template.json is checked at core's
 * start, naming the file and what is wrong; SaveTemplate's quota, errors and clean-up; a repl made
 * from a template starts with its settings. The runner side (setup runs once) is templates.e2e.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { SetupStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { listAll } from "../../../lib/blob/store.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { issueApiToken } from "../src/auth/secrets.js";
import { type Clients, startTestCore, type TestCore } from "./harness.js";

async function templatesWith(root: string, manifests: Record<string, object>): Promise<string> {
  const dir = await mkdtemp(join(root, "templates-"));
  for (const [name, manifest] of Object.entries(manifests)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, "template.json"), JSON.stringify(manifest));
    await writeFile(join(dir, name, "main.sh"), "echo hi\n");
  }
  return dir;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  assert.fail("the call succeeded");
}

describe("templates through core's API", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "devex-templates-api-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("a bad template.json fails core's start, naming the file and the problem", async () => {
    const cases: Array<[object, RegExp]> = [
      [{ description: "no title" }, /title/],
      [{ title: "t", preview_port: 70000 }, /preview_port/],
      [{ title: "t", environment: { "1BAD": "x" } }, /"1BAD" is not a variable name/],
      [{ title: "t", environment: { HOME: "/x" } }, /"HOME" is set by the repl itself/],
      [{ title: "t", setup_command: 42 }, /setup_command/],
    ];
    for (const [manifest, problem] of cases) {
      const templatesDir = await templatesWith(root, { bad: manifest });
      await assert.rejects(startTestCore({ templatesDir }), (err: Error) => {
        assert.match(err.message, /bad\/template\.json: /);
        assert.match(err.message, problem);
        return true;
      });
    }
  });

  describe("with a template of every setting", () => {
    let t: TestCore;
    let alice: Clients;
    before(async () => {
      const templatesDir = await templatesWith(root, {
        full: {
          title: "Full",
          setup_command: "npm ci",
          run_command: "npm start",
          preview_port: 5173,
          environment: { GREETING: "hi", EMPTY: "" },
          egress: { mode: "deny_all" },
        },
      });
      t = await startTestCore({ templatesDir, quota: 10, templateQuota: 2 });
      alice = t.clients({ bearer: await t.token("alice") });
    });
    after(() => t?.close());

    it("a repl made from it starts with its settings, and its files without template.json", async () => {
      const { repl } = await alice.repl.createRepl({ name: "full", template: "full" });
      assert.equal(repl?.runCommand, "npm start");
      assert.equal(repl?.previewPort, 5173);
      assert.deepEqual(
        { command: repl?.setup?.command, status: repl?.setup?.status },
        { command: "npm ci", status: SetupStatus.PENDING },
      );
      assert.equal(repl?.egress?.mode, 2 /* DENY_ALL */);
      const vars = await alice.repl.listEnvironmentVariables({ replId: repl!.replId });
      assert.deepEqual(
        vars.variables.map((v) => [v.name, v.value, v.secret]),
        [
          ["EMPTY", "", false],
          ["GREETING", "hi", false],
        ],
      );
      const stored = await readStoredWorkspace(t.blobs, `repl/alice/${repl!.replId}/`);
      assert.deepEqual([...stored.keys()], ["main.sh"]);
    });

    it("running code needs exec: saving a template, or a setup command on a repository the caller picks", async () => {
      const { secret } = await issueApiToken(t.state, "alice", "no exec", undefined, undefined, ["repls:write"]);
      const scoped = t.clients({ bearer: secret });
      const { repl } = await scoped.repl.createRepl({ name: "ok", template: "full" });
      const save = await codeOf(scoped.repl.saveTemplate({ replId: repl!.replId, title: "x", setupCommand: "id" }));
      assert.equal(save.code, Code.PermissionDenied);
      assert.match(save.message, /needs the scope exec/);
      const git = { url: "https://example.invalid/repo.git" };
      const clone = await codeOf(scoped.repl.createRepl({ name: "g", template: "full", git }));
      assert.equal(clone.code, Code.PermissionDenied);
      assert.match(clone.message, /runs "npm ci" on the cloned files.*needs the scope exec/);
      await scoped.repl.deleteRepl({ replId: repl!.replId });
    });

    it("SaveTemplate: the owner's stopped repls only, within the quota, leaving nothing behind when refused", async () => {
      const { repl } = await alice.repl.createRepl({ name: "src", template: "full" });
      const replId = repl!.replId;
      const bob = t.clients({ bearer: await t.token("bob") });
      assert.equal((await codeOf(bob.repl.saveTemplate({ replId, title: "x" }))).code, Code.NotFound);
      assert.equal((await codeOf(alice.repl.saveTemplate({ replId: "rmissing", title: "x" }))).code, Code.NotFound);
      const empty = await codeOf(alice.repl.saveTemplate({ replId, title: "" }));
      assert.equal(empty.code, Code.InvalidArgument);

      const first = await alice.repl.saveTemplate({ replId, title: "one", setupCommand: "", previewPort: 0 });
      assert.equal(first.template?.setupCommand, "", "an explicit empty setup command is kept");
      assert.equal(first.template?.previewPort, 0);
      assert.equal(first.template?.egress?.mode, 2, "the repl's egress policy");
      await alice.repl.saveTemplate({ replId, title: "two" });
      const before = (await listAll(t.blobs, "templates/")).length;
      const over = await codeOf(alice.repl.saveTemplate({ replId, title: "three" }));
      assert.equal(over.code, Code.ResourceExhausted);
      assert.match(over.message, /at most 2 templates per user \(DEVEX_TEMPLATE_QUOTA\); delete one first/);
      assert.equal((await listAll(t.blobs, "templates/")).length, before, "a refused save leaves no files");

      // The setup of a repl made from the first: none; from the second: the repl's own.
      const { repl: fromFirst } = await alice.repl.createRepl({ name: "a", template: first.template!.name });
      assert.equal(fromFirst?.setup, undefined);
      await alice.repl.deleteTemplate({ name: first.template!.name });
      assert.equal((await alice.repl.saveTemplate({ replId, title: "three" })).template?.title, "three");
      const mine = (await alice.repl.listTemplates({})).templates.filter((x) => x.owner === "alice");
      assert.deepEqual(mine.map((x) => x.title).sort(), ["three", "two"]);
      assert.deepEqual(
        (await bob.repl.listTemplates({})).templates.map((x) => x.name),
        ["full"],
      );
    });
  });
});
