/**
 * The streaming zip writer past 4 GiB: a 4.25 GiB file of zeros (written sparse: its data are holes,
 * only the headers are real bytes) between two small ones, so both the file's size and the next
 * entry's offset need zip64. unzip and Python's zipfile read the central directory back with the
 * right sizes, and the small file after the big one extracts intact (its offset is a zip64 one).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireProgram } from "../testing/programs.js";
import { ZipWriter } from "./zip.js";

const BIG = 4 * 1024 ** 3 + 256 * 1024 ** 2;
const CHUNK = 8 * 1024 * 1024;

const ZERO = Buffer.alloc(CHUNK);

async function* zeros(size: number) {
  for (let left = size; left > 0; left -= CHUNK) yield left >= CHUNK ? ZERO : ZERO.subarray(0, left);
}

async function* once(text: string) {
  yield Buffer.from(text);
}

describe("zip writer past 4 GiB (zip64)", function () {
  this.timeout(300_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-zip64-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("writes sizes and offsets past 4 GiB that unzip and Python's zipfile read", async function () {
    const unzip = requireProgram(this, "unzip");
    const python = requireProgram(this, "python3");
    const file = join(dir, "big.zip");
    const fh = await open(file, "w");
    const zip = new ZipWriter();
    const entries = [
      { path: "first.txt", type: "file" as const, mode: 0o644, mtimeMs: Date.now(), content: once("first") },
      { path: "big.bin", type: "file" as const, mode: 0o644, mtimeMs: Date.now(), content: zeros(BIG) },
      {
        path: "after.txt",
        type: "file" as const,
        mode: 0o600,
        mtimeMs: Date.now(),
        content: once("after the big one"),
      },
    ];
    let pos = 0;
    for (const e of entries) {
      for await (const piece of zip.entry(e)) {
        // zeros are left as holes: the file is sparse, only headers and small contents are written
        if (piece.buffer !== ZERO.buffer) await fh.write(piece, 0, piece.length, pos);
        pos += piece.length;
      }
    }
    const end = zip.end();
    await fh.write(end, 0, end.length, pos);
    await fh.close();
    const listing = execFileSync(unzip, ["-l", file]).toString();
    assert.match(listing, new RegExp(`\\s${BIG}\\s.*big\\.bin`));
    const sizes = execFileSync(python, [
      "-c",
      "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(*[f'{i.filename}={i.file_size}' for i in z.infolist()]); print(z.read('after.txt').decode())",
      file,
    ]).toString();
    assert.equal(sizes, `first.txt=5 big.bin=${BIG} after.txt=17\nafter the big one\n`);
    execFileSync(unzip, ["-q", file, "after.txt", "-d", join(dir, "out")]);
    assert.equal(await readFile(join(dir, "out/after.txt"), "utf8"), "after the big one");
  });
});
