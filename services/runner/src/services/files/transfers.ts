/**
 * FileService's streaming transfers: UploadFile and DownloadFile for single files of any size,
 * DownloadArchive and UploadArchive for directories as tar, and CreateTransferTicket for the HTTP
 * route browsers use (transfer/route.ts). Memory is constant: chunks are written or read as they
 * come, archives are produced while walking and extracted while reading.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  ArchiveFormat,
  type CreateTransferTicketRequest,
  CreateTransferTicketResponseSchema,
  DownloadArchiveResponseSchema,
  DownloadFileResponseSchema,
  type FileService,
  TransferOperation,
  type UploadArchiveRequest,
  UploadArchiveResponseSchema,
  type UploadFileRequest,
  UploadFileResponseSchema,
} from "../../../../../gen/devex/runner/v1/file_pb.js";
import { rechunk } from "../../../../../lib/archive/byte-reader.js";
import { RunnerRoute, RunnerScope } from "../../../../../lib/contracts/runner-access.js";
import { dataLoss, invalidArgument, permissionDenied } from "../../../../../lib/kit/errors.js";
import { principalKey } from "../../auth.js";
import { CHUNK, tarOf } from "../../workspace/archive-walk.js";
import { closeFd, DIR_FLAGS, openFd } from "../../workspace/confined-fs.js";
import { extractTar } from "../../workspace/extract.js";
import { withFsErrors } from "../../workspace/fs-errors.js";
import type { FileServiceDeps } from "./deps.js";
import { receiveFile } from "./receive.js";
import { fileChunks, heldPath, openSource } from "./send.js";

type Transfers = Pick<
  ServiceImpl<typeof FileService>,
  "uploadFile" | "downloadFile" | "downloadArchive" | "uploadArchive" | "createTransferTicket"
>;

/** A client stream's header (its first message) and the rest, as content chunks. */
async function headerAndChunks<H>(
  stream: AsyncIterable<UploadFileRequest | UploadArchiveRequest>,
  rpc: string,
): Promise<{ header: H; chunks: AsyncIterable<Uint8Array>; trailer: () => string | undefined }> {
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done || first.value.part.case !== "header")
    throw invalidArgument(`${rpc}'s first message must be its header (path and options), then the content's chunks`);
  let trailer: string | undefined;
  async function* chunks() {
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      const part = next.value.part;
      if (trailer !== undefined) throw invalidArgument(`${rpc}: nothing may follow the trailer`);
      if (part.case === "chunk") yield part.value;
      else if (part.case === "trailer") trailer = part.value.sha256;
      else throw invalidArgument(`${rpc}: the header came twice; send it once, first`);
    }
  }
  return { header: first.value.part.value as H, chunks: chunks(), trailer: () => trailer };
}

/** The directory `path` (made with its parents when missing), held open for an extraction. */
async function openTargetDir(deps: FileServiceDeps, path: string): Promise<number> {
  return deps.workspace.at(path, { follow: "all", createParents: true }, async (loc) => {
    if (loc.name !== ".")
      await mkdir(loc.path, 0o755).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
      });
    return openFd(loc.path, DIR_FLAGS);
  });
}

