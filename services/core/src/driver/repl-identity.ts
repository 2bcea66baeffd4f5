/**
 * How a repl looks from inside, the same on every driver: the project at /workspace, the home at
 * /home/devex of the user devex (uid 1000), and the repl's id as hostname.
 */

export const PROJECT_DIR = "/workspace";
export const HOME_DIR = "/home/devex";
export const USER_NAME = "devex";
export const USER_ID = 1000;

/** A repl's hostname: its id as a DNS label (what `hostname` and the shell's prompt show). */
export function hostnameFor(replId: string): string {
  const label = replId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return label || "repl";
}
