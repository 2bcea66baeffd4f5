/** Runs a program inside a runner's network namespace (nsenter), for nft. */
import { execFile } from "node:child_process";

export interface NamespaceTools {
  nsenter: string;
  nft: string;
  /** Core is not root: enter the runner's user namespace too, for the capability over its network. */
  viaUserNamespace: boolean;
}

/** Feeds `script` to `nft -f -` inside the namespace of `pid`; rejects with nft's message. */
export function runNft(t: NamespaceTools, pid: number, script: string, signal?: AbortSignal): Promise<void> {
  const enter = [`--target=${pid}`, "--net", ...(t.viaUserNamespace ? ["--user", "--preserve-credentials"] : [])];
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
