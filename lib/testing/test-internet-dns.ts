/**
 * The test internet's DNS answers, hand-written (RFC 1035, only what a stub resolver asks): A
 * queries for names in the table get their address, other types of a known name get an empty
 * answer, unknown names NXDOMAIN. No dependency, so the resolver the repls reach is one we can read.
 */

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_FORMAT_ERROR = 1;
const RCODE_NXDOMAIN = 3;

export interface DnsQuestion {
  id: number;
  name: string;
  type: number;
  /** The question section's bytes, echoed in the answer. */
  section: Buffer;
}

/** The first question of a query, or undefined when the bytes are not a query. */
export function parseQuery(msg: Buffer): DnsQuestion | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1 || msg[2]! & 0x80) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at]!;
    if (len > 63 || at + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString("latin1"));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return undefined;
  const end = at + 5;
  return {
    id: msg.readUInt16BE(0),
    name: labels.join(".").toLowerCase(),
    type: msg.readUInt16BE(at + 1),
    section: msg.subarray(12, end),
  };
}

/** The response to `msg` from `table` (name → IPv4 address); a format error for what is not a query. */
export function answer(msg: Buffer, table: Record<string, string>): Buffer {
  const q = parseQuery(msg);
  if (!q) return header(msg.length >= 2 ? msg.readUInt16BE(0) : 0, RCODE_FORMAT_ERROR, 0, 0);
  const address = table[q.name];
  if (address === undefined) return Buffer.concat([header(q.id, RCODE_NXDOMAIN, 1, 0), q.section]);
  if (q.type !== TYPE_A) return Buffer.concat([header(q.id, 0, 1, 0), q.section]);
  const record = Buffer.alloc(16);
  record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  record.writeUInt16BE(TYPE_A, 2);
  record.writeUInt16BE(CLASS_IN, 4);
  record.writeUInt32BE(5, 6); // TTL: short, so a test's policy change is not hidden by a cache
  record.writeUInt16BE(4, 10);
  Buffer.from(address.split(".").map(Number)).copy(record, 12);
  return Buffer.concat([header(q.id, 0, 1, 1), q.section, record]);
}

function header(id: number, rcode: number, questions: number, answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x8180 | rcode, 2); // a response, recursion desired and available
  h.writeUInt16BE(questions, 4);
  h.writeUInt16BE(answers, 6);
  return h;
}
