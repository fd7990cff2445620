/**
 * How long a booking stays in the store once it has ended (pharos.yaml `booking_retention_days`),
 * and the rule that keeps the poll from bringing back one that retention removed.
 *
 * A booking ended for good — released, cancelled, or failed with no cleaning of its host pending
 * — carries `expiresAtEpochSeconds`: max(end, the moment it ended) + retention, in epoch seconds
 * (DynamoDB TTL's format). In the cloud DynamoDB's TTL deletes it some time after that moment,
 * never before; locally the sweep deletes it (dynalite has no TTL), and in the cloud the sweep
 * doing so too is harmless. A failed booking whose host is still to be cleaned has none until the
 * cleaning is over.
 *
 * The dashboard may list a booking long after it ended. The poll skips a listed booking that is
 * not in the store when pastRetention holds for the end the dashboard lists. As
 * expiresAtEpochSeconds ≥ end + retention (an end moved later while the booking is listed moves it
 * by as much: transitions.ts refreshFromDashboard), and nothing deletes a booking before that
 * moment has passed, every booking retention removed is past retention by then: skipped, never
 * created again as a new booking. Both comparisons are strict, so the same instant cannot delete
 * on one side and re-create on the other.
 */
import { type Booking, isManual } from "../domain/booking";

const SECONDS_PER_DAY = 86_400;
const MS_PER_DAY = SECONDS_PER_DAY * 1000;

/** What an ending transition needs to stamp the expiry: when it ends, and the lab's retention. */
export interface Retention {
  now: Date;
  retentionDays: number;
}

/** The Retention of a runtime: its clock and its config's `booking_retention_days`. */
export function retentionOf(rt: {
  now(): Date;
  config: { bookingRetentionDays: number };
}): Retention {
  return { now: rt.now(), retentionDays: rt.config.bookingRetentionDays };
}

/** True when a booking that ends at `end` (ISO-8601) is over its retention at `now`. */
export function pastRetention(end: string, now: Date, retentionDays: number): boolean {
  return Date.parse(end) + retentionDays * MS_PER_DAY < now.getTime();
}

/**
 * The expiry of a booking that ended for good at `endedAt`: max(end, endedAt) + retention, in
 * epoch seconds, rounded up so that it is never before end + retention.
 */
export function expiryOf(
  booking: Pick<Booking, "id" | "end">,
  endedAt: Date,
  retentionDays: number,
): number {
  if (!Number.isFinite(retentionDays) || retentionDays <= 0) {
    throw new Error(
      `booking retention must be a positive number of days (booking_retention_days), got ${String(retentionDays)}`,
    );
  }
  // A manual booking's end only stands for "until released" (year 9999): it counts from when it
  // ended. The dashboard never lists one, so the poll's rule does not concern it.
  // A job's booking gets none while its end is open (transitions.ts awaitsItsJobsEnd).
  const fromMs = isManual(booking.id)
    ? endedAt.getTime()
    : Math.max(Date.parse(booking.end), endedAt.getTime());
  return Math.ceil(fromMs / 1000) + retentionDays * SECONDS_PER_DAY;
}

/** The booking's expiry has passed at `now` (it may be deleted). */
export function isExpired(booking: Pick<Booking, "expiresAtEpochSeconds">, now: Date): boolean {
  const expiry = booking.expiresAtEpochSeconds;
  return expiry !== null && expiry * 1000 < now.getTime();
}

/**
 * The expiry after the end moved from `fromEnd` to `toEnd`: later by as much as the end, so that
 * it stays at or after end + retention; never earlier.
 */
export function expiryAfterEndMoved(expiry: number, fromEnd: string, toEnd: string): number {
  const laterMs = Date.parse(toEnd) - Date.parse(fromEnd);
  return laterMs > 0 ? expiry + Math.ceil(laterMs / 1000) : expiry;
}
