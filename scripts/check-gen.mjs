// Fails when gen/ differs from what `npm run generate` makes from proto/ (nobody edits gen/ by hand):
// the TypeScript from `buf generate`, and gen/devex.binpb, the descriptor set with doc comments that the
// MCP server derives tool descriptions from.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const out = mkdtempSync(join(tmpdir(), "devex-gen-"));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

try {
  const buf = (...args) =>
    execFileSync("npx", ["--no-install", "buf", ...args], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  buf("generate", "-o", out);
  buf("build", "-o", join(out, "gen", "devex.binpb"));
  const fresh = new Map(files(join(out, "gen")).map((p) => [relative(join(out, "gen"), p), readFileSync(p, "latin1")]));
  const committed = new Map(
    files(join(root, "gen")).map((p) => [relative(join(root, "gen"), p), readFileSync(p, "latin1")]),
  );
  const drift = [];
  for (const [p, text] of fresh)
    if (committed.get(p) !== text) drift.push(committed.has(p) ? `changed: gen/${p}` : `missing: gen/${p}`);
  for (const p of committed.keys()) if (!fresh.has(p)) drift.push(`stale: gen/${p}`);
  if (drift.length) {
    console.error(`gen/ is out of date with proto/ (run "npm run generate" and commit):\n  ${drift.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`gen/ matches proto/ (${fresh.size} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
