/**
 * The watcher's look at imaging: one read of FOG's active tasks (task/current) per FOG server for
 * every host being imaged, and one read of its host list when some task has left the active list
 * — however many hosts are imaging. A task that left the list with the host's `deployed` changed
 * is a completed deploy; without that change it was cancelled (state 5, in FOG's web UI or by
 * LaaS) or failed (state 6 in newer FOG): the wait fails with that reason. Leaving the list is not
 * enough, whatever the state: FOG writes `deployed` before it marks a deploy complete
 * (Post_Stage3), so a task gone without a new `deployed` never completed.
 *
 * Host ids come from the imager in canonical form (the FOG adapter reads "003" as "3"), as does
 * the id StartImaging recorded, so they are compared as plain strings here.
 */

import type { FogConfig } from "../config/types";
import { errorMessage } from "../errors";
import type { Imager, ImagerHost, ImagingProgress } from "../ports/imager";
import type { Runtime } from "../ports/runtime";
import { doneResult, resultText } from "./checkpoints";
import { START_IMAGING } from "./imaging";
import { observeDeployed } from "./transitions";
import { isPastDeadline, type Look, type Looks, type Waiting } from "./watch";

/** The waits grouped by FOG server and credentials (installer configs may name several). */
function byServer(waits: Waiting[]): Map<string, { fog: FogConfig; waits: Waiting[] }> {
  const groups = new Map<string, { fog: FogConfig; waits: Waiting[] }>();
  for (const wait of waits) {
    const fog = wait.config.fog;
    const key = [fog.server, fog.apiKey.reveal(), fog.userKey.reveal()].join("\u0000");
    const group = groups.get(key) ?? { fog, waits: [] };
    group.waits.push(wait);
    groups.set(key, group);
  }
  return groups;
}

export async function lookAtImaging(rt: Runtime, waits: Waiting[], looks: Looks): Promise<void> {
  for (const { fog, waits: group } of byServer(waits).values()) {
    try {
      await lookAtServer(rt, rt.imagerFor(fog), group, looks);
    } catch (error) {
      // This server out of reach: its waits go on (to their deadlines); other servers are looked at.
      rt.logger.warn({ fog: fog.server, err: errorMessage(error) }, "watcher could not read FOG");
    }
  }
}

async function lookAtServer(rt: Runtime, imager: Imager, group: Waiting[], looks: Looks) {
  const tasks = new Map<string, ImagingProgress>();
  for (const task of await imager.activeTasks()) tasks.set(task.hostId, task);
  // Read once per cycle, and only when some task has left the active list.
  let hosts: Promise<Map<string, ImagerHost>> | null = null;
  const hostList = () => {
    hosts ??= imager.listHosts().then((list) => new Map(list.map((host) => [host.id, host])));
    return hosts;
  };
  for (const entry of group) {
    try {
      looks.set(entry.booking.id, await lookAtOne(rt, imager, entry, tasks, hostList));
    } catch (error) {
      // This booking's trouble (a store write) leaves the others' looks alone.
      rt.logger.warn(
        { bookingId: entry.booking.id, err: errorMessage(error) },
        "watcher could not look at an imaging",
      );
    }
  }
}

async function lookAtOne(
  rt: Runtime,
  imager: Imager,
  entry: Waiting,
  tasks: Map<string, ImagingProgress>,
  hostList: () => Promise<Map<string, ImagerHost>>,
): Promise<Look> {
  const { booking, wait } = entry;
  const started = doneResult(booking, entry.input, START_IMAGING);
  const fogHostId = resultText(started, "fogHostId");
  if (fogHostId === null) {
    return {
      kind: "failed",
      error: "ProtocolError",
      cause: `booking ${booking.id} waits for imaging that StartImaging never recorded`,
    };
  }
  const task = tasks.get(fogHostId);
  if (task) {
    if (!isPastDeadline(wait, rt.now())) {
      return { kind: "pending", progress: progressText(task, booking.progress) };
    }
    // Best effort: RecordFailure cancels again should this one fail.
    await imager
      .cancel(fogHostId)
      .catch((error: unknown) =>
        rt.logger.warn({ bookingId: booking.id, err: errorMessage(error) }, "FOG cancel failed"),
      );
    return {
      kind: "failed",
      error: "ImagingFailed",
      cause:
        `imaging of ${booking.hostName} did not finish by its deadline ${wait.deadline} ` +
        `(last seen: ${task.stateName}, ${task.percent.toFixed(0)}%); the task was cancelled`,
    };
  }
  const host = (await hostList()).get(fogHostId);
  const deployedBefore = resultText(started, "deployedBefore");
  // Both halves matter: a host never deployed has none, one deployed before has its old time.
  if (host?.deployed && host.deployed !== deployedBefore) {
    // The freshly imaged host has new SSH keys: the first one seen from now on is recorded.
    await rt.store.updateHost(booking.hostName, observeDeployed(host.deployed));
    return { kind: "done", result: { deployed: host.deployed }, progress: "imaged" };
  }
  return {
    kind: "failed",
    error: "ImagingFailed",
    cause: host
      ? `the imaging task of ${booking.hostName} left FOG's active tasks without a completed deploy (cancelled or failed in FOG)`
      : `FOG no longer has host ${fogHostId} (${booking.hostName})`,
  };
}

/** FOG's task state while its imaging client writes the disk. */
const IN_PROGRESS = 3;

/** The percent and partition of a progress note progressText wrote, or null. */
function imagingNoted(note: string | null): { percent: number; partition: number } | null {
  const found = note === null ? null : /^imaging: .* (\d+)%, partition (\d+)$/.exec(note);
  return found ? { percent: Number(found[1]), partition: Number(found[2]) } : null;
}

/**
 * The task's state, and once the transfer runs its percent with the partition being written:
 * FOG's percent is the current partition's, and restarts from 0 at each one (fog-api.md), so a
 * percent below the one noted before (the booking's progress, `previous`) is the next partition
 * — `90%, partition 1` then `7%, partition 2`, never a bare 90% → 7%. A partition written whole
 * between two looks goes unseen: the count is of the restarts seen, at least.
 */
export function progressText(task: ImagingProgress, previous: string | null): string {
  if (task.stateId !== IN_PROGRESS) return `imaging: ${task.stateName}`;
  const percent = Math.floor(task.percent);
  const before = imagingNoted(previous);
  const partition = before === null ? 1 : before.partition + (percent < before.percent ? 1 : 0);
  return `imaging: ${task.stateName} ${percent}%, partition ${partition}`;
}
