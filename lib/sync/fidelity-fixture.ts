/**
 * The fidelity table of issue 13 as shell, for tests: BUILD makes one workspace holding every kind of
 * entry a persist/restore round trip must keep (or, by rule, must not), PROBE describes each row's
 * paths with `stat` and `sha256sum`. Shell, so the same table runs on a host directory, through the
 * sync CLI, and inside a repl through Exec. Every path gets an old, distinct mtime last (children
 * before their directory), so "restored as now" can never pass for "restored".
 */

/** One row: what it shows and the paths it probes. */
export interface FidelityRow {
  item: string;
  paths: string[];
}

export const FIDELITY_ROWS: FidelityRow[] = [
  { item: "text file (LF)", paths: ["text.txt"] },
  { item: "CRLF line ends", paths: ["crlf.txt"] },
  { item: "no trailing newline", paths: ["no-newline.txt"] },
  { item: "0-byte file", paths: ["empty.txt"] },
  { item: "binary with NULs (packed)", paths: ["small.bin"] },
  { item: "binary 300 KiB (own object)", paths: ["random.bin"] },
  { item: "sparse 64 MiB, data at both ends", paths: ["sparse.img"] },
  { item: "empty directory", paths: ["empty-dir"] },
  { item: "nested empty directories", paths: ["nest", "nest/a", "nest/a/b", "nest/a/b/c"] },
  { item: "mode 0644 / 0600 / 0400", paths: ["mode-644", "mode-600", "mode-400"] },
  { item: "exec bits 0755 / 0700 / 0750", paths: ["tool-755", "script-700", "group-750"] },
  { item: "setuid/setgid dropped (4755 → 755)", paths: ["suid-4755"] },
  { item: "directory modes 0700 / 0555 (with content)", paths: ["private-700", "readonly-555", "readonly-555/inside"] },
  { item: "sticky directory 1777", paths: ["sticky-1777"] },
  { item: "symlink, relative", paths: ["link-rel"] },
  { item: "symlink, absolute", paths: ["link-abs"] },
  { item: "symlink, dangling", paths: ["link-dangling"] },
  { item: "symlink to a directory", paths: ["link-dir"] },
  { item: "hard link pair → two copies", paths: ["hard-a", "hard-b"] },
  { item: "FIFO → left out, reported", paths: ["fifo"] },
];

/** Run with bash in the (empty) workspace directory. */
export const FIDELITY_BUILD = String.raw`
set -eu
umask 022
printf 'line one\nline two\n' > text.txt
printf 'a\r\nb\r\n' > crlf.txt
printf 'no newline at the end' > no-newline.txt
: > empty.txt
printf '\000\001\002\377\000binary\000' > small.bin
head -c 307200 /dev/urandom > random.bin
truncate -s 64M sparse.img
printf 'HEAD' | dd of=sparse.img conv=notrunc status=none
printf 'TAIL' | dd of=sparse.img bs=1 seek=$((64 * 1024 * 1024 - 4)) conv=notrunc status=none
mkdir empty-dir
mkdir -p nest/a/b/c
printf 'plain\n' > mode-644; chmod 644 mode-644
printf 'secret\n' > mode-600; chmod 600 mode-600
printf 'read only\n' > mode-400; chmod 400 mode-400
printf '#!/bin/sh\necho tool\n' > tool-755; chmod 755 tool-755
printf '#!/bin/sh\necho mine\n' > script-700; chmod 700 script-700
printf '#!/bin/sh\necho group\n' > group-750; chmod 750 group-750
printf '#!/bin/sh\necho suid\n' > suid-4755; chmod 4755 suid-4755
mkdir private-700; printf 'p\n' > private-700/file; chmod 700 private-700
mkdir readonly-555; printf 'r\n' > readonly-555/inside; chmod 555 readonly-555
mkdir sticky-1777; chmod 1777 sticky-1777
ln -s text.txt link-rel
ln -s /etc/hostname link-abs
ln -s nowhere/at/all link-dangling
ln -s nest/a link-dir
printf 'linked\n' > hard-a; ln hard-a hard-b
mkfifo fifo
# Old, distinct mtimes with a ms part, deepest first (children before their directory).
i=0
find . -depth -mindepth 1 ! -type p ! -type l -print0 | while IFS= read -r -d '' p; do
  i=$((i + 1)); touch -d "@$((1000000000 + i * 86461)).250" -- "$p"
done
`;

