/**
 * Atomic file replacement: the content goes to a fresh temporary file beside the target, created
 * O_EXCL|O_NOFOLLOW in the directory the target's descriptor holds, is fsynced, then renamed over
 * the target within that same directory. A symlink at the target is therefore replaced, never
 * followed, readers see the old or the new content, never a mix, and a refused or failed write
 * removes its temporary file.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { atomicWriteTempName } from "../../../../lib/contracts/atomic-write.js";
import { at } from "./confined-fs.js";
import type { Location } from "./paths.js";

export { isAtomicWriteTemp } from "../../../../lib/contracts/atomic-write.js";

export async function writeAtomic(
  target: Location,
  content: Uint8Array,
  mode: number,
  beforeRename?: () => Promise<void>,
): Promise<void> {
  const tmp = at(target.dir, atomicWriteTempName(target.name, randomBytes(6).toString("hex")));
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const fh = await open(tmp, flags, mode);
  try {
    try {
      await fh.writeFile(content);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await beforeRename?.();
    await rename(tmp, target.path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
