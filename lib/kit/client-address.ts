/**
 * The address of whoever sent a request, for audit logs. It is the connection's peer, unless the
 * service is told it runs behind a proxy it trusts (`trustProxy`): then it is the last address in
 * X-Forwarded-For, the one that proxy saw (earlier entries are whatever the client claimed). A
 * request on a Unix socket has no address: "unix". IPv4-mapped IPv6 addresses are shown as IPv4.
 * RPC handlers and interceptors read it from the context (`clientAddressKey`), which the server
 * kit's `contextValues` hook fills in (`clientAddressContext`).
 */
import { isIP } from "node:net";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";

export const clientAddressKey = createContextKey<string>("", { description: "devex.client-address" });

interface RequestLike {
  socket?: { remoteAddress?: string } | null;
  headers: Record<string, string | string[] | undefined>;
}

const plain = (address: string) => /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;

export function clientAddress(req: RequestLike, trustProxy = false): string {
  if (trustProxy) {
    const header = req.headers["x-forwarded-for"];
    const last = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").at(-1)?.trim() ?? "";
    if (isIP(last)) return plain(last);
  }
  const peer = req.socket?.remoteAddress;
  return peer ? plain(peer) : "unix";
}

/** The server kit's `contextValues` hook: every RPC's context gets the client's address. */
export function clientAddressContext(trustProxy: boolean | ((req: RequestLike) => boolean)) {
  return (req: RequestLike): ContextValues => {
    const trusted = typeof trustProxy === "function" ? trustProxy(req) : trustProxy;
    return createContextValues().set(clientAddressKey, clientAddress(req, trusted));
  };
}