/**
 * Run with bash in a workspace, the paths as arguments: one line per path, "<path>\t<description>".
 * Regular file: mode, mtime (s), nlink, size, sha256. Directory: mode, mtime. Symlink: its target
 * (a link's own mode and times are not kept). FIFO: its type. Missing: "missing". The allocated
 * blocks of sparse.img go in a last "#alloc" line (information; sparse restore is a bonus).
 */
export const FIDELITY_PROBE = String.raw`
for p in "$@"; do
  if [ -L "$p" ]; then d="symlink -> $(readlink -- "$p")"
  elif [ -f "$p" ]; then d="file $(stat -c '%a %Y nlink=%h size=%s' -- "$p") $(sha256sum < "$p" | cut -c1-16)"
  elif [ -d "$p" ]; then d="dir $(stat -c '%a %Y' -- "$p")"
  elif [ -e "$p" ]; then d="$(stat -c '%F' -- "$p")"
  else d=missing; fi
  printf '%s\t%s\n' "$p" "$d"
done
[ -f sparse.img ] && printf '#alloc\t%s\n' "$(stat -c '%b*%B' sparse.img)"
true
`;

export const fidelityPaths = () => FIDELITY_ROWS.flatMap((r) => r.paths);

/** Parses PROBE's output: path → description. */
export function parseProbe(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab > 0) m.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return m;
}

/**
 * What a round trip must give back for a path probed as `before`, by the stated rules: everything
 * as it was, except that setuid/setgid bits are dropped, hard links come back as separate copies
 * (nlink 1) and FIFOs, sockets and devices are left out.
 */
export function expectedAfter(before: string): string {
  if (/^(fifo|socket|character special file|block special file)/.test(before)) return "missing";
  return before
    .replace(/^(file|dir) (\d+)/, (_, kind, mode) => `${kind} ${(Number.parseInt(mode, 8) & 0o1777).toString(8)}`)
    .replace(/nlink=\d+/, "nlink=1");
}

export interface FidelityResult {
  rows: Array<{ item: string; path: string; before: string; after: string; ok: boolean }>;
  failed: number;
  /** "allocated bytes before → after" of the sparse file. */
  sparse: string;
}

/** Compares two probes row by row and prints the table (to stdout, for the test log). */
export function fidelityTable(title: string, before: Map<string, string>, after: Map<string, string>): FidelityResult {
  const rows = FIDELITY_ROWS.flatMap((r) =>
    r.paths.map((path) => {
      const b = before.get(path) ?? "not probed";
      const a = after.get(path) ?? "not probed";
      return { item: r.item, path, before: b, after: a, ok: a === expectedAfter(b) };
    }),
  );
  const alloc = (m: Map<string, string>) => {
    const [blocks, size] = (m.get("#alloc") ?? "0*0").split("*").map(Number);
    return blocks * size;
  };
  const sparse = `${alloc(before)} → ${alloc(after)} bytes allocated`;
  const width = Math.max(...rows.map((r) => r.item.length));
  const lines = rows.map(
    (r) =>
      `  ${r.ok ? "ok  " : "FAIL"} ${r.item.padEnd(width)}  ${r.path}: ${r.before}` +
      (r.after === r.before ? "" : `  ${r.ok ? "→" : "≠"}  ${r.after}`),
  );
  console.log(`\n  fidelity: ${title}\n${lines.join("\n")}\n  sparse.img: ${sparse}\n`);
  return { rows, failed: rows.filter((r) => !r.ok).length, sparse };
}
