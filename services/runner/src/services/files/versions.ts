/** File versions for optimistic concurrency: a write that names a version fails if the file moved on. */
import { lstat } from "node:fs/promises";
import { failedPrecondition } from "../../../../../lib/kit/errors.js";
import { versionOf } from "../../workspace/file-info.js";
import type { Location } from "../../workspace/paths.js";

/** Fails with FailedPrecondition unless the file at `loc` is still at `expected` (empty skips). */
export async function checkVersion(loc: Location, expected: string) {
  if (!expected) return;
  const st = await lstat(loc.path, { bigint: true }).catch(() => undefined);
  const current = st?.isFile() ? versionOf(st) : "";
  if (current !== expected) {
    throw failedPrecondition(
      `"${loc.rel}" changed since it was read (expected version ${expected}, now ${current || "absent"}): read it again and reapply your change`,
    );
  }
}
