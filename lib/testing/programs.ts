/**
 * Tests that need a system program (redis-server, chromium, bwrap, python3 with grpcio, ...) call
 * `requireProgram` in a `before` hook. Outside CI a missing program skips the suite with a message;
 * under CI=true it fails, so a CI machine that lacks an install step cannot pass silently.
 */
import { execFileSync } from "node:child_process";
import { findProgram } from "../kit/find-program.js";

export { findProgram };

export const inCI = process.env.CI === "true";

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
