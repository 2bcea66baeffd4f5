/**
 * `devex cp <local> <repl>:<path>` and `devex cp <repl>:<path> <local>`, folders with -r: files
 * through the runner's UploadFile and DownloadFile streams, folders as tar through UploadArchive
 * and DownloadArchive, in constant memory whatever the size. Every file is checked end to end: an
 * upload sends the SHA-256 it computed while reading (the runner renames its file into place only if
 * they match), a download compares the runner's digest of the whole file with its own before it
 * renames its temporary file into place. A download whose connection breaks resumes where it
 * stopped (a few times); an upload that breaks leaves nothing on the runner and fails with a message.
 * gRPC (HTTP/2) where it gets through, Connect over HTTP/1.1 otherwise (transport.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { FileType } from "../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../lib/client/clients.js";
import { CliError, UsageError } from "./cli-error.js";
import { describeError } from "./errors.js";
import { extractLocal, localTar, treeSize } from "./local-tree.js";
import { Progress } from "./progress.js";
import { begun, type RunnerLink } from "./transport.js";

export type Place = { kind: "local"; path: string } | { kind: "remote"; repl: string; path: string };

/** `<repl>:<path>` names a repl's path (a repl id or name has no "/"); anything else is local (`./a:b`). */
export function parsePlace(arg: string): Place {
  const m = /^([^/:]+):(.*)$/s.exec(arg);
  if (m) return { kind: "remote", repl: m[1], path: m[2] };
  return { kind: "local", path: arg };
}

export interface CpOptions {
  recursive: boolean;
}

export interface CpIo {
  stderr: NodeJS.WriteStream;
}

const CHUNK = 1024 * 1024;
const RESUMES = 3;

type Remote = Extract<Place, { kind: "remote" }>;

/** The remote path's kind, or undefined when it does not exist. */
async function remoteType(files: RunnerClients["files"], path: string): Promise<FileType | undefined> {
  try {
    return (await files.statFile({ path })).info?.type;
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.NotFound) return undefined;
    throw e;
  }
}

export async function uploadPath(link: RunnerLink, local: string, to: Remote, o: CpOptions, io: CpIo): Promise<string> {
  const st = await stat(local).catch(() => {
    throw new CliError(`${local}: no such file or directory`);
  });
  const files = link.session.clients.files;
  const type = await remoteType(files, to.path).catch((e) => {
    throw describeError(e);
  });
  const intoDir = to.path === "" || to.path.endsWith("/") || type === FileType.DIRECTORY;
  if (st.isDirectory()) {
    if (!o.recursive) throw new UsageError(`${local} is a directory: use cp -r`);
    // cp -r: into an existing directory as its own name; to a new path as that path
    const prefix = intoDir ? basename(local) : "";
    const total = await treeSize(local);
    const progress = new Progress(io.stderr, basename(local), total);
    const res = await link.call(async (c) => {
      const tar = localTar(local, prefix, (n) => progress.add(n));
      return c.files.uploadArchive(archiveRequests(to.path || ".", tar));
    });
    progress.finish();
    return `${res.files} files (${res.bytes} bytes) to ${to.repl}:${posix.join(to.path || ".", prefix)}`;
  }
  if (!st.isFile()) throw new CliError(`${local} is not a regular file`);
  const path = intoDir ? posix.join(to.path, basename(local)) : to.path;
  const progress = new Progress(io.stderr, basename(local), st.size);
  let digest = "";
  const res = await link.call(async (c) => {
    const hash = createHash("sha256");
    async function* requests() {
      yield {
        part: {
          case: "header" as const,
          value: { path, overwrite: true, createParents: true, size: BigInt(st.size), mode: st.mode & 0o777 },
        },
      };
      for await (const chunk of createReadStream(local, { highWaterMark: CHUNK })) {
        hash.update(chunk as Buffer);
        progress.add((chunk as Buffer).length);
        yield { part: { case: "chunk" as const, value: chunk as Buffer } };
      }
      digest = hash.digest("hex");
      yield { part: { case: "trailer" as const, value: { sha256: digest } } };
    }
    return c.files.uploadFile(requests());
  });
  progress.finish();
  if (res.sha256 !== digest) throw new CliError(`the runner stored SHA-256 ${res.sha256}, not ${digest}: upload again`);
  return `${st.size} bytes to ${to.repl}:${path} (sha256 ${digest})`;
}

