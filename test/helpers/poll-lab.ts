/**
 * What poll's tests and benchmarks give it in place of a lab: the parts of pharos.yaml poll reads,
 * and a dashboard that lists whatever the test says it lists now.
 */
import type { PharosConfig } from "../../lib/config/types";
import type { DashboardBooking } from "../../lib/domain/booking";
import type { Dashboard } from "../../lib/ports/dashboard";

/** The installers it serves (Fuel, and none), the quarantine limit, the retention; no hand-over. */
export const POLL_LAB = {
  file: "pharos.yaml",
  defaultConfigs: new Map([
    ["Fuel", {}],
    [null, {}],
  ]),
  cleanConfig: {},
  quarantineAfter: 2,
  bookingRetentionDays: 30,
  handover: null,
} as unknown as PharosConfig;

/** The dashboard port, holding whatever the test says the dashboard lists now. */
export class ListedBookings implements Dashboard {
  bookings: DashboardBooking[] = [];
  async listBookings() {
    return this.bookings.map((b) => ({ ...b }));
  }
  bookingUser: Dashboard["bookingUser"] = async () => null;
  async postStatusNote() {}
}
