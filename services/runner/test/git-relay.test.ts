/**
 * The runner's git relay with real git: the environment it gives processes makes git send the
 * repository's requests to the relay, which forwards them to core (here an HTTP server on a Unix
 * socket standing in for core's route, recording what arrives) with the helper's credential; the
 * helper (bash, /dev/tcp) gets that credential from GetGitCredential only with the relay's key;
 * other URLs are not rewritten, and a repository whose name only starts like this one's goes back
 * to its own URL; nothing but git's smart-HTTP requests for the repository reaches core; git gone
 * is the request to core gone; the user's own GIT_CONFIG_* entries are kept.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import {
  GetGitCredentialResponseSchema,
  type GitRemote,
  GitRemoteSchema,
} from "../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../lib/client/clients.js";
import { createLogger } from "../../../lib/kit/log.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { type GitRelay, startGitRelay } from "../src/control/git-relay.js";

const run = promisify(execFile);

interface Arrived {
  method: string;
  url: string;
  authorization?: string;
}

describe("the runner's git relay", () => {
  let dir: string;
  let core: Server;
  let relay: GitRelay;
  const arrived: Arrived[] = [];
  let credentials = 0;
  let refuseCredential = false;
  /** Core's stand-in keeps authorized requests open (a hung GitHub); their closing is recorded. */
  let hang = false;
  let hungClosed = 0;
  let remote: GitRemote | undefined = create(GitRemoteSchema, {
    url: "https://github.test/octo/app.git",
    path: "/git/r123",
  });

  before(async function () {
    requireProgram(this, "git");
    requireProgram(this, "bash");
    dir = await mkdtemp(join(tmpdir(), "devex-git-relay-"));
    // Core's route as git sees it: a challenge, then a refusal with a message git shows.
    core = createServer((req, res) => {
      arrived.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization });
      if (!req.headers.authorization) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="devex"' }).end();
        return;
      }
      if (hang) {
        res.once("close", () => hungClosed++);
        return;
      }
      res.writeHead(403, { "content-type": "text/plain" }).end("refused by the stand-in\n");
    });
    await new Promise<void>((resolve) => core.listen(join(dir, "core.sock"), resolve));
    const client = {
      async getGitCredential(req: { replId: string; runnerId: string }) {
        assert.deepEqual({ ...req }, { replId: "r123", runnerId: "run-1" });
        credentials++;
        if (refuseCredential) throw new Error("core refused");
        return create(GetGitCredentialResponseSchema, { username: "devex", password: "the-token" });
      },
    } as unknown as RunnerControlClient;
    relay = await startGitRelay({
      core: { url: "http://core.invalid/prefix", socketPath: join(dir, "core.sock") },
      client,
      replId: "r123",
      runnerId: "run-1",
      remote: () => remote,
      log: createLogger("test", { level: "silent" }),
    });
  });
  after(async () => {
    await relay?.close();
    core?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const git = async (env: Record<string, string>, ...args: string[]) => {
    try {
      const { stdout, stderr } = await run("git", args, {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "", HOME: dir, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", ...env },
      });
      return { ok: true, out: stdout + stderr };
    } catch (err) {
      const e = err as { stdout: string; stderr: string };
      return { ok: false, out: e.stdout + e.stderr };
    }
  };

  it("sends git's requests for the repository to core's route with the helper's credential", async () => {
    const env = relay.environment({});
    for (const url of ["https://github.test/octo/app.git", "https://github.test/octo/app"]) {
      arrived.length = 0;
      const got = await git(env, "ls-remote", url);
      assert.equal(got.ok, false);
      assert.match(got.out, /refused by the stand-in/, "core's message reaches the user");
      assert.deepEqual(
        arrived.map((a) => [a.method, a.url, a.authorization]),
        [
          ["GET", "/prefix/git/r123/info/refs?service=git-upload-pack", undefined],
          [
            "GET",
            "/prefix/git/r123/info/refs?service=git-upload-pack",
            `Basic ${Buffer.from("devex:the-token").toString("base64")}`,
          ],
        ],
        url,
      );
    }
  });

  it("leaves other repositories alone, also those whose names start like this one's", async () => {
    arrived.length = 0;
    const env = relay.environment({});
    const got = await git(env, "ls-remote", "http://127.0.0.1:9/octo/other.git");
    assert.equal(got.ok, false);
    for (const sibling of ["https://github.test/octo/app-docs", "https://github.test/octo/app.js.git"]) {
      // The relay sends git back to the repository's own URL (which this machine cannot resolve).
      const back = await git(env, "ls-remote", sibling);
      assert.equal(back.ok, false);
      assert.match(back.out, /github\.test/, back.out);
      assert.doesNotMatch(back.out, /refused by the stand-in/);
    }
    const raw = await rawRequest(relay.port, "GET /git/r123/b-docs/info/refs?service=git-upload-pack");
    assert.match(
      raw,
      /^HTTP\/1\.1 302[\s\S]*\r\nlocation: https:\/\/github\.test\/octo\/app-docs\/info\/refs\?service=git-upload-pack\r\n/i,
    );
    assert.deepEqual(arrived, [], "nothing of another repository reaches core's route");
  });

  it("passes nothing but git's smart-HTTP requests for the repository to core", async () => {
    arrived.length = 0;
    for (const line of [
      "GET /git/r123/b/../../auth/login",
      "GET /git/r123/b/%2e%2e/%2e%2e/auth/login",
      "POST /git/r123/b/../../../auth/device/code",
      "DELETE /git/r123/b/git-upload-pack",
      "POST /git/r123/b/info/refs?service=git-upload-pack",
      "GET /git/r123/b/info/refs?service=git-upload-pack&x=1",
      "GET /git/r123/b/objects/info/packs",
      "GET /git/r999/b/info/refs?service=git-upload-pack",
      "GET /auth/login",
    ]) {
      assert.match(await rawRequest(relay.port, line), /^HTTP\/1\.1 404/, line);
    }
    assert.deepEqual(arrived, []);
  });

  it("cuts the request to core when git goes away", async () => {
    hang = true;
    try {
      const before = hungClosed;
      const auth = `Basic ${Buffer.from("devex:t").toString("base64")}`;
      const authorized = () => arrived.filter((a) => a.authorization).length;
      for (let i = 0; i < 3; i++) {
        const seen = authorized();
        const abort = new AbortController();
        const pending = fetch(`http://127.0.0.1:${relay.port}/git/r123/g/info/refs?service=git-upload-pack`, {
          headers: { authorization: auth },
          signal: abort.signal,
        }).catch(() => undefined);
        while (authorized() === seen) await new Promise((r) => setTimeout(r, 20));
        abort.abort();
        await pending;
      }
      for (const deadline = Date.now() + 5000; hungClosed < before + 3 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(hungClosed - before, 3, "each request to core ended with git's");
    } finally {
      hang = false;
    }
  });

  it("tells git to stop, not to ask for a user name, when core gives no credential", async () => {
    refuseCredential = true;
    try {
      const got = await git(relay.environment({}), "ls-remote", "https://github.test/octo/app.git");
      assert.equal(got.ok, false);
      assert.match(got.out, /told us to quit/, got.out);
    } finally {
      refuseCredential = false;
    }
  });

  it("answers /credential only with the key from the processes' environment", async () => {
    const url = `http://127.0.0.1:${relay.port}/credential`;
    assert.equal((await fetch(url)).status, 403);
    assert.equal((await fetch(url, { headers: { "devex-relay-key": "0".repeat(64) } })).status, 403);
    const before = credentials;
    const env = relay.environment({});
    const ok = await fetch(url, { headers: { "devex-relay-key": env.DEVEX_GIT_RELAY_KEY } });
    assert.equal(await ok.text(), "username=devex\npassword=the-token\n");
    assert.equal(credentials, before + 1);
    assert.equal((await fetch(`http://127.0.0.1:${relay.port}/git/r999/info/refs`)).status, 404);
  });

  it("adds its configuration after the user's own, and none without a repository", async () => {
    const had = remote;
    remote = undefined;
    assert.deepEqual(relay.environment({}), {});
    remote = had;
    assert.equal(
      relay.environment({ GIT_CONFIG_COUNT: "-5" }).GIT_CONFIG_KEY_0,
      `url.http://127.0.0.1:${relay.port}/git/r123/b.insteadOf`,
    );
    const env = relay.environment({
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "user.name",
      GIT_CONFIG_VALUE_0: "Mine",
    });
    assert.equal(env.GIT_CONFIG_COUNT, "5");
    assert.equal(env.GIT_CONFIG_KEY_0, undefined, "the user's entry is not overwritten");
    const all = { GIT_CONFIG_KEY_0: "user.name", GIT_CONFIG_VALUE_0: "Mine", ...env };
    assert.equal((await git(all, "config", "user.name")).out, "Mine\n");
  });
});

/** One HTTP/1.1 request line as written (no client normalises it); the answer's head. */
function rawRequest(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        `${line} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    });
    let got = "";
    socket.on("data", (d) => {
      got += d;
    });
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
  });
}
