/**
 * What a workspace keeps of a file's or directory's metadata besides its content: the permission
 * bits and the modification time (whole ms). Owners are not kept (restore hands everything to one
 * `owner`), nor access times, nor a symlink's own mode and times.
 */
import type { Stats } from "node:fs";
import { fchmod, futimes } from "node:fs";
import { promisify } from "node:util";

/**
 * rwx for all, plus the sticky bit. Setuid and setgid are dropped on persist and again on restore
 * (an index is data anyone with the bucket could have written): restore may run as root, and a
 * setuid file it creates would hand whoever runs it the file owner's privileges.
 */
const KEPT_MODE_BITS = 0o1777;

export interface Meta {
  mode?: number;
  mtimeMs?: number;
}

/** The kept metadata of what `st` describes. */
export const metaOf = (st: Stats): Required<Meta> => ({
  mode: st.mode & KEPT_MODE_BITS,
  // Rounded, not truncated: utimes goes through a double and can land a few ns below the ms it was given.
  mtimeMs: Math.round(st.mtimeMs),
});

export const sameMeta = (a: Meta | undefined, b: Meta) => a?.mode === b.mode && a?.mtimeMs === b.mtimeMs;

const fchmodAsync = promisify(fchmod);
/** The year 9999: later mtimes are not restored. */
const MAX_MTIME_MS = 253_402_300_799_000;
const futimesAsync = promisify(futimes);

/**
 * Applies stored metadata to an open descriptor (fchmod, futimes: nothing is looked up by path).
 * Absent or malformed fields (older indexes) leave the default the file was created with.
 */
export async function applyMeta(fd: number, meta: Meta): Promise<void> {
  if (Number.isInteger(meta.mode)) await fchmodAsync(fd, meta.mode! & KEPT_MODE_BITS);
  // A time futimes cannot take (an index someone edited by hand) must not fail the whole restore.
  if (Number.isFinite(meta.mtimeMs) && meta.mtimeMs! >= 0 && meta.mtimeMs! <= MAX_MTIME_MS)
    await futimesAsync(fd, Date.now() / 1000, meta.mtimeMs! / 1000);
}
