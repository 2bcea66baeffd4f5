/**
 * How a call ended, in words for logs that outlive it (the audit log): "ok", or the Connect error
 * code's name as Connect and gRPC spell it ("not_found"), with the message the caller got when Devex
 * wrote it. An unexpected failure is only "internal error": its text (a backend's) never gets in.
 */
import { Code } from "@connectrpc/connect";
import { toConnectError } from "./errors.js";

export const OK_OUTCOME = "ok";

export interface Outcome {
  outcome: string;
  message: string;
}

export const succeeded: Outcome = { outcome: OK_OUTCOME, message: "" };

/** "not_found" for Code.NotFound. */
export const codeName = (code: Code): string =>
  (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();

export function failureOf(err: unknown, maxMessage = 300): Outcome {
  const e = toConnectError(err);
  const message = e.code === Code.Internal ? "internal error" : e.rawMessage;
  return { outcome: codeName(e.code), message: message.slice(0, maxMessage) };
}
