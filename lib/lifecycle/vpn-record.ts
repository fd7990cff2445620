/**
 * The VPN entry a booking's access record names, as the directory port takes it: the entry made
 * and recorded with its entryUUID, or, failing that, the DN an attempt chose and recorded before
 * its add (whose entryUUID was never read). Release, a failed provision and the sweep remove
 * exactly this, and nothing the store does not record.
 */
import type { BookingAccess } from "../domain/booking";
import type { RecordedEntry } from "../ports/directory";

export function recordedVpnEntry(access: BookingAccess | null): RecordedEntry | null {
  if (!access) return null;
  if (access.vpnUserDn) return { dn: access.vpnUserDn, entryUUID: access.vpnEntryUuid };
  if (access.vpnIntendedDn) return { dn: access.vpnIntendedDn, entryUUID: null };
  return null;
}
