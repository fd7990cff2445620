/**
 * A lab host (a FOG host name). free → claimed → in-use → cleaning → free; a host whose
 * provisioning or release gave up after touching it is quarantined until an operator resets it.
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
  updatedAt: string;
  version: number;
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
    updatedAt: now.toISOString(),
    version: 0,
  };
}
