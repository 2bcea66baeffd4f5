/**
 * Lists the functions (declarations, methods, constructors, accessors, arrow functions and function
 * expressions) longer than a limit in the source folders, longest first, so issue 14's "no function
 * over about 120 lines" can be checked instead of remembered. Tests and test support (`*.test.ts`,
 * `test/` folders) are left out unless asked for: a contract suite is one long `describe` callback
 * by design.
 *
 *   npx tsx scripts/long-functions.ts [--limit 120] [--tests] [folder ...]   (default: services lib)
 *
 * `findLongFunctions` is exported so a test can assert the list is empty.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export interface LongFunction {
  /** Path relative to the repository root. */
  file: string;
  /** 1-based line where the function starts. */
  line: number;
  /** Lines from the first to the last line of the function, both included. */
  lines: number;
  /** The name it is known by: its own, its variable's, its property's, or `<anonymous>`. */
  name: string;
}

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const defaultFolders = ["services", "lib"];
const skippedDirs = new Set(["node_modules", "dist", "gen"]);

export interface LongFunctionOptions {
  /** Longest allowed function, in lines. */
  limit?: number;
  /** Folders to scan, relative to `root`. */
  folders?: string[];
  /** Also scan tests and test support. */
  tests?: boolean;
  root?: string;
}

/** Every function in the folders longer than the limit, longest first. */
export function findLongFunctions(options: LongFunctionOptions = {}): LongFunction[] {
  const { limit = 120, folders = defaultFolders, tests = false, root = repoRoot } = options;
  const found: LongFunction[] = [];
  for (const folder of folders) {
    for (const path of sourceFiles(join(root, folder), tests)) {
      found.push(...longFunctionsIn(path, relative(root, path), limit));
    }
  }
  return found.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
}

function* sourceFiles(dir: string, tests: boolean): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skippedDirs.has(entry.name) && (tests || entry.name !== "test")) yield* sourceFiles(path, tests);
    } else if (entry.isFile() && isSource(entry.name, tests)) yield path;
  }
}

function isSource(name: string, tests: boolean): boolean {
  if (!/\.(ts|tsx|mts)$/.test(name) || name.endsWith(".d.ts")) return false;
  return tests || !/\.test\.tsx?$/.test(name);
}

function longFunctionsIn(path: string, file: string, limit: number): LongFunction[] {
  const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > limit) found.push({ file, line: first + 1, lines, name: nameOf(node, source) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function nameOf(node: ts.SignatureDeclaration, source: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return `${className(node.parent)}.constructor`;
  if (node.name) {
    const own = node.name.getText(source);
    return ts.isClassLike(node.parent) ? `${className(node.parent)}.${own}` : own;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText(source);
  }
  if (ts.isCallExpression(parent)) return `<callback of ${parent.expression.getText(source).slice(0, 40)}>`;
  return "<anonymous>";
}

function className(node: ts.Node): string {
  return ts.isClassLike(node) && node.name ? node.name.text : "<class>";
}

function parseArgs(argv: string[]): Required<Omit<LongFunctionOptions, "root">> {
  let limit = 120;
  let tests = false;
  const folders: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--limit") limit = Number(argv[++i]);
    else if (argv[i] === "--tests") tests = true;
    else folders.push(argv[i]);
  }
  if (!Number.isInteger(limit) || limit < 1) throw new Error("--limit takes a positive whole number of lines");
  return { limit, tests, folders: folders.length > 0 ? folders : defaultFolders };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const options = parseArgs(process.argv.slice(2));
  const found = findLongFunctions(options);
  for (const f of found) console.log(`${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}`);
  console.log(`${found.length} function(s) over ${options.limit} lines in ${options.folders.join(", ")}`);
}
