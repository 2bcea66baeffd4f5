/**
 * Workspace sync from the command line, for the Kubernetes init container (restore) and the
 * ephemeral persist container:
 *
 *   node dist/sync/cli.mjs restore --dir /workspace --prefix repl/alice/r1234/ [--manifest PATH] [--concurrency 32] [--generation N]
 *   node dist/sync/cli.mjs persist --dir /workspace --prefix repl/alice/r1234/ [--manifest PATH] [--keep-generations 5]
 *   node dist/sync/cli.mjs serve --dir /workspace --prefix repl/alice/r1234/ --interval 300 --port 8092 [...]
 *
 * `serve` is the persist sidecar (persist-service.ts): a persist every --interval seconds and on
 * core's POST /persist, whose token it checks with DEVEX_TOKEN_PUBLIC_KEY for DEVEX_REPL_ID.
 *
 * With `--home DIR --home-prefix home/alice/r1234/ [--home-manifest PATH]` the same run also
 * restores or persists the repl's home (minus caches: home.ts) after the workspace.
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
import { createLocalBlobStore } from "../blob/local.js";
import { createS3BlobStore } from "../blob/s3.js";
import type { BlobStore } from "../blob/store.js";
import { createTokenVerifier } from "../kit/tokens.js";
import { excludeFromHome } from "./home.js";
import { servePersist } from "./persist-service.js";
import { persist, restore, SYNC_DIR, TreeWatch, WorkspaceMissingError, WorkspaceReplacedError } from "./sync.js";
import type { PersistOptions, RestoreOptions, SyncResult } from "./types.js";
import { someNames } from "./util.js";

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

/** One run of the CLI: the operation, and the trees it applies to (the workspace, then the home). */
export interface SyncRun {
  command: "restore" | "persist";
  /** `serve`: persist every intervalSeconds and on request on port (persist-service.ts). */
  serve?: { intervalSeconds: number; port: number };
  trees: Array<{ name: "workspace" | "home"; options: Omit<PersistOptions & RestoreOptions, "store"> }>;
}

export const usage =
  "usage: node dist/sync/cli.mjs restore|persist|serve --dir DIR --prefix repl/<user>/<replId>/ [--manifest PATH] [--generation N] [--keep-generations N] [--concurrency N] [--home DIR --home-prefix home/<user>/<replId>/ [--home-manifest PATH]] [serve: --interval SECONDS --port N]";

/** The command line as a run, or undefined on bad usage. */
export function parseSyncArgs(argv: string[]): SyncRun | undefined {
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
      home: { type: "string" },
      "home-prefix": { type: "string" },
      "home-manifest": { type: "string" },
      interval: { type: "string" },
      port: { type: "string" },
    },
  });
  const named = positionals[0];
  if ((named !== "restore" && named !== "persist" && named !== "serve") || !values.dir || !values.prefix)
    return undefined;
  const serve =
    named === "serve" ? { intervalSeconds: Number(values.interval), port: Number(values.port ?? "0") } : undefined;
  if (serve && !(serve.intervalSeconds > 0 && Number.isInteger(serve.port) && serve.port >= 0)) return undefined;
  const command = named === "serve" ? "persist" : named;
  if (!values.home !== !values["home-prefix"]) return undefined;
  const common = {
    concurrency: values.concurrency ? Number(values.concurrency) : undefined,
    keepGenerations: values["keep-generations"] ? Number(values["keep-generations"]) : undefined,
  };
  const run: SyncRun = {
    command,
    ...(serve ? { serve } : {}),
    trees: [
      {
        name: "workspace",
        options: {
          ...common,
          dir: values.dir,
          prefix: values.prefix,
          manifestPath: values.manifest ?? join(values.dir, SYNC_DIR, "manifest.json"),
          generation: values.generation ? Number(values.generation) : undefined,
        },
      },
    ],
  };
  if (values.home && values["home-prefix"]) {
    run.trees.push({
      name: "home",
      options: {
        ...common,
        dir: values.home,
        prefix: values["home-prefix"],
        manifestPath: values["home-manifest"] ?? join(values.home, SYNC_DIR, "manifest.json"),
        exclude: excludeFromHome,
      },
    });
  }
  return run;
}

