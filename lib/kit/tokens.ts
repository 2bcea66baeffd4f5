/**
 * Signed, expiring access tokens (JWT with EdDSA/Ed25519). Core holds the private key and mints
 * tokens; runners hold only the public key, so a runner can verify tokens but never mint one.
 * One mechanism serves every audience:
 *   - "runner": a user's access to one repl's runner (files, terminals, exec, preview);
 *   - "runner-control": a runner's credential for calling core's RunnerControlService;
 *   - "runner-admin": core's credential for calling a runner's RunnerAdminService;
 *   - "git": git's credential, inside one repl, for core's route to that repl's repository.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  verify,
} from "node:crypto";
import { DomainError, permissionDenied, unauthenticated } from "./errors.js";

export type Audience = "runner" | "runner-control" | "runner-admin" | "git";

export interface TokenClaims {
  /** Audience: which service accepts the token. */
  aud: Audience;
  /** Subject: the user id (runner tokens) or the runner id (runner-control tokens). */
  sub: string;
  /** The one repl the token is valid for. */
  repl: string;
  /** Scopes granted, such as "files", "terminals", "exec", "preview". */
  scope: string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Token id. */
  jti: string;
  /** A preview link's token: the one port it opens (with "link"). */
  port?: number;
  /** A preview link's token: the repl's link epoch when it was made; an older one is revoked. */
  link?: number;
  /**
   * A runner token's credential, for the runner's audit events: the API token id core issued it for,
   * or "session" (a browser session). Absent in tokens from before it.
   */
  tid?: string;
}

const header = b64url(Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "JWT" })));

function b64url(buf: Buffer): string {
  return buf.toString("base64url");
}

export interface TokenSigner {
  mint(claims: Omit<TokenClaims, "iat" | "exp" | "jti">, ttlSeconds: number, now?: number): string;
  readonly publicKeyPem: string;
}

export function createTokenSigner(privateKeyPem: string): TokenSigner {
  const key = createPrivateKey(privateKeyPem);
  const publicKeyPem = createPublicKey(key).export({ type: "spki", format: "pem" }).toString();
  return {
    publicKeyPem,
    mint(claims, ttlSeconds, now = Date.now()) {
      const iat = Math.floor(now / 1000);
      const full: TokenClaims = { ...claims, iat, exp: iat + ttlSeconds, jti: randomUUID() };
      const body = `${header}.${b64url(Buffer.from(JSON.stringify(full)))}`;
      return `${body}.${b64url(sign(null, Buffer.from(body), key))}`;
    },
  };
}

export interface TokenVerifier {
  /**
   * Verifies signature, audience and expiry, and that the token is for `repl`. A malformed, forged
   * or expired token is Unauthenticated; a valid token for another repl is PermissionDenied.
   */
  verify(token: string, expect: { aud: Audience; repl?: string }, now?: number): TokenClaims;
}

export function createTokenVerifier(publicKeyPem: string): TokenVerifier {
  const key: KeyObject = createPublicKey(publicKeyPem);
  return {
    verify(token, expect, now = Date.now()) {
      const parts = token.split(".");
      if (parts.length !== 3 || parts[0] !== header) throw unauthenticated("malformed access token");
      const [h, p, s] = parts;
      if (!verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"))) {
        throw unauthenticated("invalid access token");
      }
      let claims: TokenClaims;
      try {
        claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
      } catch {
        throw unauthenticated("malformed access token");
      }
      if (claims.aud !== expect.aud) throw unauthenticated("access token is not valid for this service");
      if (typeof claims.exp !== "number" || claims.exp * 1000 <= now) {
        throw unauthenticated("access token expired: ask core for a new one (StartRepl)");
      }
      if (expect.repl !== undefined && claims.repl !== expect.repl) {
        throw permissionDenied("access token is for another repl");
      }
      return claims;
    },
  };
}

/** A fresh Ed25519 key pair in PEM, for tests and for first start of the embedded setup. */
export function generateSigningKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Extracts the token from "Authorization: Bearer <token>", or undefined. */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return m?.[1];
}

export { DomainError };
