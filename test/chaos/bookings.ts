/**
 * The dashboard side of a chaos run: puts each host's planned bookings on the dashboard one after
 * another (the next once the previous one's end has come, as a lab's calendar fills), and does to
 * them what the plan says mid-flight — cancelled (deleted), shortened, extended.
 */
import { bookingAt, drfDateTime } from "../../sim/dashboard-sim";
import type { SimulatedLab } from "../../sim/lab";
import type { PlannedBooking } from "./plan";

export interface BookingTrack {
  plan: PlannedBooking;
  /** When it was put on the dashboard (ms from the run's start); null until then. */
  addedAtMs: number | null;
  /** Its times as the dashboard has them now. */
  start: Date | null;
  end: Date | null;
  /** Deleted from the dashboard (cancelled); `end` is then when. */
  removed: boolean;
  midFlightDone: boolean;
}

export interface BookingDriver {
  readonly tracks: readonly BookingTrack[];
  /** Mid-flight changes made, by action. */
  readonly changes: Record<"cancel" | "shorten" | "extend", number>;
  tick(elapsedMs: number): void;
  /** Every booking is on the dashboard and its end has come (or it was deleted). */
  allEnded(): boolean;
}

/** A booking over in LaaS's store (released, cancelled, failed), as last seen. */
export type IsOver = (bookingId: string) => boolean;

/** How long after its end a booking not yet over in LaaS holds up its host's next one (ms). */
const WAIT_FOR_OVER_MS = 45_000;

export function bookingDriver(
  lab: SimulatedLab,
  plan: readonly PlannedBooking[],
  isOver: IsOver,
): BookingDriver {
  const tracks: BookingTrack[] = plan.map((p) => ({
    plan: p,
    addedAtMs: null,
    start: null,
    end: null,
    removed: false,
    midFlightDone: false,
  }));
  const changes = { cancel: 0, shorten: 0, extend: 0 };
  const over = (track: BookingTrack, now: number) =>
    track.removed || (track.end !== null && now >= track.end.getTime());

  const setEnd = (track: BookingTrack, end: Date) => {
    track.end = end;
    lab.dashboard.setBookings(
      lab.dashboard.bookings.map((raw) =>
        (raw as { id?: unknown }).id === track.plan.id
          ? { ...(raw as object), end: drfDateTime(end) }
          : raw,
      ),
    );
  };

  return {
    tracks,
    changes,
    tick(elapsedMs) {
      const now = Date.now();
      const byHost = new Map<number, BookingTrack[]>();
      for (const track of tracks) {
        const list = byHost.get(track.plan.hostIndex) ?? [];
        list.push(track);
        byHost.set(track.plan.hostIndex, list);
      }
      for (const [hostIndex, list] of byHost) {
        const placed = list.filter((t) => t.addedAtMs !== null);
        const last = placed[placed.length - 1];
        const next = list[placed.length];
        if (!next || (last && !over(last, now))) continue;
        // Most bookings follow once the previous one is over in LaaS too; some come right at the
        // previous one's end and wait for the host's release.
        if (
          last &&
          !next.plan.backToBack &&
          !isOver(String(last.plan.id)) &&
          now < last.end!.getTime() + WAIT_FOR_OVER_MS
        ) {
          continue;
        }
        const host = lab.inventory[hostIndex]!;
        const start = new Date(now + next.plan.startDelayMs);
        const end = new Date(start.getTime() + next.plan.durationMs);
        next.addedAtMs = elapsedMs;
        next.start = start;
        next.end = end;
        lab.dashboard.addBooking(
          bookingAt({
            id: next.plan.id,
            resource_id: Number(host.resourceId),
            start,
            end,
            installer_name: next.plan.installer,
            scenario_name: next.plan.scenario,
            purpose: next.plan.purpose,
            ...(next.plan.userId !== null ? { user: next.plan.userId } : {}),
          }),
        );
      }
      for (const track of tracks) {
        const change = track.plan.midFlight;
        if (!change || track.midFlightDone || track.start === null || track.removed) continue;
        if (now < track.start.getTime() + change.afterMs) continue;
        track.midFlightDone = true;
        if (over(track, now)) continue;
        changes[change.action] += 1;
        if (change.action === "cancel") {
          track.removed = lab.dashboard.removeBooking(track.plan.id);
          if (track.removed) track.end = new Date(now);
        } else if (change.action === "shorten") {
          setEnd(track, new Date(now + change.leftMs));
        } else {
          setEnd(track, new Date(track.end!.getTime() + change.byMs));
        }
      }
    },
    allEnded() {
      const now = Date.now();
      return tracks.every((t) => t.addedAtMs !== null && over(t, now));
    },
  };
}
