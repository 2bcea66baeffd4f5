/**
 * Replaces a file whole or not at all: the data goes to a temporary file beside it, which is then
 * renamed over it, so a reader (another process, a restarted one) finds the old content or the new,
 * never a half-written file. For files of the host's own (state, records, manifests); a workspace's
 * files have the runner's writeAtomic, which works inside the repl's tree with the repl's rights.
 */
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";

/**
 * `data` may be chunks (an iterable of strings), written as they come, so a large file need not be
 * one string in memory. `mode` is the new file's (before the umask), e.g. 0o600 for a private one.
 */
export async function replaceFile(
  path: string,
  data: string | Uint8Array | Iterable<string> | AsyncIterable<string>,
  options: { mode?: number } = {},
): Promise<void> {
  // A name of its own per call: concurrent replaces of one file never write into each other's.
  const partial = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(partial, data, { mode: options.mode });
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}
