/**
 * readTar's limits on what it holds in memory: extended headers (pax, GNU long names) count against
 * one budget per entry however many there are, unknown pax keys are dropped, and paths are bounded.
 */
import assert from "node:assert/strict";
import { ByteReader } from "./byte-reader.js";
import { BLOCK, paddingOf, readTar, TarFormatError, tarEnd, tarHeader } from "./tar.js";

/** A header block of type `flag` announcing `size` bytes, with its checksum made right. */
function headerOfType(flag: string, size: number): Buffer {
  const block = tarHeader({ path: "PaxHeaders/x", type: "file", size, mode: 0o644, mtime: 0 }).subarray(0, BLOCK);
  const b = Buffer.from(block);
  b[156] = flag.charCodeAt(0);
  b.fill(0x20, 148, 156);
  const sum = b.reduce((a, x) => a + x, 0);
  b.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "ascii");
  return b;
}

const padded = (body: Buffer) => Buffer.concat([body, Buffer.alloc(paddingOf(body.length))]);

function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(rest);
  let len = bytes + String(bytes).length;
  if (String(len).length + bytes !== len) len = bytes + String(len).length;
  return `${len}${rest}`;
}

function pax(records: Array<[string, string]>): Buffer {
  const body = Buffer.from(records.map(([k, v]) => paxRecord(k, v)).join(""));
  return Buffer.concat([headerOfType("x", body.length), padded(body)]);
}

const file = (path: string, content = "hi") =>
  Buffer.concat([
    tarHeader({ path, type: "file", size: content.length, mode: 0o644, mtime: 0 }),
    padded(Buffer.from(content)),
  ]);

async function entries(archive: Buffer) {
  const out = [];
  const source = (async function* () {
    yield archive;
  })();
  for await (const e of readTar(new ByteReader(source))) out.push(e);
  return out;
}

describe("readTar's limits", () => {
  it("takes pax paths, dropping keys no entry uses", async () => {
    const archive = Buffer.concat([
      pax([
        ["path", "dir/ünïcode.txt"],
        ["comment", "x".repeat(1000)],
        ["SCHILY.xattr.user.a", "b"],
      ]),
      file("placeholder"),
      tarEnd(),
    ]);
    const [e] = await entries(archive);
    assert.equal(e.path, "dir/ünïcode.txt");
  });

  it("refuses extended headers past 64 KiB per entry, however many, before holding them", async () => {
    const flood = Array.from({ length: 3 }, (_, i) => pax([[`comment${i}`, "y".repeat(30 * 1024)]]));
    await assert.rejects(entries(Buffer.concat([...flood, file("f"), tarEnd()])), (e) => {
      assert.ok(e instanceof TarFormatError);
      assert.match(e.message, /extended headers pass 65536 bytes/);
      return true;
    });
    // The budget is per entry: the same headers spread over entries are fine.
    const spread = Buffer.concat([flood[0], file("a"), flood[1], file("b"), tarEnd()]);
    assert.deepEqual(
      (await entries(spread)).map((e) => e.path),
      ["a", "b"],
    );
  });

  it("refuses a path or link target longer than 4096 characters (GNU long name or pax)", async () => {
    const long = `${"a/".repeat(2100)}f`;
    const gnu = Buffer.from(`${long}\u0000`);
    await assert.rejects(
      entries(Buffer.concat([headerOfType("L", gnu.length), padded(gnu), file("x"), tarEnd()])),
      /longer than 4096/,
    );
    await assert.rejects(entries(Buffer.concat([pax([["linkpath", long]]), file("x"), tarEnd()])), /longer than 4096/);
  });
});