/** A result as the CLI prints it: counts only, so it always fits a Kubernetes termination message (4 KiB). */
export type SyncSummary = Omit<SyncResult, "skipped" | "hardLinked"> & { skipped: number; hardLinked: number };

const summary = (r: SyncResult): SyncSummary => ({ ...r, skipped: r.skipped.length, hardLinked: r.hardLinked.length });

/**
 * Runs each tree in turn; the result is the workspace's, with the home's under `home`. Progress and
 * what was left out (by name, the first 20) go to `say`, a line each. A home that is missing or was
 * replaced is said and left as stored, as the local driver does; a workspace refuses the run.
 */
export async function runSync(
  run: SyncRun,
  store: BlobStore,
  say: (line: string) => void,
  watches?: Map<string, TreeWatch>,
) {
  const results: Partial<Record<"workspace" | "home", SyncSummary>> = {};
  for (const { name, options } of run.trees) {
    const label = name === "home" ? `${run.command} (home)` : run.command;
    const result = await (run.command === "restore" ? restore : persist)({
      ...options,
      store,
      watch: watches && watchOf(watches, name, options),
      onProgress: (p) => say(`${label}: ${p.filesDone}/${p.filesTotal} files, ${p.bytesDone}/${p.bytesTotal} bytes`),
    }).catch((err) => {
      if (name !== "home" || !(err instanceof WorkspaceMissingError || err instanceof WorkspaceReplacedError))
        throw err;
      say(`${label} refused, the stored home is kept as it was: ${(err as Error).message}`);
      return undefined;
    });
    if (!result) continue;
    if (result.skipped.length)
      say(`${label}: left out (special files or unstorable names): ${someNames(result.skipped)}`);
    if (result.hardLinked.length)
      say(`${label}: hard links stored as separate copies: ${someNames(result.hardLinked)}`);
    results[name] = summary(result);
  }
  return { ...results.workspace!, ...(results.home ? { home: results.home } : {}) };
}

/** The tree's TreeWatch, made on its first watched persist and kept for the sidecar's life. */
function watchOf(watches: Map<string, TreeWatch>, name: string, o: SyncRun["trees"][number]["options"]) {
  const w = watches.get(name) ?? new TreeWatch(o.dir, o.exclude);
  watches.set(name, w);
  return w;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const run = parseSyncArgs(argv);
  if (!run) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const store = storeFromEnv(env);
  if (run.serve) return serve(run, run.serve, store, env);
  try {
    const result = await runSync(run, store, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${run.command} failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/**
 * The persist sidecar until SIGTERM (the pod going away); 2 without the token key or repl id. A
 * SIGTERM ends it at once, even mid-persist (the index is written last, so a cut persist changes
 * nothing stored): core asks for the last persist before deleting a pod, and a deleted repl's pod
 * must not upload after its files were removed.
 */
async function serve(run: SyncRun, o: NonNullable<SyncRun["serve"]>, store: BlobStore, env: NodeJS.ProcessEnv) {
  if (!env.DEVEX_TOKEN_PUBLIC_KEY || !env.DEVEX_REPL_ID) {
    process.stderr.write("serve needs DEVEX_TOKEN_PUBLIC_KEY and DEVEX_REPL_ID\n");
    return 2;
  }
  const watches = new Map<string, TreeWatch>();
  const service = await servePersist({
    persist: (how) => runSync(run, store, () => {}, how === "watched" ? watches : undefined),
    intervalMs: o.intervalSeconds * 1000,
    host: "0.0.0.0",
    port: o.port,
    verifier: createTokenVerifier(env.DEVEX_TOKEN_PUBLIC_KEY),
    replId: env.DEVEX_REPL_ID,
    say: (line) => process.stderr.write(`${line}\n`),
  });
  process.stderr.write(`persisting every ${o.intervalSeconds} s; core's requests on port ${service.port}\n`);
  await new Promise((resolve) => process.once("SIGTERM", resolve));
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
