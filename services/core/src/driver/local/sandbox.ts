/**
 * The sandbox a local repl lives in: its runner process and every command the runner starts.
 *
 * The runner (`runnerLaunch`) runs inside bubblewrap with what the repl's own shell has and nothing
 * more: a fresh root with read-only /usr, /etc (password hashes masked; passwd and group the slot's
 * own, naming the repl's user `devex` and no host user) and the Node install, the runner's code
 * read-only (node_modules, lib, gen, services/runner and its entry), the project writable at
 * /workspace, the repl's home writable at /home/devex, a directory for its Unix socket at
 * /run/devex, core's socket directory read-only at /run/devex-core, a private /tmp, its own user,
 * pid, ipc, uts and network namespaces (the network shared with the host only in direct access or
 * with DEVEX_SANDBOX_NETWORK), uid 1000 with every capability dropped. When core runs as root each
 * runner's sandbox runs as its own unprivileged host uid from `uids` (DEVEX_SANDBOX_UID onwards),
 * which owns its workspace and home, so repls do not share per-user kernel limits (processes,
 * inotify instances); otherwise as core's own user in a user namespace. Either way the runner cannot
 * see core's data directory, keys, blob store, the host user's home or other repls: a runner taken
 * over by its user gains nothing the user's shell lacked. As root, a privileged bwrap builds that
 * view first (so host paths need not be reachable by the sandbox's uid: core's data dir may be
 * 0700) and setpriv drops to the uid before the inner bwrap.
 *
 * Commands (`prefix`, DEVEX_RUNNER_COMMAND_PREFIX, evaluated inside the runner's sandbox):
 *
 *   prlimit --as --nproc --cpu --fsize --  bwrap <namespaces, mounts> --  <command>
 *
 * a nested bubblewrap with read-only system directories, only the workspace, the home and one /tmp
 * for all of the repl's commands writable (not the runner's own /tmp), the repl's id as hostname,
 * their own pid/ipc/uts/user namespaces, the runner's network namespace (so a dev server in one
 * terminal is reachable from the others and from the runner's preview proxy, while the host's
 * loopback is not), uid 1000 with no capabilities and --die-with-parent. There is no cgroup v2
 * here, so memory/CPU/process limits are rlimits.
 */
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { findProgram } from "../../../../../lib/kit/find-program.js";
import { HOME_DIR, PROJECT_DIR, USER_ID, USER_NAME } from "../repl-identity.js";
import { identityFiles } from "./identity.js";

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
  /** The first host uid (and gid) of the range repls run as when core runs as root. */
  uid?: number;
  /** How many uids the range holds: at most that many runners at once (default 10,000). */
  uidCount?: number;
}

/** A host uid and gid. */
export interface Owner {
  uid: number;
  gid: number;
}

/** Host paths of one runner's slot. */
export interface RunnerPaths {
  /** The workspace (the project), writable in the sandbox. */
  workspace: string;
  /** The repl's home (shell history, dotfiles, caches), writable in the sandbox. */
  home: string;
  /** A directory holding the passwd, group, hostname and hosts the sandbox sees (identity.ts). */
  identity: string;
  /** Where the runner creates its Unix socket. */
  run: string;
  /** The directory holding core's Unix socket (read-only in the sandbox); absent on TCP. */
  control?: string;
  /** The runner's code: files and directories bound read-only at their own paths. */
  code: string[];
  /** Share the host's network (direct access, DEVEX_SANDBOX_NETWORK) instead of a private one. */
  hostNetwork: boolean;
  /** The slot's own host uid from `Sandbox.uids` (core as root), which owns `workspace` and `run`. */
  owner?: Owner;
}

/** How to start a runner process: argv, the descriptors it inherits, and the paths it sees. */
export interface RunnerLaunch {
  /** Prepended to `node <execArgv> <entry> <args>`; empty when the runner is not sandboxed. */
  wrapper: string[];
  /** The child's fd to which bwrap writes `{"child-pid": <the runner's host pid>}`; none without bwrap. */
  infoFd?: number;
  /** The paths as the runner sees them. */
  workspace: string;
  home: string;
  run: string;
  control?: string;
}

