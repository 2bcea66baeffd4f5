/**
 * File content as agents exchange it: exactly the file's bytes. Text (valid UTF-8 without NUL)
 * travels as itself, its final newline, CRLFs and byte-order mark kept; anything else travels as
 * base64, flagged by encoding "base64". write_file takes either back, so what read_file returned,
 * written back, leaves the file's bytes as they were.
 */
import { invalidArgument } from "../../../../lib/kit/errors.js";

export const encodings = ["utf-8", "base64"] as const;
export type Encoding = (typeof encodings)[number];

// fatal: invalid UTF-8 is binary rather than silently replaced; ignoreBOM: a BOM is content too.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** The bytes as text, or undefined when they are binary: not UTF-8, or holding a NUL as binary formats do. */
export function asText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** The bytes that `content` in `encoding` stands for; malformed base64 is refused, not skipped over. */
export function contentBytes(content: string, encoding: Encoding): Uint8Array {
  if (encoding === "utf-8") return utf8.encode(content);
  const compact = content.replace(/\s+/g, "");
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
    throw invalidArgument('content is not valid base64: use the standard alphabet (A-Z a-z 0-9 + /) with "=" padding');
  }
  return Buffer.from(compact, "base64");
}

/** The lines of a text, each with its own terminator ("\n", "\r\n", or none on a last line without one). */
export function linesOf(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}
