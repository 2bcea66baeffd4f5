/**
 * Log lines for people: a pino destination that turns each JSON record pino writes (after redaction)
 * into `HH:MM:SS.mmm LEVEL name message key=value …`. Anything a record carries that came from outside
 * (messages, values, keys) is shown with its control characters escaped, so a logged string cannot draw
 * on the terminal or forge a line of its own.
 */
import type { DestinationStream } from "pino";

export interface PrettyOptions {
  /** ANSI colours (for a terminal). */
  colour: boolean;
  /** Whether errors below `error` level show their stack too (the logger is at debug or trace). */
  verbose: () => boolean;
}

/** A destination that writes each of pino's JSON lines to `target` reformatted for people. */
export function prettyDestination(target: DestinationStream, options: PrettyOptions): DestinationStream {
  return { write: (chunk: string) => target.write(formatLines(chunk, options)) };
}

/** Reformats newline-separated pino JSON; a line that is not a JSON record passes through as it is. */
export function formatLines(chunk: string, options: PrettyOptions): string {
  let out = "";
  for (const line of chunk.split("\n")) {
    if (line === "") continue;
    const record = parseRecord(line);
    out += record ? formatRecord(record, options) : `${line}\n`;
  }
  return out;
}

export type LogRecord = Record<string, unknown>;

const levels: Record<number, { name: string; colour: string }> = {
  10: { name: "TRACE", colour: "90" },
  20: { name: "DEBUG", colour: "34" },
  30: { name: "INFO", colour: "32" },
  40: { name: "WARN", colour: "33" },
  50: { name: "ERROR", colour: "31" },
  60: { name: "FATAL", colour: "1;41" },
};
const errorLevel = 50;
/** pino's own fields, shown in the line's fixed columns or not at all (`service` repeats `name`). */
const headerKeys = new Set(["level", "time", "msg", "name", "pid", "hostname", "v"]);

/** One record as one line, plus the indented stack of its `err` where that is wanted. */
export function formatRecord(record: LogRecord, options: PrettyOptions): string {
  const paint = (code: string, text: string) => (options.colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  const levelValue = typeof record.level === "number" ? record.level : 30;
  const level = levels[levelValue] ?? { name: String(record.level), colour: "0" };
  const parts = [paint("2", clock(record.time)), paint(level.colour, level.name.padEnd(5))];
  if (typeof record.name === "string") parts.push(paint("36", visible(record.name)));
  if (record.msg !== undefined) parts.push(visible(String(record.msg)));
  let stack: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (headerKeys.has(key) || (key === "service" && value === record.name)) continue;
    if (key === "err" && isSerializedError(value)) {
      parts.push(...errorFields(value).map(([k, v]) => `${paint("2", `${visible(k)}=`)}${v}`));
      stack = value.stack;
      continue;
    }
    parts.push(`${paint("2", `${visible(key)}=`)}${formatValue(value)}`);
  }
  let out = `${parts.join(" ")}\n`;
  if (stack && (levelValue >= errorLevel || options.verbose())) out += indent(stackBody(stack));
  return out;
}

/** A value as it reads after `key=`: bare when that is unambiguous, quoted when not, objects as compact JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return needsQuotes(value) ? visible(JSON.stringify(value)) : value;
  if (value === null || typeof value !== "object") return String(value);
  return visible(JSON.stringify(value));
}

interface SerializedError {
  type?: string;
  message: string;
  stack?: string;
  [extra: string]: unknown;
}

/** pino's err serializer output: `{type, message, stack, …own properties}`. */
function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === "object" && value !== null && typeof (value as SerializedError).message === "string";
}

/** `err="Type: message"`, then its other properties (code, errno, …) as `err.code=…`. */
function errorFields(err: SerializedError): Array<[string, string]> {
  const { type, message, stack: _stack, ...extra } = err;
  const fields: Array<[string, string]> = [["err", formatValue(type ? `${type}: ${message}` : message)]];
  for (const [k, v] of Object.entries(extra)) fields.push([`err.${k}`, formatValue(v)]);
  return fields;
}

/** The stack from its first frame: the lines above it repeat the type and message already on the record's line. */
function stackBody(stack: string): string {
  const lines = stack.split("\n");
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  return lines.slice(firstFrame === -1 ? 1 : firstFrame).join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => `    ${visible(line.trim())}\n`)
    .join("");
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds.
const controls = /[\u0000-\u001f\u007f-\u009f]/g;

function needsQuotes(s: string): boolean {
  return s === "" || /[\s"'=]/.test(s) || visible(s) !== s;
}
const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** The text with control characters (C0, DEL, C1: newlines and terminal escapes) written as escapes. */
export function visible(text: string): string {
  return text.replace(controls, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Local wall-clock time of the record as HH:MM:SS.mmm. */
function clock(time: unknown): string {
  const d = typeof time === "number" || typeof time === "string" ? new Date(time) : new Date();
  const t = Number.isNaN(d.getTime()) ? new Date() : d;
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, "0")}`;
}

function parseRecord(line: string): LogRecord | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}
