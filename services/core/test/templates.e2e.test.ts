/**
 * Templates as data with real runners (the embedded setup, the default sandbox). A template's setup
 * command runs once, on the first start, as the "setup" process with the template's environment;
 * a failing or interrupted one is FAILED and not run again. A stopped repl saved as a private
 * template carries its newest files (modes too) and plain variables, never a secret nor a file
 * deleted before the save; only its owner sees it. Operators add templates from a folder and from a
 * git repository (cloned from a test-made repository) through the admin socket, and remove them.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Repl, SetupStatus } from "../../../gen/devex/core/v1/repl_pb.js";
import { listAll } from "../../../lib/blob/store.js";
import type { CoreClients } from "../../../lib/client/clients.js";
import { coreAdminClientFor } from "../../../lib/client/node.js";
import { readStoredWorkspace } from "../../../lib/sync/sync.js";
import { adminSocketPath } from "../src/admin/admin-socket.js";
import { type Embedded, exec, startEmbedded } from "./embedded.js";

const SECRET = "template-secret-value-never-copied";

async function writeTemplate(root: string, name: string, manifest: object, files: Record<string, string>) {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "template.json"), JSON.stringify(manifest));
  for (const [f, body] of Object.entries(files)) {
    await mkdir(join(dir, f, ".."), { recursive: true });
    await writeFile(join(dir, f), body, { mode: f.endsWith(".sh") ? 0o755 : 0o644 });
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

async function waitForSetup(core: CoreClients, replId: string, until: (r: Repl) => boolean): Promise<Repl> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { repl } = await core.repls.getRepl({ replId });
    if (until(repl!)) return repl!;
    if (Date.now() > deadline) assert.fail(`setup still ${SetupStatus[repl?.setup?.status ?? 0]}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ended = (r: Repl) => r.setup?.status === SetupStatus.SUCCEEDED || r.setup?.status === SetupStatus.FAILED;

describe("templates as data in real runners", function () {
  this.timeout(180_000);
  let e: Embedded;
  let root: string;
  let alice: CoreClients;
  let bob: CoreClients;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "devex-templates-"));
    const templates = join(root, "templates");
    await writeTemplate(
      templates,
      "counter",
      {
        title: "Counter",
        description: "counts its setups",
        language: "javascript",
        setup_command: 'echo ran >> .setup-count && echo "setup saw $GREETING" && ./tool.sh',
        run_command: "node index.js",
        preview_port: 8080,
        environment: { GREETING: "hello from the template" },
      },
      { "index.js": 'console.log("counter")\n', "tool.sh": "#!/bin/sh\necho tool ran\n" },
    );
    await writeTemplate(templates, "broken", { title: "Broken", setup_command: "echo failing >&2; exit 3" }, {});
    await writeTemplate(templates, "slow", { title: "Slow", setup_command: "sleep 600" }, { "a.txt": "a\n" });
    e = await startEmbedded({ poolSize: 1, quota: 10, templatesDir: templates });
    alice = await e.login("alice");
    bob = await e.login("bob");
  });
  after(async () => {
    await e?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("runs the setup command once, on the first start, with the template's environment", async () => {
    const { templates } = await alice.repls.listTemplates({});
    const counter = templates.find((t) => t.name === "counter");
    assert.equal(counter?.setupCommand.includes("setup-count"), true);
    assert.equal(counter?.previewPort, 8080);
    assert.deepEqual(counter?.environment, { GREETING: "hello from the template" });
    assert.equal(counter?.owner, "");

    const { repl } = await alice.repls.createRepl({ name: "count", template: "counter" });
    const replId = repl!.replId;
    assert.equal(repl?.setup?.status, SetupStatus.PENDING);
    assert.equal(repl?.runCommand, "node index.js");
    assert.equal(repl?.previewPort, 8080);
    const vars = await alice.repls.listEnvironmentVariables({ replId });
    assert.deepEqual(
      vars.variables.map((v) => [v.name, v.value]),
      [["GREETING", "hello from the template"]],
    );

    const { runner: access } = await alice.repls.startRepl({ replId });
    const runner = e.runner(access!);
    const done = await waitForSetup(alice, replId, ended);
    assert.equal(done.setup?.status, SetupStatus.SUCCEEDED, done.setup?.message);
    assert.equal(done.setup?.exitCode, 0);
    const { processes } = await runner.processes.listProcesses({});
    const setup = processes.find((p) => p.name === "setup");
    assert.ok(setup, "the setup ran as the process named setup");
    const output = await runner.processes.readProcessOutput({ processId: setup.processId });
    assert.equal(Buffer.from(output.data).toString(), "setup saw hello from the template\ntool ran\n");

    await alice.repls.stopRepl({ replId });
    const again = await alice.repls.startRepl({ replId });
    const second = e.runner(again.runner!);
    await new Promise((r) => setTimeout(r, 1500)); // room for a setup that should not come
    const listed = await second.processes.listProcesses({});
    assert.equal(listed.processes.filter((p) => p.name === "setup").length, 0, "no second setup");
    assert.equal((await exec(second, "cat .setup-count")).out, "ran\n", "the setup ran once");
    assert.equal((await alice.repls.getRepl({ replId })).repl?.setup?.status, SetupStatus.SUCCEEDED);
    await alice.repls.stopRepl({ replId });
  });

  it("a failing setup is FAILED with its exit code; one cut short by a stop is FAILED and not run again", async () => {
    const { repl: broken } = await alice.repls.createRepl({ name: "broken", template: "broken" });
    await alice.repls.startRepl({ replId: broken!.replId });
    const failed = await waitForSetup(alice, broken!.replId, ended);
    assert.equal(failed.setup?.status, SetupStatus.FAILED);
    assert.equal(failed.setup?.exitCode, 3);
    await alice.repls.stopRepl({ replId: broken!.replId });

    const { repl: slow } = await alice.repls.createRepl({ name: "slow", template: "slow" });
    const replId = slow!.replId;
    await alice.repls.startRepl({ replId });
    await waitForSetup(alice, replId, (r) => r.setup?.status === SetupStatus.RUNNING);
    await alice.repls.stopRepl({ replId });
    const cut = (await alice.repls.getRepl({ replId })).repl!;
    assert.equal(cut.setup?.status, SetupStatus.FAILED);
    assert.equal(cut.setup?.exitCode, -1);
    assert.match(cut.setup?.message ?? "", /stopped before setup ended|ended by SIGTERM/);
    const { runner: access } = await alice.repls.startRepl({ replId });
    await new Promise((r) => setTimeout(r, 1500));
    const { processes } = await e.runner(access!).processes.listProcesses({});
    assert.equal(processes.filter((p) => p.name === "setup").length, 0, "an interrupted setup is not run again");
    await alice.repls.stopRepl({ replId });
    await alice.repls.deleteRepl({ replId });
    await alice.repls.deleteRepl({ replId: broken!.replId });
  });

  it("saves a stopped repl as a private template: newest files and plain variables only, for its owner", async () => {
    const { repl } = await alice.repls.createRepl({ name: "base", template: "counter" });
    const replId = repl!.replId;
    let runner = e.runner((await alice.repls.startRepl({ replId })).runner!);
    await waitForSetup(alice, replId, ended);
    await runner.files.writeFile({ path: "old-secret.txt", content: Buffer.from("deleted before the save") });
    await alice.repls.stopRepl({ replId }); // generation 1 holds old-secret.txt
    runner = e.runner((await alice.repls.startRepl({ replId })).runner!);
    await runner.files.deleteFile({ path: "old-secret.txt" });
    const app = Buffer.from("export const app = 1;\n");
    await runner.files.writeFile({ path: "src/app.js", content: app, createParents: true });
    await alice.repls.setEnvironmentVariable({ replId, name: "PLAIN", value: "kept" });
    await alice.repls.setEnvironmentVariable({ replId, name: "TOKEN", value: SECRET, secret: true });

    const running = await codeOf(alice.repls.saveTemplate({ replId, title: "Mine" }));
    assert.equal(running.code, Code.FailedPrecondition);
    assert.match(running.message, /stop it first/);
    await alice.repls.stopRepl({ replId });

    const { template } = await alice.repls.saveTemplate({
      replId,
      title: "My counter",
      description: "with an app",
      runCommand: "node src/app.js",
    });
    assert.match(template!.name, /^t[0-9a-f]{12}$/);
    assert.equal(template?.owner, "alice");
    assert.equal(template?.runCommand, "node src/app.js");
    assert.equal(template?.setupCommand.includes("setup-count"), true, "the repl's setup command");
    assert.equal(template?.previewPort, 8080);
    assert.deepEqual(template?.environment, { GREETING: "hello from the template", PLAIN: "kept" });

    // Stored: one generation, without the file deleted before the save, and no secret anywhere.
    const prefix = `templates/${template!.name}/`;
    const keys = (await listAll(e.blobs, prefix)).map((k) => k.key.slice(prefix.length));
    assert.deepEqual(
      keys.filter((k) => k.includes("generations/")),
      [".devex-sync/generations/1.json"],
    );
    const stored = await readStoredWorkspace(e.blobs, prefix);
    assert.deepEqual([...stored.keys()].sort(), [".setup-count", "index.js", "src/app.js", "tool.sh"]);
    for (const k of keys) {
      const body = await e.blobs.get(prefix + k);
      const chunks: Buffer[] = [];
      for await (const c of body!) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString("latin1");
      assert.ok(!text.includes(SECRET) && !text.includes("deleted before the save"), `${k} holds what it must not`);
    }

    // Only alice sees and uses it.
    assert.ok((await alice.repls.listTemplates({})).templates.some((t) => t.name === template!.name));
    assert.ok(!(await bob.repls.listTemplates({})).templates.some((t) => t.name === template!.name));
    const stranger = await codeOf(bob.repls.createRepl({ name: "x", template: template!.name }));
    assert.equal(stranger.code, Code.InvalidArgument);
    assert.match(stranger.message, /unknown template/);
    assert.equal((await codeOf(bob.repls.deleteTemplate({ name: template!.name }))).code, Code.NotFound);
    assert.equal((await codeOf(alice.repls.deleteTemplate({ name: "counter" }))).code, Code.NotFound);

    // A repl from it: its files (modes kept), variables, run command, and its own setup run.
    const { repl: copy } = await alice.repls.createRepl({ name: "copy", template: template!.name });
    assert.equal(copy?.runCommand, "node src/app.js");
    assert.equal(copy?.setup?.status, SetupStatus.PENDING);
    const names = (await alice.repls.listEnvironmentVariables({ replId: copy!.replId })).variables.map((v) => v.name);
    assert.deepEqual(names, ["GREETING", "PLAIN"]);
    const copied = e.runner((await alice.repls.startRepl({ replId: copy!.replId })).runner!);
    assert.equal((await waitForSetup(alice, copy!.replId, ended)).setup?.status, SetupStatus.SUCCEEDED);
    assert.equal((await exec(copied, "cat .setup-count")).out, "ran\nran\n", "once in each repl");
    assert.equal((await exec(copied, "node src/app.js && test -x tool.sh && ls")).code, 0);
    assert.equal((await exec(copied, "test -e old-secret.txt")).code, 1);
    assert.equal((await exec(copied, "printenv TOKEN || echo unset")).out, "unset\n");
    await alice.repls.stopRepl({ replId: copy!.replId });

    await alice.repls.deleteTemplate({ name: template!.name });
    assert.deepEqual(await listAll(e.blobs, prefix), []);
    assert.equal(
      (await codeOf(alice.repls.createRepl({ name: "y", template: template!.name }))).code,
      Code.InvalidArgument,
    );
    const kept = e.runner((await alice.repls.startRepl({ replId: copy!.replId })).runner!);
    assert.equal((await exec(kept, "cat src/app.js")).out, "export const app = 1;\n", "repls keep their files");
    await alice.repls.stopRepl({ replId: copy!.replId });
  });

  it("operators add templates from a folder and a git repository, and remove them", async () => {
    const admin = coreAdminClientFor(adminSocketPath(e.dir));
    const folder = await writeTemplate(
      join(root, "extra"),
      "site",
      { title: "Site", run_command: "ls" },
      {
        "index.html": "<h1>site</h1>\n",
      },
    );
    const added = await admin.addTemplate({ name: "site", source: { case: "folder", value: folder } });
    assert.equal(added.template?.title, "Site");

    const repo = join(root, "repo");
    await writeTemplate(root, "repo", { title: "From git", setup_command: "true" }, { "main.py": "print(1)\n" });
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: repo, env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: root } });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one");
    git("branch", "stable");
    await writeFile(join(repo, "main.py"), "print(2)\n");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two");
    await admin.addTemplate({ name: "from-git", source: { case: "gitUrl", value: `file://${repo}#stable` } });
    const listed = (await bob.repls.listTemplates({})).templates.map((t) => t.name);
    assert.ok(listed.includes("site") && listed.includes("from-git"), listed.join(","));
    const { repl } = await bob.repls.createRepl({ name: "g", template: "from-git" });
    const files = await readStoredWorkspace(e.blobs, `repl/bob/${repl!.replId}/`);
    assert.deepEqual([...files.keys()], ["main.py"], "the clone's files, without .git or template.json");
    assert.equal(files.get("main.py")?.toString(), "print(1)\n", "the branch named after #");

    const bad: Array<[Promise<unknown>, Code, RegExp]> = [
      [
        admin.addTemplate({ name: "nope", source: { case: "folder", value: join(root, "missing") } }),
        Code.FailedPrecondition,
        /not a folder/,
      ],
      [
        admin.addTemplate({ name: "nope", source: { case: "folder", value: join(root, "extra") } }),
        Code.FailedPrecondition,
        /template\.json: missing/,
      ],
      [
        admin.addTemplate({ name: "nope", source: { case: "gitUrl", value: "ssh://example.invalid/x" } }),
        Code.InvalidArgument,
        /https/,
      ],
      [
        admin.addTemplate({ name: "nope", source: { case: "gitUrl", value: `file://${repo}#no-such-branch` } }),
        Code.FailedPrecondition,
        /could not clone/,
      ],
      [
        admin.addTemplate({ name: "t0123456789ab", source: { case: "folder", value: folder } }),
        Code.FailedPrecondition,
        /users' templates/,
      ],
    ];
    for (const [call, code, message] of bad) {
      const got = await codeOf(call);
      assert.equal(got.code, code, got.message);
      assert.match(got.message, message);
    }
    assert.ok(!(await alice.repls.listTemplates({})).templates.some((t) => t.name === "nope"));

    await admin.removeTemplate({ name: "site" });
    assert.ok(!(await alice.repls.listTemplates({})).templates.some((t) => t.name === "site"));
    assert.deepEqual(await listAll(e.blobs, "templates/site/"), []);
  });
});