export function fileTransfers(deps: FileServiceDeps): Transfers {
  const { workspace: ws, transfer } = deps;
  return {
    async uploadFile(stream) {
      const { header: h, chunks, trailer } = await headerAndChunks<UploadFileHeaderShape>(stream, "UploadFile");
      const received = await receiveFile(
        ws,
        {
          path: h.path,
          mode: h.mode,
          overwrite: h.overwrite,
          createParents: h.createParents,
          size: h.size === undefined ? undefined : Number(h.size),
          expectedSha256: h.expectedSha256,
          trailerSha256: trailer,
        },
        chunks,
        transfer.maxUploadBytes,
      );
      return create(UploadFileResponseSchema, received);
    },

    async *downloadFile(req) {
      const src = await openSource(ws, req.path);
      try {
        if (src.kind !== "file") throw invalidArgument(`"${src.rel || "."}" is a directory: use DownloadArchive`);
        let sha256: string | undefined;
        const range = { offset: Number(req.offset), limit: Number(req.limit), expectedVersion: req.expectedVersion };
        let first = true;
        for await (const chunk of fileChunks(src, range, (d) => (sha256 = d))) {
          yield create(DownloadFileResponseSchema, { info: first ? src.info : undefined, chunk });
          first = false;
        }
        yield create(DownloadFileResponseSchema, { info: first ? src.info : undefined, sha256: sha256 ?? "" });
      } finally {
        await src.fh.close();
      }
    },

    async *downloadArchive(req) {
      const src = await openSource(ws, req.path);
      try {
        if (src.kind !== "directory") throw invalidArgument(`"${src.rel}" is a file: use DownloadFile`);
        const hash = createHash("sha256");
        let entries = 0;
        const tar = tarOf({
          dir: heldPath(src.fh),
          exclude: req.exclude,
          maxEntries: transfer.maxArchiveEntries,
          onEntries: (n) => (entries = n),
        });
        for await (const chunk of rechunk(tar, CHUNK)) {
          hash.update(chunk);
          yield create(DownloadArchiveResponseSchema, { chunk });
        }
        yield create(DownloadArchiveResponseSchema, { sha256: hash.digest("hex"), entries: BigInt(entries) });
      } finally {
        await src.fh.close();
      }
    },

    async uploadArchive(stream) {
      const { header: h, chunks } = await headerAndChunks<UploadArchiveHeaderShape>(stream, "UploadArchive");
      const rootFd = await openTargetDir(deps, h.path);
      try {
        const hash = createHash("sha256");
        async function* hashed() {
          for await (const c of chunks) {
            hash.update(c);
            yield c;
          }
        }
        const limits = { maxEntries: transfer.maxArchiveEntries, maxBytes: transfer.maxUploadBytes };
        const result = await withFsErrors(h.path, () =>
          extractTar(hashed(), rootFd, { overwrite: h.overwrite, limits }),
        );
        const sha256 = hash.digest("hex");
        if (h.expectedSha256 && h.expectedSha256 !== sha256)
          throw dataLoss(
            `the archive's SHA-256 is ${sha256}, not the expected ${h.expectedSha256}: its entries were extracted, check them`,
          );
        return create(UploadArchiveResponseSchema, {
          ...result,
          files: BigInt(result.files),
          directories: BigInt(result.directories),
          symlinks: BigInt(result.symlinks),
          bytes: BigInt(result.bytes),
          sha256,
        });
      } finally {
        await closeFd(rootFd);
      }
    },

    createTransferTicket: (req, ctx: HandlerContext) => mintTicket(deps, req, ctx),
  };
}

/** CreateTransferTicket: a download ticket for any reader, an upload ticket only with the "files" scope. */
async function mintTicket(deps: FileServiceDeps, req: CreateTransferTicketRequest, ctx: HandlerContext) {
  const ws = deps.workspace;
  const upload = req.operation === TransferOperation.UPLOAD;
  const scopes = ctx.values.get(principalKey)?.scope ?? [];
  if (upload && !scopes.includes(RunnerScope.files))
    throw permissionDenied(`access token lacks the "${RunnerScope.files}" scope (its API token may not change files)`);
  const rel = ws.normalize(req.path);
  if (upload && rel === "") throw invalidArgument("an upload ticket names the file to write, not the workspace root");
  let fileName = rel.split("/").at(-1) || "workspace";
  const format = req.format === ArchiveFormat.TAR ? "tar" : "zip";
  if (!upload) {
    const src = await openSource(ws, req.path);
    await src.fh.close();
    if (src.kind === "directory") fileName += `.${format}`;
  }
  const { id, expiresAt } = deps.tickets.mint({
    operation: upload ? "upload" : "download",
    path: req.path,
    format,
    overwrite: req.overwrite,
    createParents: req.createParents,
    expectedSha256: req.expectedSha256,
  });
  return create(CreateTransferTicketResponseSchema, {
    path: `${RunnerRoute.transfer}${id}`,
    expireTime: timestampFromMs(expiresAt),
    fileName,
  });
}

type UploadFileHeaderShape = Extract<UploadFileRequest["part"], { case: "header" }>["value"];
type UploadArchiveHeaderShape = Extract<UploadArchiveRequest["part"], { case: "header" }>["value"];
