/**
 * Runs a CommonJS bundle from V8's code cache, so a fresh process skips parsing and compiling it.
 *
 * Node 20 caches no compiled code between processes, and compiling the runner's megabyte of bundle
 * was a fifth of its start (the rest is running it). scripts/build.mjs copies this file beside a
 * target's bundles and runs `node <the processes' flags> code-cache.mjs --write <bundle>…`, which
 * compiles each bundle once and stores V8's serialized code as `<bundle>.cache`, and writes each
 * entry's loader with the cache's SHA-256. V8 takes a cache only from the same Node build and flags
 * it was made with, and otherwise compiles as if there were none (said once on stderr). It does not
 * check a cache's content, and a damaged one crashes the process: a cache whose digest differs is
 * never handed to it.
 *
 * Plain JavaScript with no dependencies: it is copied into dist/ as is. The bundles must not
 * import() at run time: a vm.Script has no module loader for it (the build refuses such a bundle).
 */
import { createHash } from "node:crypto";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

// The same wrapper as Node's own for CommonJS; the cache is only valid for this exact source.
const wrap = (source) => `(function (exports, require, module, __filename, __dirname) {${source}\n})`;

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/**
 * Compiles `file` with `<file>.cache` when there is one whose SHA-256 is `digest`. `rejected` says
 * why a cache there was not used ("damaged", or "refused" by V8: another Node or other flags).
 */
export function compileCached(file, digest) {
  let cachedData;
  let rejected;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {}
  if (cachedData && sha256(cachedData) !== digest) {
    cachedData = undefined;
    rejected = "damaged";
  }
  const script = new Script(wrap(readFileSync(file, "utf8")), { filename: file, cachedData });
  if (cachedData && script.cachedDataRejected) rejected = "refused";
  return { run: script.runInThisContext(), rejected };
}

/**
 * Runs the CommonJS bundle `file` (a path or file: URL) as Node would, from its code cache (see
 * compileCached). With --enable-source-maps it leaves the cache aside: Node 20 maps stack traces of
 * the scripts its own loader compiles only.
 */
export function runCached(file, digest) {
  const path = file instanceof URL ? fileURLToPath(file) : file;
  if (process.sourceMapsEnabled) return void createRequire(path)(path);
  const module = { exports: {}, filename: path, id: ".", loaded: false };
  const { run, rejected } = compileCached(path, digest);
  if (rejected) {
    process.stderr.write(
      `${path}: its code cache is ${rejected === "damaged" ? "damaged" : "for another Node or other Node flags"}; compiling instead (a slower start)\n`,
    );
  }
  run.call(module.exports, module.exports, createRequire(path), module, path, dirname(path));
  module.loaded = true;
}

/**
 * Writes `<file>.cache`: its code compiled by this process, with its flags, and returns the cache's
 * SHA-256. `filename` is where the file will be run from; V8 keeps the name a cache was made under,
 * and stack traces show it.
 */
function writeCache(file, filename) {
  const data = new Script(wrap(readFileSync(file, "utf8")), { filename }).createCachedData();
  writeFileSync(`${file}.cache`, data);
  return sha256(data);
}

/** Run as a program (by its real path: Node resolves links in the main module's URL, not in argv). */
function isMain() {
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// node <flags> code-cache.mjs --write <file> <filename> [<file> <filename>…]: prints {file: digest}.
if (process.argv[2] === "--write" && isMain()) {
  const args = process.argv.slice(3);
  const digests = {};
  for (let i = 0; i + 1 < args.length; i += 2) digests[args[i]] = writeCache(args[i], args[i + 1]);
  process.stdout.write(JSON.stringify(digests));
}
