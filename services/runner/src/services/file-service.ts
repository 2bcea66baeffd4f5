/**
 * FileService: the workspace's files. Every path goes through `Workspace.at`, and every operation
 * acts on the confined location it hands out (a parent directory descriptor and a name), never on
 * a path string that a swapped symlink could redirect.
 */
import { lstat, mkdir, open, rename, rmdir, unlink } from "node:fs/promises";
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
import { copyTreeAt, READ_FLAGS, removeTreeAt } from "../workspace/confined-fs.js";
import { infoFromStats, lstatInfo, versionOf } from "../workspace/file-info.js";
import type { AtOptions, Location, Workspace } from "../workspace/paths.js";
import { searchFiles } from "../workspace/search.js";
import { walk } from "../workspace/walk.js";
import { watchBatches } from "../workspace/watch.js";

export interface FileServiceDeps {
  workspace: Workspace;
  maxFileRead: number;
}

const DEFAULT_LIST_ENTRIES = 1000;
const DEFAULT_SEARCH_RESULTS = 200;
/** What a path names: reads follow a final symlink (confined); entry operations act on the link itself. */
const TARGET: AtOptions = { follow: "all" };
const ENTRY: AtOptions = { follow: "parents" };

export function createFileService({ workspace: ws, maxFileRead }: FileServiceDeps): ServiceImpl<typeof FileService> {
  /** Reads a whole text file for edit/patch, within the read limit; returns content and version. */
  async function readForUpdate(loc: Location) {
    const fh = await open(loc.path, READ_FLAGS);
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw failedPrecondition(`"${loc.rel}" is not a regular file`);
      if (st.size > BigInt(maxFileRead)) {
        throw resourceExhausted(
          `file is ${formatBytes(Number(st.size))}, larger than the edit limit of ${formatBytes(maxFileRead)} (DEVEX_RUNNER_MAX_FILE_READ)`,
        );
      }
      const text = (await fh.readFile()).toString("utf8");
      return { text, version: versionOf(st), mode: Number(st.mode & 0o7777n) };
    } finally {
      await fh.close();
    }
  }

  /** Fails with FailedPrecondition unless the file at `loc` is still at `expected` (empty skips). */
  async function checkVersion(loc: Location, expected: string) {
    if (!expected) return;
    const st = await lstat(loc.path, { bigint: true }).catch(() => undefined);
    const current = st?.isFile() ? versionOf(st) : "";
    if (current !== expected) {
      throw failedPrecondition(
        `"${loc.rel}" changed since it was read (expected version ${expected}, now ${current || "absent"}): read it again and reapply your change`,
      );
    }
  }

  async function writeText(loc: Location, text: string, mode: number, expected: string): Promise<FileInfo> {
    await writeAtomic(loc, Buffer.from(text, "utf8"), mode, () => checkVersion(loc, expected));
    return lstatInfo(loc.path, loc.rel);
  }

  return {
    async listFiles(req) {
      return ws.at(req.path, TARGET, async (loc) => {
        const max = req.maxEntries || DEFAULT_LIST_ENTRIES;
        const entries: FileInfo[] = [];
        const options = { maxDepth: req.depth || 1, exclude: req.exclude, includeHidden: req.includeHidden };
        try {
          for await (const e of walk(loc.path, loc.rel, options)) {
            if (entries.length >= max) return create(ListFilesResponseSchema, { entries, truncated: true });
            entries.push(await infoFromStats(e.abs, e.rel, e.stats));
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOTDIR") throw e;
          throw failedPrecondition(`"${loc.rel || "."}" is not a directory: use StatFile`);
        }
        return create(ListFilesResponseSchema, { entries, truncated: false });
      });
    },

    async statFile(req) {
      return ws.at(req.path, ENTRY, async (loc) =>
        create(StatFileResponseSchema, { info: await lstatInfo(loc.path, loc.rel) }),
      );
    },

    async readFile(req) {
      ws.normalize(req.path);
      if (req.limit > BigInt(maxFileRead)) {
        throw invalidArgument(
          `limit ${req.limit} is larger than the read limit of ${formatBytes(maxFileRead)} (${maxFileRead} bytes): read in smaller ranges`,
        );
      }
      return ws.at(req.path, TARGET, async (loc) => {
        const fh = await open(loc.path, READ_FLAGS);
        try {
          const st = await fh.stat({ bigint: true });
          if (st.isDirectory()) throw failedPrecondition(`"${loc.rel || "."}" is a directory: use ListFiles`);
          if (!st.isFile()) throw failedPrecondition(`"${loc.rel}" is not a regular file (a device, socket or FIFO)`);
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
          return create(ReadFileResponseSchema, {
            content: content.subarray(0, got),
            info: await infoFromStats(loc.path, loc.rel, st),
            offset: start,
            truncated: start + BigInt(got) < size,
          });
        } finally {
          await fh.close();
        }
      });
    },

    async writeFile(req) {
      return ws.at(req.path, { ...ENTRY, createParents: req.createParents }, async (loc) => {
        const existing = await lstat(loc.path).catch(() => undefined);
        if (existing?.isDirectory()) throw failedPrecondition(`"${loc.rel}" is a directory`);
        if (req.exclusive && existing) throw alreadyExists(`"${loc.rel}" already exists (exclusive write)`);
        const mode = req.mode || (existing?.isFile() ? existing.mode & 0o7777 : 0o644);
        await writeAtomic(loc, req.content, mode, async () => {
          await checkVersion(loc, req.expectedVersion);
          if (req.exclusive && (await lstat(loc.path).catch(() => undefined))) {
            throw alreadyExists(`"${loc.rel}" already exists (exclusive write)`);
          }
        });
        return create(WriteFileResponseSchema, { info: await lstatInfo(loc.path, loc.rel) });
      });
    },

    async editFile(req) {
      return ws.at(req.path, TARGET, async (loc) => {
        const file = await readForUpdate(loc);
        if (req.expectedVersion && req.expectedVersion !== file.version) await checkVersion(loc, req.expectedVersion);
        let text = file.text;
        let replacements = 0;
        req.edits.forEach((edit, i) => {
          const count = text.split(edit.oldText).length - 1;
          const which = req.edits.length > 1 ? `edit ${i + 1}: ` : "";
          if (count === 0)
            throw failedPrecondition(`${which}old_text was not found in "${loc.rel}"; nothing was written`);
          if (count > 1 && !edit.replaceAll) {
            throw failedPrecondition(
              `${which}old_text occurs ${count} times in "${loc.rel}": add surrounding context to make it unique or set replace_all; nothing was written`,
            );
          }
          text = text.split(edit.oldText).join(edit.newText);
          replacements += count;
        });
        const diff = createTwoFilesPatch(`a/${loc.rel}`, `b/${loc.rel}`, file.text, text);
        const info = req.dryRun
          ? await lstatInfo(loc.path, loc.rel)
          : await writeText(loc, text, file.mode, file.version);
        return create(EditFileResponseSchema, { info, diff, replacements });
      });
    },

    async patchFile(req) {
      const patches = parsePatchSafe(req.patch);
      if (patches.length !== 1) throw invalidArgument(`patch touches ${patches.length} files: send a diff of one file`);
      return ws.at(req.path, TARGET, async (loc) => {
        const file = await readForUpdate(loc);
        await checkVersion(loc, req.expectedVersion);
        const result = applyPatch(file.text, patches[0]);
        if (result === false) {
          throw failedPrecondition(
            `the patch does not apply to "${loc.rel}" (a hunk's context does not match the file); nothing was written: read the file and regenerate the diff`,
          );
        }
        const info = await writeText(loc, result, file.mode, file.version);
        return create(PatchFileResponseSchema, { info, hunksApplied: patches[0].hunks.length });
      });
    },

    async createDirectory(req) {
      return ws.at(req.path, { ...ENTRY, createParents: req.parents }, async (loc) => {
        await mkdir(loc.path).catch(async (e: NodeJS.ErrnoException) => {
          // mkdir -p: an existing directory is fine
          if (!(req.parents && e.code === "EEXIST" && (await lstat(loc.path)).isDirectory())) throw e;
        });
        return create(CreateDirectoryResponseSchema, { info: await lstatInfo(loc.path, loc.rel) });
      });
    },

    async deleteFile(req) {
      if (ws.normalize(req.path) === "") {
        throw invalidArgument("the workspace root cannot be deleted: delete its entries instead");
      }
      return ws.at(req.path, ENTRY, async (loc) => {
        const st = await lstat(loc.path);
        if (!st.isDirectory()) await unlink(loc.path);
        else if (req.recursive) await removeTreeAt(loc.dir, loc.name);
        else await rmdir(loc.path);
        return create(DeleteFileResponseSchema, {});
      });
    },

    async moveFile(req) {
      const srcRel = ws.normalize(req.source);
      const dstRel = ws.normalize(req.destination);
      if (srcRel === "" || dstRel === "") throw invalidArgument("the workspace root cannot be moved or replaced");
      if (dstRel === srcRel || dstRel.startsWith(`${srcRel}/`)) {
        throw invalidArgument(`cannot move "${srcRel}" into itself ("${dstRel}")`);
      }
      return ws.at(req.source, ENTRY, async (src) => {
        await lstat(src.path);
        return ws.at(req.destination, ENTRY, async (dst) => {
          const existing = await lstat(dst.path).catch(() => undefined);
          if (existing && !req.overwrite)
            throw alreadyExists(`"${dst.rel}" already exists: set overwrite to replace it`);
          if (existing?.isDirectory())
            throw failedPrecondition(`"${dst.rel}" is a directory and cannot be overwritten`);
          await rename(src.path, dst.path); // both ends held by their parents' descriptors
          return create(MoveFileResponseSchema, { info: await lstatInfo(dst.path, dst.rel) });
        });
      });
    },

    async copyFile(req) {
      return ws.at(req.source, TARGET, async (src) => {
        await lstat(src.path);
        return ws.at(req.destination, ENTRY, async (dst) => {
          if (dst.rel === "") throw invalidArgument("the workspace root cannot be replaced");
          const into = src.realRel === "" || dst.realRel === src.realRel || dst.realRel.startsWith(`${src.realRel}/`);
          if (into) throw invalidArgument(`cannot copy "${src.rel}" into itself ("${dst.rel}")`);
          const existing = await lstat(dst.path).catch(() => undefined);
          if (existing && !req.overwrite)
            throw alreadyExists(`"${dst.rel}" already exists: set overwrite to replace it`);
          // Symlinks inside a copied tree are copied as links (verbatim), never dereferenced.
          await copyTreeAt(src.dir, src.name, dst.dir, dst.name, req.overwrite);
          return create(CopyFileResponseSchema, { info: await lstatInfo(dst.path, dst.rel) });
        });
      });
    },

    async searchFiles(req) {
      return ws.at(req.path, TARGET, async (loc) => {
        const r = await searchFiles({
          abs: loc.path,
          rel: loc.rel,
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
      for await (const events of watchBatches(ws, req.path, req.recursive, ctx.signal)) {
        yield create(WatchFilesResponseSchema, { events });
      }
    },
  };
}

function parsePatchSafe(patch: string) {
  try {
    return parsePatch(patch);
  } catch (e) {
    throw invalidArgument(`patch is not a unified diff: ${(e as Error).message}`);
  }
}
