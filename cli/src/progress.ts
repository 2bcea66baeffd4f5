/** A one-line progress report on a terminal (nothing when stderr is not one): bytes, percent and rate. */

const MB = 1024 * 1024;

export class Progress {
  private done = 0;
  private last = 0;
  private readonly start = Date.now();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly label: string,
    private readonly total: number | undefined,
  ) {}

  add(n: number) {
    this.done += n;
    const now = Date.now();
    if (this.out.isTTY && now - this.last >= 200) {
      this.last = now;
      this.out.write(`\r\u001b[K${this.line(now)}`);
    }
  }

  /** Sets the count back (a resumed download starts again at its offset). */
  set(n: number) {
    this.done = n;
  }

  finish() {
    if (this.out.isTTY) this.out.write(`\r\u001b[K${this.line(Date.now())}\n`);
  }

  private line(now: number): string {
    const seconds = Math.max((now - this.start) / 1000, 0.001);
    const pct = this.total ? ` ${Math.floor((100 * this.done) / Math.max(this.total, 1))}%` : "";
    const size = this.total ? ` of ${(this.total / MB).toFixed(1)}` : "";
    return `${this.label}: ${(this.done / MB).toFixed(1)}${size} MiB${pct}, ${(this.done / MB / seconds).toFixed(1)} MiB/s`;
  }
}
