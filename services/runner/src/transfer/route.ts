/**
 * The runner's HTTP transfer route (RunnerRoute.transfer) for browsers, which can neither stream a
 * gRPC response to disk nor send a client stream over HTTP/1.1: `GET /transfer/<ticket>` streams a
 * file (with its length) or a directory as a zip or tar, with Content-Disposition so the browser
 * saves it as it arrives; `PUT /transfer/<ticket>` writes the request body as a file, exactly like
 * UploadFile (a temporary file renamed into place only when the body ended with its
 * Content-Length and the ticket's SHA-256, if it named one). The ticket, from CreateTransferTicket,
 * is the only credential: single-use, a minute, one path and one operation. Answers are JSON for a
 * PUT (`{path, size, sha256}`) and failures plain text with the status of their Connect code.
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RunnerRoute } from "../../../../lib/contracts/runner-access.js";
import { DomainError } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import type { HttpRequest, HttpResponse } from "../../../../lib/kit/server.js";
import type { ActivityTracker } from "../activity.js";
import type { TransferLimits } from "../services/files/deps.js";
import { receiveFile } from "../services/files/receive.js";
import { fileChunks, heldPath, openSource } from "../services/files/send.js";
import { tarOf, zipOf } from "../workspace/archive-walk.js";
import { fsError } from "../workspace/fs-errors.js";
import type { Workspace } from "../workspace/paths.js";
import type { Ticket, TransferTickets } from "./tickets.js";

export interface TransferRouteDeps {
  workspace: Workspace;
  tickets: TransferTickets;
  limits: TransferLimits;
  activity: ActivityTracker;
  log: Logger;
}

const statusOf: Record<string, number> = {
  "invalid-argument": 400,
  "not-found": 404,
  "already-exists": 409,
  "permission-denied": 403,
  "failed-precondition": 409,
  "resource-exhausted": 413,
  "out-of-range": 416,
  "data-loss": 422,
};

/** Handles the route; false for any other request (the preview proxy's then). */
export function createTransferRoute(deps: TransferRouteDeps) {
  return async (req: HttpRequest, res: HttpResponse): Promise<boolean> => {
    const path = (req.url ?? "").split("?")[0];
    if (!path.startsWith(RunnerRoute.transfer)) return false;
    const method = req.method ?? "GET";
    const methods = (t: Ticket) => (t.operation === "download" ? ["GET"] : ["PUT", "POST"]);
    const ticket = deps.tickets.consume(path.slice(RunnerRoute.transfer.length), (t) => methods(t).includes(method));
    if (!ticket)
      return fail(res, 403, "unknown, used or expired transfer ticket: ask CreateTransferTicket for a new one");
    if (ticket === "unfit") return fail(res, 405, "this ticket is for another method (GET downloads, PUT uploads)");
    const done = deps.activity.streamOpened();
    try {
      if (ticket.operation === "download") await download(deps, ticket, res);
      else await upload(deps, ticket, req, res);
    } catch (e) {
      const err = fsError(e, ticket.path);
      if (err instanceof DomainError && statusOf[err.kind]) fail(res, statusOf[err.kind], err.message);
      else if (!res.headersSent) {
        deps.log.error({ err }, "transfer failed");
        fail(res, 500, "internal error");
      } else res.destroy();
    } finally {
      done();
    }
    return true;
  };
}

function fail(res: HttpResponse, status: number, message: string): true {
  if (res.headersSent) {
    res.destroy();
    return true;
  }
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(`${message}\n`);
  return true;
}

/** `attachment; filename*=UTF-8''…`, with an ASCII fallback. */
function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

async function download(deps: TransferRouteDeps, ticket: Ticket, res: HttpResponse) {
  const src = await openSource(deps.workspace, ticket.path);
  try {
    const name = src.rel.split("/").at(-1) || "workspace";
    const headers: Record<string, string> = { "cache-control": "no-store", "x-content-type-options": "nosniff" };
    let body: AsyncIterable<Buffer>;
    if (src.kind === "file") {
      headers["content-type"] = "application/octet-stream";
      headers["content-length"] = String(src.stats.size);
      headers["content-disposition"] = disposition(name);
      body = fileChunks(src, { offset: 0, limit: 0, expectedVersion: "" }, () => {});
    } else {
      const zip = ticket.format === "zip";
      headers["content-type"] = zip ? "application/zip" : "application/x-tar";
      headers["content-disposition"] = disposition(`${name}.${ticket.format}`);
      const o = { dir: heldPath(src.fh), exclude: [], maxEntries: deps.limits.maxArchiveEntries };
      body = zip ? zipOf(o) : tarOf(o);
    }
    // The first piece before the headers, so that a failure at the start is still an HTTP error.
    const it = body[Symbol.asyncIterator]();
    const first = await it.next();
    res.writeHead(200, headers);
    if (first.done) return void res.end();
    await pipeline(
      Readable.from(
        (async function* () {
          yield first.value;
          yield* { [Symbol.asyncIterator]: () => it };
        })(),
      ),
      res,
    );
  } finally {
    await src.fh.close();
  }
}

async function upload(deps: TransferRouteDeps, ticket: Ticket, req: HttpRequest, res: HttpResponse) {
  const length = req.headers["content-length"];
  if (length === undefined || !/^\d+$/.test(length))
    return void fail(
      res,
      411,
      "send the file with its Content-Length, so that a cut upload is told from a complete one",
    );
  const received = await receiveFile(
    deps.workspace,
    {
      path: ticket.path,
      mode: 0,
      overwrite: ticket.overwrite,
      createParents: ticket.createParents,
      size: Number(length),
      expectedSha256: ticket.expectedSha256,
    },
    req as AsyncIterable<Buffer>,
    deps.limits.maxUploadBytes,
  );
  res.writeHead(201, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify({ path: received.info.path, size: Number(received.info.size), sha256: received.sha256 }));
}
