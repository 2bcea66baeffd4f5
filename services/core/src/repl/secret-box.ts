/**
 * Secrets at rest: AES-256-GCM under the operator's key (DEVEX_SECRETS_KEY, or a key core makes in
 * its data directory on first start), a fresh 96-bit nonce for every value, and where the value
 * belongs (repl and variable name) as additional data, so a sealed value copied onto another repl
 * or name does not open. Stored as `v1.<nonce>.<ciphertext>.<tag>`, base64url.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export interface SecretBox {
  seal(plain: string, context: string): string;
  /** Throws when the value was sealed under another key or for another context. */
  open(sealed: string, context: string): string;
}

const VERSION = "v1";

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error("the secrets key must be 32 bytes");
  return {
    seal(plain, context) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, nonce);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return [VERSION, nonce, body, cipher.getAuthTag()]
        .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
        .join(".");
    },
    open(sealed, context) {
      const parts = sealed.split(".");
      if (parts.length !== 4 || parts[0] !== VERSION) throw new Error("not a sealed value");
      const [nonce, body, tag] = parts.slice(1).map((p) => Buffer.from(p, "base64url"));
      if (nonce.length !== 12 || tag.length !== 16) throw new Error("not a sealed value");
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: 16 });
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
    },
  };
}

/** A 32-byte key written as hex, base64 or base64url (`openssl rand -base64 32`), and nothing else. */
export function parseSecretsKey(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-f]{64}$/i.test(t)) return Buffer.from(t, "hex");
  // Node's base64 decoder reads both alphabets.
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) return Buffer.from(t, "base64");
  throw new Error("DEVEX_SECRETS_KEY must be 32 bytes, as hex or base64 (openssl rand -base64 32)");
}
