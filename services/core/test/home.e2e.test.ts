/**
 * The project and the home are different places: after a shell session that ran `npm init -y`, `vi`
 * and a few commands, the file tree (ListFiles of the root) shows only the project's files, while
 * the shell's state lives in the repl's home (/home/devex), which survives stop → start minus its
 * caches. Inside the sandbox `pwd`, `whoami`, `hostname` and `$HOME` name no host path or host user.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { listAll } from "../../../lib/blob/store.js";
import type { CoreClients, RunnerClients } from "../../../lib/client/clients.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { createSandbox, defaultSandboxLimits } from "../src/driver/local/sandbox.js";
import { type Embedded, runInTerminal, startEmbedded } from "./embedded.js";

/** Names of the host's users with a real uid (1000 and up, not nobody): none may show in a repl. */
function hostUserNames(): string[] {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .filter(([name, , uid]) => name && Number(uid) >= 1000 && Number(uid) !== 65534)
    .map(([name]) => name!)
    .concat(hostname());
}

describe("the repl's home is not its project (bwrap)", function () {
  this.timeout(120_000);
  let e: Embedded;
  let core: CoreClients;
  let replId: string;
  let runner: RunnerClients;
  let terminalId: string;
  let templateFiles: string[];

  const start = async () => {
    const { runner: access } = await core.repls.startRepl({ replId });
    runner = e.runner(access!);
    terminalId = (await runner.terminals.createTerminal({})).terminal!.terminalId;
  };
  const sh = (cmd: string) => runInTerminal(runner, terminalId, cmd, 30_000);
  const projectFiles = () => [...new Set([...templateFiles, "notes.txt", "package.json"])].sort();
  const rootNames = async () => (await runner.files.listFiles({ path: "" })).entries.map((f) => f.name).sort();

  before(async function () {
    requireProgram(this, "bwrap", (path) =>
      createSandbox({ mode: "auto", limits: defaultSandboxLimits }).kind === "bwrap"
        ? undefined
        : `${path} cannot create namespaces here (user namespaces disabled?)`,
    );
    requireProgram(this, "vi");
    e = await startEmbedded();
    core = await e.login("alice");
    replId = (await core.repls.createRepl({ name: "home", template: "node" })).repl!.replId;
    await start();
    templateFiles = await rootNames();
  });
  after(async () => {
    await e?.close();
  });

  it("a shell session (npm init, vi, history) leaves only project files in the tree", async () => {
    for (const cmd of [
      "npm init -y >/dev/null",
      "vi -c 'normal ihello from vi' -c wq notes.txt",
      "ls -la > /dev/null; echo hi | cat",
      "mkdir -p ~/.config/app && echo setting=1 > ~/.config/app/app.conf",
      "mkdir -p ~/.cache/big ~/.npm/_cacache && echo cached > ~/.cache/big/blob",
      "history -a",
    ]) {
      const r = await sh(cmd);
      assert.equal(r.status, 0, `${cmd}: ${r.output}`);
    }
    assert.deepEqual(await rootNames(), projectFiles());
    const home = await sh("ls -A ~");
    for (const name of [".bash_history", ".viminfo", ".config", ".bashrc", ".profile"]) {
      assert.match(home.output, new RegExp(`(^|\\s)${name.replace(".", "\\.")}(\\s|$)`), `~ has ${name}`);
    }
  });

  it("pwd, whoami, hostname and HOME name the repl, not the host", async () => {
    const answers = {
      pwd: (await sh("pwd")).output.trim(),
      whoami: (await sh("whoami")).output.trim(),
      id: (await sh("id")).output.trim(),
      hostname: (await sh("hostname")).output.trim(),
      home: (await sh('echo "$HOME"')).output.trim(),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's expansion of the prompt, not a template
      prompt: (await sh('echo "${PS1@P}"')).output.trim(),
      etcHostname: (await sh("cat /etc/hostname")).output.trim(),
      hosts: (await sh('getent hosts "$(hostname)"')).output.trim(),
      // Every file of /etc that names users, groups or hosts (backups and subordinate ids included).
      etc: (
        await sh("cat /etc/passwd /etc/group /etc/passwd- /etc/group- /etc/subuid /etc/subgid /etc/hosts 2>/dev/null")
      ).output.replace(/\r/g, ""),
    };
    assert.equal(answers.pwd, "/workspace");
    assert.equal(answers.whoami, "devex");
    assert.match(answers.id, /^uid=1000\(devex\) gid=1000\(devex\)/);
    assert.equal(answers.hostname, replId);
    assert.equal(answers.home, "/home/devex");
    assert.equal(answers.etcHostname, replId);
    assert.match(answers.hosts, new RegExp(`^127\\.0\\.1\\.1\\s+${replId}$`));
    assert.doesNotMatch(answers.etc, /^[^:\n]+:x:\d+:[^:\n]+$/m, "no group lists its members");
    const all = Object.values(answers).join("\n");
    assert.ok(!all.includes(e.dir), `no host path: ${all}`);
    for (const name of hostUserNames())
      assert.ok(!new RegExp(`\\b${name}\\b`).test(all), `no host user ${name}: ${all}`);
  });

  it("the repl's commands share one /tmp, as on one machine, which the host's /tmp does not see", async () => {
    const name = `devex-tmp-${process.pid}-${Date.now()}`;
    let exitCode: number | undefined;
    for await (const m of runner.processes.exec({ command: { shell: `echo shared > /tmp/${name}` } }))
      if (m.event.case === "exit") exitCode = m.event.value.exitCode;
    assert.equal(exitCode, 0);
    assert.equal((await sh(`cat /tmp/${name}`)).output.trim(), "shared", "a terminal sees what an Exec wrote");
    assert.ok(!existsSync(join(tmpdir(), name)), "not on the host's /tmp");
  });

  it("stop → start keeps the home (history, dotfiles) but not its caches, and the project unchanged", async () => {
    // The fresh home was seeded from /etc/skel; the user's own .bashrc must come back, not the skeleton's.
    assert.match((await sh("cat ~/.bashrc")).output, /PS1/);
    await sh("echo '# my own bashrc line' >> ~/.bashrc");
    await core.repls.stopRepl({ replId });
    const stored = (await listAll(e.blobs, `home/alice/${replId}/`)).map((o) => o.key);
    assert.ok(stored.length > 0, "the home is stored under its own prefix");
    assert.ok(
      !(await listAll(e.blobs, `repl/alice/${replId}/`)).some((o) => o.key.includes("bash_history")),
      "nothing of the home is under the workspace's prefix",
    );
    await start();
    assert.deepEqual(await rootNames(), projectFiles());
    assert.match((await sh("cat ~/.bash_history")).output, /npm init -y/);
    assert.equal((await sh("cat ~/.config/app/app.conf")).output.trim(), "setting=1");
    assert.match((await sh("tail -1 ~/.bashrc")).output, /# my own bashrc line/);
    assert.equal((await sh("test -e ~/.cache || test -e ~/.npm; echo $?")).output.trim(), "1", "caches are gone");
    assert.equal((await sh("cat notes.txt")).output.trim(), "hello from vi");
  });

  it("deleting the repl deletes its stored home", async () => {
    await core.repls.stopRepl({ replId });
    await core.repls.deleteRepl({ replId });
    assert.deepEqual(await listAll(e.blobs, `home/alice/${replId}/`), []);
  });
});
