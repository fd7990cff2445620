/**
 * The TimeoutSeconds of each callback wait in statemachines/ (AwaitImaging, AwaitHost,
 * AwaitInstaller): the hard ceiling above the configured deadlines the watcher enforces
 * (fog.imaging_timeout, pod.boot_timeout, pod.install_timeout), which the config may not exceed.
 * test/statemachines.test.ts checks that the files say the same.
 */
import type { WaitEvent } from "../domain/run";

export const WAIT_CEILING_SECONDS: Readonly<Record<WaitEvent, number>> = {
  imaged: 12 * 3600,
  "host-up": 6 * 3600,
  "installer-done": 48 * 3600,
};

/** Every wait's HeartbeatSeconds in statemachines/: the watcher must come by well within it. */
export const WAIT_HEARTBEAT_SECONDS = 600;

/**
 * The longest watcher interval: a third of the heartbeat, so that a wait misses two heartbeats
 * before it times out (a slow cycle, a restart) rather than fail on one.
 */
export const LONGEST_WATCH_INTERVAL_SECONDS = WAIT_HEARTBEAT_SECONDS / 3;

/** The ASL state that waits for each event. */
export const WAIT_STATES: Readonly<Record<WaitEvent, string>> = {
  imaged: "AwaitImaging",
  "host-up": "AwaitHost",
  "installer-done": "AwaitInstaller",
};
