/**
 * The request side of a bidi call, pushed as it comes. `messages()` is an async generator, so it has
 * the return() and throw() connect-node calls on a request iterable when the call ends.
 */
export class RequestStream<T> {
  private readonly queue: T[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(message: T): void {
    if (this.ended) return;
    this.queue.push(message);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *messages(): AsyncGenerator<T> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift() as T;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}
