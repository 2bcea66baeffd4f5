/** The preview tool: the URL at which a port of the repl is served through its runner's preview proxy. */
import type { ToolContext, ToolImpls } from "./tool-context.js";

export function previewTools({ sessions }: ToolContext): Pick<ToolImpls, "getPreviewUrl"> {
  return {
    async getPreviewUrl(req, caller) {
      const session = await sessions.sessionOf(caller, req.replId);
      return { url: session.previewUrl(req.port) };
    },
  };
}
