import { setTimeout as sleep } from "node:timers/promises";
import type { Booking } from "../domain/booking";
import type { Store } from "../ports/store";
import { zonedTime } from "../time";

/**
 * Follows a booking in the store until `done` says so, printing each new state or progress note
 * (or handing the booking to `show`, which a terminal's live line takes instead of a printed one).
 * This is the command line watching, not a workflow waiting: the workflow runs meanwhile.
 */
export async function followBooking(
  store: Store,
  bookingId: string,
  done: (booking: Booking) => boolean,
  out: (line: string) => void,
  isRunning: () => boolean | Promise<boolean>,
  show?: (booking: Booking) => void,
): Promise<Booking> {
  let last = "";
  for (;;) {
    const booking = await store.getBooking(bookingId);
    if (!booking) throw new Error(`booking ${bookingId} disappeared from the store`);
    const line = `${booking.state}${booking.progress ? `: ${booking.progress}` : ""}`;
    if (line !== last) {
      if (show) show(booking);
      else out(`${zonedTime(new Date(), { date: true })} ${bookingId} ${line}`);
      last = line;
    }
    if (done(booking)) return booking;
    if (!(await isRunning())) {
      // Ended between the read and the look: its last write is what the caller wants.
      return (await store.getBooking(bookingId)) ?? booking;
    }
    await sleep(500);
  }
}
