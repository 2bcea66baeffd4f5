/**
 * `devex cp`'s download side against a real runner (in this process), its connection broken in the
 * middle of the stream: the copy resumes at the offset it reached, with the version it started
 * from, and the file it puts in place matches the runner's SHA-256; a file changed meanwhile fails
 * and leaves no file (nor a temporary one) behind.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { FileService } from "../../gen/devex/runner/v1/file_pb.js";
import type { RunnerClients } from "../../lib/client/clients.js";
import { connectClient, startTestRunner, type TestRunner } from "../../services/runner/test/helpers.js";
import { downloadPath } from "../src/cp.js";
import type { RunnerLink } from "../src/transport.js";

/** A link whose downloads break after `after` messages, `times` times (then the runner is reached as is). */
function breakingLink(files: RunnerClients["files"], after: number, times: number, onBreak?: () => Promise<void>) {
  let left = times;
  const breaking = new Proxy(files, {
    get(target, key) {
      if (key !== "downloadFile") return Reflect.get(target, key);
      return (req: Parameters<typeof files.downloadFile>[0]) => {
        const stream = target.downloadFile(req);
        if (left-- <= 0) return stream;
        return (async function* () {
          let n = 0;
          for await (const m of stream) {
            if (n++ === after) {
              await onBreak?.();
              throw new ConnectError("connection reset", Code.Unavailable);
            }
            yield m;
          }
        })();
      };
    },
  });
  const clients = { files: breaking } as RunnerClients;
  return { session: { clients }, call: (f: (c: RunnerClients) => unknown) => f(clients) } as unknown as RunnerLink;
}

describe("devex cp: a download whose connection breaks", () => {
  let t: TestRunner;
  let dir: string;
  let stderr: string;
  const io = { stderr: { write: (s: string) => (stderr += s), isTTY: false } as unknown as NodeJS.WriteStream };
  const remote = (path: string) => ({ kind: "remote" as const, repl: "r", path });

  before(async () => {
    t = await startTestRunner();
    dir = await mkdtemp(join(tmpdir(), "devex-cp-resume-"));
  });
  beforeEach(() => {
    stderr = "";
  });
  after(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("resumes where it stopped and checks the whole file's SHA-256", async () => {
    const data = randomBytes(3 * 1024 * 1024);
    await writeFile(join(t.workspace, "big.bin"), data);
    const files = connectClient(FileService, t.runner.url, t.token);
    const said = await downloadPath(
      breakingLink(files, 4, 2),
      remote("big.bin"),
      join(dir, "big.bin"),
      { recursive: false },
      io,
    );
    assert.match(said, /3145728 bytes/);
    assert.deepEqual(await readFile(join(dir, "big.bin")), data);
    assert.equal(stderr.match(/resuming/g)?.length, 2);
  });

  it("a file changed while the download was broken fails, leaving nothing behind", async () => {
    await writeFile(join(t.workspace, "moving.bin"), randomBytes(2 * 1024 * 1024));
    const files = connectClient(FileService, t.runner.url, t.token);
    const change = () => writeFile(join(t.workspace, "moving.bin"), randomBytes(2 * 1024 * 1024 + 1));
    const out = join(dir, "sub");
    await mkdir(out);
    await assert.rejects(
      downloadPath(
        breakingLink(files, 2, 1, change),
        remote("moving.bin"),
        join(out, "moving.bin"),
        { recursive: false },
        io,
      ),
      /changed since the download began/,
    );
    assert.deepEqual(await readdir(out), []);
  });
});
