import type { DashboardBooking } from "../domain/booking";

/**
 * The booking dashboard. Adapters normalise what the dashboard sends (time formats, id types,
 * pagination) and map resources to host names through the inventory; a malformed booking is
 * logged and skipped so that the others still go through.
 */
export interface Dashboard {
  listBookings(): Promise<DashboardBooking[]>;
}
