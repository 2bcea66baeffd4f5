/**
 * Templates a test makes for itself, as an operator adds them: a folder with a template.json and its
 * files, handed to core's AdminService.AddTemplate on the admin socket. Tests use these instead of
 * the shipped templates, so a setup command is as cheap and as observable as the test needs.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Template } from "../../gen/devex/core/v1/repl_pb.js";
import { coreAdminClientFor } from "../client/node.js";

/** template.json's fields (services/core/src/repl/templates.ts reads them). */
export interface TemplateManifest {
  title: string;
  description?: string;
  language?: string;
  run_command?: string;
  setup_command?: string;
  preview_port?: number;
  environment?: Record<string, string>;
}

/** Adds (or replaces) the operator's template `name` with these files, through core's admin socket. */
export async function addOperatorTemplate(
  adminSocket: string,
  name: string,
  manifest: TemplateManifest,
  files: Record<string, string> = {},
): Promise<Template> {
  const folder = await mkdtemp(join(tmpdir(), "devex-template-"));
  try {
    await writeFile(join(folder, "template.json"), JSON.stringify(manifest));
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(folder, path)), { recursive: true });
      await writeFile(join(folder, path), content);
    }
    const { template } = await coreAdminClientFor(adminSocket).addTemplate({
      name,
      source: { case: "folder", value: folder },
    });
    if (!template) throw new Error(`AddTemplate returned no template for ${name}`);
    return template;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
