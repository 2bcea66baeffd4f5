/**
 * A queue feeding an async generator (a server stream). `bytes` tracks what is queued but not yet
 * taken by the transport, for flow control; `onTake` runs whenever the consumer takes an item.
 */
export class AsyncQueue<T> {
  private items: Array<{ value: T; size: number }> = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  bytes = 0;

  constructor(private readonly onTake?: () => void) {}

  push(value: T, size = 0): void {
    if (this.ended) return;
    this.items.push({ value, size });
    this.bytes += size;
    this.wake();
  }

  /** No more items after those queued. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  async *drain(signal?: AbortSignal): AsyncGenerator<T> {
    const onAbort = () => this.end();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const item = this.items.shift();
        if (item) {
          this.bytes -= item.size;
          this.onTake?.();
          yield item.value;
          continue;
        }
        if (this.ended || signal?.aborted) return;
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.ended = true;
      this.items = [];
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
