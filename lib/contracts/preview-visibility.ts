/**
 * Who may open a repl's previews, as every client names it: "private", "link", "public" (and
 * "default": a port follows the repl's setting), and which setting applies to a port (its own, else
 * the repl's, else private). Core, the web client, the CLI and the MCP tools share these.
 */
import { type PreviewSharing, PreviewVisibility } from "../../gen/devex/core/v1/repl_pb.js";

export type VisibilityName = "private" | "link" | "public";

const names: Record<PreviewVisibility, VisibilityName> = {
  [PreviewVisibility.UNSPECIFIED]: "private",
  [PreviewVisibility.PRIVATE]: "private",
  [PreviewVisibility.LINK]: "link",
  [PreviewVisibility.PUBLIC]: "public",
};

/** The name of a visibility (unset reads as private: the default of a default). */
export const visibilityName = (v: PreviewVisibility | undefined): VisibilityName => names[v ?? 0] ?? "private";

/** A name as the API takes it; "default" unsets a port's own setting (or resets the repl's to private). */
export const visibilityFromName: Record<VisibilityName | "default", PreviewVisibility> = {
  private: PreviewVisibility.PRIVATE,
  link: PreviewVisibility.LINK,
  public: PreviewVisibility.PUBLIC,
  default: PreviewVisibility.UNSPECIFIED,
};

/** The visibility that applies to `port`: its own, else the repl's. */
export function portVisibility(s: PreviewSharing | undefined, port: number): PreviewVisibility {
  return s?.ports[port] || s?.visibility || PreviewVisibility.PRIVATE;
}
