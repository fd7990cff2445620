/**
 * Every imaging FOG was asked for during a chaos run, as FOG saw it (created, each state, when it
 * left the active tasks), and every reboot the hosts carried out: enough to tell an imaging that
 * waited because the host would not network-boot (a fault: the host was rebooted) from one LaaS
 * never rebooted the host for.
 */
import type { SimulatedLab } from "../../sim/lab";

export interface TrackedImaging {
  taskId: number;
  name: string;
  host: string;
  /** Ms from the run's start. */
  createdAtMs: number;
  /** When it left FOG's active states (complete, cancelled, failed), or null. */
  endedAtMs: number | null;
  /** Every state it was seen in, in order. */
  states: number[];
}

export interface ImagingTracker {
  readonly imagings: Map<number, TrackedImaging>;
  /** Host reboots as the hosts carried them out (ms from the run's start). */
  readonly reboots: { host: string; atMs: number }[];
}

export function trackImaging(lab: SimulatedLab, startedAt: number): ImagingTracker {
  const imagings = new Map<number, TrackedImaging>();
  const reboots: { host: string; atMs: number }[] = [];
  lab.fog.onTaskChange((task) => {
    const atMs = Date.now() - startedAt;
    let tracked = imagings.get(task.id);
    if (!tracked) {
      tracked = {
        taskId: task.id,
        name: task.name,
        host: task.hostName,
        createdAtMs: atMs,
        endedAtMs: null,
        states: [],
      };
      imagings.set(task.id, tracked);
    }
    if (tracked.states.at(-1) !== task.stateId) tracked.states.push(task.stateId);
    if (task.stateId > 3 && tracked.endedAtMs === null) tracked.endedAtMs = atMs;
  });
  lab.hosts.onCommand((host, argv) => {
    if (argv.length === 1 && argv[0] === "reboot")
      reboots.push({ host, atMs: Date.now() - startedAt });
  });
  return { imagings, reboots };
}
