/** FileService's text updates: exact-text edits and unified-diff patches, both checked against the file's version. */
import { open } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { applyPatch, createTwoFilesPatch, parsePatch } from "diff";
import {
  EditFileResponseSchema,
  type FileInfo,
  type FileService,
  PatchFileResponseSchema,
} from "../../../../../gen/devex/runner/v1/file_pb.js";
import { failedPrecondition, invalidArgument, resourceExhausted } from "../../../../../lib/kit/errors.js";
import { formatBytes } from "../../config.js";
import { writeAtomic } from "../../workspace/atomic-write.js";
import { READ_FLAGS } from "../../workspace/confined-fs.js";
import { lstatInfo, versionOf } from "../../workspace/file-info.js";
import type { Location } from "../../workspace/paths.js";
import { type FileServiceDeps, TARGET } from "./deps.js";
import { checkVersion } from "./versions.js";

type Edits = Pick<ServiceImpl<typeof FileService>, "editFile" | "patchFile">;

export function fileEdits({ workspace: ws, maxFileRead }: FileServiceDeps): Edits {
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

  async function writeText(loc: Location, text: string, mode: number, expected: string): Promise<FileInfo> {
    await writeAtomic(loc, Buffer.from(text, "utf8"), mode, () => checkVersion(loc, expected));
    return lstatInfo(loc.path, loc.rel);
  }

  return {
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
  };
}

function parsePatchSafe(patch: string) {
  try {
    return parsePatch(patch);
  } catch (e) {
    throw invalidArgument(`patch is not a unified diff: ${(e as Error).message}`);
  }
}
