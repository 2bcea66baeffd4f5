/**
 * Atomic file replacement: the content goes to a fresh temporary file in the target's directory
 * (opened O_EXCL|O_NOFOLLOW and checked to be inside the workspace), is fsynced, then renamed over
 * the target. A symlink at the target is therefore replaced, never followed, and readers see the
 * old or the new content, never a mix.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { Workspace } from "./paths.js";

/** Whether a file name is one of writeAtomic's in-flight temporary files (never shown to clients). */
export function isAtomicWriteTemp(name: string): boolean {
  return /^\..+\.devex-[0-9a-f]{12}\.tmp$/.test(name);
}

export async function writeAtomic(
  ws: Workspace,
  abs: string,
  content: Uint8Array,
  mode: number,
  beforeRename?: () => Promise<void>,
): Promise<void> {
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.devex-${randomBytes(6).toString("hex")}.tmp`);
  const fh = await ws.openConfined(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      await fh.writeFile(content);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await beforeRename?.();
    await rename(tmp, abs);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
