/**
 * What counts as use of the repl: any RPC (except GetStatus and Health), terminal input, an open
 * stream (terminal attachment, StreamOutput, WatchFiles, Exec), a running command. The clock is
 * injected so idle detection can be tested without waiting.
 */
export type Clock = () => number;

export class ActivityTracker {
  private last: number;
  private openStreams = 0;

  constructor(
    private readonly now: Clock = Date.now,
    /** Commands and background processes running now. */
    private readonly runningCommands: () => number = () => 0,
  ) {
    this.last = now();
  }

  touch(): void {
    this.last = this.now();
  }

  /** Marks a stream open; call the returned function when it ends. */
  streamOpened(): () => void {
    this.openStreams++;
    this.touch();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.openStreams--;
      this.touch();
    };
  }

  get streams(): number {
    return this.openStreams;
  }

  get lastActivity(): number {
    if (this.openStreams > 0 || this.runningCommands() > 0) this.last = this.now();
    return this.last;
  }

  /** Milliseconds since the last activity; 0 while something is in use. */
  idleFor(): number {
    return Math.max(0, this.now() - this.lastActivity);
  }
}
