/**
 * `devex preview`: who may open a repl's previews (the default, and ports with their own setting),
 * and changing it; `devex preview-link`: a signed link to one port's preview that works without
 * signing in until it expires (or the port is made private).
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { PreviewSharing, PreviewVisibility, Repl } from "../../gen/devex/core/v1/repl_pb.js";
import type { CoreClients } from "../../lib/client/clients.js";
import { portVisibility, visibilityFromName, visibilityName } from "../../lib/contracts/preview-visibility.js";
import { UsageError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { resolveRepl } from "./repls.js";
import { formatTable } from "./table.js";

const meaning: Record<string, string> = {
  private: "you, signed in",
  link: "you, and anyone with a preview link (devex preview-link)",
  public: "anyone with the address",
};

/** "--private" etc. → the visibility to set; undefined: only show. `--default` unsets (UNSPECIFIED). */
export function visibilityFromFlags(f: { private: boolean; link: boolean; public: boolean; default: boolean }) {
  const chosen = (["private", "link", "public", "default"] as const).filter((k) => f[k]);
  if (chosen.length > 1) throw new UsageError("choose one of --private, --link, --public and --default");
  return chosen.length ? visibilityFromName[chosen[0]] : undefined;
}

export function parsePort(text: string | undefined): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError("a port is a number from 1 to 65535");
  return port;
}

/** "90s", "30m", "24h", "7d" or a number of seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s"] : Number.NaN;
  if (!(seconds >= 1 && seconds <= 30 * 86_400))
    throw new UsageError("--ttl is a duration like 30m, 24h or 7d, at most 30d");
  return seconds;
}

/** The ports with their own visibility, then every other port's; or, for one port, the one that applies to it. */
export function formatSharing(s: PreviewSharing | undefined, port?: number): string {
  const row = (label: string, v: PreviewVisibility | undefined) => [
    label,
    visibilityName(v),
    meaning[visibilityName(v)],
  ];
  const rows =
    port !== undefined
      ? [row(String(port), portVisibility(s, port))]
      : [
          ...Object.entries(s?.ports ?? {})
            .sort(([a], [b]) => Number(a) - Number(b))
            .map(([p, v]) => row(p, v)),
          row("other ports", s?.visibility),
        ];
  return formatTable(["PORT", "VISIBILITY", "WHO CAN OPEN"], rows);
}

export async function previewRepl(
  core: CoreClients,
  ref: string,
  port: number | undefined,
  visibility: PreviewVisibility | undefined,
  out: NodeJS.WritableStream,
): Promise<void> {
  let repl: Repl = await resolveRepl(core, ref);
  if (visibility !== undefined) {
    const res = await core.repls
      .setPreviewVisibility({ replId: repl.replId, port: port ?? 0, visibility })
      .catch((e) => {
        throw describeError(e, ref);
      });
    if (res.repl) repl = res.repl;
  }
  out.write(formatSharing(repl.previewSharing, visibility === undefined ? port : undefined));
}

export async function previewLink(
  core: CoreClients,
  ref: string,
  port: number,
  options: { ttlSeconds?: number; path?: string },
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<void> {
  const repl = await resolveRepl(core, ref);
  const res = await core.repls
    .createPreviewLink({
      replId: repl.replId,
      port,
      ttl: options.ttlSeconds ? { seconds: BigInt(options.ttlSeconds), nanos: 0 } : undefined,
      path: options.path ?? "",
    })
    .catch((e) => {
      throw describeError(e, ref);
    });
  const until = res.expireTime ? timestampDate(res.expireTime).toISOString() : "";
  io.stdout.write(`${res.url}\n`);
  io.stderr.write(`works until ${until}, or until port ${port} is made private\n`);
}
