/**
 * Templates as data. A template is a record in the state store (so every core sharing it sees the
 * same catalogue) and its files under `templates/<name>/` in the blob store. The operator's come
 * from folders (DEVEX_TEMPLATES_DIR at every start, or AdminService.AddTemplate from a folder or a
 * git repository): a folder holds a template.json and the starter files. Users save their own,
 * private ones from a stopped repl (save-template.ts).
 *
 * template.json: title, description, language, run_command, setup_command (run once on a repl's
 * first start), preview_port, environment (plain variables) and egress (the default policy).
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../../../../lib/blob/store.js";
import { isEnvironmentName, isReservedEnvironmentName } from "../../../../lib/contracts/environment-names.js";
import { checkEgressPolicy, type EgressPolicy } from "../../../../lib/egress/policy.js";
import * as z from "../../../../lib/kit/zod.js";
import { persist } from "../../../../lib/sync/persist.js";
import type { StateStore, TemplateRecord } from "../state/store.js";

/** Operator template names: what a folder may be called (and the API's pattern for a template name). */
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** Names core gives users' private templates; an operator template may not take one. */
export const PRIVATE_TEMPLATE_NAME = /^t[0-9a-f]{12}$/;

export const templatePrefix = (name: string) => `templates/${name}/`;

export interface TemplateCatalog {
  /** The operator's templates and `owner`'s own, by name. */
  list(owner: string): Promise<TemplateRecord[]>;
  /** A template `owner` may create from (the operator's, or their own); undefined for any other. */
  find(owner: string, name: string): Promise<TemplateRecord | undefined>;
  /**
   * The operator's template of that name as core's start read it from DEVEX_TEMPLATES_DIR: the
   * defaults of records older than the settings they now store (egress, run command).
   */
  builtin(name: string): TemplateRecord | undefined;
}

const manifest = z.object({
  title: z.string().check(z.minLength(1), z.maxLength(64)),
  description: z._default(z.string().check(z.maxLength(1024)), ""),
  language: z._default(z.string(), ""),
  run_command: z._default(z.string().check(z.maxLength(4096)), ""),
  setup_command: z._default(z.string().check(z.maxLength(4096)), ""),
  preview_port: z._default(z.number().check(z.int(), z.minimum(0), z.maximum(65535)), 0),
  environment: z._default(z.record(z.string(), z.string().check(z.maxLength(32 * 1024))), {}),
  egress: z.optional(
    z.strictObject({
      mode: z.enum(["allow_all", "deny_all", "allowlist"]),
      domains: z._default(z.array(z.string()), []),
      cidrs: z._default(z.array(z.string()), []),
    }),
  ),
});

/** The manifest's egress policy, checked like one from the API. */
function templateEgress(egress: z.output<typeof manifest>["egress"]): EgressPolicy | undefined {
  if (!egress) return undefined;
  try {
    return checkEgressPolicy(egress);
  } catch (err) {
    throw new Error(`egress: ${(err as Error).message}`);
  }
}

function checkEnvironment(environment: Record<string, string>) {
  for (const name of Object.keys(environment)) {
    if (!isEnvironmentName(name)) throw new Error(`environment: "${name}" is not a variable name`);
    if (isReservedEnvironmentName(name)) throw new Error(`environment: "${name}" is set by the repl itself`);
  }
}

/**
 * Reads a template folder's template.json into a record of the operator's. A bad manifest fails
 * naming the file and what is wrong.
 */
export async function readTemplateFolder(folder: string, name: string): Promise<TemplateRecord> {
  const file = join(folder, "template.json");
  try {
    const parsed = manifest.parse(JSON.parse(await readFile(file, "utf8")));
    checkEnvironment(parsed.environment);
    return {
      name,
      title: parsed.title,
      description: parsed.description,
      language: parsed.language,
      runCommand: parsed.run_command,
      setupCommand: parsed.setup_command,
      previewPort: parsed.preview_port,
      environment: parsed.environment,
      egress: templateEgress(parsed.egress),
      owner: "",
      createTime: Date.now(),
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") throw new Error(`${file}: missing: a template folder needs a template.json`);
    const detail = e instanceof z.core.$ZodError ? z.prettifyError(e) : e.message;
    throw new Error(`${file}: ${detail}`);
  }
}

/**
 * Stores a folder's files (template.json and .git excepted) under the template's prefix as a
 * workspace of one generation (lib/sync: modes, mtimes, empty folders and symlinks as they are in
 * the folder, files no longer there dropped), then the record. A name a user's template has is
 * refused.
 */
export async function installOperatorTemplate(
  deps: { blobs: BlobStore; state: StateStore },
  folder: string,
  template: TemplateRecord,
  signal?: AbortSignal,
): Promise<void> {
  if (PRIVATE_TEMPLATE_NAME.test(template.name)) {
    throw new Error(`"${template.name}" is a name of the kind users' templates get; choose another`);
  }
  const current = await deps.state.getTemplate(template.name);
  if (current && current.owner !== "") throw new Error(`the template name "${template.name}" is taken`);
  const scratch = await mkdtemp(join(tmpdir(), "devex-template-manifest-"));
  try {
    await persist({
      store: deps.blobs,
      prefix: templatePrefix(template.name),
      dir: folder,
      manifestPath: join(scratch, "manifest.json"),
      keepGenerations: 1,
      replaceStored: true,
      exclude: (rel) => rel === "template.json" || rel === ".git",
      signal,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const stored = await deps.state.putTemplate(template, 0);
  if (stored === "taken") throw new Error(`the template name "${template.name}" is taken`);
}

/** Installs every template folder of `dir` as the operator's and returns the catalogue. */
export async function syncTemplates(
  dir: string,
  deps: { blobs: BlobStore; state: StateStore },
  signal?: AbortSignal,
): Promise<TemplateCatalog> {
  const builtins = new Map<string, TemplateRecord>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || !TEMPLATE_NAME.test(e.name)) continue;
    const folder = join(dir, e.name);
    const template = await readTemplateFolder(folder, e.name);
    await installOperatorTemplate(deps, folder, template, signal);
    builtins.set(e.name, template);
  }
  return templateCatalog(deps.state, builtins);
}

export function templateCatalog(state: StateStore, builtins: ReadonlyMap<string, TemplateRecord>): TemplateCatalog {
  return {
    async list(owner) {
      return (await state.listTemplates(owner)).sort(
        (a, b) => Number(a.owner !== "") - Number(b.owner !== "") || a.name.localeCompare(b.name),
      );
    },
    async find(owner, name) {
      const t = await state.getTemplate(name);
      return t && (t.owner === "" || t.owner === owner) ? t : undefined;
    },
    builtin: (name) => builtins.get(name),
  };
}
