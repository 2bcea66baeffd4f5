/** ReplService: authenticated caller → lifecycle operations (one file each). */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ProgressSchema, type ReplService, TemplateSchema } from "../../../../gen/devex/core/v1/repl_pb.js";
import type { UserOf } from "../auth/principal.js";
import { effective, getOwned, toProto } from "./common.js";
import { createRepl } from "./create.js";
import { deleteRepl } from "./delete.js";
import type { ReplDeps } from "./deps.js";
import { listRepls } from "./list.js";
import { startRepl } from "./start.js";
import { stopRepl } from "./stop.js";
import { watchRepl } from "./watch.js";

export function createReplService(deps: ReplDeps, userOf: UserOf): ServiceImpl<typeof ReplService> {
  return {
    async listTemplates() {
      return {
        templates: deps.templates.list().map((t) =>
          create(TemplateSchema, {
            name: t.name,
            title: t.title,
            description: t.description,
            language: t.language,
            runCommand: t.runCommand,
          }),
        ),
      };
    },
    async createRepl(req, ctx) {
      const repl = await createRepl(deps, userOf(ctx).userId, req, ctx.signal);
      return { repl: toProto(repl) };
    },
    async listRepls(req, ctx) {
      const page = await listRepls(deps, userOf(ctx).userId, req);
      return { repls: page.repls.map(toProto), nextPageToken: page.nextPageToken };
    },
    async getRepl(req, ctx) {
      const r = await getOwned(deps, userOf(ctx).userId, req.replId);
      return { repl: toProto(await effective(deps, r)) };
    },
    async startRepl(req, ctx) {
      const { repl, runner } = await startRepl(deps, userOf(ctx).userId, req.replId, ctx.signal);
      return { repl: toProto(repl), runner };
    },
    async stopRepl(req, ctx) {
      const { repl, persistMs } = await stopRepl(deps, userOf(ctx).userId, req.replId, ctx.signal);
      return { repl: toProto(repl), persistDuration: durationFromMs(persistMs) };
    },
    async deleteRepl(req, ctx) {
      await deleteRepl(deps, userOf(ctx).userId, req.replId, ctx.signal);
      return {};
    },
    async *watchRepl(req, ctx) {
      for await (const u of watchRepl(deps, userOf(ctx).userId, req.replId, ctx.signal)) {
        yield {
          repl: toProto(u.repl),
          progress: u.progress
            ? create(ProgressSchema, {
                phase: u.progress.phase,
                filesDone: BigInt(u.progress.filesDone ?? 0),
                filesTotal: BigInt(u.progress.filesTotal ?? 0),
                bytesDone: BigInt(u.progress.bytesDone ?? 0),
                bytesTotal: BigInt(u.progress.bytesTotal ?? 0),
              })
            : undefined,
        };
      }
    },
  };
}
