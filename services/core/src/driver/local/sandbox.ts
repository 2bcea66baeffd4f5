/**
 * The sandbox every user command of a local runner starts in, as an argv prefix the runner puts
 * before each terminal, Exec and background command (DEVEX_RUNNER_COMMAND_PREFIX):
 *
 *   prlimit --as --nproc --cpu --fsize --  bwrap <namespaces, mounts> --  <command>
 *
 * bubblewrap: a fresh root with read-only /usr, /etc (password hashes masked) and the Node install,
 * only the repl's workspace writable (bound at its own path, so the runner's cwd handling is
 * unchanged), private /tmp, its own pid/ipc/uts/user namespaces, the network described below, uid
 * 1000 with every capability dropped, no new
 * privileges (bwrap always sets it) and --die-with-parent, so a SIGKILLed runner takes its sandboxes
 * with it. There is no cgroup v2 here, so memory/CPU/process limits are rlimits.
 *
 * Network, like a Kubernetes pod: each runner process itself runs in a private network namespace
 * (`runnerWrapper()`: bwrap --unshare-net with the runner's filesystem view and uid unchanged, only
 * `lo` up), and its commands share that namespace. So a dev server in one terminal is reachable from
 * the repl's other commands and from the runner's preview proxy (127.0.0.1:<port>), while the host's
 * loopback (Redis, core, other repls) is not. Core talks to such a runner over a Unix socket and the
 * runner to core over another. With `network` (DEVEX_SANDBOX_NETWORK) the runner stays on the host
 * network and commands share it; without a private runner namespace (direct access) commands get
 * their own empty one.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, lstatSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";

function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return undefined;
}

export type SandboxMode = "auto" | "bwrap" | "none";

export interface SandboxLimits {
  /** RLIMIT_AS, bytes. */
  addressSpaceBytes: number;
  /** RLIMIT_NPROC. */
  processes: number;
  /** RLIMIT_CPU per process, seconds. */
  cpuSeconds: number;
  /** RLIMIT_FSIZE, bytes. */
  fileSizeBytes: number;
}

export interface SandboxOptions {
  mode: SandboxMode;
  /** Let sandboxed commands use the host network (off by default). */
  network?: boolean;
  limits: SandboxLimits;
}

export interface Sandbox {
  readonly kind: "bwrap" | "none";
  readonly rlimits: boolean;
  /**
   * The argv prefix for one workspace (absolute path). `runnerNetns`: the runner runs under
   * runnerWrapper(), so commands share its (the repl's private) network namespace.
   */
  prefix(workspace: string, runnerNetns?: boolean): string[];
  /**
   * The argv a runner process starts under to get its own network namespace (bwrap --unshare-net,
   * filesystem and uid unchanged); undefined when commands use the host network or bwrap is off.
   */
  runnerWrapper(): string[] | undefined;
  /** For logs: which isolation is active. */
  readonly description: string;
}

export const defaultLimits: SandboxLimits = {
  addressSpaceBytes: 8 * 1024 ** 3,
  processes: 512,
  cpuSeconds: 3600,
  fileSizeBytes: 2 * 1024 ** 3,
};

const masked = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers"];

function rootMounts(): string[] {
  const args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"];
  for (const f of masked) if (existsSync(f)) args.push("--ro-bind", "/dev/null", f);
  for (const d of ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]) {
    if (!existsSync(d)) continue;
    const st = lstatSync(d);
    if (st.isSymbolicLink()) args.push("--symlink", `usr${d}`, d);
    else if (st.isDirectory()) args.push("--ro-bind", d, d);
  }
  // Node (and npm) where they live outside /usr, e.g. /opt/node or ~/.nvm.
  const nodeRoot = dirname(dirname(process.execPath));
  if (!nodeRoot.startsWith("/usr")) args.push("--ro-bind", nodeRoot, nodeRoot);
  return args;
}

/** Whether bwrap can create its namespaces here (containers often forbid user namespaces). */
function bwrapWorks(bwrap: string): string | undefined {
  try {
    execFileSync(bwrap, ["--unshare-all", "--uid", "1000", "--cap-drop", "ALL", ...rootMounts(), "--", "true"], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 10_000,
    });
    return undefined;
  } catch (e) {
    return ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim();
  }
}

function wrapperArgs(bwrap: string): string[] {
  // No --die-with-parent: an assigned runner outlives a crashed core (its parent), to be re-adopted.
  return [bwrap, "--unshare-net", "--dev-bind", "/", "/", "--"];
}

/** Whether a runner can be given its own network namespace here. */
function wrapperWorks(bwrap: string): boolean {
  try {
    execFileSync(wrapperArgs(bwrap)[0], [...wrapperArgs(bwrap).slice(1), "true"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export function createSandbox(o: SandboxOptions): Sandbox {
  const found = o.mode === "none" ? undefined : findProgram("bwrap");
  if (o.mode === "bwrap" && !found) {
    throw new Error(
      "DEVEX_SANDBOX=bwrap but bubblewrap (bwrap) is not installed: install it or set DEVEX_SANDBOX=auto",
    );
  }
  const broken = found ? bwrapWorks(found) : undefined;
  if (broken && o.mode === "bwrap") throw new Error(`DEVEX_SANDBOX=bwrap but bubblewrap cannot run here: ${broken}`);
  const bwrap = broken ? undefined : found;
  const prlimit = findProgram("prlimit");
  const l = o.limits;
  const limits = prlimit
    ? [
        prlimit,
        `--as=${l.addressSpaceBytes}`,
        `--nproc=${l.processes}`,
        `--cpu=${l.cpuSeconds}`,
        `--fsize=${l.fileSizeBytes}`,
        "--",
      ]
    : [];
  const mounts = bwrap ? rootMounts() : [];
  const wrapper = bwrap && !o.network && wrapperWorks(bwrap) ? wrapperArgs(bwrap) : undefined;
  const parts = [
    bwrap
      ? `bubblewrap (${o.network ? "host network" : wrapper ? "one private network per repl" : "no network"})`
      : `none (commands run as the core's user${broken ? `; bwrap failed: ${broken}` : ""})`,
    prlimit ? "rlimits (address space, processes, CPU time, file size)" : "no rlimits (prlimit missing)",
  ];
  return {
    kind: bwrap ? "bwrap" : "none",
    rlimits: !!prlimit,
    description: parts.join(" + "),
    runnerWrapper: () => wrapper,
    prefix(workspace, runnerNetns) {
      if (!bwrap) return limits;
      return [
        ...limits,
        bwrap,
        "--unshare-all",
        ...(o.network || (runnerNetns && wrapper) ? ["--share-net"] : []),
        "--die-with-parent",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--cap-drop",
        "ALL",
        "--hostname",
        "repl",
        ...mounts,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--bind",
        workspace,
        workspace,
        "--setenv",
        "HOME",
        workspace,
        "--",
      ];
    },
  };
}