async function* archiveRequests(path: string, tar: AsyncIterable<Buffer>) {
  yield { part: { case: "header" as const, value: { path, overwrite: true } } };
  for await (const chunk of rechunked(tar)) yield { part: { case: "chunk" as const, value: chunk } };
}

/** Tar pieces (headers are 512 bytes) regrouped into ~1 MiB messages. */
async function* rechunked(tar: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const b of tar) {
    parts.push(b);
    size += b.length;
    if (size >= CHUNK) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size) yield Buffer.concat(parts, size);
}

export async function downloadPath(
  link: RunnerLink,
  from: Remote,
  local: string,
  o: CpOptions,
  io: CpIo,
): Promise<string> {
  const type = await remoteType(link.session.clients.files, from.path).catch((e) => {
    throw describeError(e);
  });
  if (type === undefined) throw new CliError(`${from.repl}:${from.path}: no such file or directory`);
  const localSt = await lstat(local).catch(() => undefined);
  const name = posix.basename(from.path) || "workspace";
  if (type === FileType.DIRECTORY) {
    if (!o.recursive) throw new UsageError(`${from.repl}:${from.path} is a directory: use cp -r`);
    const dest = localSt?.isDirectory() ? join(local, name) : local;
    const progress = new Progress(io.stderr, name, undefined);
    const files = await link.call(async (c) => {
      let digest = "";
      const hash = createHash("sha256");
      async function* bytes() {
        for await (const m of c.files.downloadArchive({ path: from.path })) {
          hash.update(m.chunk);
          if (m.sha256) digest = m.sha256;
          yield m.chunk;
        }
      }
      const n = await extractLocal(bytes(), dest, (k) => progress.add(k));
      if (digest !== hash.digest("hex"))
        throw new CliError("the archive's SHA-256 does not match the runner's: copy again");
      return n;
    });
    progress.finish();
    return `${files} files to ${dest}`;
  }
  const target = localSt?.isDirectory() ? join(local, name) : local;
  return downloadFile(link, from, target, io);
}

async function downloadFile(link: RunnerLink, from: Remote, target: string, io: CpIo): Promise<string> {
  const temp = join(dirname(target), `.${basename(target)}.devex-${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(temp, "wx", 0o644).catch((e: NodeJS.ErrnoException) => {
    throw new CliError(`cannot write ${target}: ${e.code}`);
  });
  const hash = createHash("sha256");
  let offset = 0;
  let version = "";
  let size = 0;
  let digest = "";
  let progress: Progress | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const request = { path: from.path, offset: BigInt(offset), expectedVersion: version };
        const stream = await link.call((c) => begun(c.files.downloadFile(request)));
        for await (const m of stream) {
          if (m.info && !version) {
            version = m.info.version;
            size = Number(m.info.size);
            progress = new Progress(io.stderr, basename(target), size);
          }
          if (m.chunk.length) {
            await fh.write(m.chunk);
            hash.update(m.chunk);
            offset += m.chunk.length;
            progress?.add(m.chunk.length);
          }
          if (m.sha256) digest = m.sha256;
        }
        break;
      } catch (e) {
        // a broken connection (not an answer from the runner) resumes at the offset reached
        const broken = !(e instanceof ConnectError) || e.code === Code.Unavailable || e.code === Code.Internal;
        if (!broken || attempt >= RESUMES || !version) throw describeError(e);
        io.stderr.write(`devex: the download broke at ${offset} bytes; resuming\n`);
      }
    }
    progress?.finish();
    await fh.close();
    const mine = hash.digest("hex");
    if (offset !== size || digest !== mine)
      throw new CliError(
        `the download's SHA-256 ${mine} does not match the runner's ${digest || "(none)"}: copy again`,
      );
    await rename(temp, target);
    return `${size} bytes to ${target} (sha256 ${mine})`;
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw e;
  }
}

export async function ensureLocalParent(path: string) {
  await mkdir(dirname(path), { recursive: true });
}
