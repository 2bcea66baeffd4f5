/**
 * WatchPreviewSharing: a runner's feed of its repl's preview rules (repl/preview-sharing.ts), the
 * current ones first and then each change. Changes made in this process arrive at once through the
 * repl's events; a poll of the state store every second catches those made by other core processes.
 */
import { create } from "@bufbuild/protobuf";
import {
  PreviewAccess,
  type WatchPreviewSharingResponse,
  WatchPreviewSharingResponseSchema,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { ReplDeps } from "../repl/deps.js";
import { sharingOf } from "../repl/preview-sharing.js";
import type { PreviewSharing, PreviewVisibility } from "../state/store.js";

const POLL_MS = 1000;
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

export async function* watchPreviewSharing(
  deps: ReplDeps,
  replId: string,
  signal: AbortSignal,
): AsyncGenerator<WatchPreviewSharingResponse> {
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.subscribe(replId, () => wake?.());
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    let last = "";
    while (!signal.aborted) {
      const r = await deps.state.getRepl(replId);
      if (!r) return;
      const sharing = sharingOf(r);
      const key = JSON.stringify(sharing);
      if (key !== last) {
        last = key;
        yield toResponse(deps, sharing);
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, POLL_MS);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
