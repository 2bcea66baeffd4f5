/**
 * A queue feeding an async generator (a server stream). `bytes` tracks what is queued but not yet
 * taken by the transport, for flow control; `onTake` runs whenever the consumer takes an item.
 * With `coalesce`, items that piled up while the transport was busy are merged when taken (up to
 * `maxSize`), so a busy stream sends fewer, larger messages while an idle one sends at once.
 */
export interface Coalesce<T> {
  mergeable(item: T): boolean;
  merge(items: T[]): T;
  maxSize: number;
}

export class AsyncQueue<T> {
  private items: Array<{ value: T; size: number }> = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  bytes = 0;

  constructor(
    private readonly onTake?: () => void,
    private readonly coalesce?: Coalesce<T>,
  ) {}

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
        const item = this.take();
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

  private take(): { value: T; size: number } | undefined {
    const first = this.items.shift();
    const c = this.coalesce;
    if (!first || !c?.mergeable(first.value)) return first;
    const group = [first.value];
    let size = first.size;
    while (this.items.length > 0 && c.mergeable(this.items[0].value) && size + this.items[0].size <= c.maxSize) {
      const next = this.items.shift()!;
      group.push(next.value);
      size += next.size;
    }
    return group.length === 1 ? first : { value: c.merge(group), size };
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
