/**
 * A booking's progress note, written and logged. Each note that changes in the store is one log
 * line with the booking, its host and the note: what the booking's log and a terminal's live line
 * (lib/cli/live-view.ts) follow, without reading the store. A write that changed nothing (a note
 * already there, a run no longer current) logs nothing.
 */
import type { Booking } from "../domain/booking";
import type { Runtime } from "../ports/runtime";
import type { Updated } from "../ports/store";

type BookingChange = (current: Booking) => Booking | null;

/** Store.updateBooking with `change`, logging the progress note it wrote, if it wrote a new one. */
export async function updateBookingProgress(
  rt: Pick<Runtime, "store" | "logger">,
  bookingId: string,
  change: BookingChange,
): Promise<Updated<Booking>> {
  // The change may run more than once (a compare-and-set lost to another writer): the last run
  // is the one written.
  const noted: { progress: string | null } = { progress: null };
  const updated = await rt.store.updateBooking(bookingId, (current) => {
    const next = change(current);
    noted.progress = next !== null && next.progress !== current.progress ? next.progress : null;
    return next;
  });
  if (updated.changed && noted.progress !== null) {
    rt.logger.info(
      { bookingId, host: updated.item.hostName, progress: noted.progress },
      "progress",
    );
  }
  return updated;
}
