import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Client } from "@connectrpc/connect";
import { createTwoFilesPatch } from "diff";
import { FileEventType, FileService, FileType } from "../../../gen/devex/runner/v1/file_pb.js";
import { codeOf, connectClient, startTestRunner, type TestRunner, waitFor } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("runner FileService", () => {
  let t: TestRunner;
  let files: Client<typeof FileService>;

  before(async () => {
    t = await startTestRunner({ limits: { maxFileRead: 64 * 1024 } });
    files = connectClient(FileService, t.runner.url, t.token);
  });
  after(() => t?.close());

  it("writes atomically with versions; a stale expected_version fails with FailedPrecondition", async () => {
    const w1 = await files.writeFile({ path: "a/b/c.txt", content: enc("one\n"), createParents: true });
    assert.equal(w1.info?.type, FileType.FILE);
    assert.ok(w1.info?.version);
    const w2 = await files.writeFile({ path: "a/b/c.txt", content: enc("two\n"), expectedVersion: w1.info!.version });
    assert.notEqual(w2.info!.version, w1.info!.version);
    const err = await files
      .writeFile({ path: "a/b/c.txt", content: enc("three\n"), expectedVersion: w1.info!.version })
      .catch((e) => e);
    assert.match(String(err), /FailedPrecondition|failed_precondition/i);
    assert.match(String(err), /changed since it was read/);
    assert.equal(readFileSync(path.join(t.workspace, "a/b/c.txt"), "utf8"), "two\n");
    assert.equal(
      await codeOf(files.writeFile({ path: "a/b/c.txt", content: enc("x"), exclusive: true })),
      "AlreadyExists",
    );
    assert.equal(await codeOf(files.writeFile({ path: "nope/x.txt", content: enc("x") })), "NotFound");
    const stat = await files.statFile({ path: "a/b/c.txt" });
    assert.equal(stat.info?.version, w2.info?.version);
    assert.equal(stat.info?.size, 4n);
  });

  it("reads byte ranges (negative offset from the end), binary-safe, with a clear size limit", async () => {
    const bin = Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]);
    await files.writeFile({ path: "bin.dat", content: bin });
    const all = await files.readFile({ path: "bin.dat" });
    assert.deepEqual(Buffer.from(all.content), bin);
    const tail = await files.readFile({ path: "bin.dat", offset: -3n });
    assert.deepEqual(Buffer.from(tail.content), bin.subarray(5));
    assert.equal(tail.offset, 5n);
    const mid = await files.readFile({ path: "bin.dat", offset: 2n, limit: 2n });
    assert.deepEqual(Buffer.from(mid.content), bin.subarray(2, 4));
    assert.equal(mid.truncated, true);
    await writeFile(path.join(t.workspace, "big.bin"), Buffer.alloc(100 * 1024, 7));
    const err = (await files.readFile({ path: "big.bin" }).catch((e: unknown) => String(e))) as string;
    assert.match(err, /ResourceExhausted|resource_exhausted/i);
    assert.match(err, /100 KiB, larger than the read limit of 64 KiB: read a byte range/);
    const part = await files.readFile({ path: "big.bin", offset: -1000n, limit: 1000n });
    assert.equal(part.content.length, 1000);
    assert.equal(await codeOf(files.readFile({ path: "big.bin", limit: 1_000_000n })), "InvalidArgument");
    execFileSync("mkfifo", [path.join(t.workspace, "fifo")]);
    assert.equal(
      await codeOf(files.readFile({ path: "fifo" })),
      "FailedPrecondition",
      "a FIFO is refused, not read forever",
    );
    // Nor copied: four copies at once used to block the whole thread pool, and every file RPC with it.
    const copies = Array.from({ length: 4 }, (_, i) =>
      codeOf(files.copyFile({ source: "fifo", destination: `f${i}` })),
    );
    assert.deepEqual(await Promise.all(copies), Array(4).fill("FailedPrecondition"));
    assert.equal((await files.statFile({ path: "big.bin" })).info?.path, "big.bin");
  });

  it("lists with depth, max_entries, exclude globs and hidden files", async () => {
    await mkdir(path.join(t.workspace, "l/node_modules/x"), { recursive: true });
    await mkdir(path.join(t.workspace, "l/src/deep"), { recursive: true });
    await writeFile(path.join(t.workspace, "l/src/deep/a.ts"), "");
    await writeFile(path.join(t.workspace, "l/src/b.log"), "");
    await writeFile(path.join(t.workspace, "l/.env"), "");
    const one = await files.listFiles({ path: "l" });
    assert.deepEqual(
      one.entries.map((e) => e.path),
      ["l/node_modules", "l/src"],
    );
    const deep = await files.listFiles({
      path: "l",
      depth: 5,
      exclude: ["node_modules", "**/*.log"],
      includeHidden: true,
    });
    assert.deepEqual(
      deep.entries.map((e) => e.path),
      ["l/.env", "l/src", "l/src/deep", "l/src/deep/a.ts"],
    );
    const cut = await files.listFiles({ path: "l", depth: 5, maxEntries: 2 });
    assert.equal(cut.entries.length, 2);
    assert.equal(cut.truncated, true);
  });

  it("edits exact text: unique match or replace_all, dry run, diff; nothing written on failure", async () => {
    await files.writeFile({ path: "e.txt", content: enc("alpha\nbeta\nbeta\ngamma\n") });
    const dry = await files.editFile({ path: "e.txt", edits: [{ oldText: "alpha", newText: "ALPHA" }], dryRun: true });
    assert.match(dry.diff, /-alpha\n\+ALPHA/);
    assert.equal(readFileSync(path.join(t.workspace, "e.txt"), "utf8"), "alpha\nbeta\nbeta\ngamma\n");
    const dup = (await files
      .editFile({ path: "e.txt", edits: [{ oldText: "beta", newText: "B" }] })
      .catch((e: unknown) => String(e))) as string;
    assert.match(dup, /occurs 2 times/);
    const missing = await codeOf(
      files.editFile({
        path: "e.txt",
        edits: [
          { oldText: "alpha", newText: "A" },
          { oldText: "zzz", newText: "" },
        ],
      }),
    );
    assert.equal(missing, "FailedPrecondition");
    assert.equal(readFileSync(path.join(t.workspace, "e.txt"), "utf8"), "alpha\nbeta\nbeta\ngamma\n");
    const ok = await files.editFile({
      path: "e.txt",
      edits: [
        { oldText: "alpha", newText: "A" },
        { oldText: "beta", newText: "B", replaceAll: true },
      ],
    });
    assert.equal(ok.replacements, 3);
    assert.equal(readFileSync(path.join(t.workspace, "e.txt"), "utf8"), "A\nB\nB\ngamma\n");
  });

  it("applies a unified diff all-or-nothing", async () => {
    const before = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");
    const after = before.replace("line 2\n", "two\n").replace("line 25\n", "twenty-five\n");
    await files.writeFile({ path: "p.txt", content: enc(before) });
    const patch = createTwoFilesPatch("a/p.txt", "b/p.txt", before, after);
    const res = await files.patchFile({ path: "p.txt", patch });
    assert.equal(res.hunksApplied, 2);
    assert.equal(readFileSync(path.join(t.workspace, "p.txt"), "utf8"), after);
    assert.equal(await codeOf(files.patchFile({ path: "p.txt", patch })), "FailedPrecondition");
    assert.equal(readFileSync(path.join(t.workspace, "p.txt"), "utf8"), after);
  });

  it("creates, moves, copies and deletes (recursive only when asked)", async () => {
    await files.createDirectory({ path: "m/n/o", parents: true });
    assert.equal(await codeOf(files.createDirectory({ path: "m" })), "AlreadyExists");
    await files.writeFile({ path: "m/n/o/f.txt", content: enc("f") });
    await files.copyFile({ source: "m", destination: "m2" });
    assert.equal(readFileSync(path.join(t.workspace, "m2/n/o/f.txt"), "utf8"), "f");
    assert.equal(await codeOf(files.copyFile({ source: "m", destination: "m2" })), "AlreadyExists");
    await files.moveFile({ source: "m2/n/o/f.txt", destination: "moved.txt" });
    assert.equal(readFileSync(path.join(t.workspace, "moved.txt"), "utf8"), "f");
    assert.equal(await codeOf(files.moveFile({ source: "m", destination: "m/n/inside" })), "InvalidArgument");
    assert.equal(await codeOf(files.deleteFile({ path: "m" })), "FailedPrecondition");
    await files.deleteFile({ path: "m", recursive: true });
    assert.equal(await codeOf(files.statFile({ path: "m" })), "NotFound");
  });

  it("searches by glob and by content (plain, regex, case), bounded", async () => {
    await mkdir(path.join(t.workspace, "s/lib"), { recursive: true });
    await writeFile(path.join(t.workspace, "s/lib/a.ts"), "const Foo = 1;\nfoo();\n");
    await writeFile(path.join(t.workspace, "s/lib/b.js"), "foo.bar\n");
    await writeFile(path.join(t.workspace, "s/c.ts"), "nothing\n");
    const names = await files.searchFiles({ path: "s", glob: "**/*.ts" });
    assert.deepEqual(names.paths, ["s/c.ts", "s/lib/a.ts"]);
    const plain = await files.searchFiles({ path: "s", contentPattern: "foo." });
    assert.deepEqual(
      plain.matches.map((m) => `${m.path}:${m.line}`),
      ["s/lib/b.js:1"],
    );
    const regex = await files.searchFiles({ path: "s", contentPattern: "^foo", regex: true, caseSensitive: true });
    assert.deepEqual(
      regex.matches.map((m) => `${m.path}:${m.line}`),
      ["s/lib/a.ts:2", "s/lib/b.js:1"],
    );
    const bounded = await files.searchFiles({ path: "s", contentPattern: "foo", maxResults: 1 });
    assert.equal(bounded.matches.length, 1);
    assert.equal(bounded.truncated, true);
    assert.equal(await codeOf(files.searchFiles({ path: "s", contentPattern: "(", regex: true })), "InvalidArgument");
  });

  it("watches recursively and reports created, modified and deleted in batches", async () => {
    await mkdir(path.join(t.workspace, "w/sub"), { recursive: true });
    const ac = new AbortController();
    const events: Array<{ type: FileEventType; path: string }> = [];
    const done = (async () => {
      try {
        for await (const batch of files.watchFiles({ path: "w", recursive: true }, { signal: ac.signal })) {
          events.push(...batch.events.map((e) => ({ type: e.type, path: e.path })));
        }
      } catch {}
    })();
    await new Promise((r) => setTimeout(r, 200));
    await writeFile(path.join(t.workspace, "w/sub/new.txt"), "1");
    await waitFor(() => events.some((e) => e.path === "w/sub/new.txt" && e.type === FileEventType.CREATED));
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(path.join(t.workspace, "w/sub/new.txt"), "2");
    await waitFor(() => events.some((e) => e.path === "w/sub/new.txt" && e.type === FileEventType.MODIFIED));
    await files.deleteFile({ path: "w/sub/new.txt" });
    await waitFor(() => events.some((e) => e.path === "w/sub/new.txt" && e.type === FileEventType.DELETED));
    ac.abort();
    await done;
  });
});
