/**
 * A file read shaped for an agent: a text file's requested lines, or a binary file as base64, cut at
 * the read limit. A cut read has no version: written back with one, it would replace the file by
 * its first part.
 */
import type { ReadFileRequest } from "../../../../gen/devex/mcp/v1/agent_tools_pb.js";
import type { ReadFileResponse as RunnerReadFileResponse } from "../../../../gen/devex/runner/v1/file_pb.js";
import { failedPrecondition } from "../../../../lib/kit/errors.js";
import { asText, linesOf, toBase64 } from "./file-content.js";
import { head } from "./output.js";

/** The read_file result for what the runner read. */
export function readResult(req: ReadFileRequest, res: RunnerReadFileResponse, readChars: number) {
  const text = asText(res.content);
  const read = text === undefined ? binaryRead(req, res, readChars) : textRead(req, text, readChars);
  const cut = head(read.content, read.max, "content");
  const partial = [cut.note, res.truncated ? "the file is larger than the runner's read limit" : ""].filter(Boolean);
  const whole = partial.length === 0;
  return {
    content: cut.text,
    encoding: read.encoding,
    totalLines: read.totalLines,
    version: whole ? (res.info?.version ?? "") : "",
    note: whole
      ? ""
      : `${partial.join("; ")}: ${read.seeMore}. This is not the whole file, so no version is given: writing it back would cut the file`,
  };
}

/** One file of read_multiple_files: its text cut at `max` characters with a note, or why it was not read. */
export function oneOfMany(path: string, res: RunnerReadFileResponse, max: number) {
  const text = asText(res.content);
  if (text === undefined) return { path, error: `a binary file (${res.info?.size} bytes): use read_file` };
  const cut = head(text, max, "content");
  return { path, content: cut.note ? `${cut.text}\n[${cut.note}]` : cut.text };
}

/** A text file's requested lines, exactly: each line keeps its own terminator. */
function textRead(req: ReadFileRequest, text: string, readChars: number) {
  const all = linesOf(text);
  let lines = all;
  if (req.startLine || req.endLine) lines = all.slice(Math.max(0, req.startLine - 1), req.endLine || undefined);
  else if (req.head) lines = all.slice(0, req.head);
  else if (req.tail) lines = all.slice(-req.tail);
  const seeMore = "read a line range (start_line/end_line) to see more";
  return { content: lines.join(""), encoding: "utf-8", totalLines: all.length, max: readChars, seeMore } as const;
}

/** A binary file, whole, as base64; a cut at a multiple of 4 characters still decodes to its first bytes. */
function binaryRead(req: ReadFileRequest, res: RunnerReadFileResponse, readChars: number) {
  if (req.head || req.tail || req.startLine || req.endLine) {
    throw failedPrecondition(
      `${req.path} is a binary file (${res.info?.size} bytes): read it without head, tail or a line range to get it as base64`,
    );
  }
  const max = readChars - (readChars % 4);
  return {
    content: toBase64(res.content),
    encoding: "base64",
    totalLines: 0,
    max,
    seeMore: "not the whole file",
  } as const;
}
