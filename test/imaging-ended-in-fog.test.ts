/**
 * A booking whose imaging FOG ends without a deploy — its task cancelled in FOG's web UI, or
 * marked failed (state 6, newer FOG) — mid-transfer, end to end on the embedded default: the real
 * ASL files on the local engine, dynalite, the simulated lab. The task leaves `task/current`
 * either way; what tells a completed deploy from these is the host's `deployed`, which FOG
 * changes only for a deploy that completed. The booking must fail with that reason, never go on
 * to build a pod on a host that was not imaged.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Booking } from "../lib/domain/booking";
import { bookingAt } from "../sim/dashboard-sim";
import type { FogSim } from "../sim/fog-sim";
import { type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { type LabListener, listenOnLab } from "./helpers/lab-listener";
import { waitFor } from "./helpers/wait";

let lab: SimulatedLab;
let listening: LabListener;
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "laas-fog-ended-"));
  lab = await startSimulatedLab({ workDir, timeScale: 200, pollInterval: 1, imagingTimeout: 120 });
  listening = await listenOnLab(lab);
});

afterAll(async () => {
  await listening?.close();
  await lab?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function bookingState(id: string, state: Booking["state"]): Promise<Booking> {
  return waitFor(`booking ${id} ${state}`, async () => {
    const booking = await listening.embedded.runtime.store.getBooking(id);
    return booking?.state === state ? booking : undefined;
  });
}

describe("a booking whose imaging FOG ends without a deploy", () => {
  it.each([
    ["cancelled in FOG's web UI", 0, 5, (fog: FogSim, host: string) => fog.cancelTask(host)],
    ["marked failed by FOG (state 6)", 1, 6, (fog: FogSim, host: string) => fog.failTask(host)],
  ])("fails with why when its task is %s mid-transfer", async (_, index, state, end) => {
    const host = lab.inventory[index]!;
    const id = 700 + index;
    // The first time this host's transfer is under way, FOG ends it.
    let ended = false;
    lab.fog.onTaskChange((task) => {
      if (ended || task.hostName !== host.name || task.stateId !== 3) return;
      ended = true;
      setImmediate(() => end(lab.fog, host.name));
    });
    const now = Date.now();
    lab.dashboard.addBooking(
      bookingAt({
        id,
        resource_id: Number(host.resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 600_000),
      }),
    );
    await listening.listener.pollOnce();

    const failed = await bookingState(String(id), "failed");

    expect(ended).toBe(true);
    expect(failed.failure).toBe(
      `ImagingFailed: the imaging task of ${host.name} left FOG's active tasks without a completed deploy (cancelled or failed in FOG)`,
    );
    // FOG's own record: the task ended in that state, and no deploy was recorded for the host.
    const first = lab.fog.tasks().find((t) => t.hostName === host.name);
    expect(first?.stateId).toBe(state);
    expect(lab.fog.hosts().find((h) => h.name === host.name)?.deployed).toBe("0000-00-00 00:00:00");
    // Nothing was built on the host that was not imaged.
    expect(lab.hostCommands(host.name).filter((argv) => argv[0] === "virsh")).toEqual([]);
  });
});
