/**
 * Where AdminService.AddTemplate takes a template's files from: a folder on core's machine, or a
 * shallow clone of a git repository in a fresh temporary folder (removed afterwards). The clone
 * runs as core's user on the operator's say-so, with hooks off, no submodules and no prompt, and
 * only over https, http or file URLs.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";

const run = promisify(execFile);
const CLONE_TIMEOUT_MS = 5 * 60_000;

/** Runs `fn` on the folder holding the template's files. */
export async function withTemplateSource<T>(
  source: { case: "folder"; value: string } | { case: "gitUrl"; value: string },
  fn: (folder: string) => Promise<T>,
): Promise<T> {
  if (source.case === "folder") {
    if (!isAbsolute(source.value)) throw invalidArgument(`the folder must be an absolute path: "${source.value}"`);
    const st = await stat(source.value).catch(() => undefined);
    if (!st?.isDirectory()) throw failedPrecondition(`"${source.value}" is not a folder core can read`);
    return fn(source.value);
  }
  const { url, ref } = splitRef(source.value);
  const dir = await mkdtemp(join(tmpdir(), "devex-template-"));
  try {
    const target = join(dir, "t");
    await clone(url, ref, target, dir);
    return await fn(target);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitRef(value: string): { url: string; ref?: string } {
  const hash = value.lastIndexOf("#");
  const url = hash < 0 ? value : value.slice(0, hash);
  const ref = hash < 0 ? undefined : value.slice(hash + 1);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidArgument(`"${url}" is not a URL`);
  }
  if (!["https:", "http:", "file:"].includes(parsed.protocol)) {
    throw invalidArgument(`a template's git URL must be https://, http:// or file://, not ${parsed.protocol}`);
  }
  if (ref !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(ref)) {
    throw invalidArgument(`"${ref}" is not a branch or tag name`);
  }
  return { url, ref };
}

/**
 * Git reads no configuration but these arguments: not the system's, not a global one (HOME and
 * XDG_CONFIG_HOME are the clone's own fresh folder: a shared /tmp could hold a .gitconfig whose
 * filters run commands as core's user), and only the URL schemes allowed above.
 */
async function clone(url: string, ref: string | undefined, target: string, home: string) {
  const args = [
    ...["-c", "core.hooksPath=/dev/null", "-c", "protocol.allow=never"],
    ...["-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always", "-c", "protocol.file.allow=always"],
    ...["clone", "--quiet", "--depth", "1", "--no-recurse-submodules"],
  ];
  if (ref) args.push("--branch", ref);
  args.push("--", url, target);
  try {
    await run("git", args, {
      timeout: CLONE_TIMEOUT_MS,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: home,
        GIT_CONFIG_GLOBAL: "/dev/null",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_TERMINAL_PROMPT: "0",
      },
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw failedPrecondition("git is not installed on core's machine");
    // git's own words say what is wrong (no such repository, no such branch); no secret is in them.
    const said = (e.stderr ?? "").trim().split("\n").slice(-2).join(" ").slice(0, 500);
    throw failedPrecondition(`could not clone ${url}${ref ? ` at ${ref}` : ""}: ${said || "git failed"}`);
  }
}
