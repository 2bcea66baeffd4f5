/**
 * The identity files a sandbox shows instead of the host's: passwd and group with the host's system
 * accounts (ids below 1000, and nobody; groups without their member lists) so `ls -l /usr` still
 * names root, plus the repl's user `devex` (1000) with its home, so no host user's name or home
 * appears; and hostname and hosts naming the repl, written when a runner is given its repl.
 */
import { readFileSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HOME_DIR, USER_ID, USER_NAME } from "../repl-identity.js";

const NOBODY = 65534;

/** Lines of a colon-separated database whose third field (the id) is a system id and whose name is not ours. */
function systemEntries(text: string): string[] {
  return text.split("\n").filter((line) => {
    const [name, , id] = line.split(":");
    const n = Number(id);
    return !!name && name !== USER_NAME && Number.isInteger(n) && (n < USER_ID || n === NOBODY);
  });
}

/** A group line without its members (`sudo:x:27:alice` names a host user). */
const withoutMembers = (line: string) => line.split(":").slice(0, 3).concat("").join(":");

function hostFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "root:x:0:0:root:/root:/bin/bash\n";
  }
}

/** The two files' text. */
export function sandboxIdentity(hostPasswd = hostFile("/etc/passwd"), hostGroup = hostFile("/etc/group")) {
  return {
    passwd: `${[...systemEntries(hostPasswd), `${USER_NAME}:x:${USER_ID}:${USER_ID}:Devex:${HOME_DIR}:/bin/bash`].join("\n")}\n`,
    group: `${[...systemEntries(hostGroup).map(withoutMembers), `${USER_NAME}:x:${USER_ID}:`].join("\n")}\n`,
  };
}

/** `hostname` and `hosts` for a repl whose hostname is `hostname`. */
export function hostFiles(hostname: string) {
  return {
    hostname: `${hostname}\n`,
    hosts: `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
  };
}

/**
 * The repl's resolv.conf (bound over the host's in a private network, sandbox.ts): its resolver is
 * the namespace's own 127.0.0.1:53, which pasta forwards to core's resolver for the repl
 * (network/resolver.ts). Asked there directly, queries need no NAT in the namespace: glibc's
 * parallel A and AAAA queries through a NAT redirect lose one now and then to conntrack's race.
 * Over TCP (`use-vc`): pasta's UDP forwarding loses some of glibc's queries too (resolver.ts).
 */
export const REPL_RESOLV_CONF = "nameserver 127.0.0.1\noptions use-vc edns0\n";

/** The files `writeSandboxIdentity` writes, which the sandbox binds over /etc's. */
export const identityFiles = ["passwd", "group", "hostname", "hosts"] as const;

/**
 * Writes the identity files into `dir` (a new folder, created 0755), readable by the sandbox's uid,
 * writable by core only; the host files name "repl" until `nameRepl`.
 */
export async function writeSandboxIdentity(dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  const files = { ...sandboxIdentity(), ...hostFiles("repl"), "resolv.conf": REPL_RESOLV_CONF };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o644 });
}

/**
 * Names the repl in `hostname` and `hosts`, rewritten in place: the runner's sandbox has them bound
 * already (a bind holds the inode, so a new file would not show).
 */
export async function nameRepl(dir: string, hostname: string): Promise<void> {
  for (const [name, text] of Object.entries(hostFiles(hostname))) await writeFile(join(dir, name), text);
}
