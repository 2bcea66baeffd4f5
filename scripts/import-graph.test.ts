/**
 * The repository's dependency boundaries (issue 14, CONVENTIONS "Boundaries"), checked on the import
 * graph instead of remembered: lib/ never imports a service; a service reaches another only through
 * gen/, lib/contracts and lib/client (so never by a path into services/<other>); benches import no
 * test helpers (nothing in a `test/` folder). Every import form counts: `import`, `export … from`,
 * `import()`, `import("…").T` types and `import x = require()`. Forking a program by path is not an
 * import. Tests (`*.test.ts`, `test/` folders) may compose several services: an end-to-end test has
 * to start core with real runners, and shipping code is what the boundaries protect.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const scannedFolders = ["lib", "services", "bench", "cli", "web/src", "scripts"];
const skippedDirs = new Set(["node_modules", "dist"]);

interface Import {
  /** Importing file, relative to the root, with `/` separators. */
  file: string;
  line: number;
  specifier: string;
  /** The imported path relative to the root, or undefined for a package. */
  target: string | undefined;
}

const isTest = (path: string) => /\.test\.[mc]?tsx?$/.test(path) || path.includes("/test/");
const serviceOf = (path: string) => /^services\/([^/]+)\//.exec(path)?.[1];

/** Each boundary: a name for the report and whether an import crosses it. */
const rules: { name: string; breaks: (from: string, to: string) => boolean }[] = [
  {
    name: "lib/ imports a service",
    breaks: (from, to) => from.startsWith("lib/") && !isTest(from) && to.startsWith("services/"),
  },
  {
    name: "a service imports another service (use gen/, lib/contracts or lib/client)",
    breaks: (from, to) => {
      const [source, target] = [serviceOf(from), serviceOf(to)];
      return source !== undefined && target !== undefined && source !== target && !isTest(from);
    },
  },
  { name: "bench/ imports a test helper", breaks: (from, to) => from.startsWith("bench/") && to.includes("/test/") },
];

function* sourceFiles(dir: string): Generator<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !skippedDirs.has(entry.name)) yield* sourceFiles(path);
    else if (entry.isFile() && /\.[mc]?tsx?$/.test(entry.name)) yield path;
  }
}

const toPosix = (path: string) => path.split(sep).join("/");

function importsOf(path: string, root: string): Import[] {
  const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
  const file = toPosix(relative(root, path));
  const found: Import[] = [];
  const add = (literal: ts.Node | undefined) => {
    if (!literal || !ts.isStringLiteralLike(literal)) return;
    const specifier = literal.text;
    const target = specifier.startsWith(".") ? toPosix(relative(root, resolve(dirname(path), specifier))) : undefined;
    const line = source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1;
    found.push({ file, line, specifier, target });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every import in the scanned folders that crosses a boundary, as `file:line: rule: specifier`. */
function boundaryViolations(root: string): string[] {
  const violations: string[] = [];
  for (const folder of scannedFolders) {
    for (const path of sourceFiles(join(root, folder))) {
      for (const { file, line, specifier, target } of importsOf(path, root)) {
        if (target === undefined) continue;
        for (const rule of rules) {
          if (rule.breaks(file, target)) violations.push(`${file}:${line}: ${rule.name}: "${specifier}"`);
        }
      }
    }
  }
  return violations;
}

describe("import graph", () => {
  describe("the checker", () => {
    let root: string;
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    before(() => {
      root = mkdtempSync(join(tmpdir(), "import-graph-"));
      write(
        "lib/sync/a.ts",
        [
          `import { x } from "../../services/core/src/x.js";`,
          `export { y } from "../contracts/y.js";`,
          `const z = await import("../../services/runner/src/z.js");`,
          `type T = import("../../services/core/src/t.js").T;`,
          `import w = require("../../services/mcp/src/w.js");`,
        ].join("\n"),
      );
      write(
        "services/core/src/driver/a.ts",
        [
          `import { c } from "../../../../lib/contracts/c.js";`,
          `import { g } from "../../../../gen/devex/g_pb.js";`,
          `import { own } from "../own.js";`,
          `import pkg from "@connectrpc/connect";`,
          `export * from "../../../runner/src/pooled.js";`,
          `const entry = new URL("../../../../runner/src/pooled.ts", import.meta.url);`,
        ].join("\n"),
      );
      write("services/mcp/test/a.test.ts", `import { h } from "../../core/test/harness.js";`);
      write("services/mcp/src/a.ts", `import { h } from "../../core/src/embedded.js";`);
      write("lib/sync/a.test.ts", `import { o } from "../../services/core/src/objects.js";`);
      write(
        "bench/a.ts",
        `import { r } from "../lib/testing/redis.js";\nimport { h } from "../services/runner/test/helpers.js";`,
      );
      write("web/src/a.ts", `import { s } from "../../services/core/src/s.js";`);
      write("bench/node_modules/skipped.ts", `import { h } from "../../services/runner/test/helpers.js";`);
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    it("reports every import form across each boundary by file and line, tests composing services aside", () => {
      assert.deepEqual(boundaryViolations(root).sort(), [
        `bench/a.ts:2: bench/ imports a test helper: "../services/runner/test/helpers.js"`,
        `lib/sync/a.ts:1: lib/ imports a service: "../../services/core/src/x.js"`,
        `lib/sync/a.ts:3: lib/ imports a service: "../../services/runner/src/z.js"`,
        `lib/sync/a.ts:4: lib/ imports a service: "../../services/core/src/t.js"`,
        `lib/sync/a.ts:5: lib/ imports a service: "../../services/mcp/src/w.js"`,
        `services/core/src/driver/a.ts:5: a service imports another service (use gen/, lib/contracts or lib/client): "../../../runner/src/pooled.js"`,
        `services/mcp/src/a.ts:1: a service imports another service (use gen/, lib/contracts or lib/client): "../../core/src/embedded.js"`,
      ]);
    });
  });

  it("the repository crosses no boundary", () => {
    const violations = boundaryViolations(repoRoot);
    assert.equal(violations.length, 0, `imports across a boundary:\n  ${violations.join("\n  ")}`);
  });
});
