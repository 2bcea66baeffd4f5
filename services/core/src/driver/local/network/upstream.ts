/**
 * The resolvers repls' names are looked up with (DEVEX_EGRESS_DNS, else /etc/resolv.conf's): core
 * forwards a repl's queries to them (resolver.ts) and resolves the names the web gate lets through
 * (web-gate.ts).
 */
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

export interface UpstreamServer {
  address: string;
  port: number;
}

/** "203.0.113.53", "203.0.113.53:5353", "2001:db8::53" or "[2001:db8::53]:5353". */
export function parseServer(text: string): UpstreamServer | undefined {
  const t = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  const [address, port] = bracketed
    ? [bracketed[1]!, bracketed[2]]
    : isIP(t)
      ? [t, undefined]
      : (t.split(/:(?=\d+$)/) as [string, string?]);
  if (!isIP(address)) return undefined;
  const n = port === undefined ? 53 : Number(port);
  return n > 0 && n < 65536 ? { address, port: n } : undefined;
}

/** The servers from DEVEX_EGRESS_DNS, else the host's resolv.conf; throws on an entry that is not one. */
export function upstreamServers(setting: string, resolvConf = "/etc/resolv.conf"): UpstreamServer[] {
  const entries = setting.trim()
    ? setting
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : readText(resolvConf)
        .split("\n")
        .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
        .filter((s): s is string => !!s);
  return entries.map((e) => {
    const s = parseServer(e);
    if (!s) throw new Error(`DEVEX_EGRESS_DNS: "${e}" is not a resolver address (address or address:port)`);
    return s;
  });
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

const serverText = (s: UpstreamServer) =>
  isIP(s.address) === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;

/** Sends a query to the servers in turn; resolves with the first answer carrying its id. */
export async function forwardQuery(servers: UpstreamServer[], query: Buffer, id: number): Promise<Buffer> {
  for (const s of servers) {
    const answer = await askOne(s, query, id).catch(() => undefined);
    if (answer) return answer;
  }
  throw new Error("no resolver answered");
}

function askOne(s: UpstreamServer, query: Buffer, id: number, timeoutMs = 2500): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(s.address) === 6 ? "udp6" : "udp4");
    const done = (err?: Error, msg?: Buffer) => {
      clearTimeout(timer);
      socket.close();
      if (msg) resolve(msg);
      else reject(err);
    };
    const timer = setTimeout(() => done(new Error("resolver timed out")), timeoutMs);
    socket.on("message", (msg, from) => {
      if (from.address === s.address && msg.length >= 12 && msg.readUInt16BE(0) === id) done(undefined, msg);
    });
    socket.on("error", (err) => done(err));
    socket.send(query, s.port, s.address);
  });
}

/** Looks names up with the upstream servers: IPv4 addresses first, then IPv6. */
export function upstreamLookup(servers: UpstreamServer[]): (name: string) => Promise<string[]> {
  const r = new Resolver({ timeout: 2500, tries: 2 });
  r.setServers(servers.map(serverText));
  return async (name) => {
    const [v4, v6] = await Promise.all([r.resolve4(name).catch(() => []), r.resolve6(name).catch(() => [])]);
    return [...v4, ...v6];
  };
}
