/**
 * Streaming transfers against a real runner: UploadFile and DownloadFile (checksums, resume, a cut
 * connection, a mismatch), DownloadArchive and UploadArchive (checked against the system's tar), the
 * tar extraction's attack table, and the browser's ticketed HTTP route (zip checked with unzip).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { FileService } from "../../../gen/devex/runner/v1/file_pb.js";
import { paddingOf, type TarEntryHeader, tarEnd, tarHeader } from "../../../lib/archive/tar.js";
import { requireProgram } from "../../../lib/testing/programs.js";
import { codeOf, connectClient, startTestRunner, type TestRunner, waitFor } from "./helpers.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function* chunksOf(header: object, data: Buffer, size = 64 * 1024, trailer?: string) {
  yield { part: { case: "header" as const, value: header } };
  for (let at = 0; at < data.length; at += size)
    yield { part: { case: "chunk" as const, value: data.subarray(at, at + size) } };
  if (trailer) yield { part: { case: "trailer" as const, value: { sha256: trailer } } };
}

/** A tar archive built entry by entry (crafted, for the attacks). */
function tar(entries: Array<TarEntryHeader & { content?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const content = e.content ?? Buffer.alloc(0);
    parts.push(tarHeader({ ...e, size: content.length }), content, Buffer.alloc(paddingOf(content.length)));
  }
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

async function* archiveStream(path: string, bytes: Buffer, overwrite = false) {
  yield { part: { case: "header" as const, value: { path, overwrite } } };
  for (let at = 0; at < bytes.length; at += 4096)
    yield { part: { case: "chunk" as const, value: bytes.subarray(at, at + 4096) } };
}

/** Every name in a directory tree, temporary files included. */
/** Every name in a directory tree, temporary files included, never descending through a symlink. */
async function names(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const name = rel ? `${rel}/${e.name}` : e.name;
    out.push(name);
    if (e.isDirectory()) out.push(...(await names(path.join(dir, e.name), name)));
  }
  return out.sort();
}

