/**
 * The name a TLS connection asks for, read from its first bytes without consuming them: the server
 * name (SNI) of its ClientHello. The local egress gate (services/core/src/driver/local/network/
 * tls-gate.ts) judges a connection to port 443 by it; plain HTTP is judged per request by http-gate.ts.
 */

/** What the bytes so far say: the name, that there is none to be found, or that more bytes are needed. */
export type Sniffed = { name: string } | { none: string } | "more";

/** The most bytes read before giving up on finding a name (a ClientHello record is at most 16 KiB + 5; also the HTTP gate's head limit). */
export const SNIFF_LIMIT = 16 * 1024 + 5;

/** The server name of a TLS ClientHello (its first record). */
export function sniffTlsServerName(buf: Buffer): Sniffed {
  if (buf.length < 5) return "more";
  if (buf[0] !== 0x16) return { none: "not a TLS handshake" };
  const recordEnd = 5 + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return "more";
  const r = new Reader(buf.subarray(5, recordEnd));
  if (r.u8() !== 1) return { none: "not a ClientHello" };
  r.skip(3 + 2 + 32); // handshake length, client version, random
  r.skip(r.u8()); // session id
  r.skip(r.u16()); // cipher suites
  r.skip(r.u8()); // compression methods
  if (r.left() < 2) return { none: "no extensions" };
  const extensionsEnd = r.pos + r.u16();
  while (r.pos + 4 <= extensionsEnd && r.ok) {
    const type = r.u16();
    const len = r.u16();
    if (type !== 0) {
      r.skip(len);
      continue;
    }
    r.skip(2); // server name list length
    if (r.u8() !== 0) return { none: "no host name in the server name extension" };
    const name = r.bytes(r.u16()).toString("latin1");
    return r.ok && name ? { name } : { none: "malformed server name" };
  }
  return { none: r.ok ? "no server name (SNI)" : "malformed ClientHello" };
}

/** Bounds-checked reads; a read past the end sets `ok` false instead of throwing. */
class Reader {
  pos = 0;
  ok = true;
  constructor(private readonly b: Buffer) {}
  private take(n: number): number {
    const at = this.pos;
    this.pos += n;
    if (this.pos > this.b.length) this.ok = false;
    return at;
  }
  u8(): number {
    const at = this.take(1);
    return this.ok ? this.b[at]! : 0;
  }
  u16(): number {
    const at = this.take(2);
    return this.ok ? this.b.readUInt16BE(at) : 0;
  }
  skip(n: number): void {
    this.take(n);
  }
  bytes(n: number): Buffer {
    const at = this.take(n);
    return this.ok ? this.b.subarray(at, at + n) : Buffer.alloc(0);
  }
  left(): number {
    return this.b.length - this.pos;
  }
}
