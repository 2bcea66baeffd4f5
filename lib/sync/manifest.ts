/**
 * The local manifest, kept outside the workspace: per file its size/mtime/ctime/sha256 (so a persist
 * re-hashes only touched files), the identity of the workspace directory (a persist into a replaced
 * or unmounted directory refuses), and the remote as of the last successful restore/persist.
 */
import type { Stats } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { replaceFile } from "../kit/replace-file.js";
import type { RemoteState } from "./remote.js";
import type { SyncOptions } from "./types.js";

export interface ManifestEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

export interface Manifest {
  version: 3;
  prefix: string;
  /** `<st_dev>:<st_ino>` of the workspace directory when it was restored or persisted. */
  root?: string;
  files: Record<string, ManifestEntry>;
  /** The remote as of the last successful restore/persist; absent after a failure. */
  remote?: RemoteState;
}

export const identityOf = (st: { dev: bigint | number; ino: bigint | number }) => `${st.dev}:${st.ino}`;

export const manifestPathFor = (o: Pick<SyncOptions, "dir" | "manifestPath">) =>
  o.manifestPath ?? `${resolve(o.dir)}.manifest.json`;

export const entryOf = (st: Stats, sha: string): ManifestEntry => ({
  size: st.size,
  mtimeMs: st.mtimeMs,
  ctimeMs: st.ctimeMs,
  sha256: sha,
});

/** Version 2 manifests (before generations) keep their hashes; their remote state is read again. */
export async function loadManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, "utf8"));
    if (!m?.files || typeof m.prefix !== "string") return undefined;
    if (m.version === 3) return m as Manifest;
    if (m.version === 2) return { version: 3, prefix: m.prefix, files: m.files };
    return undefined;
  } catch {
    return undefined; // missing or corrupt: it costs a full re-hash and an index read
  }
}

export async function saveManifest(path: string, m: Manifest): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await replaceFile(path, JSON.stringify(m));
}