describe("streaming transfers", () => {
  let t: TestRunner;
  let files: ReturnType<typeof connectClient<typeof FileService>>;
  before(async () => {
    t = await startTestRunner({ limits: { maxUploadBytes: 8 * 1024 * 1024 } });
    files = connectClient(FileService, t.runner.url, t.token);
  });
  after(() => t?.close());

  it("uploads a file in chunks and downloads it, the checksums matching; a download resumes at an offset", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 123);
    const res = await files.uploadFile(
      chunksOf({ path: "up/a.bin", createParents: true, size: BigInt(data.length), expectedSha256: sha(data) }, data),
    );
    assert.equal(res.sha256, sha(data));
    assert.deepEqual(await readFile(path.join(t.workspace, "up/a.bin")), data);
    const got: Buffer[] = [];
    let digest = "";
    let version = "";
    for await (const m of files.downloadFile({ path: "up/a.bin" })) {
      if (m.info) version = m.info.version;
      got.push(Buffer.from(m.chunk));
      if (m.sha256) digest = m.sha256;
      assert.ok(m.chunk.length <= 256 * 1024);
    }
    assert.deepEqual(Buffer.concat(got), data);
    assert.equal(digest, sha(data));
    const rest: Buffer[] = [];
    for await (const m of files.downloadFile({ path: "up/a.bin", offset: 1_000_000n, expectedVersion: version })) {
      rest.push(Buffer.from(m.chunk));
      if (m.sha256) digest = m.sha256;
    }
    assert.deepEqual(Buffer.concat(rest), data.subarray(1_000_000));
    assert.equal(digest, sha(data), "the whole file's digest, even when resumed");
    await writeFile(path.join(t.workspace, "up/a.bin"), "changed");
    const stale = files.downloadFile({ path: "up/a.bin", offset: 3n, expectedVersion: version });
    assert.equal(
      await codeOf(
        (async () => {
          for await (const _ of stale);
        })(),
      ),
      "FailedPrecondition",
    );
  });

  it("a checksum or size mismatch is refused with DataLoss, and nothing is left under any name", async () => {
    const data = randomBytes(200_000);
    const bad = sha(Buffer.from("something else"));
    const before = await names(t.workspace);
    assert.equal(await codeOf(files.uploadFile(chunksOf({ path: "m1.bin", expectedSha256: bad }, data))), "DataLoss");
    assert.equal(await codeOf(files.uploadFile(chunksOf({ path: "m2.bin" }, data, 65536, bad))), "DataLoss");
    assert.equal(await codeOf(files.uploadFile(chunksOf({ path: "m3.bin", size: 300_000n }, data))), "DataLoss");
    assert.equal(await codeOf(files.uploadFile(chunksOf({ path: "m4.bin", size: 100n }, data))), "DataLoss");
    assert.equal(
      await codeOf(files.uploadFile(chunksOf({ path: "m5.bin", size: 9n * 1024n * 1024n }, data))),
      "ResourceExhausted",
    );
    assert.deepEqual(await names(t.workspace), before);
    const ok = await files.uploadFile(chunksOf({ path: "m6.bin" }, data, 65536, sha(data)));
    assert.equal(ok.sha256, sha(data));
  });

  it("a stream without its header, or an existing file without overwrite, is refused", async () => {
    async function* noHeader() {
      yield { part: { case: "chunk" as const, value: Buffer.from("x") } };
    }
    assert.equal(await codeOf(files.uploadFile(noHeader())), "InvalidArgument");
    await writeFile(path.join(t.workspace, "exists.txt"), "old");
    assert.equal(await codeOf(files.uploadFile(chunksOf({ path: "exists.txt" }, Buffer.from("new")))), "AlreadyExists");
    await files.uploadFile(chunksOf({ path: "exists.txt", overwrite: true }, Buffer.from("new")));
    assert.equal(await readFile(path.join(t.workspace, "exists.txt"), "utf8"), "new");
  });

  it("an upload onto a symlink replaces the link and never writes through it", async () => {
    const outside = path.join(t.dir, "outside.txt");
    await writeFile(outside, "precious");
    await symlink(outside, path.join(t.workspace, "link.txt"));
    await files.uploadFile(chunksOf({ path: "link.txt", overwrite: true }, Buffer.from("mine")));
    assert.equal(await readFile(outside, "utf8"), "precious");
    assert.ok((await lstat(path.join(t.workspace, "link.txt"))).isFile());
  });

  it("a connection cut mid-upload leaves no file under the final name and no temporary file", async () => {
    const abort = new AbortController();
    async function* slow() {
      yield { part: { case: "header" as const, value: { path: "cut.bin", size: 4n * 1024n * 1024n } } };
      for (let i = 0; i < 64; i++) {
        yield { part: { case: "chunk" as const, value: randomBytes(32 * 1024) } };
        if (i === 8) await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 60_000));
    }
    const call = files.uploadFile(slow(), { signal: abort.signal }).catch((e) => e);
    await waitFor(async () => (await readdir(t.workspace)).some((n) => n.startsWith(".cut.bin.devex-")), 5000);
    abort.abort();
    await call;
    await waitFor(async () => !(await readdir(t.workspace)).some((n) => n.includes("cut.bin")), 5000);
  });

  it("downloads a directory as a tar the system's tar reads, and extracts a tar the system's tar wrote", async function () {
    if (!requireProgram(this, "tar")) return;
    const src = path.join(t.workspace, "tree");
    await mkdir(path.join(src, "a/b"), { recursive: true });
    await writeFile(path.join(src, "a/b/deep.txt"), "deep");
    await writeFile(path.join(src, `${"n".repeat(150)}.txt`), "long name");
    await writeFile(path.join(src, "big.bin"), randomBytes(700_000));
    await symlink("a/b/deep.txt", path.join(src, "ln"));
    const parts: Buffer[] = [];
    let digest = "";
    for await (const m of files.downloadArchive({ path: "tree" })) {
      parts.push(Buffer.from(m.chunk));
      if (m.sha256) digest = m.sha256;
    }
    const archive = Buffer.concat(parts);
    assert.equal(digest, sha(archive));
    const out = path.join(t.dir, "untar");
    await mkdir(out);
    execFileSync("tar", ["-x", "-C", out], { input: archive });
    assert.equal(await readFile(path.join(out, "a/b/deep.txt"), "utf8"), "deep");
    assert.equal(await readFile(path.join(out, `${"n".repeat(150)}.txt`), "utf8"), "long name");
    assert.deepEqual(await readFile(path.join(out, "big.bin")), await readFile(path.join(src, "big.bin")));
    assert.equal(await readlink(path.join(out, "ln")), "a/b/deep.txt");
    const systemTar = execFileSync("tar", ["-c", "-C", out, "."]);
    const res = await files.uploadArchive(archiveStream("copy", systemTar));
    assert.equal(res.sha256, sha(systemTar));
    assert.equal(await readFile(path.join(t.workspace, "copy/a/b/deep.txt"), "utf8"), "deep");
    assert.deepEqual(await readFile(path.join(t.workspace, "copy/big.bin")), await readFile(path.join(src, "big.bin")));
    assert.equal(await readlink(path.join(t.workspace, "copy/ln")), "a/b/deep.txt");
  });

  describe("tar extraction refuses what would escape", () => {
    const file = (p: string, text = "x", mode = 0o644): TarEntryHeader & { content: Buffer } => ({
      path: p,
      type: "file",
      size: 0,
      mode,
      mtime: 0,
      content: Buffer.from(text),
    });
    const attacks: Array<[string, Buffer]> = [
      ["../x", tar([file("../escaped.txt")])],
      ["a/../../x", tar([file("a/../../escaped.txt")])],
      ["an absolute path", tar([file("/tmp/escaped.txt")])],
      [
        "a symlink, then a file through it",
        tar([
          { path: "l", type: "symlink", size: 0, mode: 0o777, mtime: 0, linkTarget: "/tmp" },
          file("l/escaped.txt"),
        ]),
      ],
      [
        "a symlink inside, then a file through it",
        tar([{ path: "in", type: "symlink", size: 0, mode: 0o777, mtime: 0, linkTarget: "." }, file("in/escaped.txt")]),
      ],
    ];
    for (const [name, archive] of attacks) {
      it(`${name}: refused with InvalidArgument, nothing written outside`, async () => {
        const target = `x-${randomBytes(4).toString("hex")}`;
        assert.equal(await codeOf(files.uploadArchive(archiveStream(target, archive))), "InvalidArgument");
        assert.ok(!(await names(t.dir)).some((n) => n.endsWith("escaped.txt")));
        await assert.rejects(lstat("/tmp/escaped.txt"));
      });
    }

    it("a symlink already in the target folder is not written through", async () => {
      const outside = path.join(t.dir, "outside-dir");
      await mkdir(outside);
      await mkdir(path.join(t.workspace, "pre"));
      await symlink(outside, path.join(t.workspace, "pre/sub"));
      assert.equal(
        await codeOf(files.uploadArchive(archiveStream("pre", tar([file("sub/x.txt")])))),
        "InvalidArgument",
      );
      assert.deepEqual(await readdir(outside), []);
    });

    it("devices, FIFOs and hard links are skipped; setuid and setgid bits are dropped; garbage is InvalidArgument", async () => {
      const archive = tar([
        { path: "fifo", type: "other", size: 0, mode: 0o644, mtime: 0 },
        { path: "hard", type: "hardlink", size: 0, mode: 0o644, mtime: 0, linkTarget: "/etc/passwd" },
        file("suid.sh", "#!/bin/sh", 0o6755),
      ]);
      const res = await files.uploadArchive(archiveStream("modes", archive));
      assert.deepEqual(res.skipped.sort(), ["fifo", "hard"]);
      assert.equal((await lstat(path.join(t.workspace, "modes/suid.sh"))).mode & 0o7777, 0o755);
      assert.equal(await codeOf(files.uploadArchive(archiveStream("junk", randomBytes(2048)))), "InvalidArgument");
    });
  });

  describe("the browser's ticketed HTTP route", () => {
    const ticket = (req: Parameters<typeof files.createTransferTicket>[0]) => files.createTransferTicket(req);

    it("GET streams a file once per ticket, with its name; a used ticket is refused", async () => {
      await writeFile(path.join(t.workspace, "dl é.txt"), "download me");
      const tk = await ticket({ path: "dl é.txt", operation: 1 });
      assert.equal(tk.fileName, "dl é.txt");
      const res = await fetch(`${t.runner.url}${tk.path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-disposition") ?? "", /attachment; .*filename\*=UTF-8''dl%20%C3%A9\.txt/);
      assert.equal(await res.text(), "download me");
      assert.equal((await fetch(`${t.runner.url}${tk.path}`)).status, 403);
      assert.equal((await fetch(`${t.runner.url}/transfer/forged`)).status, 403);
    });

    it("GET streams a directory as a zip that unzip verifies", async function () {
      if (!requireProgram(this, "unzip")) return;
      const dir = path.join(t.workspace, "zipme");
      await mkdir(path.join(dir, "sub"), { recursive: true });
      await writeFile(path.join(dir, "sub/one.txt"), "one");
      const big = randomBytes(600_000);
      await writeFile(path.join(dir, "big.bin"), big);
      const tk = await ticket({ path: "zipme", operation: 1 });
      assert.equal(tk.fileName, "zipme.zip");
      const res = await fetch(`${t.runner.url}${tk.path}`);
      assert.equal(res.headers.get("content-type"), "application/zip");
      const zipFile = path.join(t.dir, "z.zip");
      await writeFile(zipFile, Buffer.from(await res.arrayBuffer()));
      execFileSync("unzip", ["-tq", zipFile]);
      const out = path.join(t.dir, "unzipped");
      execFileSync("unzip", ["-q", zipFile, "-d", out]);
      assert.equal(await readFile(path.join(out, "sub/one.txt"), "utf8"), "one");
      assert.deepEqual(await readFile(path.join(out, "big.bin")), big);
    });

    it("PUT writes the body as the file, checks the ticket's checksum, and needs the files scope", async () => {
      const body = randomBytes(300_000);
      const tk = await ticket({ path: "put/p.bin", operation: 2, createParents: true, expectedSha256: sha(body) });
      // A request of another method (a HEAD, a prefetch) is refused and leaves the ticket usable.
      assert.equal((await fetch(`${t.runner.url}${tk.path}`, { method: "GET" })).status, 405);
      const res = await fetch(`${t.runner.url}${tk.path}`, { method: "PUT", body });
      assert.equal(res.status, 201);
      assert.equal((await fetch(`${t.runner.url}${tk.path}`, { method: "PUT", body })).status, 403, "used once");
      assert.equal(((await res.json()) as { sha256: string }).sha256, sha(body));
      assert.deepEqual(await readFile(path.join(t.workspace, "put/p.bin")), body);
      const bad = await ticket({ path: "put/q.bin", operation: 2, expectedSha256: sha(Buffer.from("no")) });
      assert.equal((await fetch(`${t.runner.url}${bad.path}`, { method: "PUT", body })).status, 422);
      await assert.rejects(lstat(path.join(t.workspace, "put/q.bin")));
      const reader = connectClient(FileService, t.runner.url, t.mint({ scope: ["files:read"] }));
      assert.equal(await codeOf(reader.createTransferTicket({ path: "x", operation: 2 })), "PermissionDenied");
      assert.equal(await codeOf(reader.createTransferTicket({ path: "put/p.bin", operation: 1 })), "OK");
      assert.equal(await codeOf(reader.uploadFile(chunksOf({ path: "r.bin" }, body))), "PermissionDenied");
    });
  });
});
