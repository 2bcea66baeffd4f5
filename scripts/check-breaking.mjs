// `buf breaking` against the main branch: a change to proto/ must not break clients built from main.
// Skipped (with a message) when there is no main branch to compare with or main has no proto/ yet.
import { execFileSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const git = (...args) =>
  execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
let ref;
for (const candidate of ["refs/heads/main", "refs/remotes/origin/main"]) {
  try {
    git("rev-parse", "--verify", `${candidate}:proto`);
    ref = candidate;
    break;
  } catch {}
}
if (!ref) {
  console.log("buf breaking: no main branch with proto/ to compare against; skipped");
  process.exit(0);
}
const branch = ref.replace(/^refs\/(heads|remotes)\//, "");
try {
  execFileSync("npx", ["--no-install", "buf", "breaking", "--against", `.git#ref=${ref}`], {
    cwd: root,
    stdio: "inherit",
  });
} catch {
  console.error(`buf breaking: proto/ has breaking changes against ${branch} (listed above)`);
  process.exit(1);
}
console.log(`buf breaking: no breaking changes against ${branch}`);
