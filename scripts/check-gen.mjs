// Fails when what `npm run generate` makes from proto/ differs from what is committed (nobody edits it by
// hand): gen/, the TypeScript from `buf generate`, and descriptors/devex.binpb, the descriptor set with doc
// comments that the MCP server derives tool descriptions from. (The descriptor set lives outside gen/
// because `buf generate` cleans gen/.)
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
  buf("build", "-o", join(out, "devex.binpb"));
  const fresh = new Map(files(join(out, "gen")).map((p) => [relative(join(out, "gen"), p), readFileSync(p, "latin1")]));
  const committed = new Map(
    files(join(root, "gen")).map((p) => [relative(join(root, "gen"), p), readFileSync(p, "latin1")]),
  );
  const drift = [];
  for (const [p, text] of fresh)
    if (committed.get(p) !== text) drift.push(committed.has(p) ? `changed: gen/${p}` : `missing: gen/${p}`);
  for (const p of committed.keys()) if (!fresh.has(p)) drift.push(`stale: gen/${p}`);
  const descriptors = "descriptors/devex.binpb";
  let committedSet = "";
  try {
    committedSet = readFileSync(join(root, descriptors), "latin1");
  } catch {}
  if (committedSet !== readFileSync(join(out, "devex.binpb"), "latin1")) drift.push(`changed: ${descriptors}`);
  if (drift.length) {
    console.error(
      `generated files are out of date with proto/ (run "npm run generate" and commit):\n  ${drift.join("\n  ")}`,
    );
    process.exit(1);
  }
  console.log(`gen/ (${fresh.size} files) and ${descriptors} match proto/`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
