/**
 * CreateRepl: quota check, copy the template into the workspace prefix, then record the repl. The
 * record is written last, atomically with a second quota check; when anything fails the copied files
 * are removed, so a failure leaves neither a record nor (storage permitting) stray files. A repl
 * from a git repository gets no files here: clone.ts clones into it once it is recorded.
 */
import { randomBytes } from "node:crypto";
import { ALL_API_SCOPES, ApiScope } from "../../../../lib/contracts/api-scopes.js";
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import {
  DomainError,
  failedPrecondition,
  invalidArgument,
  permissionDenied,
  resourceExhausted,
} from "../../../../lib/kit/errors.js";
import { copyNewestGeneration } from "../../../../lib/sync/copy-newest.js";
import type { ReplRecord, StoredVariable, TemplateRecord } from "../state/store.js";
import { startClone } from "./clone.js";
import { workspacePrefix } from "./common.js";
import type { ReplDeps } from "./deps.js";
import { checkGitSource, type GitSourceInput } from "./git-source.js";
import { gitAccessFor } from "./github-access.js";
import { templatePrefix } from "./templates.js";

export const newReplId = () => `r${randomBytes(6).toString("hex")}`;

const quotaError = (quota: number) =>
  resourceExhausted(`repl quota reached: at most ${quota} repls per user (DEVEX_REPL_QUOTA); delete one first`);

/** The template's plain variables as the repl's own, which the user may then change or remove. */
function templateEnvironment(t: TemplateRecord, time: number): Record<string, StoredVariable> {
  return Object.fromEntries(Object.entries(t.environment).map(([name, value]) => [name, { value, updateTime: time }]));
}

const NO_TEMPLATE: TemplateRecord = {
  name: "",
  title: "",
  description: "",
  language: "",
  runCommand: "",
  setupCommand: "",
  previewPort: 0,
  environment: {},
  owner: "",
  createTime: 0,
};

export interface CreateInput {
  name: string;
  /** "" only with `git`: no template's settings. */
  template: string;
  /** Absent: the template's default, else the operator's. */
  egress?: EgressPolicy;
  git?: GitSourceInput;
}

async function templateOf(deps: ReplDeps, owner: string, input: CreateInput): Promise<TemplateRecord> {
  if (!input.template) {
    if (input.git) return NO_TEMPLATE;
    throw invalidArgument("name a template (see ListTemplates), or a git repository to clone");
  }
  const template = await deps.templates.find(owner, input.template);
  if (template) return template;
  const names = (await deps.templates.list(owner)).map((t) => t.name);
  throw invalidArgument(`unknown template "${input.template}"; available: ${names.join(", ") || "none"}`);
}

async function copyTemplate(deps: ReplDeps, name: string, prefix: string, signal: AbortSignal) {
  try {
    await copyNewestGeneration(deps.blobs, templatePrefix(name), prefix, signal);
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw failedPrecondition(
      `template "${name}" changed or was removed while the repl was made from it; try again`,
      err,
    );
  }
}

export async function createRepl(
  deps: ReplDeps,
  owner: string,
  input: CreateInput,
  signal: AbortSignal,
  /** The caller's API scopes: a setup command run on a repository the caller picks is running code. */
  scopes: readonly ApiScope[] = ALL_API_SCOPES,
): Promise<ReplRecord> {
  const git = input.git && checkGitSource(input.git, deps.clone.allowHttp);
  const template = await templateOf(deps, owner, input);
  if (git && template.setupCommand && !scopes.includes(ApiScope.exec)) {
    throw permissionDenied(
      `template "${template.name}" runs "${template.setupCommand}" on the cloned files, which runs the repository's code: this API token needs the scope exec (or pick a template without a setup command)`,
    );
  }
  const access = git && (await gitAccessFor(deps, owner, git, scopes, signal));
  if ((await deps.state.countRepls(owner)) >= deps.quota) throw quotaError(deps.quota);

  const now = Date.now();
  const repl: ReplRecord = {
    replId: newReplId(),
    name: input.name,
    template: template.name,
    owner,
    status: "stopped",
    createTime: now,
    updateTime: now,
    persistTime: 0,
    lastError: "",
    egress: input.egress ?? template.egress ?? deps.egressDefault,
    runCommand: template.runCommand,
    ...(template.previewPort ? { previewPort: template.previewPort } : {}),
    ...(template.setupCommand ? { setup: { command: template.setupCommand, status: "pending" } } : {}),
    ...(Object.keys(template.environment).length > 0 ? { env: templateEnvironment(template, now) } : {}),
    ...(git
      ? {
          git: {
            url: git.url,
            ref: git.ref,
            fullHistory: git.fullHistory,
            ...access,
            status: "cloning",
            startTime: now,
          },
        }
      : {}),
  };
  const prefix = workspacePrefix(repl);
  let created = false;
  try {
    // Object by object, checking each is there: a template removed or re-installed meanwhile fails
    // the create instead of leaving a repl whose index names missing files.
    if (!git) await copyTemplate(deps, template.name, prefix, signal);
    created = await deps.state.createRepl(repl, deps.quota);
    if (!created) throw quotaError(deps.quota);
  } finally {
    if (!created) {
      await deps.blobs.deletePrefix(prefix).catch((err) =>
        // The record was never written, so nothing refers to these files; they are only garbage.
        deps.log.warn({ err, prefix }, "could not remove the files of a failed create"),
      );
    }
  }
  deps.events.publish(repl.replId, { repl });
  if (git) startClone(deps, repl);
  return repl;
}
