/**
 * Runs a CommonJS bundle from V8's code cache, so a fresh process skips parsing and compiling it.
 *
 * Node 20 caches no compiled code between processes, and compiling the runner's megabyte of bundle
 * was a fifth of its start (the rest is running it). scripts/build.mjs copies this file beside a
 * target's bundles and runs `node <the processes' flags> code-cache.mjs --write <bundle>…`, which
 * compiles each bundle once and stores V8's serialized code as `<bundle>.cache`. V8 takes a cache
 * only from the same Node build and flags it was made with and otherwise compiles as if there were
 * none, so a mismatch costs time, never correctness.
 *
 * Plain JavaScript with no dependencies: it is copied into dist/ as is.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

// The same wrapper as Node's own for CommonJS; the cache is only valid for this exact source.
const wrap = (source) => `(function (exports, require, module, __filename, __dirname) {${source}\n})`;

/** Compiles `file` with its cache when there is one. `rejected` says whether V8 refused that cache. */
export function compileCached(file) {
  let cachedData;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {}
  const script = new Script(wrap(readFileSync(file, "utf8")), { filename: file, cachedData });
  return { script, run: script.runInThisContext(), rejected: cachedData ? script.cachedDataRejected : undefined };
}

/**
 * Runs the CommonJS bundle `file` (a path or file: URL) as Node would, from its code cache. With
 * --enable-source-maps it leaves the cache aside: Node 20 maps stack traces of the scripts its own
 * loader compiles only.
 */
export function runCached(file) {
  const path = file instanceof URL ? fileURLToPath(file) : file;
  if (process.sourceMapsEnabled) return void createRequire(path)(path);
  const module = { exports: {}, filename: path, id: ".", loaded: false };
  const { run } = compileCached(path);
  run.call(module.exports, module.exports, createRequire(path), module, path, dirname(path));
  module.loaded = true;
}

/**
 * Writes `<file>.cache`: its code compiled by this process, with its flags. `filename` is where the
 * file will be run from; V8 keeps the name a cache was made under, and stack traces show it.
 */
function writeCache(file, filename) {
  const script = new Script(wrap(readFileSync(file, "utf8")), { filename });
  writeFileSync(`${file}.cache`, script.createCachedData());
}

// node <flags> code-cache.mjs --write <file> <filename> [<file> <filename>…]
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "--write") {
  const args = process.argv.slice(3);
  for (let i = 0; i + 1 < args.length; i += 2) writeCache(args[i], args[i + 1]);
}
