import type { PowerConfig } from "../config/types";
import type { HostIdentityProof } from "./relay";

export interface PowerTarget {
  hostName: string;
  address: string;
  power: PowerConfig;
  /** Host key recorded for this host earlier (policy "first seen"), if any. */
  knownHostKey: string | null;
  /**
   * How a first key is shown to be this host's, when the login goes through the relay (see
   * HostIdentityProof). A direct login (no relay) has no neighbour table to read and relies on
   * the key alone; it sends nothing secret, only `reboot`.
   */
  identity: HostIdentityProof;
}

/**
 * Makes a host restart so that it network-boots into FOG's imaging client. The first adapter logs
 * in over SSH and runs `reboot`; IPMI can follow.
 */
export interface PowerControl {
  /**
   * Reboots the host; answers the host key that was accepted (to be recorded).
   *
   * Not idempotent: each call restarts the host, and a second one restarts its network boot (or
   * its imaging). Callers record their intent before calling and never call it twice for one
   * imaging; a call that failed (refused, unreachable) rebooted nothing and may be made again.
   */
  reboot(target: PowerTarget): Promise<{ hostKey: string }>;
}
