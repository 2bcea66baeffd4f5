/**
 * The passwd and group a sandbox shows instead of the host's: the host's system accounts (uid and
 * gid below 1000, and nobody) so `ls -l /usr` still names root, plus the repl's user `devex` (1000)
 * with its home. No host user's name or home appears, whichever uid 1000 has on the host.
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
    group: `${[...systemEntries(hostGroup), `${USER_NAME}:x:${USER_ID}:`].join("\n")}\n`,
  };
}

/** Writes `passwd` and `group` into `dir` (created), readable by the sandbox's uid, writable by no one but core. */
export async function writeSandboxIdentity(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const files = sandboxIdentity();
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(dir, name), text, { mode: 0o644 });
    await chmod(join(dir, name), 0o644);
  }
}
