/** Finding a system program (bwrap, pasta, nft, ...) the way a shell would. */
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** Absolute path of an executable on PATH (or the given absolute path), or undefined. */
export function findProgram(name: string): string | undefined {
  const candidates = isAbsolute(name)
    ? [name]
    : (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).map((d) => join(d, name));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}
