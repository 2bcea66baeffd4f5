/** Runs a program inside a runner's network namespace (nsenter), for nft. */
import { execFile } from "node:child_process";

export interface NamespaceTools {
  nsenter: string;
  nft: string;
}

/** Feeds `script` to `nft -f -` inside the namespace core holds open as `netns`; rejects with nft's message. */
export function runNft(t: NamespaceTools, netns: number, script: string, signal?: AbortSignal): Promise<void> {
  // Core is root (network/egress.ts): root's capabilities cover every namespace.
  const enter = [`--net=/proc/${process.pid}/fd/${netns}`];
  return new Promise((resolve, reject) => {
    const child = execFile(
      t.nsenter,
      [...enter, "--", t.nft, "-f", "-"],
      { signal, timeout: 10_000 },
      (err, _o, stderr) =>
        err ? reject(new Error(`nft failed in the repl's namespace: ${stderr.trim() || err.message}`)) : resolve(),
    );
    child.stdin?.end(script);
  });
}
