/**
 * `npm start`: the whole embedded Devex on one machine, run from the bundles in dist/ (the npm script
 * rebuilds those whose sources changed first) — core (local driver, embedded state and local
 * blob store under one data dir, templates synced, runners behind core's origin) and the MCP server
 * pointing at core; the web client is built into web/dist first if it is missing. Prints the URL to
 * open, the one-time login link and the MCP URL.
 *
 * Stopping: core and the MCP server run in their own process groups, so a terminal's Ctrl-C reaches
 * only this script, which passes each Ctrl-C (or SIGTERM, SIGHUP) on to them once. Core then persists
 * and stops every running repl and everything exits; a second Ctrl-C makes core say which repls it
 * is still persisting, a third abandons the persist. If this script is killed outright, core and the
 * MCP server see their IPC channel close and shut down the same way on their own.
 *
 * Environment: everything core and the MCP server read (see README.md); DEVEX_DATA_DIR defaults to
 * `.data`, DEVEX_CORE_PORT to 8080, DEVEX_MCP_PORT to 8091.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../lib/kit/project-root.js";
import { onStopSignals } from "../lib/kit/shutdown.js";

let stopping = false;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DEVEX_DATA_DIR: process.env.DEVEX_DATA_DIR || ".data",
  DEVEX_CORE_PORT: process.env.DEVEX_CORE_PORT || "8080",
  DEVEX_MCP_PORT: process.env.DEVEX_MCP_PORT || "8091",
};
const coreUrl = (env.DEVEX_PUBLIC_URL || `http://127.0.0.1:${env.DEVEX_CORE_PORT}`).replace(/\/+$/, "");
const mcpBase = `http://127.0.0.1:${env.DEVEX_MCP_PORT}`;
const mcpUrl = `${(env.DEVEX_MCP_PUBLIC_URL || mcpBase).replace(/\/+$/, "")}${env.DEVEX_MCP_PATH || "/mcp"}`;

/** Starts a service from its bundle (dist/, built by scripts/build.mjs before this script runs). */
function run(script: string, extra: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [script], {
    cwd: projectRoot,
    env: { ...env, ...extra },
    // Own process group (out of the terminal's Ctrl-C) and an IPC channel that closes when we die.
    // Output goes straight to ours: a pipe through this script would break when it is killed.
    detached: true,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** Waits until `child` answers /healthz; false when stopping began meanwhile. */
async function healthy(url: string, child: ChildProcess, name: string): Promise<boolean> {
  for (;;) {
    if (stopping) return false;
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} (see its log above)`);
    if ((await fetch(`${url}/healthz`).catch(() => undefined))?.ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The browser client core serves: built on the first start (`npm run build:web` rebuilds it).
// DEVEX_SKIP_WEB_BUILD=1 starts without building (tests of the start script itself).
if (!existsSync(join(projectRoot, "web/dist/index.html")) && process.env.DEVEX_SKIP_WEB_BUILD !== "1") {
  process.stderr.write("building the web client (web/dist), once…\n");
  const t0 = performance.now();
  const vite = join(projectRoot, "node_modules/vite/bin/vite.js");
  // Vite's own progress (modules transformed, chunks written) rather than a silent half minute.
  const built = spawnSync(process.execPath, [vite, "build", "--config", "web/vite.config.ts", "--logLevel", "info"], {
    cwd: projectRoot,
    stdio: "inherit",
  });
  if (built.status !== 0) process.stderr.write("web client build failed: core starts without it\n");
  else process.stderr.write(`built the web client in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

const core = run("dist/core/main.mjs");
// Core's CLI finds core's admin socket through DEVEX_DATA_DIR, as core has it.
const adminCommand = `${process.env.DEVEX_DATA_DIR ? `DEVEX_DATA_DIR=${env.DEVEX_DATA_DIR} ` : ""}node dist/core/cli.mjs`;
// Core sends the one-time login link over the IPC channel; it is shown with the other addresses below.
let loginLink: string | undefined;
core.on("message", (m: { loginLink?: string }) => {
  loginLink ??= m.loginLink;
});

const children: ChildProcess[] = [core];
const stopMessages = [
  "stopping: persisting every running repl…",
  "still persisting (core says which repls above); press Ctrl-C again to abandon",
  "abandoning the persist: repls not yet persisted keep their runners for the next start",
];
onStopSignals(
  (_signal, count) => {
    stopping = true;
    process.stderr.write(`\n${stopMessages[Math.min(count, stopMessages.length) - 1]}\n`);
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  },
  // Longer than core's own window, so the presses passed on never look like one to core.
  1000,
  ["SIGINT", "SIGTERM", "SIGHUP"],
);

/** Starts the MCP server once core answers and prints where to go; stops early when stopping began. */
async function bringUp(): Promise<void> {
  if (!(await healthy(coreUrl, core, "core"))) return;
  const mcp = run("dist/mcp/main.mjs", { DEVEX_CORE_URL: coreUrl });
  children.push(mcp);
  // One gone means the system is broken: stop the other too.
  for (const c of children) {
    c.once("exit", () => {
      for (const other of children) if (other !== c && other.exitCode === null && !stopping) other.kill("SIGTERM");
    });
  }
  if (!(await healthy(mcpBase, mcp, "mcp"))) return;
  await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(
    [
      "",
      "  Devex is running.",
      "",
      `    Open:          ${coreUrl}`,
      loginLink ? `    Sign in once:  ${loginLink}` : "    Sign in:       with GitHub (GITHUB_CLIENT_ID is set)",
      `    Another link:  ${adminCommand} login-link`,
      `    API token:     ${adminCommand} create-token --user <user> --name <name>`,
      `    MCP endpoint:  ${mcpUrl}`,
      `    Data:          ${env.DEVEX_DATA_DIR}/`,
      "",
      "  Press Ctrl-C to persist every running repl and stop.",
      "",
    ].join("\n"),
  );
}

try {
  await bringUp();
} catch (err) {
  process.stderr.write(`npm start failed: ${(err as Error).message}\n`);
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  process.exitCode = 1;
}

const codes = await Promise.all(
  children.map((c) => (c.exitCode !== null ? c.exitCode : new Promise<number | null>((r) => c.once("exit", r)))),
);
process.exit(process.exitCode || (codes.some((c) => c !== 0 && c !== null) ? 1 : 0));
