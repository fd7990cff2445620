/**
 * The directory sweep: the VPN entries the store records for bookings that are no longer active
 * are removed (a release or a failure that could not reach the directory, an attempt interrupted
 * after recording the DN it chose). It walks the bookings, not the directory: an entry no booking
 * records is never touched, whatever label it carries, and a recorded one goes only while it is
 * still the entry recorded (the directory adapter checks its entryUUID, or, for a DN recorded
 * before its add, the checks that stand in for one) and not a permanent user.
 */
import type { Runtime } from "../app/runtime";
import type { VpnConfig } from "../config/types";
import { type Booking, isActive } from "../domain/booking";
import { errorMessage } from "../errors";
import type { Directory, RemovalOutcome } from "../ports/directory";
import { forgetVpnUser } from "./access-transitions";
import { imagingConfig } from "./current-run";
import { recordedVpnEntry } from "./vpn-record";

export interface SweepReport {
  /** DNs removed (or found gone already). */
  removed: string[];
  /** Recorded entries kept because their booking is active. */
  kept: number;
  /** Recorded entries the adapter left alone (replaced since, not provably made here, permanent). */
  declined: { dn: string; outcome: RemovalOutcome }[];
}

/** One directory per place, though several installer configs may name the same one. */
function directoryKey(vpn: VpnConfig): string {
  return [vpn.ldap.url, vpn.directory.user, vpn.directory.root].join("\u0000");
}

export async function sweepVpnUsers(rt: Runtime): Promise<SweepReport> {
  const report: SweepReport = { removed: [], kept: 0, declined: [] };
  if (!rt.config.handover?.vpn) return report;
  const directories = new Map<string, Directory>();
  const directoryOf = (booking: Booking): Directory => {
    // The directory the booking's entry was made in: its installer's vpn_config.
    const vpn = imagingConfig(rt, booking, "provision").vpn;
    const key = directoryKey(vpn);
    let directory = directories.get(key);
    if (!directory) {
      directory = rt.directoryFor(vpn);
      directories.set(key, directory);
    }
    return directory;
  };
  // One booking's trouble (its directory unreachable, its installer gone from the config) does
  // not keep the others' entries; the sweep fails afterwards with the first such trouble.
  let trouble: unknown = null;
  try {
    for (const booking of await rt.store.listBookings()) {
      const entry = recordedVpnEntry(booking.access);
      if (!entry) continue;
      // A booking that is over stays over (released, cancelled and failed are final), so what
      // it records is nobody's any more.
      if (isActive(booking.state)) {
        report.kept++;
        continue;
      }
      try {
        const outcome = await directoryOf(booking).removeUser(entry, booking.id);
        if (outcome === "deleted" || outcome === "absent") report.removed.push(entry.dn);
        else report.declined.push({ dn: entry.dn, outcome });
        // Whatever the outcome, the recorded entry is not there to take back any more (or never
        // will be, for a permanent user): the record forgets it, so it is looked at once.
        await rt.store.updateBooking(booking.id, forgetVpnUser(entry.dn));
      } catch (error) {
        rt.logger.warn(
          { bookingId: booking.id, dn: entry.dn, err: errorMessage(error) },
          "sweep could not remove a recorded VPN user",
        );
        trouble ??= error;
      }
    }
  } finally {
    await Promise.all([...directories.values()].map((d) => d.close().catch(() => undefined)));
  }
  if (report.removed.length > 0) {
    rt.logger.info({ removed: report.removed }, "sweep removed VPN users of ended bookings");
  }
  if (report.declined.length > 0) {
    rt.logger.warn({ declined: report.declined }, "sweep left recorded VPN entries alone");
  }
  if (trouble !== null) throw trouble;
  return report;
}
