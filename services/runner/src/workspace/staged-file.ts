/**
 * A file written in pieces and put in place only when whole: the content goes to a temporary file
 * beside the target (atomic-write.ts's name, created O_EXCL|O_NOFOLLOW in the directory the
 * target's descriptor holds, so never through a symlink), hashed as it is written, fsynced, and
 * renamed over the target (or linked to it, when an existing file must not be replaced: link fails
 * where the name exists, with no window between a check and the rename). `discard` removes it; a
 * caller discards on every failure, so nothing but a complete file ever appears under the name.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, link, open, rename, unlink } from "node:fs/promises";
import { atomicWriteTempName } from "../../../../lib/contracts/atomic-write.js";
import { at } from "./confined-fs.js";

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export class StagedFile {
  private readonly hash = createHash("sha256");
  private done = false;
  /** Bytes written so far. */
  size = 0;

  private constructor(
    private readonly dir: number,
    private readonly name: string,
    private readonly temp: string,
    private readonly fh: FileHandle,
    private readonly mode: number,
  ) {}

  /** A fresh temporary file beside entry `name` of directory descriptor `dir`. */
  static async create(dir: number, name: string, mode: number): Promise<StagedFile> {
    const temp = at(dir, atomicWriteTempName(name, randomBytes(6).toString("hex")));
    const fh = await open(temp, CREATE, 0o600);
    return new StagedFile(dir, name, temp, fh, mode & 0o777);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, at, chunk.length - at);
      at += bytesWritten;
    }
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  /** The SHA-256 of what was written, lowercase hex (once: it ends the hash). */
  digest(): string {
    return this.hash.digest("hex");
  }

  /** Puts the file in place: over an existing file when `replace`, else EEXIST if the name exists. */
  async commit(replace: boolean): Promise<void> {
    await this.fh.chmod(this.mode);
    await this.fh.sync();
    await this.fh.close();
    this.done = true;
    const target = at(this.dir, this.name);
    try {
      if (replace) await rename(this.temp, target);
      else {
        await link(this.temp, target);
        await unlink(this.temp);
      }
    } catch (e) {
      await unlink(this.temp).catch(() => {});
      throw e;
    }
  }

  /** Removes the temporary file (after a failure); safe to call more than once. */
  async discard(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.fh.close().catch(() => {});
    }
    await unlink(this.temp).catch(() => {});
  }
}
