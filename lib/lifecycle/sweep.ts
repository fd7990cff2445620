/**
 * The directory sweep: VPN users this system made whose booking is no longer active are removed
 * (a release or a failure that could not remove its user, a crash between making an entry and
 * recording it). Entries without the mark, and permanent_users, are never touched: the directory
 * adapter checks both again before it deletes anything.
 */
import type { Runtime } from "../app/runtime";
import type { VpnConfig } from "../config/types";
import { isActive } from "../domain/booking";
import type { RemovalOutcome } from "../ports/directory";
import { forgetVpnUser } from "./access-transitions";

export interface SweepReport {
  /** DNs removed. */
  removed: string[];
  /** Marked entries kept because an active booking uses them. */
  kept: number;
  /** Entries the adapter declined to remove (permanent or no longer marked). */
  declined: { dn: string; outcome: RemovalOutcome }[];
}

/** Each directory once, though several installer configs may name the same one. */
function directoriesOf(rt: Runtime): VpnConfig[] {
  const byKey = new Map<string, VpnConfig>();
  for (const config of rt.config.defaultConfigs.values()) {
    const vpn = config.vpn;
    const key = [vpn.ldap.url, vpn.directory.user, vpn.directory.root].join("\u0000");
    if (!byKey.has(key)) byKey.set(key, vpn);
  }
  return [...byKey.values()];
}

export async function sweepVpnUsers(rt: Runtime): Promise<SweepReport> {
  const report: SweepReport = { removed: [], kept: 0, declined: [] };
  if (!rt.config.handover?.vpn) return report;
  for (const vpn of directoriesOf(rt)) {
    const directory = rt.directoryFor(vpn);
    try {
      const entries = await directory.listManagedUsers();
      // Read after the listing: a booking that made its entry since is seen as active here.
      const bookings = await rt.store.listBookings();
      const active = bookings.filter((b) => isActive(b.state));
      const activeIds = new Set(active.map((b) => b.id));
      const activeDns = new Set(active.map((b) => b.access?.vpnUserDn));
      for (const entry of entries) {
        if (activeIds.has(entry.bookingId) || activeDns.has(entry.dn)) {
          report.kept++;
          continue;
        }
        const outcome = await directory.removeUser(entry.dn, entry.bookingId);
        if (outcome === "deleted" || outcome === "absent") {
          report.removed.push(entry.dn);
          const booking = bookings.find((b) => b.id === entry.bookingId);
          if (booking) await rt.store.updateBooking(booking.id, forgetVpnUser(entry.dn));
        } else {
          report.declined.push({ dn: entry.dn, outcome });
        }
      }
    } finally {
      await directory.close().catch(() => undefined);
    }
  }
  if (report.removed.length > 0) {
    rt.logger.info({ removed: report.removed }, "sweep removed VPN users of ended bookings");
  }
  return report;
}
