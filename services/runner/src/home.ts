/**
 * The repl's home: where shells and tools keep their state (history, dotfiles, caches), outside the
 * project so the file tree shows the project only. A fresh home gets the system's skeleton
 * (/etc/skel: .bashrc, .profile), as `useradd -m` would, so the shell has its usual prompt.
 */
import { cp, mkdir, readdir } from "node:fs/promises";

/** Seeds `home` from `skel` when it is empty (a new repl); a home with anything in it is left alone. */
export async function prepareHome(home: string, skel = "/etc/skel"): Promise<void> {
  await mkdir(home, { recursive: true });
  if ((await readdir(home)).length > 0) return;
  // No dereferencing: a skeleton's links stay links; errors (no /etc/skel) leave an empty home.
  await cp(skel, home, { recursive: true, verbatimSymlinks: true, errorOnExist: false }).catch(() => {});
}
