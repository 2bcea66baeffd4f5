/** The admin command (its bundle, dist/core/cli.mjs, as shipped) creates a working API token directly in the configured store. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../../../lib/kit/project-root.js";
import { sha256 } from "../src/auth/secrets.js";
import { createEmbeddedStore } from "../src/state/embedded.js";

const run = promisify(execFile);

describe("cli create-token", function () {
  this.timeout(30_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-cli-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) =>
    run(process.execPath, ["dist/core/cli.mjs", ...args], {
      cwd: projectRoot,
      env: { ...process.env, DEVEX_DATA_DIR: dir, REDIS_URL: "" },
    });

  it("prints a dvx_ secret once and stores only its hash", async () => {
    const { stdout, stderr } = await cli("create-token", "--user", "alice", "--name", "ci", "--ttl", "30d");
    const secret = stdout.trim();
    assert.match(secret, /^dvx_[A-Za-z0-9_-]{43}$/);
    assert.match(stderr, /for alice/);
    const store = await createEmbeddedStore(join(dir, "state"));
    const token = await store.getApiTokenByHash(sha256(secret));
    assert.equal(token?.userId, "alice");
    assert.equal(token?.name, "ci");
    assert.ok(Math.abs(token!.expireTime - Date.now() - 30 * 86_400_000) < 60_000);
    await store.close();
  });

  it("refuses bad arguments", async () => {
    await assert.rejects(cli("create-token", "--user", "Bad User", "--name", "x"), /--user/);
    await assert.rejects(cli("create-token", "--user", "bob", "--name", "x", "--ttl", "forever"), /--ttl/);
    await assert.rejects(cli("frobnicate"), /usage/);
  });
});
