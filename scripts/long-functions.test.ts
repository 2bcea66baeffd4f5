import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findLongFunctions } from "./long-functions.js";

const body = (lines: number) => Array.from({ length: lines - 2 }, (_, i) => `  const v${i} = ${i};`).join("\n");

describe("long-functions", () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "long-functions-"));
    mkdirSync(join(root, "src/test"), { recursive: true });
    writeFileSync(
      join(root, "src/a.ts"),
      [
        `export function long() {\n${body(130)}\n}`,
        `export const arrow = () => {\n${body(125)}\n};`,
        `export class K {\n  method() {\n${body(121)}\n  }\n}`,
        `export function short() {\n${body(120)}\n}`,
      ].join("\n"),
    );
    writeFileSync(join(root, "src/a.test.ts"), `describe("x", () => {\n${body(200)}\n});`);
    writeFileSync(join(root, "src/test/helper.ts"), `export function helper() {\n${body(200)}\n}`);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("lists functions over the limit by name and length, longest first, leaving tests out", () => {
    const found = findLongFunctions({ root, folders: ["src"] });
    assert.deepEqual(
      found.map((f) => [f.file, f.line, f.lines, f.name]),
      [
        ["src/a.ts", 1, 130, "long"],
        ["src/a.ts", 131, 125, "arrow"],
        ["src/a.ts", 257, 121, "K.method"],
      ],
    );
  });

  it("includes tests and test support when asked", () => {
    const names = findLongFunctions({ root, folders: ["src"], tests: true }).map((f) => f.name);
    assert.deepEqual(names, ["<callback of describe>", "helper", "long", "arrow", "K.method"]);
  });

  it("finds no function over 120 lines in services/ and lib/ (issue 14: split by responsibility)", () => {
    const found = findLongFunctions({ root: join(import.meta.dirname, "..") });
    assert.deepEqual(
      found.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`),
      [],
    );
  });
});
