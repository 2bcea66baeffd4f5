/**
 * Moving files between the user's computer and the repl from the file explorer, over the runner's
 * ticketed HTTP route (RunnerRoute.transfer): "Download" mints a single-use ticket and lets the
 * browser GET it, so a file, or a folder as a zip, streams straight to the downloads folder; files
 * and folders dropped on the tree are sent one file at a time as a PUT of the File itself, which the
 * browser streams from disk. Why not FileService.UploadFile: Connect-web cannot send a client stream
 * over HTTP/1.1, and chunked unary calls would add a round trip and a copy per chunk plus upload
 * state on the runner; one PUT per file has the browser's own flow control and leaves nothing
 * behind when it fails (the runner writes a temporary file and renames it only when the body
 * arrived whole), so a failed file is simply sent again. Files up to 64 MiB are also checked by
 * SHA-256 (hashing needs the whole file in memory here; larger ones rely on Content-Length).
 */
import { ArchiveFormat, TransferOperation } from "../../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../../lib/client/clients.js";
import { confirmAction, describeError, toast } from "../ui.js";
import { joinPath } from "./paths.js";

const HASHED_UP_TO = 64 * 1024 * 1024;

export interface TransferHost {
  files: RunnerClients["files"];
  /** The runner's base URL (RunnerAccess.url), where the ticket's path is requested. */
  runnerUrl(): string;
}

/** Saves a file, or a folder as a zip, through the browser's own download. */
export async function downloadPath(host: TransferHost, path: string): Promise<void> {
  try {
    const t = await host.files.createTransferTicket({
      path,
      operation: TransferOperation.DOWNLOAD,
      format: ArchiveFormat.ZIP,
    });
    const a = document.createElement("a");
    a.href = `${host.runnerUrl()}${t.path}`;
    a.download = t.fileName;
    a.rel = "noopener";
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    toast(`Could not download ${path || "the workspace"}: ${describeError(err)}`, "error");
  }
}

interface Dropped {
  /** Path below the drop folder, "/"-separated. */
  rel: string;
  file: File;
}

/** The files of a drop, folders walked (webkitGetAsEntry), with their paths below the drop. */
export async function droppedFiles(data: DataTransfer): Promise<Dropped[]> {
  const entries = [...data.items]
    .map((i) => (i.kind === "file" ? i.webkitGetAsEntry() : null))
    .filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) return [...data.files].map((file) => ({ rel: file.name, file }));
  const out: Dropped[] = [];
  for (const e of entries) await collect(e, e.name, out);
  return out;
}

async function collect(entry: FileSystemEntry, rel: string, out: Dropped[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ rel, file });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return;
    for (const child of batch) await collect(child, `${rel}/${child.name}`, out);
  }
}

async function sha256Hex(file: File): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** PUTs one file with progress; resolves with the runner's answer, rejects with its message. */
function put(url: string, file: File, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded);
    xhr.onload = () =>
      xhr.status === 201 ? resolve() : reject(new Error(xhr.responseText.trim() || `HTTP ${xhr.status}`));
    xhr.onerror = () => reject(new Error("the connection broke; nothing was written: drop the file again"));
    xhr.send(file);
  });
}

/**
 * Uploads what was dropped into folder `dir`, asking before it replaces what is there; `status`
 * shows the progress. Returns the paths written.
 */
export async function uploadDropped(
  host: TransferHost,
  dir: string,
  dropped: Dropped[],
  status: (text: string) => void,
): Promise<string[]> {
  const tops = new Set(dropped.map((d) => d.rel.split("/")[0]));
  // The folder's listing, not a StatFile per name: a browser logs every NotFound answer as an error.
  const listed = await host.files.listFiles({ path: dir, depth: 1, includeHidden: true, maxEntries: 100_000 });
  const existing = listed.entries.map((e) => e.name).filter((n) => tops.has(n));
  if (
    existing.length &&
    !(await confirmAction(
      "Replace?",
      `${existing.join(", ")} already exist${existing.length > 1 ? "" : "s"} in ${dir || "the workspace"}: replace the files dropped?`,
      "Replace",
    ))
  )
    return [];
  const total = dropped.reduce((n, d) => n + d.file.size, 0);
  let done = 0;
  const written: string[] = [];
  for (const [i, d] of dropped.entries()) {
    const path = joinPath(dir, d.rel);
    const expectedSha256 = d.file.size <= HASHED_UP_TO ? await sha256Hex(d.file) : "";
    try {
      const t = await host.files.createTransferTicket({
        path,
        operation: TransferOperation.UPLOAD,
        overwrite: true,
        createParents: true,
        expectedSha256,
      });
      await put(`${host.runnerUrl()}${t.path}`, d.file, (sent) =>
        status(`Uploading ${i + 1}/${dropped.length}: ${Math.floor((100 * (done + sent)) / Math.max(total, 1))}%`),
      );
      written.push(path);
    } catch (err) {
      toast(`Could not upload ${path}: ${describeError(err)}`, "error");
    }
    done += d.file.size;
  }
  status("");
  return written;
}
