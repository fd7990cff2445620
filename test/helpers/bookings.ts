/** Bookings as the dashboard gives them, for tests: started a second ago, ending in an hour. */
import type { DashboardBooking } from "../../lib/domain/booking";

export function dashboardBooking(
  fields: Partial<DashboardBooking> & Pick<DashboardBooking, "id" | "hostName">,
): DashboardBooking {
  const now = Date.now();
  return {
    resourceId: fields.id,
    start: new Date(now - 1_000),
    end: new Date(now + 3_600_000),
    installer: null,
    scenario: null,
    purpose: "test",
    user: null,
    ...fields,
  };
}
