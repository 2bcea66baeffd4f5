/**
 * A small streaming tar (POSIX ustar, with pax extended headers for long or non-ASCII names and
 * sizes past 8 GiB): headers are built one entry at a time and data is streamed between them, so
 * writing and reading an archive take constant memory. The reader also understands GNU long names
 * (what GNU tar writes); it parses, it never touches the disk: extraction and its confinement are
 * the caller's.
 */
import type { ByteReader } from "./byte-reader.js";

export const BLOCK = 512;

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntryHeader {
  /** The entry's path as stored ("/"-separated; a directory's may end in "/"). */
  path: string;
  type: TarEntryType;
  /** Bytes of content that follow the header (files only; 0 otherwise). */
  size: number;
  /** Unix mode bits as stored (0o7777 of them). */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** A symlink's or hard link's target. */
  linkTarget?: string;
}

export class TarFormatError extends Error {}

const typeFlags: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  directory: "5",
  other: "6", // written only by tests: a FIFO
};

/** The bytes of padding after `size` bytes of content. */
export const paddingOf = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/** The two zero blocks that end an archive. */
export const tarEnd = () => Buffer.alloc(2 * BLOCK);

const MAX_OCTAL_SIZE = 0o77777777777;

/** The header block(s) of one entry: a pax header first when ustar cannot hold its name or size. */
export function tarHeader(e: TarEntryHeader): Buffer {
  const pax: Record<string, string> = {};
  const name = e.type === "directory" && !e.path.endsWith("/") ? `${e.path}/` : e.path;
  if (Buffer.byteLength(name) > 100 || !isAscii(name)) pax.path = name;
  if (e.linkTarget && (Buffer.byteLength(e.linkTarget) > 100 || !isAscii(e.linkTarget))) pax.linkpath = e.linkTarget;
  if (e.size > MAX_OCTAL_SIZE) pax.size = String(e.size);
  const main = ustarBlock({ ...e, path: name }, e.size > MAX_OCTAL_SIZE ? 0 : e.size, typeFlags[e.type]);
  if (Object.keys(pax).length === 0) return main;
  const body = Buffer.from(
    Object.entries(pax)
      .map(([k, v]) => paxRecord(k, v))
      .join(""),
  );
  const paxName = `PaxHeaders/${asciiTail(name)}`;
  const head = ustarBlock(
    { path: paxName, type: "file", size: body.length, mode: 0o644, mtime: e.mtime },
    body.length,
    "x",
  );
  return Buffer.concat([head, body, Buffer.alloc(paddingOf(body.length)), main]);
}

function ustarBlock(e: TarEntryHeader, size: number, flag: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeText(b, 0, 100, asciiTail(e.path));
  writeOctal(b, 100, 8, e.mode & 0o7777);
  writeOctal(b, 108, 8, 0);
  writeOctal(b, 116, 8, 0);
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, Math.max(0, Math.floor(e.mtime)));
  b.fill(0x20, 148, 156); // checksum counts as spaces while it is computed
  b.write(flag, 156, "ascii");
  if (e.linkTarget) writeText(b, 157, 100, e.linkTarget);
  b.write("ustar\u000000", 257, "binary");
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "ascii");
  return b;
}

/** What fits in a ustar field: the full text when it does, else its last bytes (pax holds the full one). */
function asciiTail(s: string): string {
  const ascii = s.replace(/[^\x20-\x7e]/g, "_");
  return ascii.length > 100 ? ascii.slice(-100) : ascii;
}

function writeText(b: Buffer, at: number, len: number, s: string) {
  b.write(s.slice(0, len), at, len, "utf8");
}

function writeOctal(b: Buffer, at: number, len: number, n: number) {
  b.write(`${n.toString(8).padStart(len - 1, "0")}\u0000`, at, len, "ascii");
}

const isAscii = (s: string) => /^[\x20-\x7e]*$/.test(s);

function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLen = Buffer.byteLength(rest);
  let len = restLen + String(restLen).length;
  if (String(len).length + restLen !== len) len = restLen + String(len).length;
  return `${len}${rest}`;
}

/**
 * Metadata is held in memory until its entry: at most this much of pax and GNU long-name headers
 * per entry in all, however many there are, and only the keys an entry uses are kept.
 */
const MAX_META = 64 * 1024;
/** Longest path or link target (PATH_MAX). */
const MAX_PATH = 4096;
/** The pax keys an entry uses; the rest (comments, xattrs, global headers) are read and dropped. */
const PAX_KEYS = new Set(["path", "linkpath", "size", "mtime"]);

/**
 * Reads an archive's entries. After each entry is yielded, the caller may read its content from
 * `reader` (exactly `size` bytes, with `readContent`); whatever it left is skipped before the next.
 */
