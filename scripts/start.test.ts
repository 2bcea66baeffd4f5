/** `npm start` (scripts/start.ts): the embedded system comes up, prints where to go, and Ctrl-C ends it cleanly. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../lib/testing/redis.js";

const startTs = fileURLToPath(new URL("./start.ts", import.meta.url));

describe("npm start (scripts/start.ts)", function () {
  this.timeout(90_000);

  it("starts core and the MCP server, prints the URL, login link and MCP endpoint, and exits 0 on Ctrl-C", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "devex-start-"));
    const [corePort, mcpPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ["--import", "tsx", startTs], {
      env: {
        ...process.env,
        DEVEX_DATA_DIR: dataDir,
        DEVEX_CORE_PORT: String(corePort),
        DEVEX_MCP_PORT: String(mcpPort),
        DEVEX_RUNNER_POOL_SIZE: "0",
        DEVEX_SKIP_WEB_BUILD: "1",
        DEVEX_LOG_LEVEL: "warn",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes("Press Ctrl-C") && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(out, new RegExp(`Open: +http://127\\.0\\.0\\.1:${corePort}`), out);
      assert.match(out, /Sign in once: +http:\/\/127\.0\.0\.1:\d+\/auth\/login\?code=\S+/);
      assert.match(out, new RegExp(`MCP endpoint: +http://127\\.0\\.0\\.1:${mcpPort}/mcp`));
      assert.equal((await fetch(`http://127.0.0.1:${corePort}/healthz`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${mcpPort}/healthz`)).status, 200);
      child.kill("SIGINT");
      assert.equal(await exited, 0, out);
    } finally {
      child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
