/**
 * A persist's calls to the blob store, each under the repl's prefix, retried with backoff and
 * counted (SyncResult.objects counts every object written, read or deleted). What it writes is
 * remembered with its size, for the next remote state.
 */
import type { Readable } from "node:stream";
import { PACKS } from "./remote.js";
import type { PersistOptions } from "./types.js";
import { readAll, retry } from "./util.js";

export class PersistStore {
  /** Every key this persist wrote, with the size it counts for. */
  readonly uploaded: Record<string, number> = {};
  /** Objects written, read and deleted. */
  objects = 0;
  readonly attempts: number;

  constructor(private readonly o: PersistOptions) {
    this.attempts = o.attempts ?? 4;
  }

  async put(key: string, body: () => Buffer | Readable, size: number) {
    const { o } = this;
    await retry(this.attempts, o.signal, () => o.store.put(o.prefix + key, body(), o.signal));
    this.uploaded[key] = size;
    this.objects++;
  }

  /** A stored pack's bytes; one the index names must be there. */
  async readPack(pack: string): Promise<Buffer> {
    const { o } = this;
    const body = await retry(this.attempts, o.signal, async () => {
      const b = await o.store.get(`${o.prefix}${PACKS}${pack}`, o.signal);
      if (!b) throw new Error(`pack ${pack} named by the index is missing`);
      return readAll(b);
    });
    this.objects++;
    return body;
  }

  /** Deletes `key` and whatever starts with it. */
  async deletePrefix(key: string) {
    const { o } = this;
    await retry(this.attempts, o.signal, () => o.store.deletePrefix(o.prefix + key, o.signal));
    this.objects++;
  }
}
