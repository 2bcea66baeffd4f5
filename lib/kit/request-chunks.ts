/**
 * A Node request's body as an async iterator, without a generator. connect-node hands handlers the
 * body through two: its own (a tslib-emulated async generator) over Node's Readable iterator (a
 * native one). Each allocates promises and results for every chunk, and on a terminal's Attach a
 * chunk is usually one keystroke, so they were a good part of what made the runner's small young
 * generation fill (and a keystroke wait for its collection). This reads the same chunks, the same
 * way Node's iterator does (`read()` on `readable`, ends and errors from `finished`), and allocates
 * only the result for a chunk and, when it has to wait, one promise.
 *
 * Like Node's iterator it destroys the request when the reader stops before the end (so an unread
 * upload does not hold the connection's flow-control window), and leaves it alone otherwise.
 */
import type { Readable } from "node:stream";
import { finished } from "node:stream";

export function requestChunks(request: Readable): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => new ChunkReader(request) };
}

class ChunkReader implements AsyncIterator<Uint8Array> {
  /** undefined while the body flows, null once it ended, else why it failed. */
  private outcome: Error | null | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
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
    const chunk: Uint8Array | null = this.request.destroyed ? null : this.request.read();
    if (chunk !== null) return Promise.resolve({ value: chunk, done: false });
    if (this.outcome !== undefined) {
      this.stop();
      return this.outcome ? Promise.reject(this.outcome) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    }).then(() => this.next());
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    if (this.outcome === undefined && !this.stopped) this.request.destroy();
    this.stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.request.off("readable", this.onReadable);
    this.stopWatching();
  }
}
