/**
 * The one place that turns a client's path into something on disk. Every file operation, terminal
 * cwd and exec cwd goes through a `Workspace`, which is created with its root (no module-global root):
 *
 *   - NUL bytes, absolute paths and ".." escapes are refused before touching the disk;
 *   - the path is then walked component by component from a descriptor of the root, each component
 *     opened relative to its parent's descriptor with O_NOFOLLOW (see confined-fs.ts). A symlink met
 *     on the way is resolved by hand, relative to those descriptors, counting hops: a link that
 *     stays inside the workspace keeps working, one that would leave the root is PermissionDenied;
 *   - the operation itself then acts on (parent descriptor, final name), so a directory swapped for
 *     a symlink after the walk cannot redirect it: confinement holds at the moment of use, not only
 *     at resolution, even when the runner sees the host's whole filesystem.
 *
 * `follow` says which symlinks the walk may resolve: "all" (reads: the final component too),
 * "parents" (operations on a directory entry itself — write, delete, move, stat: a symlink there is
 * replaced or removed, never written through) or "none" (walks and watches, which never descend
 * through a link). Percent-encodings such as "%2e%2e" are not decoded: they are literal file names.
 */
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readlinkSync } from "node:fs";
import { realpath } from "node:fs/promises";
import path from "node:path";
import { invalidArgument, permissionDenied } from "../../../../lib/kit/errors.js";
import { at, DIR_FLAGS, fdPath, O_PATH } from "./confined-fs.js";
import { fsError } from "./fs-errors.js";

export interface ResolvedPath {
  /** Normalised path relative to the root, "/"-separated; "" is the root. */
  rel: string;
  /** Real absolute path on disk, for uses that can only take a path (a child process's cwd). */
  abs: string;
}

/** A confined directory entry, valid while the callback given to `Workspace.at` runs. */
export interface Location {
  /** The client's path, normalised ("" is the root); error messages name this. */
  rel: string;
  /** Where it really is after following links inside the workspace, relative to the root. */
  realRel: string;
  /** Descriptor of the directory holding the entry. */
  dir: number;
  /** The entry's name in `dir`; "." when the location is that directory itself. */
  name: string;
  /** `/proc/self/fd/<dir>/<name>`: a path string with openat semantics, never following `name`. */
  path: string;
}

export type Follow = "all" | "parents" | "none";

export interface AtOptions {
  follow: Follow;
  /** Create missing parent directories (mkdir -p), each relative to its parent's descriptor. */
  createParents?: boolean;
}

const MAX_LINK_HOPS = 40;
/** Tries at one component that keeps changing under the walk (an attacker swapping it in a loop). */
const MAX_ATTEMPTS = 4;

export class Workspace {
  private constructor(
    readonly root: string,
    private readonly rootFd: number,
  ) {}

