/**
 * pino loggers. Secrets never reach the logs: header values, tokens, cookies and passwords are
 * redacted by path, and `redactUrl` strips token query parameters from URLs before they are logged.
 *
 * Logs are JSON for machines, and lines for people when they go to stdout and stdout is a terminal;
 * `DEVEX_LOG_FORMAT=json|pretty` decides instead. The pretty lines are made from pino's JSON output,
 * so they show only what redaction left.
 */
import { isatty } from "node:tty";
import { type DestinationStream, type Logger, pino } from "pino";
import { prettyDestination } from "./log-pretty.js";

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

export type LogFormat = "json" | "pretty";

export interface LogOptions {
  level?: string;
  /**
   * Where to write; defaults to stdout. Tests pass a stream to inspect what was logged. A destination
   * given here gets JSON unless `format` or DEVEX_LOG_FORMAT asks for pretty lines.
   */
  destination?: DestinationStream;
  /** Overrides DEVEX_LOG_FORMAT and the terminal check. */
  format?: LogFormat;
}

export function createLogger(name: string, options: LogOptions = {}): Logger {
  const target = options.destination ?? stdout();
  const format = options.format ?? logFormat(process.env, options.destination ? false : process.stdout.isTTY === true);
  const settings = {
    name,
    level: options.level ?? process.env.DEVEX_LOG_LEVEL ?? "info",
    redact: { paths: redactPaths, censor: "[redacted]" },
    base: { service: name },
  };
  if (format === "json") return pino(settings, target);
  const logger: Logger = pino(
    settings,
    prettyDestination(target, {
      colour: coloursFor(target, process.env),
      verbose: () => logger.levelVal <= pino.levels.values.debug,
    }),
  );
  return logger;
}

/** DEVEX_LOG_FORMAT if set, else pretty for a terminal and JSON for anything else (a pipe, a file). */
export function logFormat(env: NodeJS.ProcessEnv, toTerminal: boolean): LogFormat {
  const wanted = env.DEVEX_LOG_FORMAT;
  if (wanted === "json" || wanted === "pretty") return wanted;
  if (wanted) throw new Error(`DEVEX_LOG_FORMAT must be json or pretty, not ${JSON.stringify(wanted)}`);
  return toTerminal ? "pretty" : "json";
}

/** ANSI colours only for a terminal, and not when NO_COLOR is set (https://no-color.org: set and not empty). */
function coloursFor(target: DestinationStream, env: NodeJS.ProcessEnv): boolean {
  const fd = (target as { fd?: unknown }).fd;
  return !env.NO_COLOR && typeof fd === "number" && isatty(fd);
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
