/**
 * `buf curl` (the Buf CLI from node_modules) as an independent gRPC client: gRPC over HTTP/2 with
 * prior knowledge, messages described by the schema in proto/, the answer parsed from its JSON.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** Calls `url` (…/package.Service/Method) with `body`; `headers` such as authorization go with it. */
export async function bufCurl(url: string, body: object, headers: Record<string, string> = {}): Promise<unknown> {
  const args = ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge"];
  args.push("--schema", join(root, "proto"), "--data", JSON.stringify(body));
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  const { stdout } = await run("npx", [...args, url], { cwd: root, timeout: 60_000 });
  return JSON.parse(stdout);
}
