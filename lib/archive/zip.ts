/**
 * A streaming zip writer for browsers' downloads of a directory: entries are stored (not
 * compressed: the runner's CPU is the repl's), each file's content streamed between its local
 * header and a data descriptor (zip64, so sizes need not be known in advance and files past 4 GiB
 * work), with a central directory at the end, in zip64 form when the archive needs it. Memory is
 * the central directory's few dozen bytes per entry, never the content.
 */
import { crc32 } from "node:zlib";

export interface ZipEntry {
  /** "/"-separated path inside the archive (a directory's without its trailing "/"). */
  path: string;
  type: "file" | "directory" | "symlink";
  mode: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  /** A file's content. */
  content?: AsyncIterable<Uint8Array>;
  linkTarget?: string;
}

interface Central {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  external: number;
  time: number;
  date: number;
  flags: number;
}

const U32 = 0xffffffff;
const UTF8 = 0x0800;
const DESCRIPTOR = 0x0008;
const VERSION_ZIP64 = 45;
const MADE_BY_UNIX = (3 << 8) | VERSION_ZIP64;

export class ZipWriter {
  private readonly central: Central[] = [];
  /** Bytes written so far. */
  offset = 0;

  /** The bytes of one entry: local header, content and (for files) a zip64 data descriptor. */
  async *entry(e: ZipEntry): AsyncGenerator<Buffer> {
    const name = Buffer.from(e.type === "directory" ? `${e.path}/` : e.path, "utf8");
    const { time, date } = dosTime(e.mtimeMs);
    const typeBits = e.type === "directory" ? 0o040000 : e.type === "symlink" ? 0o120000 : 0o100000;
    const external = (((typeBits | (e.mode & 0o777)) << 16) | (e.type === "directory" ? 0x10 : 0)) >>> 0;
    const c: Central = { name, crc: 0, size: 0, offset: this.offset, external, time, date, flags: UTF8 };
    if (e.type !== "file") {
      const data = Buffer.from(e.linkTarget ?? "", "utf8");
      c.crc = crc32(data);
      c.size = data.length;
      yield this.out(localHeader(c, false));
      if (data.length) yield this.out(data);
      this.central.push(c);
      return;
    }
    c.flags |= DESCRIPTOR;
    yield this.out(localHeader(c, true));
    for await (const chunk of e.content ?? []) {
      c.crc = crc32(chunk, c.crc);
      c.size += chunk.length;
      yield this.out(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    }
    const d = Buffer.alloc(24);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(c.crc, 4);
    d.writeBigUInt64LE(BigInt(c.size), 8);
    d.writeBigUInt64LE(BigInt(c.size), 16);
    yield this.out(d);
    this.central.push(c);
  }

  /** The central directory and end records. */
  end(): Buffer {
    const start = this.offset;
    const parts = this.central.map((c) => this.out(centralHeader(c)));
    const size = this.offset - start;
    const count = this.central.length;
    if (count >= 0xffff || start >= U32 || size >= U32) {
      const eocd64At = this.offset;
      const z = Buffer.alloc(56);
      z.writeUInt32LE(0x06064b50, 0);
      z.writeBigUInt64LE(44n, 4);
      z.writeUInt16LE(MADE_BY_UNIX, 12);
      z.writeUInt16LE(VERSION_ZIP64, 14);
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(size), 40);
      z.writeBigUInt64LE(BigInt(start), 48);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeBigUInt64LE(BigInt(eocd64At), 8);
      loc.writeUInt32LE(1, 16);
      parts.push(this.out(z), this.out(loc));
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(Math.min(count, 0xffff), 8);
    eocd.writeUInt16LE(Math.min(count, 0xffff), 10);
    eocd.writeUInt32LE(Math.min(size, U32), 12);
    eocd.writeUInt32LE(Math.min(start, U32), 16);
    parts.push(this.out(eocd));
    return Buffer.concat(parts);
  }

  private out(b: Buffer): Buffer {
    this.offset += b.length;
    return b;
  }
}

function localHeader(c: Central, streamed: boolean): Buffer {
  // A streamed file's sizes come in its data descriptor; the zip64 extra field says they are 64-bit.
  const extra = streamed ? Buffer.alloc(20) : Buffer.alloc(0);
  if (streamed) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(16, 2);
  }
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(VERSION_ZIP64, 4);
  h.writeUInt16LE(c.flags, 6);
  h.writeUInt16LE(0, 8); // stored
  h.writeUInt16LE(c.time, 10);
  h.writeUInt16LE(c.date, 12);
  h.writeUInt32LE(streamed ? 0 : c.crc, 14);
  h.writeUInt32LE(streamed ? U32 : c.size, 18);
  h.writeUInt32LE(streamed ? U32 : c.size, 22);
  h.writeUInt16LE(c.name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, c.name, extra]);
}

function centralHeader(c: Central): Buffer {
  const big: bigint[] = [];
  if (c.size >= U32) big.push(BigInt(c.size), BigInt(c.size));
  if (c.offset >= U32) big.push(BigInt(c.offset));
  const extra = Buffer.alloc(big.length ? 4 + 8 * big.length : 0);
  if (big.length) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(8 * big.length, 2);
    for (const [i, v] of big.entries()) extra.writeBigUInt64LE(v, 4 + 8 * i);
  }
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(MADE_BY_UNIX, 4);
  h.writeUInt16LE(VERSION_ZIP64, 6);
  h.writeUInt16LE(c.flags, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt16LE(c.time, 12);
  h.writeUInt16LE(c.date, 14);
  h.writeUInt32LE(c.crc, 16);
  h.writeUInt32LE(Math.min(c.size, U32), 20);
  h.writeUInt32LE(Math.min(c.size, U32), 24);
  h.writeUInt16LE(c.name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  h.writeUInt32LE(c.external, 38);
  h.writeUInt32LE(Math.min(c.offset, U32), 42);
  return Buffer.concat([h, c.name, extra]);
}

function dosTime(ms: number): { time: number; date: number } {
  const d = new Date(Math.max(ms, Date.UTC(1980, 0, 1)));
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}