export async function* readTar(reader: ByteReader): AsyncGenerator<TarEntryHeader> {
  let pending: Record<string, string> = {};
  let meta = 0;
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length === 0) throw new TarFormatError("the archive ended without its end-of-archive blocks");
    if (block.length < BLOCK) throw new TarFormatError("the archive ended in the middle of a header");
    if (block.every((x) => x === 0)) return;
    checkSum(block);
    const flag = String.fromCharCode(block[156]);
    const size = parseNumber(block, 124, 12);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      meta += size;
      if (meta > MAX_META) throw new TarFormatError(`an entry's extended headers pass ${MAX_META} bytes`);
      const body = await exactly(reader, size);
      await exactly(reader, paddingOf(size));
      if (flag === "x") Object.assign(pending, parsePax(body));
      else if (flag === "L") pending.path = cString(body);
      else if (flag === "K") pending.linkpath = cString(body);
      continue;
    }
    const entry = headerOf(block, flag, size, pending);
    pending = {};
    meta = 0;
    if (entry.path.length > MAX_PATH || (entry.linkTarget?.length ?? 0) > MAX_PATH)
      throw new TarFormatError(`a path in the archive is longer than ${MAX_PATH} characters`);
    const start = reader.position;
    yield entry;
    const dataSize = entry.type === "file" || entry.type === "other" ? entry.size : 0;
    const left = dataSize - (reader.position - start);
    if (left < 0) throw new TarFormatError("read past an entry's content");
    if (!(await reader.skip(left + paddingOf(dataSize))))
      throw new TarFormatError(`the archive ended in the middle of "${entry.path}"`);
  }
}

function headerOf(block: Buffer, flag: string, size: number, pax: Record<string, string>): TarEntryHeader {
  const magic = block.toString("latin1", 257, 262);
  const prefix = magic === "ustar" ? cString(block.subarray(345, 500)) : "";
  const stored = cString(block.subarray(0, 100));
  const path = pax.path ?? (prefix ? `${prefix}/${stored}` : stored);
  const type: TarEntryType =
    flag === "0" || flag === "\u0000" || flag === "7"
      ? "file"
      : flag === "5"
        ? "directory"
        : flag === "2"
          ? "symlink"
          : flag === "1"
            ? "hardlink"
            : "other";
  const realSize = pax.size !== undefined ? Number(pax.size) : size;
  if (!Number.isSafeInteger(realSize) || realSize < 0) throw new TarFormatError(`"${path}" has an invalid size`);
  return {
    path,
    type: type === "file" && path.endsWith("/") ? "directory" : type,
    size: type === "file" ? realSize : type === "other" ? realSize : 0,
    mode: parseNumber(block, 100, 8) & 0o7777,
    mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) || 0 : parseNumber(block, 136, 12),
    linkTarget: pax.linkpath ?? (cString(block.subarray(157, 257)) || undefined),
  };
}

function checkSum(block: Buffer) {
  const stored = parseNumber(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  if (sum !== stored)
    throw new TarFormatError("a header's checksum does not match: this is not a tar archive, or it is damaged");
}

/** An octal field, or a base-256 one (GNU, for large values). */
function parseNumber(b: Buffer, at: number, len: number): number {
  if (b[at] & 0x80) {
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + b[i];
    return n;
  }
  const raw = b.toString("latin1", at, at + len);
  const nul = raw.indexOf("\0");
  const text = (nul < 0 ? raw : raw.slice(0, nul)).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`a header holds "${text}" where a number belongs`);
  return Number.parseInt(text, 8);
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    const len = Number(body.toString("latin1", at, space));
    if (space < 0 || !Number.isInteger(len) || len <= 0 || at + len > body.length)
      throw new TarFormatError("a pax extended header is malformed");
    const record = body.toString("utf8", space + 1, at + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0 && PAX_KEYS.has(record.slice(0, eq))) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

const cString = (b: Buffer) => {
  const end = b.indexOf(0);
  return b.toString("utf8", 0, end < 0 ? b.length : end);
};

async function exactly(reader: ByteReader, n: number): Promise<Buffer> {
  const b = await reader.read(n);
  if (b.length < n) throw new TarFormatError("the archive ended in the middle of a header");
  return b;
}

/**
 * An archive entry's path as components below the directory it is extracted into; throws for one
 * that could leave it (absolute, "..", NUL). "./" and "" give no components (the directory itself).
 */
export function entryComponents(path: string): string[] {
  if (path.includes("\0")) throw new UnsafeEntryError(`an archive entry's path holds a NUL byte`);
  if (path.startsWith("/")) throw new UnsafeEntryError(`archive entry "${path}" has an absolute path: refused`);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnsafeEntryError(`archive entry "${path}" climbs out with "..": refused`);
  return parts;
}

export class UnsafeEntryError extends Error {}

/** An entry's content, in pieces of at most `chunk` bytes; fails if the archive ends first. */
export async function* readContent(reader: ByteReader, size: number, chunk = 256 * 1024): AsyncGenerator<Buffer> {
  let left = size;
  while (left > 0) {
    const b = await reader.readSome(Math.min(left, chunk));
    if (!b) throw new TarFormatError("the archive ended in the middle of a file's content");
    left -= b.length;
    yield b;
  }
}
