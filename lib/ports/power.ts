import type { PowerConfig } from "../config/types";

export interface PowerTarget {
  hostName: string;
  address: string;
  power: PowerConfig;
  /** Host key recorded for this host earlier (policy "first seen"), if any. */
  knownHostKey: string | null;
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
