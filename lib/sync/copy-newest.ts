/**
 * Copies the newest stored state of a workspace to another prefix: what the index's newest
 * generation needs and nothing older, as a fresh index of one generation. A template saved from a
 * repl must not carry files that were deleted before it was saved. A prefix that was never
 * persisted (a template's loose files only) is copied whole.
 */
import type { BlobStore } from "../blob/store.js";
import { checkPrefix, generationKey, INDEX, readRemote, summarize } from "./remote.js";
import type { StoredIndex } from "./types.js";
import { forEachLimit, retry } from "./util.js";

export interface CopiedState {
  files: number;
  bytes: number;
}

export async function copyNewestGeneration(
  store: BlobStore,
  from: string,
  to: string,
  signal?: AbortSignal,
  attempts = 4,
): Promise<CopiedState> {
  checkPrefix(from);
  checkPrefix(to);
  const remote = await readRemote({ store, prefix: from, signal }, attempts);
  if (!remote.indexed) {
    await retry(attempts, signal, () => store.copyPrefix(from, to, signal));
    const sizes = Object.values(remote.files).map((f) => f.size);
    return { files: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) };
  }
  const time = Date.now();
  const info = summarize(1, time, remote.files);
  await forEachLimit(info.objects, 8, (key) =>
    retry(attempts, signal, async () => {
      const body = await store.get(from + key, signal);
      if (!body) throw new Error(`the stored workspace lacks ${key}, which its index names`);
      await store.put(to + key, body, signal);
    }),
  );
  const index: StoredIndex = {
    version: 2,
    generation: 1,
    time,
    files: remote.files,
    ...(remote.dirs ? { dirs: remote.dirs } : {}),
    generations: [info],
  };
  const body = Buffer.from(JSON.stringify(index));
  await retry(attempts, signal, () => store.put(to + generationKey(1), body, signal));
  // The index last: until it is there, the copy is loose objects no restore reads as a workspace.
  await retry(attempts, signal, () => store.put(to + INDEX, body, signal));
  return { files: info.files, bytes: info.bytes };
}
