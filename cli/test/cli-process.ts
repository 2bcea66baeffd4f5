/**
 * Runs the real `devex` entry point (cli/devex.mjs) as a child process: plainly with pipes, or under
 * a real outer PTY (@lydell/node-pty) for `attach`, optionally with a real emulator on its other side
 * (the user's terminal: it draws the output and answers queries). Each test user gets its own
 * XDG_CONFIG_HOME.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { type IPty, spawn } from "@lydell/node-pty";
import { Emulator } from "../../services/runner/test/emulator.js";

export const devexBin = join(import.meta.dirname, "..", "devex.mjs");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI run: no inherited DEVEX_* login, config under `configHome`. */
export function cliEnv(configHome: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: configHome, ...extra };
  for (const k of Object.keys(env)) if (k.startsWith("DEVEX_") && !(k in extra)) delete env[k];
  return env;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [devexBin, ...args],
      { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? "");
  });
}

/** The CLI (or a shell line around it) under a real PTY, with its output collected. */
export class PtyRun {
  readonly pty: IPty;
  /** The outer terminal's screen, when run with `terminal: true`. */
  readonly screen: Emulator | undefined;
  output = "";
  readonly exited: Promise<number>;
  private waiters: Array<() => void> = [];
  private done = false;

  constructor(
    file: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    size = { cols: 80, rows: 24 },
    opts: { terminal?: boolean } = {},
  ) {
    this.pty = spawn(file, args, { name: "xterm", cols: size.cols, rows: size.rows, cwd: process.cwd(), env });
    const screen = opts.terminal ? new Emulator(size.cols, size.rows, (answer) => this.pty.write(answer)) : undefined;
    this.screen = screen;
    this.pty.onData((d) => {
      void screen?.write(d);
      this.output += d;
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) =>
      this.pty.onExit((e) => {
        this.done = true;
        for (const w of this.waiters.splice(0)) w();
        resolve(e.exitCode);
      }),
    );
  }

  /**
   * Resolves with the match once `pattern` appears in the output after `from`; fails if the process
   * exits first, or after `timeoutMs` saying what it showed (a hang names its step).
   */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output.slice(from));
      if (m) return m;
      if (this.done) throw new Error(`exited without ${pattern}; output: ${JSON.stringify(this.output)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} after ${timeoutMs} ms; output: ${JSON.stringify(this.output)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  write(data: string): void {
    this.pty.write(data);
  }

  kill(): void {
    try {
      this.pty.kill();
    } catch {}
  }
}
