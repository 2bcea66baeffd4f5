/**
 * What an audit event says about a call beyond its name: the repl it is about and a few attributes
 * that identify the change. Only fields listed here are read, from the request or the response, so a
 * new RPC records its repl id and nothing else until it is given its line: no request body, secret
 * or command line gets in by default (CreateApiToken's response holds the new token's secret, and a
 * preview link's response its signed URL).
 */
import { EgressMode, PreviewVisibility } from "../../../../gen/devex/core/v1/repl_pb.js";
import { fieldOf as field, fieldsOf } from "../../../../lib/kit/call-outcome.js";

type Fields = Record<string, unknown>;
type Describe = (req: Fields, res: Fields | undefined) => Record<string, string | undefined>;

const listOf = (v: unknown) => (Array.isArray(v) ? v.map(String).join(",") : undefined);
const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);

const describe: Record<string, Describe> = {
  "devex.core.v1.AuthService/CreateApiToken": (req, res) => ({
    name: str(req.name),
    scopes: listOf(field(res?.token, "scopes")) || "all",
    created_token_id: str(field(res?.token, "tokenId")),
  }),
  "devex.core.v1.AuthService/RevokeApiToken": (req) => ({ revoked_token_id: str(req.tokenId) }),
  "devex.core.v1.AuthService/ApproveDeviceLogin": (req) => ({ decision: req.approve ? "approved" : "denied" }),
  "devex.core.v1.ReplService/CreateRepl": (req) => ({ name: str(req.name), template: str(req.template) }),
  "devex.core.v1.ReplService/SaveTemplate": (req, res) => ({
    title: str(req.title),
    template: str(field(res?.template, "name")),
  }),
  "devex.core.v1.ReplService/DeleteTemplate": (req) => ({ template: str(req.name) }),
  "devex.core.v1.ReplService/SetPreviewVisibility": (req) => ({
    port: req.port ? String(req.port) : "default",
    visibility: PreviewVisibility[Number(req.visibility)]?.toLowerCase() ?? String(req.visibility),
  }),
  // Never the link itself: it opens the preview for whoever holds it.
  "devex.core.v1.ReplService/CreatePreviewLink": (req, res) => ({
    port: String(req.port),
    ttl_seconds: field(req.ttl, "seconds") === undefined ? "86400" : String(field(req.ttl, "seconds")),
    expire_time:
      typeof field(res?.expireTime, "seconds") === "bigint"
        ? new Date(Number(field(res?.expireTime, "seconds")) * 1000).toISOString()
        : undefined,
  }),
  // The name, and whether it is a secret: never the value.
  "devex.core.v1.ReplService/SetEnvironmentVariable": (req) => ({
    name: str(req.name),
    secret: String(req.secret === true),
  }),
  "devex.core.v1.ReplService/DeleteEnvironmentVariable": (req) => ({ name: str(req.name) }),
  "devex.core.v1.ReplService/SetEgressPolicy": (req) => {
    const mode = field(req.egress, "mode");
    if (typeof mode !== "number") return {};
    return { mode: mode === EgressMode.UNSPECIFIED ? "default" : (EgressMode[mode] ?? String(mode)).toLowerCase() };
  },
};

/** The repl (from the request, or the response's new repl) and the listed attributes of a call. */
export function detailsOf(
  rpc: string,
  req: unknown,
  res: unknown,
): { replId: string; details: Record<string, string> } {
  const request = fieldsOf(req);
  const response = res && typeof res === "object" ? fieldsOf(res) : undefined;
  const replId = str(request.replId) ?? str(field(response?.repl, "replId")) ?? "";
  const details: Record<string, string> = {};
  for (const [k, v] of Object.entries(describe[rpc]?.(request, response) ?? {})) if (v) details[k] = v.slice(0, 256);
  return { replId, details };
}
