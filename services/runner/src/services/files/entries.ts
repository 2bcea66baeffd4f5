/**
 * FileService's entry operations: write a whole file, make a directory, delete, move and copy. Each
 * acts on the confined locations `Workspace.at` hands out, never on a path a swapped symlink could redirect.
 */
import { lstat, mkdir, rename, rmdir, unlink } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CopyFileResponseSchema,
  CreateDirectoryResponseSchema,
  DeleteFileResponseSchema,
  type FileService,
  MoveFileResponseSchema,
  WriteFileResponseSchema,
} from "../../../../../gen/devex/runner/v1/file_pb.js";
import { alreadyExists, failedPrecondition, invalidArgument } from "../../../../../lib/kit/errors.js";
import { writeAtomic } from "../../workspace/atomic-write.js";
import { copyTreeAt, removeTreeAt } from "../../workspace/confined-fs.js";
import { lstatInfo } from "../../workspace/file-info.js";
import { ENTRY, type FileServiceDeps, TARGET } from "./deps.js";
import { checkVersion } from "./versions.js";

type Entries = Pick<
  ServiceImpl<typeof FileService>,
  "writeFile" | "createDirectory" | "deleteFile" | "moveFile" | "copyFile"
>;

export function fileEntries({ workspace: ws }: FileServiceDeps): Entries {
  return {
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
  };
}
