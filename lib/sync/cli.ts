/**
 * Workspace sync from the command line, for the Kubernetes init container (restore) and the
 * ephemeral persist container:
 *
 *   npx tsx lib/sync/cli.ts restore --dir /workspace --prefix repl/alice/r1234/ [--manifest PATH] [--concurrency 32] [--generation N]
 *   npx tsx lib/sync/cli.ts persist --dir /workspace --prefix repl/alice/r1234/ [--manifest PATH] [--keep-generations 5]
 *
 * The blob store comes from the environment, as in core: DEVEX_S3_BUCKET, DEVEX_S3_ENDPOINT,
 * DEVEX_S3_REGION, DEVEX_S3_ACCESS_KEY_ID, DEVEX_S3_SECRET_ACCESS_KEY, DEVEX_S3_FORCE_PATH_STYLE,
 * DEVEX_S3_PREFIX; or DEVEX_BLOB_DIR for a local directory store. Progress goes to stderr, and so
 * does one line each naming what was left out (FIFOs, sockets, devices, odd names) and the hard
 * links stored as separate copies; the result (JSON) goes to stdout. Exit code 0 on success, 1 on
 * failure (a persist refused because the directory is missing or replaced included: nothing remote
 * changed), 2 on bad usage.
 *
 * The manifest defaults to `<dir>/.devex-sync/manifest.json`: on the workspace volume, so the init
 * container's restore and a later persist container share it (the sync never uploads `.devex-sync/`).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLocalBlobStore } from "../../services/core/src/blob/local.js";
import { createS3BlobStore } from "../../services/core/src/blob/s3.js";
import type { BlobStore } from "../../services/core/src/blob/store.js";
import { persist, restore, SYNC_DIR } from "./sync.js";

function storeFromEnv(env: NodeJS.ProcessEnv): BlobStore {
  if (env.DEVEX_S3_BUCKET) {
    return createS3BlobStore({
      bucket: env.DEVEX_S3_BUCKET,
      region: env.DEVEX_S3_REGION || "us-east-1",
      endpoint: env.DEVEX_S3_ENDPOINT || undefined,
      forcePathStyle: ["true", "1", "yes"].includes(env.DEVEX_S3_FORCE_PATH_STYLE ?? ""),
      accessKeyId: env.DEVEX_S3_ACCESS_KEY_ID || undefined,
      secretAccessKey: env.DEVEX_S3_SECRET_ACCESS_KEY || undefined,
      prefix: env.DEVEX_S3_PREFIX || "",
    });
  }
  if (env.DEVEX_BLOB_DIR) return createLocalBlobStore(env.DEVEX_BLOB_DIR);
  throw new Error("set DEVEX_S3_BUCKET (and the other DEVEX_S3_* variables) or DEVEX_BLOB_DIR");
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string" },
      prefix: { type: "string" },
      manifest: { type: "string" },
      concurrency: { type: "string" },
      generation: { type: "string" },
      "keep-generations": { type: "string" },
    },
  });
  const command = positionals[0];
  if ((command !== "restore" && command !== "persist") || !values.dir || !values.prefix) {
    process.stderr.write(
      "usage: cli.ts restore|persist --dir DIR --prefix repl/<user>/<replId>/ [--manifest PATH] [--generation N] [--keep-generations N]\n",
    );
    return 2;
  }
  const store = storeFromEnv(env);
  try {
    const result = await (command === "restore" ? restore : persist)({
      store,
      dir: values.dir,
      prefix: values.prefix,
      manifestPath: values.manifest ?? join(values.dir, SYNC_DIR, "manifest.json"),
      concurrency: values.concurrency ? Number(values.concurrency) : undefined,
      generation: values.generation ? Number(values.generation) : undefined,
      keepGenerations: values["keep-generations"] ? Number(values["keep-generations"]) : undefined,
      onProgress: (p) =>
        process.stderr.write(
          `${p.phase}: ${p.filesDone}/${p.filesTotal} files, ${p.bytesDone}/${p.bytesTotal} bytes\n`,
        ),
    });
    if (result.skipped.length)
      process.stderr.write(`${command}: left out (special files or unstorable names): ${result.skipped.join(", ")}\n`);
    if (result.hardLinked.length)
      process.stderr.write(`${command}: hard links stored as separate copies: ${result.hardLinked.join(", ")}\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${command} failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
