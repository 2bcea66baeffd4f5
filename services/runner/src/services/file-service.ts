/** FileService: the workspace's files, every path through the Workspace confinement helper. */
import { constants } from "node:fs";
import { cp, lstat, mkdir, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { applyPatch, createTwoFilesPatch, parsePatch } from "diff";
import {
  CopyFileResponseSchema,
  CreateDirectoryResponseSchema,
  DeleteFileResponseSchema,
  EditFileResponseSchema,
  type FileInfo,
  type FileService,
  ListFilesResponseSchema,
  MoveFileResponseSchema,
  PatchFileResponseSchema,
  ReadFileResponseSchema,
  SearchFilesResponseSchema,
  SearchMatchSchema,
  StatFileResponseSchema,
  WatchFilesResponseSchema,
  WriteFileResponseSchema,
} from "../../../../gen/devex/runner/v1/file_pb.js";
import { alreadyExists, failedPrecondition, invalidArgument, resourceExhausted } from "../../../../lib/kit/errors.js";
import { formatBytes } from "../config.js";
import { writeAtomic } from "../workspace/atomic-write.js";
import { infoFromStats, lstatInfo, statInfo, versionOf } from "../workspace/file-info.js";
import { withFsErrors } from "../workspace/fs-errors.js";
import type { Workspace } from "../workspace/paths.js";
import { searchFiles } from "../workspace/search.js";
import { walk } from "../workspace/walk.js";
import { watchBatches } from "../workspace/watch.js";

export interface FileServiceDeps {
  workspace: Workspace;
  maxFileRead: number;
}

const DEFAULT_LIST_ENTRIES = 1000;
/** O_NONBLOCK: opening a FIFO must not hang the call (it is then refused as not a regular file). */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;
const DEFAULT_SEARCH_RESULTS = 200;

export function createFileService({ workspace: ws, maxFileRead }: FileServiceDeps): ServiceImpl<typeof FileService> {
  /** Reads a whole text file for edit/patch, within the read limit; returns content and version. */
  async function readForUpdate(input: string) {
    const { rel, abs } = await ws.resolve(input);
    return withFsErrors(rel, async () => {
      const fh = await ws.openConfined(abs, READ_FLAGS);
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) throw failedPrecondition(`"${rel}" is not a regular file`);
        if (st.size > BigInt(maxFileRead)) {
          throw resourceExhausted(
            `file is ${formatBytes(Number(st.size))}, larger than the edit limit of ${formatBytes(maxFileRead)} (DEVEX_RUNNER_MAX_FILE_READ)`,
          );
        }
        const text = (await fh.readFile()).toString("utf8");
        return { rel, abs, text, version: versionOf(st), mode: Number(st.mode & 0o7777n) };
      } finally {
        await fh.close();
      }
    });
  }

  /** Fails with FailedPrecondition unless the file at `abs` is still at `expected` (empty skips). */
  async function checkVersion(abs: string, rel: string, expected: string) {
    if (!expected) return;
    const st = await stat(abs, { bigint: true }).catch(() => undefined);
    const current = st?.isFile() ? versionOf(st) : "";
    if (current !== expected) {
      throw failedPrecondition(
        `"${rel}" changed since it was read (expected version ${expected}, now ${current || "absent"}): read it again and reapply your change`,
      );
    }
  }

  async function writeText(abs: string, rel: string, text: string, mode: number, expected: string): Promise<FileInfo> {
    await writeAtomic(ws, abs, Buffer.from(text, "utf8"), mode, () => checkVersion(abs, rel, expected));
    return lstatInfo(abs, rel);
  }

  return {
    async listFiles(req) {
      const { rel, abs } = await ws.resolve(req.path);
      return withFsErrors(rel, async () => {
        const st = await stat(abs);
        if (!st.isDirectory()) throw failedPrecondition(`"${rel || "."}" is not a directory: use StatFile`);
        const max = req.maxEntries || DEFAULT_LIST_ENTRIES;
        const entries: FileInfo[] = [];
        const options = { maxDepth: req.depth || 1, exclude: req.exclude, includeHidden: req.includeHidden };
        for await (const e of walk(abs, rel, options)) {
          if (entries.length >= max) return create(ListFilesResponseSchema, { entries, truncated: true });
          entries.push(await infoFromStats(e.abs, e.rel, e.stats));
        }
        return create(ListFilesResponseSchema, { entries, truncated: false });
      });
    },

    async statFile(req) {
      const { rel, abs } = await ws.resolveLink(req.path);
      return withFsErrors(rel, async () => create(StatFileResponseSchema, { info: await lstatInfo(abs, rel) }));
    },

    async readFile(req) {
      const { rel, abs } = await ws.resolve(req.path);
      if (req.limit > BigInt(maxFileRead)) {
        throw invalidArgument(
          `limit ${req.limit} is larger than the read limit of ${formatBytes(maxFileRead)} (${maxFileRead} bytes): read in smaller ranges`,
        );
      }
      return withFsErrors(rel, async () => {
        const fh = await ws.openConfined(abs, READ_FLAGS);
        try {
          const st = await fh.stat({ bigint: true });
          if (st.isDirectory()) throw failedPrecondition(`"${rel || "."}" is a directory: use ListFiles`);
          if (!st.isFile()) throw failedPrecondition(`"${rel}" is not a regular file (a device, socket or FIFO)`);
          const size = st.size;
          let start = req.offset < 0n ? size + req.offset : req.offset;
          if (start < 0n) start = 0n;
          if (start > size) start = size;
          const available = size - start;
          if (req.limit === 0n && available > BigInt(maxFileRead)) {
            throw resourceExhausted(
              `file is ${formatBytes(Number(size))}, larger than the read limit of ${formatBytes(maxFileRead)}: read a byte range (offset and limit)`,
            );
          }
          const want = req.limit === 0n || req.limit > available ? available : req.limit;
          const content = Buffer.alloc(Number(want));
          let got = 0;
          while (got < content.length) {
            const { bytesRead } = await fh.read(content, got, content.length - got, Number(start) + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          const info = await infoFromStats(abs, rel, st);
          return create(ReadFileResponseSchema, {
            content: content.subarray(0, got),
            info,
            offset: start,
            truncated: start + BigInt(got) < size,
          });
        } finally {
          await fh.close();
        }
      });
    },

    async writeFile(req) {
      const { rel, abs } = await ws.resolveLink(req.path);
      return withFsErrors(rel, async () => {
        if (req.createParents) await mkdirConfined(ws, rel);
        const existing = await lstat(abs).catch(() => undefined);
        if (existing?.isDirectory()) throw failedPrecondition(`"${rel}" is a directory`);
        if (req.exclusive && existing) throw alreadyExists(`"${rel}" already exists (exclusive write)`);
        const mode = req.mode || (existing?.isFile() ? existing.mode & 0o7777 : 0o644);
        await writeAtomic(ws, abs, req.content, mode, async () => {
          await checkVersion(abs, rel, req.expectedVersion);
          if (req.exclusive && (await lstat(abs).catch(() => undefined))) {
            throw alreadyExists(`"${rel}" already exists (exclusive write)`);
          }
        });
        return create(WriteFileResponseSchema, { info: await lstatInfo(abs, rel) });
      });
    },

    async editFile(req) {
      const file = await readForUpdate(req.path);
      if (req.expectedVersion && req.expectedVersion !== file.version)
        await checkVersion(file.abs, file.rel, req.expectedVersion);
      let text = file.text;
      let replacements = 0;
      req.edits.forEach((edit, i) => {
        const count = text.split(edit.oldText).length - 1;
        const which = req.edits.length > 1 ? `edit ${i + 1}: ` : "";
        if (count === 0)
          throw failedPrecondition(`${which}old_text was not found in "${file.rel}"; nothing was written`);
        if (count > 1 && !edit.replaceAll) {
          throw failedPrecondition(
            `${which}old_text occurs ${count} times in "${file.rel}": add surrounding context to make it unique or set replace_all; nothing was written`,
          );
        }
        text = text.split(edit.oldText).join(edit.newText);
        replacements += count;
      });
      const diff = createTwoFilesPatch(`a/${file.rel}`, `b/${file.rel}`, file.text, text);
      const info = req.dryRun
        ? await statInfo(file.abs, file.rel)
        : await withFsErrors(file.rel, () => writeText(file.abs, file.rel, text, file.mode, file.version));
      return create(EditFileResponseSchema, { info, diff, replacements });
    },

    async patchFile(req) {
      const patches = parsePatchSafe(req.patch);
      if (patches.length !== 1) throw invalidArgument(`patch touches ${patches.length} files: send a diff of one file`);
      const file = await readForUpdate(req.path);
      await checkVersion(file.abs, file.rel, req.expectedVersion);
      const result = applyPatch(file.text, patches[0]);
      if (result === false) {
        throw failedPrecondition(
          `the patch does not apply to "${file.rel}" (a hunk's context does not match the file); nothing was written: read the file and regenerate the diff`,
        );
      }
      const info = await withFsErrors(file.rel, () => writeText(file.abs, file.rel, result, file.mode, file.version));
      return create(PatchFileResponseSchema, { info, hunksApplied: patches[0].hunks.length });
    },

    async createDirectory(req) {
      const { rel, abs } = await ws.resolveLink(req.path);
      return withFsErrors(rel, async () => {
        if (req.parents) await mkdirConfined(ws, rel, true);
        else await mkdir(abs);
        const real = await ws.resolve(rel);
        return create(CreateDirectoryResponseSchema, { info: await lstatInfo(real.abs, rel) });
      });
    },

    async deleteFile(req) {
      const { rel, abs } = await ws.resolveLink(req.path);
      if (rel === "") throw invalidArgument("the workspace root cannot be deleted: delete its entries instead");
      return withFsErrors(rel, async () => {
        const st = await lstat(abs);
        if (!st.isDirectory()) await unlink(abs);
        else if (req.recursive) await rm(abs, { recursive: true, force: false });
        else await rmdir(abs);
        return create(DeleteFileResponseSchema, {});
      });
    },

    async moveFile(req) {
      const src = await ws.resolveLink(req.source);
      const dst = await ws.resolveLink(req.destination);
      if (src.rel === "" || dst.rel === "") throw invalidArgument("the workspace root cannot be moved or replaced");
      if (dst.rel === src.rel || dst.rel.startsWith(`${src.rel}/`)) {
        throw invalidArgument(`cannot move "${src.rel}" into itself ("${dst.rel}")`);
      }
      return withFsErrors(src.rel, async () => {
        await lstat(src.abs);
        const existing = await lstat(dst.abs).catch(() => undefined);
        if (existing && !req.overwrite) throw alreadyExists(`"${dst.rel}" already exists: set overwrite to replace it`);
        if (existing?.isDirectory()) throw failedPrecondition(`"${dst.rel}" is a directory and cannot be overwritten`);
        await withFsErrors(dst.rel, () => rename(src.abs, dst.abs));
        return create(MoveFileResponseSchema, { info: await lstatInfo(dst.abs, dst.rel) });
      });
    },

    async copyFile(req) {
      const src = await ws.resolve(req.source);
      const dst = await ws.resolveLink(req.destination);
      if (dst.rel === "") throw invalidArgument("the workspace root cannot be replaced");
      if (ws.relative(src.abs) === dst.rel || dst.rel.startsWith(`${ws.relative(src.abs)}/`)) {
        throw invalidArgument(`cannot copy "${src.rel}" into itself ("${dst.rel}")`);
      }
      return withFsErrors(src.rel, async () => {
        await stat(src.abs);
        const existing = await lstat(dst.abs).catch(() => undefined);
        if (existing && !req.overwrite) throw alreadyExists(`"${dst.rel}" already exists: set overwrite to replace it`);
        if (existing?.isSymbolicLink()) await unlink(dst.abs); // replace the link, never write through it
        // Symlinks inside a copied tree are copied as links (verbatim), never dereferenced.
        await cp(src.abs, dst.abs, {
          recursive: true,
          force: req.overwrite,
          errorOnExist: !req.overwrite,
          verbatimSymlinks: true,
        });
        return create(CopyFileResponseSchema, { info: await lstatInfo(dst.abs, dst.rel) });
      });
    },

    async searchFiles(req) {
      const { rel, abs } = await ws.resolve(req.path);
      return withFsErrors(rel, async () => {
        const r = await searchFiles({
          abs,
          rel,
          glob: req.glob,
          contentPattern: req.contentPattern,
          regex: req.regex,
          caseSensitive: req.caseSensitive,
          exclude: req.exclude,
          maxResults: req.maxResults || DEFAULT_SEARCH_RESULTS,
          maxFileBytes: maxFileRead,
        });
        return create(SearchFilesResponseSchema, {
          paths: r.paths,
          matches: r.matches.map((m) => create(SearchMatchSchema, m)),
          truncated: r.truncated,
        });
      });
    },

    async *watchFiles(req, ctx) {
      const { rel, abs } = await ws.resolve(req.path);
      const st = await withFsErrors(rel, () => stat(abs));
      if (!st.isDirectory()) throw failedPrecondition(`"${rel || "."}" is not a directory: watch its parent`);
      for await (const events of watchBatches(ws, abs, req.recursive, ctx.signal)) {
        yield create(WatchFilesResponseSchema, { events });
      }
    },
  };
}

/** mkdir -p for `rel`'s parents (or `rel` itself when `self`), checking confinement after creating. */
async function mkdirConfined(ws: Workspace, rel: string, self = false): Promise<void> {
  const dirRel = self ? rel : rel.split("/").slice(0, -1).join("/");
  const { abs } = await ws.resolve(dirRel);
  await mkdir(abs, { recursive: true });
  await ws.resolve(dirRel); // re-check: a component swapped for a symlink meanwhile is refused
}

function parsePatchSafe(patch: string) {
  try {
    return parsePatch(patch);
  } catch (e) {
    throw invalidArgument(`patch is not a unified diff: ${(e as Error).message}`);
  }
}