export interface Sandbox {
  readonly kind: "bwrap" | "none";
  readonly rlimits: boolean;
  /** The host uids runners run as, one each (core runs as root), else undefined (core's own). */
  readonly uids?: { first: number; count: number };
  /** The argv prefix for the commands of one runner (see CommandSandbox). */
  prefix(c: CommandSandbox): string[];
  /** How to start one runner process in its own sandbox (opens the slot's descriptors). */
  runnerLaunch(paths: RunnerPaths): RunnerLaunch;
  /** Whether runners get their own network namespace (Unix sockets to and from core). */
  readonly privateRunnerNetwork: boolean;
  /** For logs: which isolation is active. */
  readonly description: string;
}

/** What a runner's commands see, as the runner sees it. */
export interface CommandSandbox {
  workspace: string;
  home: string;
  /** The repl's hostname (hostnameFor). */
  hostname: string;
  /** Commands join the runner's network namespace, else they get an empty one (unless the sandbox gives them the host network). */
  sharedNet: boolean;
}

export const defaultSandboxLimits: SandboxLimits = {
  addressSpaceBytes: 8 * 1024 ** 3,
  processes: 512,
  cpuSeconds: 3600,
  fileSizeBytes: 2 * 1024 ** 3,
};

/** Where a sandboxed runner sees its workspace, its socket directory and core's. */
export const SANDBOX_WORKSPACE = PROJECT_DIR;
export const SANDBOX_HOME = HOME_DIR;
export const SANDBOX_RUN = "/run/devex";
export const SANDBOX_CONTROL = "/run/devex-core";
/** The /tmp all of a repl's commands share (as on one machine), inside the runner's private /tmp. */
const COMMANDS_TMP = "/tmp/repl";

const DEFAULT_UID = 200_000_000;
const DEFAULT_UID_COUNT = 10_000;
/** The identity files bound over /etc's: those /etc has (a bind needs its target; /etc is read-only). */
const etcIdentity = () => identityFiles.filter((f) => existsSync(`/etc/${f}`));

/**
 * Where the host's resolv.conf really is (systemd-resolved makes /etc/resolv.conf a link into /run),
 * so a private network's own can be bound there; undefined when there is none to bind over.
 */
function resolvConfPath(): string | undefined {
  try {
    return lstatSync("/etc/resolv.conf").isSymbolicLink() ? realpathSync("/etc/resolv.conf") : "/etc/resolv.conf";
  } catch {
    return undefined;
  }
}

/** Host files that hold password hashes or name host users (the identity files replace passwd and group). */
const masked = [
  "/etc/shadow",
  "/etc/gshadow",
  "/etc/shadow-",
  "/etc/gshadow-",
  "/etc/sudoers",
  "/etc/passwd-",
  "/etc/group-",
  "/etc/subuid",
  "/etc/subgid",
  "/etc/subuid-",
  "/etc/subgid-",
];
/** The runner's fd on which bwrap reports the runner's host pid (0-2 stdio, 3 core's IPC channel). */
const INFO_FD = 4;

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

/** `args(path)` for the repl's own resolv.conf, in a private network; nothing on the host's network. */
function privateResolvConf(hostNetwork: boolean, args: (path: string) => string[]): string[] {
  const path = hostNetwork ? undefined : resolvConfPath();
  return path ? args(path) : [];
}

/** `--dir` for every ancestor of `paths` (but /, /tmp), world-traversable, so the unprivileged runner can reach them. */
function ancestorDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) for (let d = dirname(p); d !== "/" && d !== "/tmp"; d = dirname(d)) dirs.add(d);
  return [...dirs].sort((a, b) => a.length - b.length).flatMap((d) => ["--perms", "0755", "--dir", d]);
}

/** The namespaces, user and capabilities of a runner's sandbox and of each of its commands. */
const namespaceArgs = ["--unshare-all", "--uid", String(USER_ID), "--gid", String(USER_ID), "--cap-drop", "ALL"];

/** Whether bwrap can create its namespaces here as `owner` (containers often forbid user namespaces). */
function bwrapWorks(bwrap: string, owner?: { uid: number; gid: number }): string | undefined {
  try {
    execFileSync(bwrap, [...namespaceArgs, ...rootMounts(), "--proc", "/proc", "--", "true"], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 10_000,
      ...owner,
    });
    return undefined;
  } catch (e) {
    return ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim();
  }
}

