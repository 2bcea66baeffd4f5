/**
 * The folder Devex runs from: the nearest one above this module that holds Devex's package.json.
 * The same answer whether this module runs from its source (lib/kit/) or bundled into dist/<target>/,
 * and in an image (/app), so paths to templates, the web client and the runner's bundle are taken
 * from here rather than counted in `../` from wherever the code happens to sit.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "devex") return dir;
    if (dirname(dir) === dir) throw new Error(`no Devex package.json above ${from}`);
  }
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
