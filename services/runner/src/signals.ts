/** Signal names as this machine numbers them, for the exit reports of terminals and commands. */
import { constants as osConstants } from "node:os";

const signalNames = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

export function signalName(n: number): string {
  return signalNames.get(n) ?? `SIG${n}`;
}

export function signalNumber(name: string): number | undefined {
  for (let n = 1; n < 65; n++) if (signalName(n) === name) return n;
  return undefined;
}
