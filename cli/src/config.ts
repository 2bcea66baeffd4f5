/**
 * Where the CLI keeps its login: `$XDG_CONFIG_HOME/devex/config.json` (default `~/.config/devex`),
 * the directory 0700 and the file 0600, because the file holds an API token. `DEVEX_URL` and
 * `DEVEX_TOKEN` override what is stored.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { CliError } from "./cli-error.js";

export interface Login {
  url: string;
  token: string;
}

export type Env = Record<string, string | undefined>;

export function configDir(env: Env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "devex");
}

export function configPath(env: Env): string {
  return join(configDir(env), "config.json");
}

async function readStored(env: Env): Promise<Partial<Login>> {
  try {
    const parsed = JSON.parse(await readFile(configPath(env), "utf8")) as Partial<Login>;
    return typeof parsed === "object" && parsed ? parsed : {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(`cannot read ${configPath(env)}: remove it and run devex login`);
  }
}

/** The login to use: the environment first, then the stored config. */
export async function loadLogin(env: Env): Promise<Login> {
  const stored = await readStored(env);
  const url = env.DEVEX_URL || stored.url;
  const token = env.DEVEX_TOKEN || stored.token;
  if (!url || !token) throw new CliError("not logged in: run devex login --url <core-url> --token <api-token>");
  return { url: normalizeUrl(url), token };
}

export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`not a URL: ${url}`, 2);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new CliError(`not an http(s) URL: ${url}`, 2);
  return parsed.toString().replace(/\/+$/, "");
}

/** Writes the login atomically with owner-only permissions (a temp file created 0600, then renamed). */
export async function saveLogin(env: Env, login: Login): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = configPath(env);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  await rename(temp, path);
  return path;
}

export async function removeLogin(env: Env): Promise<boolean> {
  const stored = await readStored(env);
  await rm(configPath(env), { force: true });
  return Boolean(stored.token);
}
