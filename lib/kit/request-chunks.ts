/**
 * A Node request's body as an async iterator, without a generator. connect-node hands handlers the
 * body through two: its own (a tslib-emulated async generator) over Node's Readable iterator (a
 * native one). Each allocates promises and results for every chunk, and on a terminal's Attach a
 * chunk is usually one keystroke, so they were a good part of what made the runner's small young
 * generation fill (and a keystroke wait for its collection). This reads the same chunks, the same
 * way Node's iterator does (`read()` on `readable`, ends and errors from `finished`), and allocates
 * only the result for a chunk and, when it has to wait, one promise.
 *
 * Like Node's iterator it destroys the request, with Node's own `destroyer`, when the reader stops
 * before the end, and leaves it alone otherwise. `destroyer` detaches an HTTP/1.1 request from its
 * socket first, so the response (a gRPC status) still goes out on it.
 */
import * as streams from "node:stream";
import { finished, type Readable } from "node:stream";

/** node:stream's `destroy` (internal/streams/destroy's destroyer), which @types/node does not declare. */
const destroyer = (streams as unknown as { destroy(stream: Readable, error: Error | null): void }).destroy;
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export function requestChunks(request: Readable): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => new ChunkReader(request) };
}

class ChunkReader implements AsyncIterator<Uint8Array> {
  /** undefined while the body flows, null once it ended, else why it failed. */
  private outcome: Error | null | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  /** The read in progress while it waits for data. */
  private waiting: Promise<IteratorResult<Uint8Array>> | undefined;
  private readonly nextAfter = () => this.next();
  private readonly stopWatching: () => void;
  private readonly onReadable = () => this.wakeUp();

  constructor(private readonly request: Readable) {
    request.on("readable", this.onReadable);
    this.stopWatching = finished(request, { writable: false }, (e) => {
      this.outcome ??= e ?? null;
      this.wakeUp();
    });
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    // One read at a time, as Node's iterator (a generator) answers them: a call made while one
    // waits is answered after it.
    if (this.waiting) return this.waiting.then(this.nextAfter, this.nextAfter);
    if (this.stopped) return Promise.resolve(DONE);
    const chunk: Uint8Array | null = this.request.destroyed ? null : this.request.read();
    if (chunk !== null) return Promise.resolve({ value: chunk, done: false });
    if (this.outcome !== undefined) {
      this.stop();
      return this.outcome ? Promise.reject(this.outcome) : Promise.resolve(DONE);
    }
    this.waiting = new Promise<void>((resolve) => {
      this.wake = resolve;
    }).then(() => {
      this.waiting = undefined;
      return this.next();
    });
    return this.waiting;
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    const early = this.outcome === undefined && !this.stopped;
    // Stopped early, `finished`'s listener stays to take the AbortError the destroy emits (as in Node).
    this.stop(early);
    if (early) destroyer(this.request, null);
    return Promise.resolve(DONE);
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private stop(keepWatching = false): void {
    if (this.stopped) return;
    this.stopped = true;
    this.request.off("readable", this.onReadable);
    if (!keepWatching) this.stopWatching();
    this.wakeUp(); // a read still waiting answers done
  }
}
