/**
 * The repl's preview rules as core last sent them (RunnerControlService.WatchPreviewSharing): who
 * may open each port's preview. Until core has answered, and on a runner without core, only the
 * owner may; a broken feed keeps the last rules it had and reconnects with backoff.
 */
import {
  PreviewAccess,
  type WatchPreviewSharingResponse,
} from "../../../../gen/devex/runnercontrol/v1/runner_control_pb.js";
import type { RunnerControlClient } from "../../../../lib/client/clients.js";
import type { Logger } from "../../../../lib/kit/log.js";
import { followFeed } from "../control/feed.js";

export interface PreviewRules {
  /** Every port not in `ports`. */
  access: PreviewAccess;
  ports: ReadonlyMap<number, PreviewAccess>;
  /** Preview links with a lower "link" claim are revoked. */
  linkEpoch: number;
  /** Core's preview sign-in route, where a browser without a token is sent for a private preview. */
  signInUrl?: string;
  /** The repl's previews have an origin of their own: refuse them below a shared host's path prefix. */
  ownOrigin?: boolean;
}

export const OWNER_ONLY: PreviewRules = { access: PreviewAccess.OWNER, ports: new Map(), linkEpoch: 0 };

/** Who may open `port`'s preview under `rules`. */
export function accessOf(rules: PreviewRules, port: number): PreviewAccess {
  const a = rules.ports.get(port) ?? rules.access;
  return a === PreviewAccess.UNSPECIFIED ? PreviewAccess.OWNER : a;
}

export function rulesFrom(m: WatchPreviewSharingResponse): PreviewRules {
  return {
    access: m.access,
    ports: new Map(Object.entries(m.ports).map(([p, a]) => [Number(p), a])),
    linkEpoch: Number(m.linkEpoch),
    signInUrl: m.signInUrl || undefined,
    ownOrigin: m.ownOrigin,
  };
}

export interface PreviewSharingFeed {
  rules(): PreviewRules;
  stop(): void;
}

/** Follows core's feed of the repl's rules until stopped. */
export function followPreviewSharing(d: {
  client: RunnerControlClient;
  replId: string;
  runnerId: string;
  log: Logger;
}): PreviewSharingFeed {
  let current = OWNER_ONLY;
  const feed = followFeed({
    open: (signal) => d.client.watchPreviewSharing({ replId: d.replId, runnerId: d.runnerId }, { signal }),
    onMessage: (m) => {
      current = rulesFrom(m);
    },
    name: "preview sharing",
    log: d.log,
  });
  return { rules: () => current, stop: feed.stop };
}
