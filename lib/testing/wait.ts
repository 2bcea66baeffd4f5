/** Waiting in tests for something that happens in another process or on a timer. */
import { sleep } from "../kit/sleep.js";

/** Polls `f` until it returns truthy or `timeoutMs` passes. */
export async function waitFor<T>(f: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
