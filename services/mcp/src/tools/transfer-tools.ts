/**
 * Binary transfers for agents, bounded per call: download_file reads a byte range of any file as
 * base64 (at most 1 MiB, with the whole file's SHA-256 on the call that reaches its end, from the
 * runner's DownloadFile stream), upload_file writes up to 8 MiB through the runner's UploadFile
 * stream, checked against a SHA-256 and put in place whole or not at all.
 */
import { invalidArgument } from "../../../../lib/kit/errors.js";
import { contentBytes, toBase64 } from "./file-content.js";
import type { ToolContext, ToolImpls } from "./tool-context.js";

type TransferTools = Pick<ToolImpls, "downloadFile" | "uploadFile">;

const DEFAULT_LENGTH = 256 * 1024;
export const MAX_UPLOAD_BYTES = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;

export function transferTools({ sessions }: ToolContext): TransferTools {
  return {
    async downloadFile(req, caller, signal) {
      const { files } = await sessions.runnerOf(caller, req.replId);
      const length = req.length || DEFAULT_LENGTH;
      const stream = files.downloadFile(
        { path: req.path, offset: req.offset, limit: BigInt(length), expectedVersion: req.expectedVersion },
        { signal },
      );
      const parts: Uint8Array[] = [];
      let size = 0n;
      let version = "";
      let sha256 = "";
      for await (const m of stream) {
        if (m.info) {
          size = m.info.size;
          version = m.info.version;
        }
        if (m.chunk.length) parts.push(m.chunk);
        if (m.sha256) sha256 = m.sha256;
      }
      const bytes = Buffer.concat(parts);
      const next = req.offset + BigInt(bytes.length);
      return {
        contentBase64: toBase64(bytes),
        offset: req.offset,
        nextOffset: next,
        size,
        eof: next >= size,
        sha256,
        version,
      };
    },

    async uploadFile(req, caller, signal) {
      const standard = req.contentBase64.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/");
      const bytes = contentBytes(standard + "=".repeat((4 - (standard.length % 4)) % 4), "base64");
      if (bytes.length > MAX_UPLOAD_BYTES)
        throw invalidArgument(
          `content is ${bytes.length} bytes, more than the ${MAX_UPLOAD_BYTES} one upload_file takes`,
        );
      const { files } = await sessions.runnerOf(caller, req.replId);
      async function* requests() {
        const header = {
          path: req.path,
          overwrite: !req.createOnly,
          createParents: true,
          size: BigInt(bytes.length),
          expectedSha256: req.sha256,
        };
        yield { part: { case: "header" as const, value: header } };
        for (let at = 0; at < bytes.length; at += CHUNK)
          yield { part: { case: "chunk" as const, value: bytes.subarray(at, at + CHUNK) } };
      }
      const res = await files.uploadFile(requests(), { signal });
      return {
        path: res.info?.path ?? req.path,
        size: res.info?.size ?? BigInt(bytes.length),
        sha256: res.sha256,
        version: res.info?.version ?? "",
      };
    },
  };
}
