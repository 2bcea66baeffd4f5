/**
 * What core touches of a runner's folder, whose `workspace/` and `run/` the repl controls: core runs
 * as root, so it never follows a link the repl may have put there.
 *
 * - `pinSocket` opens the runner's Unix socket without following a link (O_PATH|O_NOFOLLOW) and
 *   checks it is a socket; core then connects through `/proc/self/fd/<fd>`, so a runner that later
 *   swaps `r.sock` for a link to a host socket (Docker's, another repl's) reaches nothing: core keeps
 *   dialling the inode it pinned.
 * - `removeFolder` deletes descriptor-relative and no-follow (lib/sync's fsat), so neither a swap
 *   racing the delete nor a tree deeper than PATH_MAX can take it outside the folder or make it fail.
 */
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { rmdir } from "node:fs/promises";
import type { Logger } from "../../../../../lib/kit/log.js";
import { emptyDirectory, openDirectory } from "../../../../../lib/sync/fsat.js";

/** O_PATH: a descriptor that names the socket without opening it. */
const O_PATH = 0o10000000;

/** A descriptor of the runner's socket at `path`; throws when something else is there. */
export function pinSocket(path: string): number {
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  if (!fstatSync(fd).isSocket()) {
    closeSync(fd);
    throw new Error(`${path} is not the runner's socket`);
  }
  return fd;
}

/** The path core connects to for a pinned socket. */
export const pinnedPath = (fd: number) => `/proc/self/fd/${fd}`;

/** Removes a runner's folder; logs instead of throwing, so one bad folder never stops core. */
export async function removeFolder(dir: string, log: Logger): Promise<void> {
  try {
    const root = await openDirectory(dir);
    try {
      await emptyDirectory(root.fd);
    } finally {
      await root.close();
    }
    await rmdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    log.error({ err, dir }, "could not remove a runner's folder; remove it by hand");
  }
}
