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
 * The booking dashboard. Adapters normalise what the dashboard sends (time formats, id types,
 * pagination) and map resources to host names through the inventory; a malformed booking is
 * logged and skipped so that the others still go through.
 */
export interface Dashboard {
  listBookings(): Promise<DashboardBooking[]>;
  /**
   * The user a booking names (DashboardBooking.user). Null when the dashboard does not know the
   * user or has no user API (older dashboards); errors a retry may fix are TransientError.
   */
  bookingUser(userRef: string): Promise<DashboardUser | null>;
  /** Posts a status note; never carries secrets. */
  postStatusNote(note: StatusNote): Promise<void>;
}
