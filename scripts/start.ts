/**
 * `npm start`: the whole embedded Devex on one machine — core (local driver, embedded state and local
 * blob store under one data dir, templates synced, runners behind core's origin) and the MCP server
 * pointing at core; the web client is built into web/dist first if it is missing. Prints the URL to
 * open, the one-time login link and the MCP URL. Ctrl-C reaches both (same process group): core
 * persists and stops every active repl, then everything exits.
 *
 * Environment: everything core and the MCP server read (see README.md); DEVEX_DATA_DIR defaults to
 * `.data`, DEVEX_CORE_PORT to 8080, DEVEX_MCP_PORT to 8091.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DEVEX_DATA_DIR: process.env.DEVEX_DATA_DIR || ".data",
  DEVEX_CORE_PORT: process.env.DEVEX_CORE_PORT || "8080",
  DEVEX_MCP_PORT: process.env.DEVEX_MCP_PORT || "8091",
};
const coreUrl = (env.DEVEX_PUBLIC_URL || `http://127.0.0.1:${env.DEVEX_CORE_PORT}`).replace(/\/+$/, "");
const mcpBase = `http://127.0.0.1:${env.DEVEX_MCP_PORT}`;
const mcpUrl = `${(env.DEVEX_MCP_PUBLIC_URL || mcpBase).replace(/\/+$/, "")}${env.DEVEX_MCP_PATH || "/mcp"}`;

function run(script: string, extra: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script], {
    cwd: root,
    env: { ...env, ...extra },
    stdio: ["ignore", "pipe", "inherit"],
  });
}

async function healthy(url: string, child: ChildProcess, name: string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} (see its log above)`);
    if ((await fetch(`${url}/healthz`).catch(() => undefined))?.ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The browser client core serves: built on the first start (`npm run build:web` rebuilds it).
// DEVEX_SKIP_WEB_BUILD=1 starts without building (tests of the start script itself).
if (!existsSync(join(root, "web/dist/index.html")) && process.env.DEVEX_SKIP_WEB_BUILD !== "1") {
  process.stderr.write("building the web client (web/dist)…\n");
  const vite = join(root, "node_modules/vite/bin/vite.js");
  const built = spawnSync(process.execPath, [vite, "build", "--config", "web/vite.config.ts"], {
    cwd: root,
    stdio: "inherit",
  });
  if (built.status !== 0) process.stderr.write("web client build failed: core starts without it\n");
}

const core = run("services/core/src/main.ts");
let loginLink: string | undefined;
let out = "";
core.stdout?.on("data", (chunk: Buffer) => {
  const text = chunk.toString();
  out += text;
  loginLink ??= /(https?:\/\/\S+\/auth\/login\?code=\S+)/.exec(out)?.[1];
  // Core's logs (JSON lines) pass through; the login link is shown once, below.
  for (const line of text.split("\n")) if (line.startsWith("{")) process.stdout.write(`${line}\n`);
});

const children: ChildProcess[] = [core];
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write("\nstopping: persisting active repls…\n");
    // A terminal's Ctrl-C already reached the children (same process group); a plain kill did not.
    for (const c of children) if (c.exitCode === null) c.kill(signal);
  });
}

try {
  await healthy(coreUrl, core, "core");
  const mcp = run("services/mcp/src/main.ts", { DEVEX_CORE_URL: coreUrl });
  children.push(mcp);
  mcp.stdout?.pipe(process.stdout);
  await healthy(mcpBase, mcp, "mcp");
  // One gone means the system is broken: stop the other too.
  for (const c of children) {
    c.once("exit", () => {
      for (const other of children) if (other !== c && other.exitCode === null && !stopping) other.kill("SIGTERM");
    });
  }
  await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(
    [
      "",
      "  Devex is running.",
      "",
      `    Open:          ${coreUrl}`,
      loginLink ? `    Sign in once:  ${loginLink}` : "    Sign in:       with GitHub (GITHUB_CLIENT_ID is set)",
      `    MCP endpoint:  ${mcpUrl}`,
      `    Data:          ${env.DEVEX_DATA_DIR}/`,
      "",
      "  Press Ctrl-C to persist every running repl and stop.",
      "",
    ].join("\n"),
  );
} catch (err) {
  process.stderr.write(`npm start failed: ${(err as Error).message}\n`);
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  process.exitCode = 1;
}

const codes = await Promise.all(
  children.map((c) => (c.exitCode !== null ? c.exitCode : new Promise<number | null>((r) => c.once("exit", r)))),
);
process.exit(process.exitCode || (codes.some((c) => c !== 0 && c !== null) ? 1 : 0));