function rootUids(o: SandboxOptions): { first: number; count: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { first: o.uid ?? DEFAULT_UID, count: o.uidCount ?? DEFAULT_UID_COUNT };
}

/** The programs a sandbox is built from, as found and checked on this machine. */
interface Programs {
  /** Absent: no isolation (DEVEX_SANDBOX=none, not installed, or `broken`). */
  bwrap?: string;
  /** Why an installed bwrap cannot run here. */
  broken?: string;
  prlimit?: string;
  /** Present when core runs as root with bwrap: drops each runner to its own uid. */
  setpriv?: string;
  /** The uids runners run as when core runs as root. */
  uids?: { first: number; count: number };
}

/** Picks the isolation the mode asks for and this machine allows; throws when DEVEX_SANDBOX=bwrap cannot be had. */
function findPrograms(o: SandboxOptions): Programs {
  const found = o.mode === "none" ? undefined : findProgram("bwrap");
  if (o.mode === "bwrap" && !found) {
    throw new Error(
      "DEVEX_SANDBOX=bwrap but bubblewrap (bwrap) is not installed: install it or set DEVEX_SANDBOX=auto",
    );
  }
  const uids = rootUids(o);
  const broken = found ? bwrapWorks(found, uids && { uid: uids.first, gid: uids.first }) : undefined;
  if (broken && o.mode === "bwrap") throw new Error(`DEVEX_SANDBOX=bwrap but bubblewrap cannot run here: ${broken}`);
  const bwrap = broken ? undefined : found;
  const setpriv = uids ? findProgram("setpriv") : undefined;
  if (bwrap && uids && !setpriv)
    throw new Error("core runs as root: the sandbox needs setpriv (util-linux) to drop to an unprivileged uid");
  return { bwrap, broken, prlimit: findProgram("prlimit"), setpriv, uids };
}

/** `prlimit <limits> --`, or nothing without prlimit. */
function rlimitArgs(prlimit: string | undefined, l: SandboxLimits): string[] {
  if (!prlimit) return [];
  return [
    prlimit,
    `--as=${l.addressSpaceBytes}`,
    `--nproc=${l.processes}`,
    `--cpu=${l.cpuSeconds}`,
    `--fsize=${l.fileSizeBytes}`,
    "--",
  ];
}

function describe({ bwrap, broken, prlimit, uids }: Programs, network?: boolean): string {
  const user = uids ? `one uid each from ${uids.first}` : "core's user in a user namespace";
  const parts = [
    bwrap
      ? `bubblewrap around each runner and its commands (${user}; ${network ? "host network" : "one private network per repl"})`
      : `none (runners and commands run as core's user with the host's files in view${broken ? `; bwrap failed: ${broken}` : ""})`,
    prlimit ? "rlimits (address space, processes, CPU time, file size)" : "no rlimits (prlimit missing)",
  ];
  return parts.join(" + ");
}

