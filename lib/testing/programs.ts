/**
 * Tests that need a system program (redis-server, chromium, bwrap, python3 with grpcio, ...) call
 * `requireProgram` in a `before` hook. Outside CI a missing program skips the suite with a message;
 * under CI=true it fails, so a CI machine that lacks an install step cannot pass silently.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

export const inCI = process.env.CI === "true";

/** Absolute path of an executable on PATH (or the given absolute path), or undefined. */
export function findProgram(name: string): string | undefined {
  const candidates = isAbsolute(name) ? [name] : (process.env.PATH ?? "").split(delimiter).map((d) => join(d, name));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/**
 * Returns the program's path. When it is missing, skips the current suite (outside CI) or throws
 * (under CI=true). `probe` can run an extra check, such as importing a Python module; it returns an
 * error message when the program is unusable.
 */
export function requireProgram(ctx: Mocha.Context, name: string, probe?: (path: string) => string | undefined): string {
  const path = findProgram(name);
  const problem = path ? probe?.(path) : `${name} is not installed (see .ci/run for the apt-get line)`;
  if (!problem) return path!;
  if (inCI) throw new Error(`required program missing under CI: ${problem}`);
  console.warn(`      skipped: ${problem}`);
  ctx.skip();
}

/** A probe for `requireProgram` that runs the program with arguments and expects exit code 0. */
export function runs(...args: string[]): (path: string) => string | undefined {
  return (path) => {
    try {
      execFileSync(path, args, { stdio: "ignore", timeout: 20_000 });
      return undefined;
    } catch (e) {
      return `${path} ${args.join(" ")} failed: ${(e as Error).message.split("\n")[0]}`;
    }
  };
}
