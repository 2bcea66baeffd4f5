/**
 * A real S3 HTTP server for tests: s3rver as a child process on a free loopback port, with one
 * bucket. Credentials are S3RVER/S3RVER. `stop()` kills it (to test S3 outages), `start()` brings it
 * back on the same port with the same data. s3rver needs --openssl-legacy-provider on Node 20, or
 * ListObjectsV2 with MaxKeys answers 500. If it exits unasked, the test's stderr says so with the
 * end of its own (a crash otherwise shows only as ECONNREFUSED in whatever test used it next).
 * It runs through s3rver-serialized.cjs, which keeps a PUT racing a DELETE under one prefix from
 * crashing it and makes a PUT atomic, as S3's is (s3.test.ts races GETs against re-PUTs).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

export interface TestS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Everything an S3 client (or core's createS3BlobStore) needs to reach this server's bucket. */
  readonly storeOptions: {
    bucket: string;
    region: string;
    endpoint: string;
    forcePathStyle: true;
    accessKeyId: string;
    secretAccessKey: string;
  };
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the server and removes its data. */
  dispose(): Promise<void>;
}

/** s3rver's command with its object writes and deletes serialized and its PUT atomic (see the file). */
const s3rverBin = fileURLToPath(new URL("./s3rver-serialized.cjs", import.meta.url));

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host }, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** `host`: the address to listen on (default loopback; a test's own veth address for a container). */
export async function startS3(bucket = "devex-test", host = "127.0.0.1"): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), "devex-s3rver-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = ["--openssl-legacy-provider", s3rverBin, "-d", dir, "-a", host, "-p", String(port)];
    const c = spawn(process.execPath, [...args, "--silent", "--configure-bucket", bucket], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = c;
    let stderr = "";
    c.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    c.once("exit", (code, signal) => {
      if (child !== c) return; // stopped on purpose
      process.stderr.write(`s3rver on port ${port} exited unasked (${signal ?? code}):\n${stderr}\n`);
    });
    const deadline = Date.now() + 15_000;
    while (!(await listening(host, port))) {
      if (Date.now() > deadline) throw new Error(`s3rver did not listen on port ${port}`);
      if (child.exitCode !== null) throw new Error(`s3rver exited with ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((resolve) => c.once("exit", resolve));
    c.kill("SIGKILL");
    await exited;
  };
  try {
    await start();
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://${host}:${port}`;
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  return {
    endpoint,
    bucket,
    ...credentials,
    storeOptions: { bucket, region: "us-east-1", endpoint, forcePathStyle: true, ...credentials },
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
