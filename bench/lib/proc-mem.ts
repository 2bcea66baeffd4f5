/**
 * Reading processes' memory and ancestry from /proc (Linux), for the density bench. Sizes in KiB, as
 * the kernel reports them. A process that exits between two reads reads as undefined.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";

export interface ProcMem {
  pid: number;
  comm: string;
  /** VmRSS: resident pages, shared ones (the node binary, libraries) counted in full. */
  rss: number;
  rssAnon: number;
  rssFile: number;
  /** Proportional set size: each shared page divided by the number of processes mapping it. */
  pss: number;
  /** Private_Clean + Private_Dirty: pages only this process maps, what its exit would free. */
  private: number;
  swap: number;
}

const read = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);

export function procMem(pid: number): ProcMem | undefined {
  const status = read(`/proc/${pid}/status`);
  const rollup = read(`/proc/${pid}/smaps_rollup`);
  if (!status || rollup === undefined) return undefined;
  return {
    pid,
    comm: read(`/proc/${pid}/comm`)?.trim() ?? "?",
    rss: field(status, "VmRSS"),
    rssAnon: field(status, "RssAnon"),
    rssFile: field(status, "RssFile"),
    pss: field(rollup, "Pss"),
    private: field(rollup, "Private_Clean") + field(rollup, "Private_Dirty"),
    swap: field(rollup, "Swap"),
  };
}

export type MemTotals = Pick<ProcMem, "rss" | "pss" | "private" | "swap"> & { processes: number };

export function totals(ms: Array<ProcMem | undefined>): MemTotals {
  const t: MemTotals = { rss: 0, pss: 0, private: 0, swap: 0, processes: 0 };
  for (const m of ms) {
    if (!m) continue;
    t.rss += m.rss;
    t.pss += m.pss;
    t.private += m.private;
    t.swap += m.swap;
    t.processes++;
  }
  return t;
}

/** The parent pid (field 4 of /proc/<pid>/stat, after the parenthesised command name). */
export function parentOf(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((t) => (read(`/proc/${pid}/task/${t}/children`) ?? "").split(" ").filter(Boolean).map(Number));
}

export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  for (const c of childrenOf(pid)) out.push(c, ...descendantsOf(c));
  return out;
}

/** The program a process runs (basename of /proc/<pid>/exe), "" when unreadable. */
export function exeOf(pid: number): string {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return "";
  }
}

/** `pid`, or its first descendant (breadth first) running `program`. */
export function findProgram(pid: number, program: string): number | undefined {
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    if (exeOf(p) === program) return p;
    queue.push(...childrenOf(p));
  }
  return undefined;
}

/** `pid`'s ancestors up to (not including) `stopAt` or pid 1, nearest first. */
export function ancestorsOf(pid: number, stopAt: number): number[] {
  const out: number[] = [];
  for (let p = parentOf(pid); p && p !== stopAt && p > 1; p = parentOf(p)) out.push(p);
  return out;
}

/** What the kernel says about a process's confinement, compared with this process's. */
export function confinement(pid: number) {
  const status = read(`/proc/${pid}/status`) ?? "";
  const ns = (kind: string, p: number | "self") => {
    try {
      return readlinkSync(`/proc/${p}/ns/${kind}`);
    } catch {
      return "";
    }
  };
  return {
    uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]),
    /** Its pid in each pid namespace, outermost first: two entries = its own pid namespace. */
    nsPid: /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/).map(Number),
    capEff: /^CapEff:\s+(\w+)/m.exec(status)?.[1],
    noNewPrivs: /^NoNewPrivs:\s+(\d)/m.exec(status)?.[1] === "1",
    ownNamespaces: ["user", "pid", "net", "mnt", "ipc", "uts"].filter(
      (k) => ns(k, pid) && ns(k, pid) !== ns(k, "self"),
    ),
  };
}

/** /proc/meminfo: what is available, and the kernel's own memory that grows with each sandbox. */
export function memInfo() {
  const text = read("/proc/meminfo") ?? "";
  return {
    totalKB: field(text, "MemTotal"),
    availableKB: field(text, "MemAvailable"),
    /** tmpfs and shared memory: the sandboxes' private /tmp and /dev among them. */
    shmemKB: field(text, "Shmem"),
    slabUnreclaimableKB: field(text, "SUnreclaim"),
    pageTablesKB: field(text, "PageTables"),
    kernelStackKB: field(text, "KernelStack"),
  };
}

/** CPU time a process has used (utime + stime, /proc/<pid>/stat fields 14 and 15), clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** The whole machine's CPU time (/proc/stat), busy and total, clock ticks summed over CPUs. */
export function machineCpu(): { busy: number; total: number } {
  const f = (read("/proc/stat") ?? "").split("\n")[0].split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const total = sum8(f);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

const sum8 = (f: number[]) => f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
