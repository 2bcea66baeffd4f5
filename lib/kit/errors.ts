/**
 * Domain errors and the one boundary that maps them to Connect codes. Handlers throw DomainError
 * (through the helpers below) with a message a user can act on. Anything else — a Redis, S3 or
 * Kubernetes error, a bug — is logged with its stack and reaches the client only as
 * `Internal: internal error (ref <id>)`, so no backend detail leaks.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";

export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "permission-denied"
  | "unauthenticated"
  | "resource-exhausted"
  | "failed-precondition"
  | "aborted"
  | "unavailable"
  | "deadline-exceeded"
  | "cancelled"
  | "data-loss"
  | "out-of-range";

const codes: Record<ErrorKind, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "not-found": Code.NotFound,
  "already-exists": Code.AlreadyExists,
  "permission-denied": Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  "resource-exhausted": Code.ResourceExhausted,
  "failed-precondition": Code.FailedPrecondition,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  "deadline-exceeded": Code.DeadlineExceeded,
  cancelled: Code.Canceled,
  "data-loss": Code.DataLoss,
  "out-of-range": Code.OutOfRange,
};

/** An expected failure whose message is safe and useful to show the caller. */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DomainError";
  }
}

const make = (kind: ErrorKind) => (message: string, cause?: unknown) => new DomainError(kind, message, { cause });
export const invalidArgument = make("invalid-argument");
export const notFound = make("not-found");
export const alreadyExists = make("already-exists");
export const permissionDenied = make("permission-denied");
export const unauthenticated = make("unauthenticated");
export const resourceExhausted = make("resource-exhausted");
export const failedPrecondition = make("failed-precondition");
export const aborted = make("aborted");
export const unavailable = make("unavailable");
export const deadlineExceeded = make("deadline-exceeded");
export const cancelled = make("cancelled");
export const dataLoss = make("data-loss");
export const outOfRange = make("out-of-range");

/** Whether an error is a DomainError of the given kind. */
export function isKind(err: unknown, kind: ErrorKind): err is DomainError {
  return err instanceof DomainError && err.kind === kind;
}

/**
 * Maps any thrown value to a ConnectError that is safe to send. DomainErrors keep their message;
 * ConnectErrors raised by Connect itself (deadline, cancel, malformed request) pass through;
 * everything else becomes Internal with a reference id that also appears in the log.
 */
export function toConnectError(err: unknown, log?: Logger): ConnectError {
  if (err instanceof DomainError) return new ConnectError(err.message, codes[err.kind]);
  if (err instanceof ConnectError && err.code !== Code.Unknown && err.code !== Code.Internal) return err;
  if (isAbort(err)) return new ConnectError("the request was cancelled", Code.Canceled);
  const ref = randomUUID().slice(0, 8);
  log?.error({ err, ref }, "internal error");
  return new ConnectError(`internal error (ref ${ref})`, Code.Internal);
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR");
}

/** The per-service error boundary: every handler's failure, unary or streaming, goes through toConnectError. */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: guardStream(res.message, log) };
    } catch (e) {
      throw toConnectError(e, log);
    }
  };
}

async function* guardStream<T>(it: AsyncIterable<T>, log: Logger): AsyncIterable<T> {
  try {
    yield* it;
  } catch (e) {
    throw toConnectError(e, log);
  }
}
