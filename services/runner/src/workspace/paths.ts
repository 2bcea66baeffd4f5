/**
 * The one place that turns a client's path into a path on disk. Every file operation, terminal cwd
 * and exec cwd goes through a `Workspace`, which is created with its root (no module-global root):
 *
 *   - NUL bytes, absolute paths and ".." escapes are refused before touching the disk;
 *   - symlinks are resolved with realpath (for paths that do not exist yet: the deepest existing
 *     ancestor's realpath, following dangling links by hand), and the result must stay inside the
 *     root's realpath, else PermissionDenied;
 *   - `resolveLink` resolves only the parent, for operations on a directory entry itself (write,
 *     delete, move, lstat): the final component is never followed, so a symlink there is replaced
 *     or removed, not written through;
 *   - `openConfined` opens with O_NOFOLLOW and re-checks the opened descriptor's real path via
 *     /proc/self/fd, which closes the window where a symlink is swapped in between check and use.
 *
 * Percent-encodings such as "%2e%2e" are not decoded: they are literal file names.
 */
import { constants, type promises as fsp } from "node:fs";
import { lstat, open, readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { invalidArgument, permissionDenied } from "../../../../lib/kit/errors.js";

export interface ResolvedPath {
  /** Normalised path relative to the root, "/"-separated; "" is the root. */
  rel: string;
  /** Real absolute path on disk (final component resolved unless resolveLink was used). */
  abs: string;
}

const MAX_LINK_HOPS = 40;

export class Workspace {
  private constructor(readonly root: string) {}

  /** `root` must exist; its realpath becomes the confinement boundary. */
  static async open(root: string): Promise<Workspace> {
    return new Workspace(await realpath(root));
  }

  /** Checks and normalises a client path without touching the disk. */
  normalize(input: string): string {
    if (input.includes("\0")) throw invalidArgument("path contains a NUL byte");
    if (path.posix.isAbsolute(input) || path.isAbsolute(input)) {
      throw invalidArgument(`path "${input}" is absolute: use a path relative to the workspace root`);
    }
    const norm = path.posix.normalize(input || "."); // "\\" is an ordinary character on Linux
    if (norm === ".." || norm.startsWith("../")) {
      throw invalidArgument(`path "${input}" leads outside the workspace`);
    }
    return norm === "." ? "" : norm.replace(/\/+$/, "");
  }

  /** Whether an absolute real path is the root or below it. */
  contains(abs: string): boolean {
    return abs === this.root || abs.startsWith(this.root + path.sep);
  }

  /** Path relative to the root for an absolute path inside it. */
  relative(abs: string): string {
    return path.relative(this.root, abs).split(path.sep).join("/");
  }

  /** Resolves every component, symlinks included; the path need not exist. */
  async resolve(input: string): Promise<ResolvedPath> {
    const rel = this.normalize(input);
    const abs = await this.realResolve(path.join(this.root, rel), 0);
    this.confine(abs, input);
    return { rel, abs };
  }

  /** Resolves the parent only: `abs` is the directory entry itself, never followed. */
  async resolveLink(input: string): Promise<ResolvedPath> {
    const rel = this.normalize(input);
    if (rel === "") return { rel, abs: this.root };
    const parent = await this.realResolve(path.join(this.root, path.posix.dirname(rel)), 0);
    this.confine(parent, input);
    const abs = path.join(parent, path.posix.basename(rel));
    return { rel, abs };
  }

  /**
   * Opens a resolved path without following a final symlink, then checks where the descriptor
   * really points, so a link swapped in after `resolve` cannot lead outside.
   */
  async openConfined(abs: string, flags: number, mode?: number): Promise<fsp.FileHandle> {
    const fh = await open(abs, flags | constants.O_NOFOLLOW, mode);
    try {
      const real = await readlink(`/proc/self/fd/${fh.fd}`);
      this.confine(real, this.relative(abs));
      return fh;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private confine(abs: string, input: string): void {
    if (!this.contains(abs)) throw permissionDenied(`path "${input}" leads outside the workspace through a symlink`);
  }

  private async realResolve(p: string, hops: number): Promise<string> {
    try {
      return await realpath(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw invalidArgument("too many levels of symbolic links");
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
    const parent = path.dirname(p);
    if (parent === p) return p;
    const realParent = await this.realResolve(parent, hops);
    const candidate = path.join(realParent, path.basename(p));
    const st = await lstat(candidate).catch(() => undefined);
    if (!st?.isSymbolicLink()) return candidate;
    // A dangling symlink: follow it by hand so a link to a missing file outside is still caught.
    if (hops >= MAX_LINK_HOPS) throw invalidArgument("too many levels of symbolic links");
    const target = await readlink(candidate);
    return this.realResolve(path.resolve(realParent, target), hops + 1);
  }
}