  /** `root` must exist; its realpath becomes the confinement boundary, held open for the runner's life. */
  static async open(root: string): Promise<Workspace> {
    const real = await realpath(root);
    const fd = openSync(real, O_PATH | constants.O_DIRECTORY);
    if (!existsSync(fdPath(fd)))
      throw new Error("/proc is not mounted: the runner needs /proc/self/fd to confine paths");
    return new Workspace(real, fd);
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

  /** Resolves every component, symlinks included (confined); the path need not exist. */
  async resolve(input: string): Promise<ResolvedPath> {
    return this.at(input, { follow: "all" }, async (loc) => ({
      rel: loc.rel,
      abs: path.join(this.root, loc.realRel),
    }));
  }

  /**
   * Walks to `input` and runs `use` on its location; the descriptors are closed when `use` settles.
   * Errno failures (of the walk or of `use`) become domain errors naming `input`.
   */
  async at<T>(input: string, options: AtOptions, use: (loc: Location) => Promise<T>): Promise<T> {
    const rel = this.normalize(input);
    const held: number[] = [];
    try {
      return await use(this.walk(input, rel, options, held));
    } catch (e) {
      throw fsError(e, rel);
    } finally {
      for (const fd of held) closeSync(fd);
    }
  }

  /**
   * Synchronous on purpose: a handful of metadata calls (open O_PATH, lstat, readlink) that never
   * block on a local disk, where a thread-pool round trip each would cost more than the calls.
   */
  private walk(input: string, rel: string, options: AtOptions, held: number[]): Location {
    const leavesRoot = () => permissionDenied(`path "${input}" leads outside the workspace through a symlink`);
    // dirs[i] is the descriptor of the directory names[0..i) (dirs[0] is the root)
    const dirs = [this.rootFd];
    const names: string[] = [];
    const pending = rel ? rel.split("/") : [];
    let hops = 0;
    while (pending.length > 0) {
      const name = pending.shift() as string;
      if (name === "" || name === ".") continue;
      if (name === "..") {
        if (names.length === 0) throw leavesRoot();
        dirs.pop();
        names.pop();
        continue;
      }
      const dir = dirs[dirs.length - 1];
      const last = pending.length === 0;
      if (last && options.follow !== "all") return this.location(rel, names, dir, name);
      const target = last ? linkTarget(dir, name) : this.enter(dir, name, options, dirs, held);
      if (target === undefined) {
        if (last) return this.location(rel, names, dir, name);
        names.push(name);
        continue;
      }
      if (options.follow === "none") {
        throw invalidArgument(`"${rel}" passes through a symbolic link, which is not followed here`);
      }
      if (++hops > MAX_LINK_HOPS) throw invalidArgument("too many levels of symbolic links");
      let relTarget = target;
      if (path.posix.isAbsolute(target)) {
        const abs = path.resolve(target);
        if (abs !== this.root && !abs.startsWith(this.root + path.sep)) throw leavesRoot();
        relTarget = path.relative(this.root, abs);
        dirs.splice(1);
        names.splice(0);
      }
      pending.unshift(...relTarget.split("/"));
    }
    // the path names a directory reached through the walk (or the root)
    return this.location(rel, names, dirs[dirs.length - 1], ".");
  }

  /**
   * Opens directory `name` of `dir` (pushed on `dirs`), creating it if asked; returns a symlink's
   * target instead when `name` is one. An entry swapped between the open and the lstat is looked
   * at again, a few times, not forever.
   */
  private enter(dir: number, name: string, options: AtOptions, dirs: number[], held: number[]): string | undefined {
    for (let attempt = 1; ; attempt++) {
      try {
        const fd = openSync(at(dir, name), DIR_FLAGS);
        held.push(fd);
        dirs.push(fd);
        return undefined;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR") {
          const target = linkTarget(dir, name);
          if (target !== undefined) return target;
          const isDir = lstatSync(at(dir, name), { throwIfNoEntry: false })?.isDirectory();
          if (!isDir || attempt >= MAX_ATTEMPTS) throw e;
        } else if (code === "ENOENT" && options.createParents && attempt < MAX_ATTEMPTS) {
          mkdirAt(dir, name);
        } else {
          throw e;
        }
      }
    }
  }

  private location(rel: string, names: string[], dir: number, name: string): Location {
    const realRel = [...names, ...(name === "." ? [] : [name])].join("/");
    return { rel, realRel, dir, name, path: at(dir, name) };
  }
}

/** The target of entry `name` of `dir` if it is a symlink, else undefined (also when missing). */
function linkTarget(dir: number, name: string): string | undefined {
  if (!lstatSync(at(dir, name), { throwIfNoEntry: false })?.isSymbolicLink()) return undefined;
  try {
    return readlinkSync(at(dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EINVAL") return undefined; // no longer a link
    throw e;
  }
}

/** mkdir of entry `name` of `dir`; one that exists already is fine. */
function mkdirAt(dir: number, name: string): void {
  try {
    mkdirSync(at(dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
}
