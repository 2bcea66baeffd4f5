/**
 * pino loggers. Secrets never reach the logs: header values, tokens, cookies and passwords are
 * redacted by path, and `redactUrl` strips token query parameters from URLs before they are logged.
 */
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger } from "pino";

const redactPaths = [
  "authorization",
  "cookie",
  "token",
  "secret",
  "password",
  "*.authorization",
  "*.cookie",
  "*.token",
  "*.secret",
  "*.password",
  "*.accessToken",
  "*.access_token",
  "headers.authorization",
  "headers.cookie",
  "headers['sec-websocket-protocol']",
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['sec-websocket-protocol']",
];

export interface LogOptions {
  level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to inspect what was logged. */
  destination?: DestinationStream;
}

export function createLogger(name: string, options: LogOptions = {}): Logger {
  return pino(
    {
      name,
      level: options.level ?? process.env.DEVEX_LOG_LEVEL ?? "info",
      redact: { paths: redactPaths, censor: "[redacted]" },
      base: { service: name },
    },
    options.destination ?? stdout(),
  );
}

/**
 * stdout, written synchronously. pino's default buffers and flushes at exit, where sonic-boom retries
 * a write failing with EIO or EPIPE forever: a service whose terminal was closed (or whose reader
 * was killed) never exited. A failed write now turns logging off instead.
 */
function stdout(): DestinationStream {
  const stream = pino.destination({ fd: 1, sync: true });
  stream.on("error", () => {
    stream.write = () => true;
  });
  return stream;
}

const secretParams = /([?&](?:token|access_token|secret|code|state)=)[^&#]*/gi;

/** Returns the URL with the values of token-like query parameters replaced, for logging. */
export function redactUrl(url: string): string {
  return url.replace(secretParams, "$1[redacted]");
}
