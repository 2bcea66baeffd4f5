/**
 * Starter templates. The templates directory holds one folder per template with a template.json
 * (title, description, language, run_command, optionally the egress policy of its repls) and the
 * starter files. At start core uploads each
 * folder to the blob store under `templates/<name>/` (removing files no longer present), and keeps
 * the catalogue in memory.
 */

import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { type BlobStore, listAll } from "../../../../lib/blob/store.js";
import { checkEgressPolicy, type EgressPolicy } from "../../../../lib/egress/policy.js";
import * as z from "../../../../lib/kit/zod.js";

export interface TemplateInfo {
  name: string;
  title: string;
  description: string;
  language: string;
  runCommand: string;
  /** The egress policy of repls created from it without one; absent: the operator's default. */
  egress?: EgressPolicy;
}

export interface TemplateCatalog {
  list(): TemplateInfo[];
  get(name: string): TemplateInfo | undefined;
}

const manifest = z.object({
  title: z.string().check(z.minLength(1)),
  description: z._default(z.string(), ""),
  language: z._default(z.string(), ""),
  run_command: z._default(z.string(), ""),
  egress: z.optional(
    z.strictObject({
      mode: z.enum(["allow_all", "deny_all", "allowlist"]),
      domains: z._default(z.array(z.string()), []),
      cidrs: z._default(z.array(z.string()), []),
    }),
  ),
});

/** The manifest's egress policy, checked like one from the API; a bad one fails core's start naming the file. */
function templateEgress(file: string, egress: z.output<typeof manifest>["egress"]): EgressPolicy | undefined {
  if (!egress) return undefined;
  try {
    return checkEgressPolicy(egress);
  } catch (err) {
    throw new Error(`${file}: egress: ${(err as Error).message}`);
  }
}

async function files(dir: string, root = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p, root)));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join("/"));
  }
  return out.sort();
}

/** Uploads every template folder of `dir` to `templates/<name>/` and returns the catalogue. */
export async function syncTemplates(dir: string, blobs: BlobStore, signal?: AbortSignal): Promise<TemplateCatalog> {
  const templates = new Map<string, TemplateInfo>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || !/^[a-z0-9][a-z0-9-]*$/.test(e.name)) continue;
    const folder = join(dir, e.name);
    const file = join(folder, "template.json");
    const parsed = manifest.parse(JSON.parse(await readFile(file, "utf8")));
    const egress = templateEgress(file, parsed.egress);
    const prefix = `templates/${e.name}/`;
    const present = await files(folder);
    for (const f of present) await blobs.put(prefix + f, createReadStream(join(folder, f)), signal);
    const keep = new Set(present.map((f) => prefix + f));
    for (const stale of await listAll(blobs, prefix, signal)) {
      if (!keep.has(stale.key)) await blobs.deletePrefix(stale.key, signal);
    }
    templates.set(e.name, {
      name: e.name,
      title: parsed.title,
      description: parsed.description,
      language: parsed.language,
      runCommand: parsed.run_command,
      egress,
    });
  }
  const sorted = [...templates.values()].sort((a, b) => a.name.localeCompare(b.name));
  return { list: () => sorted, get: (name) => templates.get(name) };
}
