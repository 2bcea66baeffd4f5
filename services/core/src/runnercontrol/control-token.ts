/**
 * A runner's control credential (aud "runner-control"): minted when its repl starts, and renewed
 * through Heartbeat once past half its lifetime, so a repl that runs for weeks keeps reporting
 * while each credential still expires.
 */
import { Audience } from "../../../../lib/contracts/runner-access.js";
import type { TokenSigner } from "../../../../lib/kit/tokens.js";
import type { RunnerPrincipal } from "../auth/principal.js";

export const CONTROL_TOKEN_TTL_SECONDS = 7 * 24 * 3600;

export function mintControlToken(signer: TokenSigner, runnerId: string, replId: string, now?: number): string {
  return signer.mint(
    { aud: Audience.runnerControl, sub: runnerId, repl: replId, scope: [] },
    CONTROL_TOKEN_TTL_SECONDS,
    now,
  );
}

/** A new credential for the caller when the one it used is past half its life; else undefined. */
export function renewedControlToken(
  signer: TokenSigner,
  caller: RunnerPrincipal,
  now = Date.now(),
): string | undefined {
  if (caller.expireTime - now > (CONTROL_TOKEN_TTL_SECONDS * 1000) / 2) return undefined;
  return mintControlToken(signer, caller.runnerId, caller.replId, now);
}
