/**
 * AdminService, the operator's calls: only on the admin socket (admin-socket.ts), whose folder only
 * core's user can enter, so every caller already runs as core's user or root.
 */
import { durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../../../gen/devex/core/v1/admin_pb.js";
import type { BlobStore } from "../../../../lib/blob/store.js";
import { DomainError, failedPrecondition, invalidArgument } from "../../../../lib/kit/errors.js";
import type { Logger } from "../../../../lib/kit/log.js";
import { OK_OUTCOME } from "../../../../lib/kit/outcome.js";
import { Credential } from "../audit/event.js";
import { listAudit } from "../audit/list.js";
import type { AuditRecorder } from "../audit/recorder.js";
import { issueLoginLink, LOGIN_LINK_TTL_MS } from "../auth/login-links.js";
import { DEFAULT_TOKEN_TTL_MS, issueApiToken } from "../auth/secrets.js";
import { toApiToken } from "../auth/service.js";
import { templateToProto } from "../repl/save-template.js";
import { installOperatorTemplate, readTemplateFolder, templatePrefix } from "../repl/templates.js";
import type { StateStore, TemplateRecord } from "../state/store.js";
import { withTemplateSource } from "./template-source.js";

export interface AdminDeps {
  state: StateStore;
  /** Where templates' files are stored. */
  blobs: BlobStore;
  log: Logger;
  /** Where browsers reach core (login links point there). */
  publicUrl: () => string;
  /** Who a login link signs in when the request names nobody: the embedded setup's user. */
  localUser: string;
  /** The audit log: the operator's calls are recorded too, and the operator reads everyone's. */
  audit: AuditRecorder;
}

/** An operator's call, filed under the user it was for. */
function recordOperator(d: AdminDeps, method: string, userId: string, details: Record<string, string>) {
  d.audit.record({
    time: Date.now(),
    userId,
    tokenId: Credential.operator,
    clientAddress: "admin-socket",
    rpc: `${AdminService.typeName}/${method}`,
    replId: "",
    outcome: OK_OUTCOME,
    message: "",
    details,
  });
}

export function createAdminService(d: AdminDeps): ServiceImpl<typeof AdminService> {
  return {
    async createUserToken(req) {
      const ttl = req.ttl ? durationMs(req.ttl) : DEFAULT_TOKEN_TTL_MS;
      const { record, secret } = await issueApiToken(d.state, req.userId, req.name, ttl, Date.now(), req.scopes);
      d.log.info(
        { userId: record.userId, tokenId: record.tokenId, name: record.name },
        "operator created an API token",
      );
      const scopes = record.scopes?.join(",") || "all";
      recordOperator(d, "CreateUserToken", record.userId, {
        name: record.name,
        scopes,
        created_token_id: record.tokenId,
      });
      return { token: toApiToken(record), secret };
    },
    async createLoginLink(req) {
      const ttl = req.ttl ? durationMs(req.ttl) : LOGIN_LINK_TTL_MS;
      const link = await issueLoginLink(d.state, d.publicUrl(), req.userId || d.localUser, ttl);
      d.log.info({ userId: link.userId, expireTime: new Date(link.expireTime) }, "operator created a login link");
      recordOperator(d, "CreateLoginLink", link.userId, { expire_time: new Date(link.expireTime).toISOString() });
      return { url: link.url, userId: link.userId, expireTime: timestampFromMs(link.expireTime) };
    },
    async listAuditEvents(req) {
      await d.audit.flushed();
      return listAudit(d.state, { ...req, userId: req.userId || undefined });
    },
    async addTemplate(req) {
      if (req.source.case === undefined) throw invalidArgument("name a folder or a git URL");
      const source = req.source;
      const template = await withTemplateSource(source, async (folder) => {
        let t: TemplateRecord;
        try {
          t = await readTemplateFolder(folder, req.name);
          await installOperatorTemplate(d, folder, t);
        } catch (err) {
          if (err instanceof DomainError) throw err;
          throw failedPrecondition((err as Error).message);
        }
        return t;
      });
      d.log.info({ template: req.name, source: source.case }, "operator added a template");
      recordOperator(d, "AddTemplate", "", { template: req.name, source: source.case });
      return { template: templateToProto(template) };
    },
    async removeTemplate(req) {
      // The files first, then the record (as DeleteTemplate), and only the operator's.
      if ((await d.state.getTemplate(req.name))?.owner === "") {
        await d.blobs.deletePrefix(templatePrefix(req.name));
        await d.state.deleteTemplate(req.name, "");
      }
      recordOperator(d, "RemoveTemplate", "", { template: req.name });
      return {};
    },
  };
}
