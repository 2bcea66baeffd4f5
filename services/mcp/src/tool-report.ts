/**
 * What a running tool tells its caller before its result: progress notifications (only when the
 * request carried a progress token) and log messages (only at or above the level the client chose
 * with logging/setLevel; none before it chose one, so a client that never asked is not flooded).
 * Both go on the request's own stream, so a client that reconnects with Last-Event-ID gets them
 * too, in order, and before the result (the server waits for settled() before answering).
 */
import type { LoggingLevel, ServerNotification } from "@modelcontextprotocol/sdk/types.js";

const severity: Record<LoggingLevel, number> = {
  debug: 0,
  info: 1,
  notice: 2,
  warning: 3,
  error: 4,
  critical: 5,
  alert: 6,
  emergency: 7,
};

/** Log characters one tool call may send; past them one warning (if the level admits it) says the rest was left out. */
export const LOG_CHARS_PER_CALL = 1024 * 1024;

export interface ToolReport {
  /** The client asked for progress (sent a progress token). */
  readonly wantsProgress: boolean;
  /** Reports progress; a value not above the last one sent is dropped (progress must increase). */
  progress(progress: number, total?: number, message?: string): void;
  /** Whether a log message at this level would be sent (false once the call's log budget is spent). */
  logs(level: LoggingLevel): boolean;
  log(level: LoggingLevel, logger: string, data: string | Record<string, unknown>): void;
}

/** The level a client chose for one session; undefined until it chose. */
export interface LogLevelSetting {
  level: LoggingLevel | undefined;
}

export interface ToolReporter extends ToolReport {
  /** Resolves when every notification queued so far has been handed to the transport. */
  settled(): Promise<void>;
}

export function createToolReport(
  send: (n: ServerNotification) => Promise<void>,
  progressToken: string | number | undefined,
  setting: LogLevelSetting,
): ToolReporter {
  let queue = Promise.resolve();
  let lastProgress = Number.NEGATIVE_INFINITY;
  let logChars = 0;
  const enqueue = (n: ServerNotification) => {
    // One at a time, so they reach the stream in the order they were made; a failed send (client
    // gone for good) loses that notification, never the tool's result.
    queue = queue.then(() => send(n)).catch(() => {});
  };
  const logs = (level: LoggingLevel) =>
    setting.level !== undefined && severity[level] >= severity[setting.level] && logChars <= LOG_CHARS_PER_CALL;
  return {
    wantsProgress: progressToken !== undefined,
    progress(progress, total, message) {
      if (progressToken === undefined || !(progress > lastProgress)) return;
      lastProgress = progress;
      enqueue({
        method: "notifications/progress",
        params: { progressToken, progress, ...(total !== undefined && { total }), ...(message && { message }) },
      });
    },
    logs,
    log(level, logger, data) {
      if (!logs(level)) return;
      logChars += typeof data === "string" ? data.length : JSON.stringify(data).length;
      if (logChars <= LOG_CHARS_PER_CALL) {
        enqueue({ method: "notifications/message", params: { level, logger, data } });
      } else if (setting.level !== undefined && severity[setting.level] <= severity.warning) {
        const notice = `log output of this call passed ${LOG_CHARS_PER_CALL} characters; the rest is not logged (the result says how it ended)`;
        enqueue({ method: "notifications/message", params: { level: "warning", logger, data: notice } });
      }
    },
    settled: () => queue,
  };
}
