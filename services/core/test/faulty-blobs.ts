/**
 * FAULT INJECTOR — not the thing under test. Wraps a real BlobStore; while `failing` is set, every
 * call fails the way a real outage does (DomainError "unavailable"), so driver tests can check
 * that a failed persist loses nothing; `delayMs` makes every call that much slower (a slow stop).
 */

import type { BlobStore } from "../../../lib/blob/store.js";
import { unavailable } from "../../../lib/kit/errors.js";

export function faultyBlobs(inner: BlobStore): BlobStore & { failing: boolean; delayMs: number } {
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (store.delayMs) await new Promise((r) => setTimeout(r, store.delayMs));
      if (store.failing) throw unavailable("the blob store is unavailable (injected fault)");
      return fn(...a);
    };
  const store = {
    failing: false,
    delayMs: 0,
    put: guard(inner.put.bind(inner)),
    get: guard(inner.get.bind(inner)),
    list: guard(inner.list.bind(inner)),
    deletePrefix: guard(inner.deletePrefix.bind(inner)),
    copyPrefix: guard(inner.copyPrefix.bind(inner)),
    close: () => inner.close(),
  };
  return store;
}
