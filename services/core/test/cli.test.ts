/**
 * Core's CLI (its bundle, dist/core/cli.mjs, as shipped) without a core to talk to: usage errors and
 * a clear "not running". What it does against a running core is in scripts/start.e2e.test.ts.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../../../lib/kit/project-root.js";

const run = promisify(execFile);

describe("core's cli, with no core running", function () {
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
  const fails = (code: number, message: RegExp) => (e: unknown) => {
    const err = e as { code: number; stderr: string };
    assert.equal(err.code, code, err.stderr);
    assert.match(err.stderr, message);
    return true;
  };

  it("says core is not running, naming the data directory, and exits 1", async () => {
    await assert.rejects(
      cli("create-token", "--user", "alice", "--name", "ci"),
      fails(1, new RegExp(`core is not running with DEVEX_DATA_DIR=${dir}`)),
    );
    await assert.rejects(cli("login-link"), fails(1, /core is not running/));
  });

  it("refuses bad arguments with the usage and exits 2, before looking for core", async () => {
    await assert.rejects(cli("create-token", "--name", "x"), fails(2, /--user is required[\s\S]*usage/));
    await assert.rejects(cli("create-token", "--user", "bob"), fails(2, /--name is required/));
    await assert.rejects(cli("login-link", "--ttl", "forever"), fails(2, /--ttl "forever" is not a duration/));
    await assert.rejects(cli("login-link", "--colour", "red"), fails(2, /--colour/));
    await assert.rejects(cli("frobnicate"), fails(2, /usage/));
    await assert.rejects(cli(), fails(2, /usage/));
  });
});
