/**
 * A lab host (a FOG host name). free → claimed → in-use → cleaning → free. A host a failed
 * provision or cleaning touched goes to cleaning (its pod removed, the clean image written) and
 * back to the pool; after `quarantine_after` failures in a row it is quarantined until an operator
 * releases it (`laas host release`), or when an operator quarantines it (`laas host quarantine`).
 */
export const HOST_STATES = ["free", "claimed", "in-use", "cleaning", "quarantined"] as const;
export type HostState = (typeof HOST_STATES)[number];

export interface Host {
  name: string;
  /** FOG's host id (string, as FOG returns it). */
  fogId: string | null;
  /** Primary MAC from FOG. */
  mac: string | null;
  state: HostState;
  /** Booking that holds the host, when claimed, in use or cleaning. */
  bookingId: string | null;
  /**
   * SSH host key (SHA256 fingerprint) first seen after the host's last imaging; required on later
   * logins until the host is imaged again. Null until seen.
   */
  hostKey: string | null;
  /**
   * FOG's `deployed` time of the system the recorded key belongs to. A deploy FOG completed since
   * (its `deployed` changed) makes the key stale: it is forgotten, never required.
   */
  hostKeyDeployed: string | null;
  /** FOG's `deployed` time as last seen (at a reboot into imaging, or when imaging completed). */
  deployed: string | null;
  /** Address the host answered SSH on after its last imaging (DHCP or inventory). */
  address: string | null;
  /** Why the host is quarantined. */
  reason: string | null;
  /**
   * Failed provisions and cleanings since the host last became ready for a booking or was released
   * by an operator: the streak that quarantines it at `quarantine_after`.
   */
  failures: number;
  /** The last failure on the host (booking, phase, reason), kept after the streak ends. */
  lastFailure: HostEvent | null;
  /** What happened to the host, oldest first, the last HOST_HISTORY_LENGTH events. */
  history: HostEvent[];
  updatedAt: string;
  version: number;
}

export interface HostEvent {
  /** ISO-8601 UTC. */
  at: string;
  /** What happened: "claimed", "failed", "cleaning", "quarantined", "released", "key forgotten"… */
  event: string;
  bookingId: string | null;
  /** The booking's run it happened in ("provision 1", "release 2"), when it was a run's doing. */
  run: string | null;
  /** The reason or detail (never holds secrets). */
  detail: string | null;
}

/** Events kept in a host's history; older ones are dropped. */
export const HOST_HISTORY_LENGTH = 20;

/** The host with `event` appended to its history (bounded). */
export function withEvent(
  host: Host,
  event: string,
  bookingId: string | null,
  detail: string | null,
  now: Date,
  run: string | null = null,
): Host {
  const entry: HostEvent = { at: now.toISOString(), event, bookingId, run, detail };
  return { ...host, history: [...host.history, entry].slice(-HOST_HISTORY_LENGTH) };
}

/** A host as it enters the store: free, with what FOG knows of it. */
export function newHost(
  name: string,
  fog: { id: string; mac: string | null; deployed?: string | null } | null,
  now: Date = new Date(),
): Host {
  return {
    name,
    fogId: fog?.id ?? null,
    mac: fog?.mac ?? null,
    state: "free",
    bookingId: null,
    hostKey: null,
    hostKeyDeployed: null,
    deployed: fog?.deployed ?? null,
    address: null,
    reason: null,
    failures: 0,
    lastFailure: null,
    history: [],
    updatedAt: now.toISOString(),
    version: 0,
  };
}
