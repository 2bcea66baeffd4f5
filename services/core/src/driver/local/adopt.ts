/**
 * Runner processes outlive a crashed core: each has a record (`<runnersDir>/<procId>/record.json`)
 * that a new driver reads at start-up to re-adopt live assigned runners (core's reconciliation then
 * stops any no session points at) and to clean up after dead ones and stray pool processes (and
 * the pasta a pooled one's network ran on).
 * Adopted runners are not the new core's children, so their deaths are noticed by polling.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pooledRunnerMarker } from "../../../../../lib/contracts/pooled-runner.js";
import type { Logger } from "../../../../../lib/kit/log.js";
import { isAlive, waitForExit } from "../../../../../lib/kit/pids.js";
import { connectRepl, killStalePasta } from "./network/connect.js";
import type { EgressSetup } from "./network/egress.js";
import { type RunnerRecord, writeRecord } from "./pool.js";
import { pinSocket, removeFolder } from "./runner-folder.js";
import { type AssignedRecord, newHandle } from "./runner-handle.js";
import type { Runners } from "./runners.js";

/** Re-adopts the runners a previous core left running (and reconnects their network); removes every other runner folder. */
export async function adoptRunners(
  runnersDir: string,
  runners: Runners,
  log: Logger,
  egress?: EgressSetup,
): Promise<void> {
  for (const procId of await readdir(runnersDir).catch(() => [] as string[])) {
    const dir = join(runnersDir, procId);
    let record: RunnerRecord | undefined;
    try {
      record = JSON.parse(await readFile(join(dir, "record.json"), "utf8")) as RunnerRecord;
    } catch {}
    const ours = record ? await isOurProcess(record.pid, procId) : false;
    if (record && ours) {
      if (isAssigned(record) && adopt(record, dir, runners, log)) {
        await reconnect(record, runners, log, egress);
        continue;
      }
      await killNow(record.pid);
    }
    // A pooled runner's network, or a dead runner's, whose pasta would otherwise stay.
    await killStalePasta(record?.pasta);
    await removeFolder(dir, log);
  }
}

/** Polls the adopted runners (those without a child process) and buries the ones that died. */
export function watchAdopted(runners: Runners, log: Logger): NodeJS.Timeout {
  const poll = setInterval(() => {
    for (const h of runners.all()) {
      if (!h.child && !h.gone && !isAlive(h.record.pid)) {
        log.warn({ replId: h.record.replId, runnerId: h.record.runnerId }, "adopted runner process died");
        runners.buryDead(h);
      }
    }
  }, 2000);
  poll.unref();
  return poll;
}

function isAssigned(r: RunnerRecord): r is AssignedRecord {
  return r.state === "assigned" && !!r.runnerId && !!r.replId && !!r.workspace && !!(r.port || r.socketPath);
}

/** Puts a live runner on the books; false when its socket is not what it should be (it is to be killed). */
function adopt(record: AssignedRecord, dir: string, runners: Runners, log: Logger): boolean {
  const h = newHandle(record, dir);
  try {
    if (record.socketPath) h.socketFd = pinSocket(record.socketPath);
  } catch (err) {
    log.warn({ err, replId: record.replId }, "a runner's socket is not what it should be: stopping it");
    return false;
  }
  runners.add(h);
  runners.startTimer(h);
  log.info({ replId: record.replId, runnerId: record.runnerId, pid: record.pid }, "re-adopted a running runner");
  return true;
}

/** A new pasta (with new ports to this core's resolver and gate) in place of the previous core's. */
async function reconnect(record: AssignedRecord, runners: Runners, log: Logger, egress?: EgressSetup) {
  await killStalePasta(record.pasta);
  const h = runners.get(record.runnerId);
  if (!h || !egress) return;
  h.network = await connectRepl(
    egress,
    { replId: record.replId, pid: record.pid, policy: record.egress },
    log,
    AbortSignal.timeout(15_000),
  );
  record.pasta = h.network?.pastaProcess;
  await writeRecord(h.dir, record);
}

async function killNow(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  await waitForExit(pid, 5000);
}

async function isOurProcess(pid: number, procId: string): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    const i = cmdline.indexOf(pooledRunnerMarker);
    return i >= 0 && cmdline[i + 1] === procId;
  } catch {
    return false;
  }
}