/** A runner's sandbox: its slot bound in, its namespaces, and as root the drop to the slot's uid. */
function bwrapRunnerLaunch(pr: Programs & { bwrap: string }, mounts: string[], p: RunnerPaths): RunnerLaunch {
  const { bwrap, uids } = pr;
  const slot = [
    ...p.code.flatMap((c) => ["--ro-bind", c, c]),
    ...etcIdentity().flatMap((f) => ["--ro-bind", join(p.identity, f), `/etc/${f}`]),
    ...privateResolvConf(p.hostNetwork, (path) => ["--ro-bind", join(p.identity, "resolv.conf"), path]),
    "--bind",
    p.workspace,
    SANDBOX_WORKSPACE,
    "--bind",
    p.home,
    SANDBOX_HOME,
    "--bind",
    p.run,
    SANDBOX_RUN,
    ...(p.control ? ["--ro-bind", p.control, SANDBOX_CONTROL] : []),
  ];
  // The runner is its sandbox's pid 1: core signals it directly, and its death ends every command.
  // Pooled before it has a repl: the repl's own hostname is its commands' (prefix).
  const namespaces = [...namespaceArgs, "--hostname", "repl", ...(p.hostNetwork ? ["--share-net"] : []), "--as-pid-1"];
  const entry = [
    "--chdir",
    SANDBOX_WORKSPACE,
    ...["--setenv", "HOME", SANDBOX_HOME, "--setenv", "USER", USER_NAME, "--setenv", "LOGNAME", USER_NAME],
    "--info-fd",
    String(INFO_FD),
    "--",
  ];
  const result = {
    infoFd: INFO_FD,
    workspace: SANDBOX_WORKSPACE,
    home: SANDBOX_HOME,
    run: SANDBOX_RUN,
    control: p.control ? SANDBOX_CONTROL : undefined,
  };
  // The private /tmp comes before the slot: the code may live under the host's /tmp (a CI clone).
  const tmp = ["--perms", "01777", "--tmpfs", "/tmp", "--perms", "01777", "--dir", COMMANDS_TMP];
  const owner = uids && p.owner;
  if (uids && !owner) throw new Error("core runs as root: a runner's slot needs its own uid");
  if (!owner) {
    const own = [...mounts, "--proc", "/proc", "--dev", "/dev", ...tmp, ...slot];
    return { wrapper: [bwrap, ...namespaces, ...own, ...entry], ...result };
  }
  // Core is root: a privileged bwrap builds the view (it can reach paths the sandbox uid cannot),
  // setpriv drops to the unprivileged owner, and an unprivileged bwrap adds the user, pid and
  // network namespaces (so the repl's uid 1000 is `owner` on the host, never root).
  const view = [
    ...mounts,
    "--bind",
    "/proc",
    "/proc", // replaced by the inner bwrap's own /proc; it needs a writable one to set up its user map
    "--dev",
    "/dev",
    ...tmp,
    ...ancestorDirs([
      ...p.code,
      SANDBOX_WORKSPACE,
      SANDBOX_HOME,
      SANDBOX_RUN,
      SANDBOX_CONTROL,
      ...privateResolvConf(p.hostNetwork, (path) => [path]),
    ]),
    ...slot,
  ];
  const drop = [
    pr.setpriv!,
    `--reuid=${owner.uid}`,
    `--regid=${owner.gid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
  ];
  const inner = [bwrap, ...namespaces, "--bind", "/", "/", "--proc", "/proc", "--dev", "/dev", ...entry];
  return { wrapper: [bwrap, ...view, "--", ...drop, ...inner], ...result };
}

/** The nested bwrap around each of a runner's commands, evaluated inside the runner's sandbox. */
function bwrapCommandArgs(bwrap: string, mounts: string[], hostNetwork: boolean, c: CommandSandbox): string[] {
  return [
    bwrap,
    ...namespaceArgs,
    "--hostname",
    c.hostname,
    ...(hostNetwork || c.sharedNet ? ["--share-net"] : []),
    "--die-with-parent",
    ...mounts,
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--bind",
    COMMANDS_TMP,
    "/tmp",
    // The runner's own identity files (a bind of /etc alone would not carry them over).
    ...etcIdentity().flatMap((f) => ["--ro-bind", `/etc/${f}`, `/etc/${f}`]),
    ...privateResolvConf(hostNetwork || !c.sharedNet, (path) => ["--ro-bind", path, path]),
    "--bind",
    c.workspace,
    c.workspace,
    "--bind",
    c.home,
    c.home,
    "--",
  ];
}

export function createSandbox(o: SandboxOptions): Sandbox {
  const programs = findPrograms(o);
  const { bwrap } = programs;
  const limits = rlimitArgs(programs.prlimit, o.limits);
  const mounts = bwrap ? rootMounts() : [];
  return {
    kind: bwrap ? "bwrap" : "none",
    rlimits: !!programs.prlimit,
    uids: bwrap ? programs.uids : undefined,
    description: describe(programs, o.network),
    privateRunnerNetwork: !!bwrap && !o.network,
    runnerLaunch(p) {
      if (!bwrap) return { wrapper: [], workspace: p.workspace, home: p.home, run: p.run, control: p.control };
      return bwrapRunnerLaunch({ ...programs, bwrap }, mounts, p);
    },
    prefix(c) {
      return bwrap ? [...limits, ...bwrapCommandArgs(bwrap, mounts, !!o.network, c)] : limits;
    },
  };
}
