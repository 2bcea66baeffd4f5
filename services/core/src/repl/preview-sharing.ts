/**
 * Preview sharing: who may open a repl's previews (private: the owner; link: also holders of an
 * unexpired preview link; public: anyone), as a default and per-port exceptions. Core stores it on
 * the repl and streams it to the repl's runner (runnercontrol/preview-sharing.ts), whose preview
 * proxy enforces it, so it works the same behind core's proxy and behind a Kubernetes ingress.
 *
 * A preview link is a runner token (aud "runner", scope "preview") that also names its port and the
 * repl's link epoch: making a preview private raises the epoch, which revokes every earlier link.
 */
import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import {
  type PreviewSharing as PreviewSharingProto,
  PreviewSharingSchema,
  PreviewVisibility as Visibility,
} from "../../../../gen/devex/core/v1/repl_pb.js";
import { visibilityFromName, visibilityName } from "../../../../lib/contracts/preview-visibility.js";
import { Audience, PREVIEW_SCOPES, RunnerRoute } from "../../../../lib/contracts/runner-access.js";
import { failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import type { PreviewSharing, PreviewVisibility, ReplRecord } from "../state/store.js";
import { getOwned } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { previewOriginFor } from "./preview-origin.js";
import { changeSetting } from "./settings.js";

const DEFAULT_LINK_TTL_MS = 24 * 3600_000;

export const PRIVATE: PreviewSharing = { visibility: "private", ports: {}, linkEpoch: 0 };

export const sharingOf = (r: ReplRecord): PreviewSharing => r.previewSharing ?? PRIVATE;

/** The visibility that applies to one port. */
export const visibilityOf = (s: PreviewSharing, port: number): PreviewVisibility =>
  s.ports[String(port)] ?? s.visibility;

export function sharingToProto(s: PreviewSharing): PreviewSharingProto {
  return create(PreviewSharingSchema, {
    visibility: visibilityFromName[s.visibility],
    ports: Object.fromEntries(Object.entries(s.ports).map(([p, v]) => [Number(p), visibilityFromName[v]])),
  });
}

/** The sharing after setting `port` (0: the default) to `visibility` (undefined: unset). */
export function withVisibility(
  s: PreviewSharing,
  port: number,
  visibility: PreviewVisibility | undefined,
): PreviewSharing {
  const ports = { ...s.ports };
  let def = s.visibility;
  if (port === 0) def = visibility ?? "private";
  else if (visibility) ports[String(port)] = visibility;
  else delete ports[String(port)];
  const next = { visibility: def, ports, linkEpoch: s.linkEpoch };
  // A preview that was shared and is not any more: its links, and every older one, stop working.
  const revoked = [0, ...Object.keys(s.ports).map(Number), port].some(
    (p) => visibilityOf(s, p) !== "private" && visibilityOf(next, p) === "private",
  );
  if (revoked) next.linkEpoch = s.linkEpoch + 1;
  return next;
}

export async function setPreviewVisibility(
  deps: ReplDeps,
  userId: string,
  replId: string,
  port: number,
  visibility: Visibility,
  signal: AbortSignal,
): Promise<ReplRecord> {
  // The runner's sharing stream sees the change through the repl's events (or its poll).
  return changeSetting(deps, userId, replId, signal, (current) => ({
    previewSharing: withVisibility(
      sharingOf(current),
      port,
      visibility === Visibility.UNSPECIFIED ? undefined : visibilityName(visibility),
    ),
  }));
}

/**
 * Where a repl's previews are served: its own preview origin (preview-origin.ts), or, where no
 * preview origin is configured (Kubernetes without DEVEX_K8S_PREVIEW_BASE_URL), below its runner's URL.
 */
export function previewRootOf(deps: Pick<ReplDeps, "previewUrl">, replId: string, runnerUrl: string): string {
  return deps.previewUrl ? previewOriginFor(deps.previewUrl, replId) : runnerUrl.replace(/\/+$/, "");
}

/** previewRootOf for a repl by id: without a preview origin, it must be running. */
export async function previewRoot(deps: ReplDeps, replId: string): Promise<string> {
  if (deps.previewUrl) return previewOriginFor(deps.previewUrl, replId);
  const session = await deps.state.getActiveSession(replId);
  if (!session) throw failedPrecondition(`repl ${replId} is not running: start it, then share its preview`);
  return previewRootOf(deps, replId, session.url);
}

/**
 * A page of one port's preview with a token: `path` stays below that port's root. Dot segments
 * (also percent-encoded) and backslashes are refused: the URL parser would resolve them into
 * another port's, or another repl's, preview and hand it the token.
 */
export function previewPageUrl(root: string, port: number, path: string, token: string): string {
  const portRoot = `${root}${RunnerRoute.preview}${port}/`;
  const pathOnly = (path || "/").split("?")[0].replace(/%2e/gi, ".");
  if (
    !pathOnly.startsWith("/") ||
    pathOnly.includes("\\") ||
    /%5c/i.test(pathOnly) ||
    pathOnly.split("/").some((s) => s === "." || s === "..")
  ) {
    throw invalidArgument(
      `path ${JSON.stringify(path)} must be a page below the preview: start with / and use no . or .. segments`,
    );
  }
  const url = new URL(`${portRoot}${(path || "/").slice(1)}`);
  if (url.origin !== new URL(portRoot).origin || !url.pathname.startsWith(new URL(portRoot).pathname)) {
    throw invalidArgument(`path ${JSON.stringify(path)} must be a page below the preview`);
  }
  url.searchParams.set("token", token);
  return url.toString();
}

export async function createPreviewLink(
  deps: ReplDeps,
  userId: string,
  req: { replId: string; port: number; ttl?: Duration; path: string },
): Promise<{ url: string; expireTime: number }> {
  const r = await getOwned(deps, userId, req.replId);
  const sharing = sharingOf(r);
  if (visibilityOf(sharing, req.port) === "private") {
    throw failedPrecondition(
      `port ${req.port} of repl ${req.replId} is private: share it by link first (SetPreviewVisibility, or "devex preview ${req.replId} ${req.port} --link")`,
    );
  }
  const ttlMs = req.ttl ? Number(req.ttl.seconds) * 1000 + Math.floor(req.ttl.nanos / 1e6) : DEFAULT_LINK_TTL_MS;
  const ttlSeconds = Math.max(1, Math.round(ttlMs / 1000));
  const now = Date.now();
  const claims = { aud: Audience.runner, sub: userId, repl: req.replId, scope: PREVIEW_SCOPES };
  const token = deps.signer.mint({ ...claims, port: req.port, link: sharing.linkEpoch }, ttlSeconds, now);
  const url = previewPageUrl(await previewRoot(deps, req.replId), req.port, req.path, token);
  // The token's own expiry: whole seconds from the second it was minted in.
  return { url, expireTime: (Math.floor(now / 1000) + ttlSeconds) * 1000 };
}
