/** WatchPreviewSharing: a runner's feed of its repl's preview rules (repl/preview-sharing.ts), the current ones first and then each change. */
import { create } from "@bufbuild/protobuf";
import {
  PreviewAccess,
  type WatchPreviewSharingResponse,
  WatchPreviewSharingResponseSchema,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { ReplDeps } from "../repl/deps.js";
import { sharingOf } from "../repl/preview-sharing.js";
import type { PreviewSharing, PreviewVisibility } from "../state/store.js";
import { followRepl } from "./follow-repl.js";

/** The route a private preview sends a browser without a token to (auth/preview-sign-in.ts). */
export const PREVIEW_SIGN_IN_PATH = "/auth/preview";

const accessOf: Record<PreviewVisibility, PreviewAccess> = {
  private: PreviewAccess.OWNER,
  link: PreviewAccess.LINK,
  public: PreviewAccess.PUBLIC,
};

function toResponse(deps: ReplDeps, s: PreviewSharing): WatchPreviewSharingResponse {
  return create(WatchPreviewSharingResponseSchema, {
    access: accessOf[s.visibility],
    ports: Object.fromEntries(Object.entries(s.ports).map(([p, v]) => [Number(p), accessOf[v]])),
    linkEpoch: BigInt(s.linkEpoch),
    signInUrl: `${deps.publicUrl}${PREVIEW_SIGN_IN_PATH}`,
    ownOrigin: Boolean(deps.previewUrl),
  });
}

export function watchPreviewSharing(
  deps: ReplDeps,
  runner: { replId: string; runnerId: string },
  signal: AbortSignal,
): AsyncGenerator<WatchPreviewSharingResponse> {
  return followRepl(deps, runner.replId, runner.runnerId, signal, (r) => {
    const sharing = sharingOf(r);
    return { key: JSON.stringify(sharing), message: () => toResponse(deps, sharing) };
  });
}
