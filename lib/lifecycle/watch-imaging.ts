/**
 * The watcher's look at imaging: one read of FOG's active tasks (task/current) per FOG server for
 * every host being imaged, and one read of its host list when some task has left the active list
 * — however many hosts are imaging. A task that left the list with the host's `deployed` changed
 * is a completed deploy; without that change it was cancelled or failed in FOG.
 */
import type { Runtime } from "../app/runtime";
import type { FogConfig } from "../config/types";
import type { ImagerHost, ImagingProgress } from "../ports/imager";
import { doneResult } from "./checkpoints";
import { START_IMAGING } from "./imaging";
import { observeDeployed } from "./transitions";
import { isPastDeadline, type Looks, type Waiting } from "./watch";

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
    const imager = rt.imagerFor(fog);
    const tasks = new Map<string, ImagingProgress>();
    for (const task of await imager.activeTasks()) tasks.set(task.hostId, task);
    let hosts: Map<string, ImagerHost> | null = null;
    for (const entry of group) {
      const { booking, wait } = entry;
      const started = doneResult(booking, entry.input, START_IMAGING);
      const fogHostId = field(started, "fogHostId");
      if (fogHostId === null) {
        looks.set(booking.id, {
          kind: "failed",
          error: "ProtocolError",
          cause: `booking ${booking.id} waits for imaging that StartImaging never recorded`,
        });
        continue;
      }
      const task = tasks.get(fogHostId);
      if (task) {
        if (isPastDeadline(wait, rt.now())) {
          await imager.cancel(fogHostId);
          looks.set(booking.id, {
            kind: "failed",
            error: "ImagingFailed",
            cause:
              `imaging of ${booking.hostName} did not finish by its deadline ${wait.deadline} ` +
              `(last seen: ${task.stateName}, ${task.percent.toFixed(0)}%); the task was cancelled`,
          });
          continue;
        }
        looks.set(booking.id, { kind: "pending", progress: progressText(task) });
        continue;
      }
      hosts ??= new Map((await imager.listHosts()).map((host) => [host.id, host]));
      const host = hosts.get(fogHostId);
      const deployedBefore = field(started, "deployedBefore");
      if (host?.deployed && host.deployed !== deployedBefore) {
        // The freshly imaged host has new SSH keys: the first one seen from now on is recorded.
        await rt.store.updateHost(booking.hostName, observeDeployed(host.deployed));
        looks.set(booking.id, {
          kind: "done",
          result: { deployed: host.deployed },
          progress: "imaged",
        });
        continue;
      }
      looks.set(booking.id, {
        kind: "failed",
        error: "ImagingFailed",
        cause: host
          ? `the imaging task of ${booking.hostName} left FOG's active tasks without a completed deploy (cancelled or failed in FOG)`
          : `FOG no longer has host ${fogHostId} (${booking.hostName})`,
      });
    }
  }
}

/** The task's state, and its percent once the transfer runs (FOG's, for the partition being written). */
function progressText(task: ImagingProgress): string {
  if (task.stateId !== 3) return `imaging: ${task.stateName}`;
  return `imaging: ${task.stateName} ${task.percent.toFixed(0)}%`;
}

function field(value: unknown, name: string): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const found: unknown = Reflect.get(value, name);
  return typeof found === "string" ? found : null;
}
