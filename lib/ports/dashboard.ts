import type { DashboardBooking } from "../domain/booking";

/** The booking user as the dashboard knows them (extension: see docs/dashboard.md). */
export interface DashboardUser {
  username: string;
  fullName: string | null;
  email: string | null;
  /** The OpenSSH public key line the user gave the dashboard, unchecked; null when none. */
  sshPublicKey: string | null;
}

/** A status note on a resource, shown on the dashboard (`POST /api/resource_status/`). */
export interface StatusNote {
  resourceId: string;
  type: "info" | "warning" | "error";
  title: string;
  content: string;
}

/**
 * One page of the dashboard's bookings, as Dashboard.listBookingPages reads them. A listing that
 * shifted under its pages (see docs/dashboard.md) is read again from the start: its pages then
 * come again under the next `reading`, and only the last reading is the whole listing.
 */
export interface BookingPage {
  /** 1 for the first reading of the listing, 2 and so on for each reading again. */
  reading: number;
  /** This page's bookings; a booking shows once per reading at most. */
  bookings: DashboardBooking[];
}

/**
 * The booking dashboard. Adapters normalise what the dashboard sends (time formats, id types,
 * pagination) and map resources to host names through the inventory; a malformed booking is
 * logged and skipped so that the others still go through.
 */
export interface Dashboard {
  listBookings(): Promise<DashboardBooking[]>;
  /**
   * The same listing page by page as it is read, so that a caller need not hold all of it. The
   * iteration ends once a reading was whole, and throws what listBookings() would (after the
   * pages read so far). A booking on a page is as the dashboard had it then, even when its reading
   * is later found shifted; only the last reading tells which bookings are listed at all.
   * Optional: without it a caller reads listBookings() as one page.
   */
  listBookingPages?(): AsyncIterable<BookingPage>;
  /**
   * The user a booking names (DashboardBooking.user). Null when the dashboard does not know the
   * user or has no user API (older dashboards); errors a retry may fix are TransientError.
   */
  bookingUser(userRef: string): Promise<DashboardUser | null>;
  /** Posts a status note; never carries secrets. */
  postStatusNote(note: StatusNote): Promise<void>;
}
