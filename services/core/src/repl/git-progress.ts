/**
 * Git's progress lines ("Receiving objects:  45% (450/1000), 12.00 MiB | 1.20 MiB/s"), rewritten in
 * place with carriage returns on stderr: the latest one says how much of the repository arrived.
 */
export interface CloneProgress {
  objects: number;
  objectsTotal: number;
  /** Bytes received so far (0 until git first says). */
  bytes: number;
}

const UNITS: Record<string, number> = { bytes: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
const RECEIVING = /Receiving objects:\s+\d+% \((\d+)\/(\d+)\)(?:,\s+([\d.]+) (bytes|KiB|MiB|GiB|TiB))?/g;

/** The latest "Receiving objects" report in `stderr`, or undefined before the first. */
export function parseGitProgress(stderr: string): CloneProgress | undefined {
  let last: RegExpExecArray | undefined;
  for (const m of stderr.matchAll(RECEIVING)) last = m;
  if (!last) return undefined;
  const bytes = last[3] ? Math.round(Number(last[3]) * UNITS[last[4]]) : 0;
  return { objects: Number(last[1]), objectsTotal: Number(last[2]), bytes };
}
