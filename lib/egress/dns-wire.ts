/**
 * Just enough of the DNS wire format (RFC 1035) for a repl's resolver to judge a query and the
 * upstream's answer: the question's name and type, the addresses (A and AAAA) and their TTLs in the
 * answer section, and a reply of its own (no answers, or a refusal) built from the query.
 */

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const RCODE_NXDOMAIN = 3;
const CLASS_IN = 1;

export interface Question {
  id: number;
  name: string;
  type: number;
  /** Where the question section ends (the header and the first question). */
  end: number;
}

export interface AnswerAddress {
  address: string;
  ttl: number;
}

/** Reads a possibly compressed name at `at`; returns it and where the name's bytes end in place. */
function readName(msg: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = at;
  let end = -1;
  let length = 0;
  for (let jumps = 0; ; ) {
    const len = msg[pos];
    if (len === undefined) throw new Error("truncated name");
    if (len === 0) return { name: labels.join("."), end: end < 0 ? pos + 1 : end };
    if ((len & 0xc0) === 0xc0) {
      // Each pointer must lead somewhere new; 127 is more than any valid name needs.
      if (++jumps > 127) throw new Error("name compression loop");
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | (msg[pos + 1] ?? 0);
      continue;
    }
    if (pos + 1 + len > msg.length) throw new Error("truncated label");
    length += len + 1;
    if (length > 255) throw new Error("name too long");
    labels.push(msg.toString("latin1", pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

/**
 * The question of a lookup; undefined for anything else. A lookup is a standard query (QR 0, opcode
 * 0) of class IN with one question, no answer or authority records and at most one additional
 * record (EDNS's OPT): UPDATE, NOTIFY, CHAOS-class queries and the like never reach the upstream.
 */
export function readQuestion(msg: Buffer): Question | undefined {
  try {
    if (msg.length < 12 || (msg[2]! & 0xf8) !== 0) return undefined;
    const [questions, answers, authority, additional] = [4, 6, 8, 10].map((at) => msg.readUInt16BE(at));
    if (questions !== 1 || answers !== 0 || authority !== 0 || additional! > 1) return undefined;
    const { name, end } = readName(msg, 12);
    if (end + 4 > msg.length || msg.readUInt16BE(end + 2) !== CLASS_IN) return undefined;
    return { id: msg.readUInt16BE(0), name: name.toLowerCase(), type: msg.readUInt16BE(end), end: end + 4 };
  } catch {
    return undefined;
  }
}

/** The A and AAAA addresses of a response's answer section (CNAMEs and the rest skipped). */
export function answerAddresses(msg: Buffer): AnswerAddress[] {
  const out: AnswerAddress[] = [];
  const questions = msg.readUInt16BE(4);
  const answers = msg.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < questions; i++) pos = readName(msg, pos).end + 4;
  for (let i = 0; i < answers; i++) {
    pos = readName(msg, pos).end;
    const type = msg.readUInt16BE(pos);
    const ttl = msg.readUInt32BE(pos + 4);
    const len = msg.readUInt16BE(pos + 8);
    const data = msg.subarray(pos + 10, pos + 10 + len);
    if (data.length !== len) throw new Error("truncated record");
    if (type === TYPE_A && len === 4) out.push({ address: [...data].join("."), ttl });
    if (type === TYPE_AAAA && len === 16) out.push({ address: ipv6Text(data), ttl });
    pos += 10 + len;
  }
  return out;
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(":");
}

/** A reply to `query` with no records: NOERROR and empty (rcode 0) or NXDOMAIN (3). */
export function emptyReply(query: Buffer, q: Question, rcode: number): Buffer {
  const reply = Buffer.from(query.subarray(0, q.end));
  // QR=1 (a response), keep opcode and RD, RA=1, the rcode; one question, no records.
  reply[2] = 0x80 | (query[2]! & 0x79);
  reply[3] = 0x80 | (rcode & 0x0f);
  reply.writeUInt16BE(1, 4);
  reply.writeUInt32BE(0, 6);
  reply.writeUInt16BE(0, 10);
  return reply;
}
