/** Plain left-aligned columns, as `docker ps` prints them. */
export function formatTable(header: string[], rows: string[][]): string {
  return formatColumns([header, ...rows]);
}

/** Rows in left-aligned columns, without a header (as `git diff --name-status` prints them). */
export function formatColumns(rows: string[][]): string {
  const count = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: count }, (_, i) => Math.max(0, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return rows.map((r) => `${line(r)}\n`).join("");
}

/** A size as people read it: "812 B", "3.4 KiB", "1.2 GiB". */
export function formatBytes(bytes: bigint | number): string {
  const n = Number(bytes);
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (n < 1024) return `${n} B`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
