/**
 * The preview tools: the URL at which a port of the repl is served through its runner's preview
 * proxy, who may open it, and links that open it for others (core's preview sharing).
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Repl } from "../../../../gen/devex/core/v1/repl_pb.js";
import { portVisibility, visibilityFromName, visibilityName } from "../../../../lib/contracts/preview-visibility.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type PreviewTools = Pick<ToolImpls, "getPreviewUrl" | "setPreviewVisibility" | "createPreviewLink">;

function sharing(repl: Repl | undefined) {
  const s = repl?.previewSharing;
  return {
    visibility: visibilityName(s?.visibility),
    ports: Object.entries(s?.ports ?? {}).map(([port, v]) => ({ port: Number(port), visibility: visibilityName(v) })),
  };
}

export function previewTools({ core, sessions }: ToolContext): PreviewTools {
  return {
    async getPreviewUrl(req, caller) {
      const session = await sessions.sessionOf(caller, req.replId);
      const repl = await sessions.getRepl(caller, req.replId);
      return {
        url: session.previewUrl(req.port),
        visibility: visibilityName(portVisibility(repl?.previewSharing, req.port)),
      };
    },
    async setPreviewVisibility(req, caller) {
      await sessions.getRepl(caller, req.replId);
      const { repl } = await core(caller).repls.setPreviewVisibility({
        replId: req.replId,
        port: req.port,
        visibility: visibilityFromName[req.visibility as keyof typeof visibilityFromName],
      });
      return sharing(repl);
    },
    async createPreviewLink(req, caller) {
      await sessions.getRepl(caller, req.replId);
      const res = await core(caller).repls.createPreviewLink({
        replId: req.replId,
        port: req.port,
        ttl: req.ttlSeconds ? { seconds: BigInt(req.ttlSeconds), nanos: 0 } : undefined,
        path: req.path,
      });
      return { url: res.url, expireTime: res.expireTime ? timestampDate(res.expireTime).toISOString() : "" };
    },
  };
}
