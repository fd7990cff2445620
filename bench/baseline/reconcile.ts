/**
 * Poll's store traffic as it was before reconciliation compared in memory, kept to measure the
 * present one against (bench/reconcile.ts). The whole dashboard listing is read first; then each
 * booking is a conditional create (which fails, and is billed, when the booking exists) followed
 * by a compare-and-set update (a GetItem, and a PutItem when something changed), one booking after
 * another; the store is scanned again for vanished bookings, and once more for the advance loop.
 *
 * The advance loop itself is left out: the benchmark's bookings are not due, so it would make no
 * request. Refusals are as they were (refusal.ts holds the same change functions).
 */
import type { Runtime } from "../../lib/app/runtime";
import type { Booking } from "../../lib/domain/booking";
import { isManual } from "../../lib/domain/booking";
import { NotFoundError } from "../../lib/errors";
import { bookingProblem } from "../../lib/lifecycle/booking-rules";
import type { ReconcileReport } from "../../lib/lifecycle/reconcile";
import { noteRefused, refusal } from "../../lib/lifecycle/refusal";
import { retentionOf } from "../../lib/lifecycle/retention";
import {
  freeHost,
  isFinished,
  markVanished,
  newBooking,
  refreshFromDashboard,
} from "../../lib/lifecycle/transitions";

type Deps = Pick<Runtime, "dashboard" | "store" | "logger" | "now" | "config">;

/** The reconciliation and the advance loop's read, as a poll did them; the store's bookings. */
export async function baselineReconcile(rt: Deps, report: ReconcileReport): Promise<Booking[]> {
  const listed = await rt.dashboard.listBookings();
  report.seen = listed.length;
  const listedIds = new Set(listed.map((b) => b.id));
  for (const fromDashboard of listed) {
    const problem = bookingProblem(fromDashboard, rt.config);
    const fresh = newBooking(fromDashboard, rt.now());
    const created = await rt.store.createBooking(
      problem ? (refusal(problem, retentionOf(rt))(fresh) ?? fresh) : fresh,
    );
    if (created) {
      report.created.push(fromDashboard.id);
      if (problem) noteRefused(rt, fromDashboard.id, problem, report);
      continue;
    }
    const { changed, item } = await rt.store.updateBooking(
      fromDashboard.id,
      refreshFromDashboard(fromDashboard),
    );
    if (changed) report.updated.push(fromDashboard.id);
    if (problem && item.state === "scheduled") {
      const refused = await rt.store.updateBooking(item.id, refusal(problem, retentionOf(rt)));
      if (refused.changed) {
        noteRefused(rt, item.id, problem, report);
        await rt.store
          .updateHost(item.hostName, freeHost(item.id, rt.now()))
          .catch((error: unknown) => {
            if (!(error instanceof NotFoundError)) throw error;
          });
      }
    }
  }
  for (const stored of await rt.store.listBookings()) {
    if (listedIds.has(stored.id) || stored.vanished || isFinished(stored.state)) continue;
    if (isManual(stored.id)) continue;
    const { changed } = await rt.store.updateBooking(stored.id, markVanished);
    if (changed) report.vanished.push(stored.id);
  }
  // The advance loop's own read of the store.
  return rt.store.listBookings();
}
