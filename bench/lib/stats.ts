/** Small numeric and machine helpers shared by the benches (bench/lib/: helpers, not benches run by name). */
import { cpus, release, totalmem } from "node:os";

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** The median as usually defined (mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export const round1 = (x: number) => Math.round(x * 10) / 10;

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** What the results files record about the machine a bench ran on. */
export function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGB: round1(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
  };
}
