/**
 * The CLI's one error boundary: every failure becomes one actionable line on stderr and an exit
 * code (1 for failures, 2 for usage errors). Tokens and stack traces are never printed.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { CliError } from "./cli-error.js";

/** What to tell the user about an error from core or a runner; `subject` names what was asked for. */
export function describeError(err: unknown, subject?: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ConnectError) return new CliError(connectMessage(err, subject));
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ECONNRESET")
    return new CliError(`cannot reach the Devex server (${code}): check the URL given to devex login`);
  return new CliError(`unexpected error: ${redact(err instanceof Error ? err.message : String(err))}`);
}

function connectMessage(err: ConnectError, subject?: string): string {
  const detail = redact(err.rawMessage);
  switch (err.code) {
    case Code.Unauthenticated:
      return "not logged in or the token is invalid or expired: run devex login";
    case Code.PermissionDenied:
      return `permission denied: ${detail}`;
    case Code.NotFound:
      return subject ? `no repl ${subject} (see devex ls)` : `not found: ${detail}`;
    case Code.InvalidArgument:
      return `invalid argument: ${detail}`;
    case Code.AlreadyExists:
      return `already exists: ${detail}`;
    case Code.FailedPrecondition:
      return `cannot do that now: ${detail}`;
    case Code.ResourceExhausted:
      return `quota or limit reached: ${detail}`;
    case Code.DeadlineExceeded:
      return "timed out: try again";
    case Code.Unavailable:
      return `the Devex server is unavailable (${detail}): check the URL and try again`;
    case Code.Canceled:
      return "canceled";
    case Code.DataLoss:
      return `the transfer was damaged, nothing was written: ${detail}`;
    case Code.OutOfRange:
      return `out of range: ${detail}`;
    default:
      return `server error: ${detail}`;
  }
}

/** Strips anything that looks like a Devex API or runner token. */
export function redact(text: string): string {
  return text.replace(/(dvx_|bearer\.)[A-Za-z0-9._~+/=-]+/gi, "$1…").replace(/eyJ[A-Za-z0-9._-]{20,}/g, "…");
}
