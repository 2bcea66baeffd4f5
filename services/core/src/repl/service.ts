/** ReplService: authenticated caller → lifecycle operations (one file each). */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ProgressSchema, type ReplService } from "../../../../gen/devex/core/v1/repl_pb.js";
import { egressFromProto } from "../../../../lib/egress/proto.js";
import type { UserOf } from "../auth/principal.js";
import { effective, getOwned, toProto } from "./common.js";
import { createRepl } from "./create.js";
import { deleteRepl } from "./delete.js";
import type { ReplDeps } from "./deps.js";
import { deleteEnvironmentVariable, setEnvironmentVariable, variablesToProto } from "./environment.js";
import { listGitHubRepositories } from "./github-access.js";
import { listRepls } from "./list.js";
import { createPreviewLink, setPreviewVisibility } from "./preview-sharing.js";
import { deleteTemplate, saveTemplate, templateToProto } from "./save-template.js";
import { setEgressPolicy } from "./set-egress.js";
import { startRepl } from "./start.js";
import { stopRepl } from "./stop.js";
import { watchRepl } from "./watch.js";

export function createReplService(deps: ReplDeps, userOf: UserOf): ServiceImpl<typeof ReplService> {
  return {
    async listTemplates(_req, ctx) {
      return { templates: (await deps.templates.list(userOf(ctx).userId)).map(templateToProto) };
    },
    async saveTemplate(req, ctx) {
      return { template: templateToProto(await saveTemplate(deps, userOf(ctx).userId, req, ctx.signal)) };
    },
    async deleteTemplate(req, ctx) {
      await deleteTemplate(deps, userOf(ctx).userId, req.name);
      return {};
    },
    async createRepl(req, ctx) {
      const git = req.git && {
        url: req.git.url,
        ref: req.git.ref,
        fullHistory: req.git.fullHistory,
        allowPush: req.git.allowPush,
      };
      const input = { name: req.name, template: req.template, egress: egressFromProto(req.egress), git };
      const user = userOf(ctx);
      const repl = await createRepl(deps, user.userId, input, ctx.signal, user.scopes);
      return { repl: toProto(deps, repl) };
    },
    async listGitHubRepositories(req, ctx) {
      return listGitHubRepositories(deps, userOf(ctx).userId, req.page, ctx.signal);
    },
    async listRepls(req, ctx) {
      const page = await listRepls(deps, userOf(ctx).userId, req);
      return { repls: page.repls.map((r) => toProto(deps, r)), nextPageToken: page.nextPageToken };
    },
    async getRepl(req, ctx) {
      const r = await getOwned(deps, userOf(ctx).userId, req.replId);
      return { repl: toProto(deps, await effective(deps, r)) };
    },
    async setEgressPolicy(req, ctx) {
      const egress = egressFromProto(req.egress);
      const r = await setEgressPolicy(deps, userOf(ctx).userId, req.replId, egress, ctx.signal);
      return { repl: toProto(deps, await effective(deps, r)) };
    },
    async setPreviewVisibility(req, ctx) {
      const { replId, port, visibility } = req;
      const r = await setPreviewVisibility(deps, userOf(ctx).userId, replId, port, visibility, ctx.signal);
      return { repl: toProto(deps, await effective(deps, r)) };
    },
    async createPreviewLink(req, ctx) {
      const link = await createPreviewLink(deps, userOf(ctx).userId, req);
      return { url: link.url, expireTime: timestampFromMs(link.expireTime) };
    },
    async listEnvironmentVariables(req, ctx) {
      return { variables: variablesToProto(await getOwned(deps, userOf(ctx).userId, req.replId)) };
    },
    async setEnvironmentVariable(req, ctx) {
      return { variables: variablesToProto(await setEnvironmentVariable(deps, userOf(ctx).userId, req, ctx.signal)) };
    },
    async deleteEnvironmentVariable(req, ctx) {
      return {
        variables: variablesToProto(await deleteEnvironmentVariable(deps, userOf(ctx).userId, req, ctx.signal)),
      };
    },
    async startRepl(req, ctx) {
      const { repl, runner } = await startRepl(deps, userOf(ctx), req.replId, ctx.signal);
      return { repl: toProto(deps, repl), runner };
    },
    async stopRepl(req, ctx) {
      const { repl, persistMs } = await stopRepl(deps, userOf(ctx).userId, req.replId, ctx.signal);
      return { repl: toProto(deps, repl), persistDuration: durationFromMs(persistMs) };
    },
    async deleteRepl(req, ctx) {
      await deleteRepl(deps, userOf(ctx).userId, req.replId, ctx.signal);
      return {};
    },
    async *watchRepl(req, ctx) {
      for await (const u of watchRepl(deps, userOf(ctx).userId, req.replId, ctx.signal)) {
        yield {
          repl: toProto(deps, u.repl),
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
