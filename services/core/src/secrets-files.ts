/**
 * Key material kept in the data directory on first start when not configured: the Ed25519 signing
 * key (its public half is written next to it for runners), the OAuth cookie secret and the key
 * that encrypts repls' secrets. Files are created with mode 0600 and never overwritten.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { generateSigningKey } from "../../../lib/kit/tokens.js";
import type { CoreConfig } from "./config.js";
import { parseSecretsKey } from "./repl/secret-box.js";

async function readOrCreate(path: string, make: () => string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await mkdir(dirname(path), { recursive: true });
  const value = make();
  try {
    await writeFile(path, value, { mode: 0o600, flag: "wx" });
    return value;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return readFile(path, "utf8");
    throw e;
  }
}

export async function loadSigningKey(config: CoreConfig): Promise<string> {
  const path = config.DEVEX_SIGNING_KEY_FILE ?? join(config.DEVEX_DATA_DIR, "signing-key.pem");
  let pub = "";
  const pem = await readOrCreate(path, () => {
    const k = generateSigningKey();
    pub = k.publicKeyPem;
    return k.privateKeyPem;
  });
  if (pub) await writeFile(`${path.replace(/\.pem$/, "")}.pub.pem`, pub);
  return pem;
}

export async function loadCookieSecret(config: CoreConfig): Promise<string> {
  return (
    config.DEVEX_COOKIE_SECRET ??
    (await readOrCreate(join(config.DEVEX_DATA_DIR, "cookie-secret"), () => randomBytes(32).toString("base64url")))
  );
}

/** The key of repls' secrets (repl/secret-box.ts): DEVEX_SECRETS_KEY, or one made in the data directory. */
export async function loadSecretsKey(config: CoreConfig): Promise<Buffer> {
  const text =
    config.DEVEX_SECRETS_KEY ??
    (await readOrCreate(join(config.DEVEX_DATA_DIR, "secrets-key"), () => randomBytes(32).toString("base64url")));
  return parseSecretsKey(text);
}
