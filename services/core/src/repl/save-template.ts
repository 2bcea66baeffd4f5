/**
 * SaveTemplate and DeleteTemplate: a user's private templates. Saving copies the newest stored state
 * of a stopped repl's workspace (lib/sync/copy-newest.ts: no older generation, so nothing deleted
 * before the save comes along) to `templates/<name>/`, then stores the record; a failure removes
 * what was copied. The name is core's (`t` + 12 hex digits, like repl ids), the title the user's.
 * Secrets never go into a template: only plain variables do.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type SaveTemplateRequest, type Template, TemplateSchema } from "../../../../gen/devex/core/v1/repl_pb.js";
import { egressToProto } from "../../../../lib/egress/proto.js";
import { failedPrecondition, notFound, resourceExhausted } from "../../../../lib/kit/errors.js";
import { copyNewestGeneration } from "../../../../lib/sync/copy-newest.js";
import type { ReplRecord, TemplateRecord } from "../state/store.js";
import { getOwned, operationSignal, withReplLock, workspacePrefix } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { templatePrefix } from "./templates.js";

export function templateToProto(t: TemplateRecord): Template {
  return create(TemplateSchema, {
    name: t.name,
    title: t.title,
    description: t.description,
    language: t.language,
    runCommand: t.runCommand,
    egress: t.egress && egressToProto(t.egress),
    setupCommand: t.setupCommand,
    previewPort: t.previewPort,
    environment: t.environment,
    owner: t.owner,
    createTime: timestampFromMs(t.createTime),
  });
}

const newTemplateName = () => `t${randomBytes(6).toString("hex")}`;

function refuseUnlessStopped(r: ReplRecord | undefined) {
  if (r && r.status !== "stopped") {
    throw failedPrecondition(
      `repl ${r.replId} is ${r.status}: a template is made from its stored files, so stop it first`,
    );
  }
}

const plainVariables = (r: ReplRecord): Record<string, string> =>
  Object.fromEntries(
    Object.entries(r.env ?? {}).flatMap(([name, v]) => (v.sealed === undefined ? [[name, v.value ?? ""]] : [])),
  );

export async function saveTemplate(
  deps: ReplDeps,
  owner: string,
  req: SaveTemplateRequest,
  signal: AbortSignal,
): Promise<TemplateRecord> {
  refuseUnlessStopped(await getOwned(deps, owner, req.replId));
  const owned = (await deps.templates.list(owner)).filter((t) => t.owner === owner).length;
  if (owned >= deps.templateQuota) throw quotaError(deps.templateQuota);
  // Under the repl's lock: no start, stop or delete changes the stored files while they are copied.
  return withReplLock(deps, req.replId, signal, refuseUnlessStopped, async () => {
    const r = await getOwned(deps, owner, req.replId);
    refuseUnlessStopped(r);
    const from = await deps.templates.find(owner, r.template);
    const template: TemplateRecord = {
      name: newTemplateName(),
      title: req.title,
      description: req.description,
      language: from?.language ?? "",
      runCommand: req.runCommand ?? r.runCommand ?? from?.runCommand ?? "",
      setupCommand: req.setupCommand ?? r.setup?.command ?? "",
      previewPort: req.previewPort ?? r.previewPort ?? 0,
      environment: plainVariables(r),
      ...(r.egress ? { egress: r.egress } : {}),
      owner,
      createTime: Date.now(),
    };
    const prefix = templatePrefix(template.name);
    let stored = false;
    try {
      await copyNewestGeneration(deps.blobs, workspacePrefix(r), prefix, signal);
      const outcome = await deps.state.putTemplate(template, deps.templateQuota);
      if (outcome === "over-quota") throw quotaError(deps.templateQuota);
      if (outcome === "taken") throw new Error(`template name collision: ${template.name}`);
      stored = true;
    } finally {
      if (!stored) {
        await deps.blobs
          .deletePrefix(prefix)
          .catch((err) => deps.log.warn({ err, prefix }, "could not remove the files of a failed template save"));
      }
    }
    deps.log.info({ replId: r.replId, template: template.name, owner }, "template saved");
    return template;
  });
}

const quotaError = (quota: number) =>
  resourceExhausted(
    `template quota reached: at most ${quota} templates per user (DEVEX_TEMPLATE_QUOTA); delete one first`,
  );

/**
 * The files first, then the record: a failure in between leaves a record the caller can delete
 * again (a create from it meanwhile fails cleanly), never files nothing points at.
 */
export async function deleteTemplate(deps: ReplDeps, owner: string, name: string) {
  const t = await deps.state.getTemplate(name);
  // The operator's templates and other users' are not the caller's to delete: NotFound, like none.
  if (!t || t.owner !== owner) throw notFound(`you have no template "${name}"`);
  await deps.blobs.deletePrefix(templatePrefix(name), operationSignal(deps));
  await deps.state.deleteTemplate(name, owner);
}
