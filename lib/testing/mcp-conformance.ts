/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, npm), which needs Node 22:
 * installed once, with the Node 22 binary the npm package node-linux-<arch>@22 ships, into a cache
 * outside the checkout (DEVEX_TOOL_CACHE, default ~/.cache/devex-tools) so later runs reuse it.
 * The install goes to a scratch folder renamed into place, so a broken install is never reused.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const CONFORMANCE_VERSION = "0.1.16";
export const NODE22_VERSION = "22.23.5";

export interface ConformanceSuite {
  /** The Node 22 binary. */
  node: string;
  /** The suite's command-line entry, run with `node`. */
  cli: string;
}

function paths(dir: string): ConformanceSuite {
  return {
    node: join(dir, "node_modules", ".bin", "node"),
    cli: join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"),
  };
}

/** The suite, installed on first use; throws with npm's complaint when it cannot be installed. */
export async function conformanceSuite(): Promise<ConformanceSuite> {
  const cache = process.env.DEVEX_TOOL_CACHE ?? join(homedir(), ".cache", "devex-tools");
  const dir = join(cache, `mcp-conformance-${CONFORMANCE_VERSION}-node-${NODE22_VERSION}-${process.arch}`);
  const suite = paths(dir);
  if (existsSync(suite.node) && existsSync(suite.cli)) return suite;

  const scratch = `${dir}.installing-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  try {
    const packages = [
      `@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}`,
      `node-linux-${process.arch}@${NODE22_VERSION}`,
    ];
    const flags = ["--no-save", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", scratch];
    await run("npm", ["install", ...flags, ...packages], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    const { stdout } = await run(paths(scratch).node, ["--version"]);
    if (!stdout.startsWith("v22."))
      throw new Error(`node-linux-${process.arch}@${NODE22_VERSION} gave ${stdout.trim()}`);
    await rm(dir, { recursive: true, force: true });
    await rename(scratch, dir);
    return suite;
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `cannot install the MCP conformance suite: ${(e.stderr || e.message).trim().split("\n").slice(-3).join(" ")}`,
    );
  }
}
