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
 * Makes a host restart so that it network-boots into FOG's imaging client: by SSH (log in, run
 * `reboot`) or by IPMI (the BMC sets the next boot to PXE and cycles the power, or turns it on),
 * as the host's `power.type` says.
 */
export interface PowerControl {
  /**
   * Reboots the host; answers the host key that was accepted (to be recorded), or null when no
   * login to the host was made (IPMI talks to its BMC only).
   *
   * Not idempotent: each call restarts the host, and a second one restarts its network boot (or
   * its imaging). Callers record their intent before calling and never call it twice for one
   * imaging; a call that failed (refused, unreachable) rebooted nothing and may be made again.
   * IPMI is the exception the caller's retry absorbs: its power must read "on" by a deadline,
   * and when it does not the host may have been cycled already; a second call then finds it off
   * and turns it on, or cycles it once more.
   *
   * Errors: AuthError (a refused login or key, a BMC refusing the user or password), TransientError
   * (the host, relay or BMC did not answer in time), ConfigError,
   * CommandFailedError (the host's `reboot`, or the BMC, answered failure), ProtocolError.
   */
  reboot(target: PowerTarget): Promise<{ hostKey: string | null }>;
}
