/**
 * WeTTY (npm `wetty`), a peer web terminal, for the runner benchmark: the same workloads through
 * its socket.io protocol. Installed on first use into the tool cache (DEVEX_TOOL_CACHE, default
 * ~/.cache/devex-tools; its node-pty builds with the system's compiler and Node headers), started
 * as root on loopback, where it runs its configured command itself (no ssh): `bash --norc
 * --noprofile`, into which each workload is typed as `exec <command>`. Its client protocol: emit
 * `input` (text) and `resize`, receive `data` (text) and `logout` at the exit, and emit `commit`
 * every 256 KiB received (its flow control pauses the PTY at 2 MiB otherwise).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const WETTY_VERSION = "3.2.0";
const ACK_BYTES = 262144;

interface Socket {
  on(event: string, f: (...args: never[]) => void): void;
  once(event: string, f: (...args: never[]) => void): void;
  emit(event: string, ...args: unknown[]): void;
  disconnect(): void;
}

export interface Wetty {
  url: string;
  pid: number;
  /** Opens a terminal running `command` (typed into WeTTY's shell as `exec …`). */
  open(command: string[]): Promise<{
    write(d: Buffer): void;
    onData(f: (d: Buffer) => void): void;
    exited: Promise<void>;
    close(): void;
  }>;
  close(): void;
}

async function installed(): Promise<string> {
  const cache = process.env.DEVEX_TOOL_CACHE ?? path.join(homedir(), ".cache", "devex-tools");
  const dir = path.join(cache, `wetty-${WETTY_VERSION}-node-${process.versions.modules}`);
  if (existsSync(path.join(dir, "node_modules", "wetty", "build", "main.js"))) return dir;
  const scratch = `${dir}.installing-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  console.log(`installing wetty ${WETTY_VERSION} into ${dir} (builds node-pty)…`);
  // node-gyp finds this Node's headers under its install prefix (no download).
  const nodedir = path.resolve(path.dirname(process.execPath), "..");
  await run(
    "npm",
    [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      "--prefix",
      scratch,
      `wetty@${WETTY_VERSION}`,
    ],
    { env: { ...process.env, npm_config_nodedir: nodedir }, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 },
  );
  await rm(dir, { recursive: true, force: true });
  await rename(scratch, dir);
  return dir;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function startWetty(): Promise<Wetty> {
  const dir = await installed();
  const main = path.join(dir, "node_modules", "wetty", "build", "main.js");
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child: ChildProcess = spawn(
    process.execPath,
    [main, "--host", "127.0.0.1", "--port", String(port), "--base", "/wetty", "--command", "bash --norc --noprofile"],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_ENV: "production" } },
  );
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const seen = (d: Buffer) => {
      log += d.toString();
      if (/listening|Server started|started on/i.test(log)) resolve();
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.once("exit", (code) => reject(new Error(`wetty exited with ${code}: ${log}`)));
    setTimeout(resolve, 5000); // its banner is not a contract: go on after a while
  });
  child.stdout!.resume();
  child.stderr!.resume();
  const url = `http://127.0.0.1:${port}`;
  const { io } = createRequire(path.join(dir, "node_modules", "wetty", "package.json"))("socket.io-client") as {
    io: (url: string, o: object) => Socket;
  };
  return {
    url,
    pid: child.pid!,
    async open(command) {
      const socket = io(url, { path: "/wetty/socket.io", transports: ["websocket"], forceNew: true });
      const listeners: Array<(d: Buffer) => void> = [];
      const early: Buffer[] = [];
      let received = 0;
      socket.on("data", (text: string) => {
        const d = Buffer.from(text);
        if (listeners.length === 0) early.push(d);
        for (const l of listeners) l(d);
        received += text.length;
        while (received >= ACK_BYTES) {
          received -= ACK_BYTES;
          socket.emit("commit", ACK_BYTES);
        }
      });
      const exited = new Promise<void>((resolve) => socket.once("logout", () => resolve()));
      await new Promise<void>((resolve) => socket.once("login", () => resolve()));
      socket.emit("resize", { cols: 80, rows: 24 });
      socket.emit("input", `exec ${command.map(quote).join(" ")}\n`);
      await new Promise((r) => setTimeout(r, 300)); // the shell reads the line and execs
      return {
        write: (d) => socket.emit("input", d.toString("latin1")),
        onData: (f) => {
          listeners.push(f);
          for (const d of early.splice(0)) f(d);
        },
        exited,
        close: () => socket.disconnect(),
      };
    },
    close: () => child.kill("SIGTERM"),
  };
}
