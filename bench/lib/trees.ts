/**
 * Workspace trees for the sync benches, generated deterministically from a seed: the same seed gives
 * the same paths, sizes and bytes on every machine. Shapes come from mulberry32 (lib/testing/seeded.ts);
 * bytes from AES-256-CTR keystreams keyed by it, because a JS generator would spend seconds on 300 MB.
 * Each file gets a seed of its own when the tree is planned, so files can be written in any order.
 */
import { createCipheriv } from "node:crypto";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { seeded } from "../../lib/testing/seeded.js";

const MiB = 1024 * 1024;

export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seeded(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** exp(N(ln median, sigma²)), by Box–Muller. */
  logNormal(median: number, sigma: number): number {
    const z = Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
    return median * Math.exp(sigma * z);
  }
  /** `n` bytes of an AES-256-CTR keystream keyed by this generator. */
  bytes(n: number): Buffer {
    const key = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) key.writeUInt32LE(this.int(2 ** 32), i * 4);
    return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(n));
  }
}

export interface PlannedFile {
  rel: string;
  size: number;
  kind: "text" | "binary";
  seed: number;
}

export interface Tree {
  files: PlannedFile[];
  links: Array<{ rel: string; target: string }>;
  /** Directories below the root. */
  dirs: number;
  bytes: number;
  /** How it was made, for the results file. */
  description: string;
}

/** 2,000 files of 2 KiB of random bytes, 50 in each of 40 directories two levels deep. */
export function planFlat(seed: number): Tree {
  const rng = new Rng(seed);
  const files: PlannedFile[] = [];
  for (let i = 0; i < 2000; i++)
    files.push({
      rel: `d${i % 8}/e${Math.floor(i / 8) % 5}/f${i}.bin`,
      size: 2048,
      kind: "binary",
      seed: rng.int(2 ** 32),
    });
  return {
    files,
    links: [],
    dirs: 48,
    bytes: 2000 * 2048,
    description: `2,000 × 2,048 random bytes (AES-256-CTR keystreams keyed by mulberry32(${seed})) in d0..d7/e0..e4`,
  };
}

const SYLLABLES = ["ba", "co", "de", "fi", "lo", "mu", "na", "pe", "ri", "so", "ta", "vu", "xe", "zo", "gra", "lex"];
const SUFFIXES = ["utils", "core", "js", "parser", "plugin", "loader", "types", "cli", "compat", "polyfill"];
const LAYOUTS = ["lib", "dist", "dist/esm", "dist/cjs", "src", "types", "lib/internal", "build"];
const EXTENSIONS = [".js", ".js", ".js", ".js", ".d.ts", ".d.ts", ".js.map", ".mjs", ".cjs", ".json"];

/** The few large files a real node_modules has: native addons, engines, bundled compilers. */
const LARGE: Array<Omit<PlannedFile, "seed">> = [
  { rel: "@next/swc-linux-x64-gnu/next-swc.linux-x64-gnu.node", size: 40 * MiB, kind: "binary" },
  { rel: "@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.42", size: 24 * MiB, kind: "binary" },
  { rel: "@prisma/engines/libquery_engine-debian-openssl-3.0.x.so.node", size: 16 * MiB, kind: "binary" },
  { rel: "@swc/core-linux-x64-gnu/swc.linux-x64-gnu.node", size: 12 * MiB, kind: "binary" },
  { rel: "@esbuild/linux-x64/bin/esbuild", size: 9 * MiB, kind: "binary" },
  { rel: "typescript/lib/typescript.js", size: 9 * MiB, kind: "text" },
  { rel: "typescript/lib/tsserver.js", size: 8 * MiB, kind: "text" },
  { rel: "playwright-core/lib/vite/recorder/assets/index.js", size: 5 * MiB, kind: "text" },
  { rel: "monaco-editor/min/vs/editor/editor.main.js", size: 4 * MiB, kind: "text" },
];

/** Text files: log-normal sizes around this median (bytes), clamped. */
const TEXT_MEDIAN = 3500;
const TEXT_SIGMA = 1.5;
const TEXT_MIN = 40;
const TEXT_MAX = 4 * MiB;

class NodeModulesPlan {
  readonly files: PlannedFile[] = [];
  readonly links: Array<{ rel: string; target: string }> = [];
  readonly dirs = new Set<string>();
  bytes = 0;
  private readonly names = new Set<string>();

  constructor(private readonly rng: Rng) {}

  add(rel: string, size: number, kind: PlannedFile["kind"] = "text") {
    const s = Math.round(size);
    this.files.push({ rel, size: s, kind, seed: this.rng.int(2 ** 32) });
    this.bytes += s;
    for (let d = dirname(rel); d !== "."; d = dirname(d)) this.dirs.add(d);
  }

  textSize = () => Math.min(TEXT_MAX, Math.max(TEXT_MIN, this.rng.logNormal(TEXT_MEDIAN, TEXT_SIGMA)));

  packageName(): string {
    const { rng } = this;
    let name = "";
    for (let i = 2 + rng.int(3); i > 0; i--) name += rng.pick(SYLLABLES);
    if (rng.next() < 0.3) name += `-${rng.pick(SUFFIXES)}`;
    if (rng.next() < 0.12) name = `@${rng.pick(SYLLABLES)}${rng.pick(SYLLABLES)}/${name}`;
    while (this.names.has(name)) name += rng.pick(SYLLABLES);
    this.names.add(name);
    return name;
  }

  /** One package under `modules` (a node_modules directory), maybe with nested node_modules. */
  addPackage(modules: string, depth: number) {
    const { rng } = this;
    const name = this.packageName();
    const dir = `${modules}/${name}`;
    this.add(`${dir}/package.json`, 400 + rng.int(1600));
    this.add(`${dir}/README.md`, Math.min(64 * 1024, rng.logNormal(4000, 0.9)));
    this.add(`${dir}/LICENSE`, 1070 + rng.int(100));
    const layout = Array.from({ length: 1 + rng.int(3) }, () => rng.pick(LAYOUTS));
    const count = Math.min(400, Math.max(1, Math.round(rng.logNormal(12, 1))));
    for (let i = 0; i < count; i++) {
      const ext = rng.pick(EXTENSIONS);
      const size = this.textSize() * (ext === ".js.map" ? 2 : 1);
      this.add(`${dir}/${rng.pick(layout)}/${rng.pick(SYLLABLES)}${rng.pick(SYLLABLES)}${i}${ext}`, size);
    }
    if (depth === 0 && rng.next() < 0.05) {
      this.add(`${dir}/bin/cli.js`, 500 + rng.int(4000));
      const bin = name.split("/").pop()!;
      this.links.push({ rel: `${modules}/.bin/${bin}`, target: `../${name}/bin/cli.js` });
      this.dirs.add(`${modules}/.bin`);
    }
    if (depth < 2 && rng.next() < 0.08)
      for (let i = 1 + rng.int(3); i > 0; i--) this.addPackage(`${dir}/node_modules`, depth + 1);
  }
}

/**
 * A node_modules-like tree of about `totalMiB`: the large files above, then packages (package.json,
 * README, LICENSE, a log-normal number of text files in a few layout folders, sometimes nested
 * node_modules two levels deep, sometimes a bin with a .bin symlink) until the total is reached.
 */
export function planNodeModules(seed: number, totalMiB = 300): Tree {
  const rng = new Rng(seed);
  const plan = new NodeModulesPlan(rng);
  for (const f of LARGE) plan.add(`node_modules/${f.rel}`, f.size, f.kind);
  while (plan.bytes < totalMiB * MiB) plan.addPackage("node_modules", 0);
  const large = LARGE.reduce((n, f) => n + f.size, 0);
  return {
    files: plan.files,
    links: plan.links,
    dirs: plan.dirs.size,
    bytes: plan.bytes,
    description:
      `node_modules-like, seed ${seed}: ${LARGE.length} large files (${Math.round(large / MiB)} MiB: native addons, ` +
      `engines, bundled compilers; 4–40 MiB) plus packages until ${totalMiB} MiB: package.json, README.md, LICENSE ` +
      `and log-normal(median 12, σ 1) text files each (sizes log-normal, median ${TEXT_MEDIAN} B, σ ${TEXT_SIGMA}, ` +
      `${TEXT_MIN} B–4 MiB; source maps twice that) in 1–3 layout folders; 12 % scoped, 8 % with nested ` +
      `node_modules (two levels at most), 5 % with a bin/cli.js linked from node_modules/.bin. Text is slices of a ` +
      `1 MiB seeded JS-like corpus behind a per-file header; binaries are AES-256-CTR keystreams`,
  };
}

const WORDS = ["const", "function", "return", "export", "import", "require", "module.exports", "if", "else", "this"];
const PUNCT = [" = ", "(", ") {", "};", " => ", ", ", ".", " && ", " || ", " === "];

/** A 1 MiB JS-like corpus that text files are slices of. */
function corpus(rng: Rng): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < MiB) {
    const word =
      rng.next() < 0.4 ? rng.pick(WORDS) : `${rng.pick(SYLLABLES)}${rng.pick(SYLLABLES)}${rng.pick(SYLLABLES)}`;
    const piece = word + (rng.next() < 0.1 ? ";\n  " : rng.pick(PUNCT));
    parts.push(piece);
    n += piece.length;
  }
  return Buffer.from(parts.join("")).subarray(0, MiB);
}

function textContent(text: Buffer, f: PlannedFile): Buffer {
  const out = Buffer.alloc(f.size);
  let at = Buffer.from(`/* ${f.rel} ${f.seed} */\n`).copy(out);
  let from = f.seed % text.length;
  while (at < f.size) {
    const n = text.copy(out, at, from, Math.min(text.length, from + f.size - at));
    at += n;
    from = (from + n) % text.length;
  }
  return out;
}

export const contentOf = (text: Buffer, f: PlannedFile) =>
  f.kind === "text" ? textContent(text, f) : new Rng(f.seed).bytes(f.size);

/** Runs `fn` over `items`, `limit` at a time. */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** Writes a planned tree under `root`. */
export async function writeTree(root: string, tree: Tree, seed: number): Promise<void> {
  const text = corpus(new Rng(seed ^ 0x5eed));
  const dirs = new Set([...tree.files, ...tree.links].map((f) => dirname(join(root, f.rel))));
  for (const d of [...dirs].sort()) await mkdir(d, { recursive: true });
  await eachLimit(tree.files, 16, (f) => writeFile(join(root, f.rel), contentOf(text, f)));
  for (const l of tree.links) await symlink(l.target, join(root, l.rel));
}

/** Rewrites `share` of the files (at least one) with new random bytes of the same size; returns what changed. */
export async function rewriteShare(root: string, tree: Tree, share: number, rng: Rng) {
  const count = Math.max(1, Math.round(tree.files.length * share));
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(rng.int(tree.files.length));
  const files = [...chosen].map((i) => tree.files[i]);
  await eachLimit(files, 16, (f) => writeFile(join(root, f.rel), rng.bytes(f.size)));
  return { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
}
