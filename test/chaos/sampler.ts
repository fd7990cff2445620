/**
 * Looks at the listener's store while the run goes on: which states each booking passed through
 * (a booking ready for less than a look is also found in the log), and whether a host was ever
 * held by two bookings at once.
 *
 * "Held": a booking provisioning or ready holds its host; one releasing holds it while the host
 * names it (after MarkReleased frees the host, the booking's last write is still to come). Two
 * looks at the bookings are taken around one at the hosts, and only what both booking looks agree
 * on is judged — a booking only enters provisioning once per generation and leaves it for good,
 * so a state seen in both looks was the state when the hosts were read, and a finding is never
 * the product of reading two tables at different moments.
 */
import type { Booking, BookingState, HandoverState } from "../../lib/domain/booking";
import type { Host } from "../../lib/domain/host";
import type { SimulatedLab } from "../../sim/lab";
import type { Listeners } from "./listeners";

export interface DoubleHold {
  atMs: number;
  host: string;
  /** The bookings that held it (or the one provisioning while the host named another). */
  bookings: string[];
  hostState: string;
  hostBooking: string | null;
}

export interface BookingSeen {
  states: Set<BookingState>;
  /** When each state was first seen (ms from the run's start). */
  firstSeen: Map<BookingState, number>;
  handover: Set<HandoverState>;
}

/** A host seen quarantined: how it stood the first time it was seen so. */
export interface QuarantineSeen {
  atMs: number;
  host: string;
  failures: number;
  reason: string | null;
  lastFailure: string | null;
  /** Quarantined by an operator (the history's last quarantine names no booking). */
  byOperator: boolean;
}

export interface Sampler {
  /** Each quarantine episode, as first seen (a host released and quarantined again: twice). */
  readonly quarantines: QuarantineSeen[];
  /** The hosts at the last look. */
  readonly hosts: readonly Host[];
  readonly seen: Map<string, BookingSeen>;
  /** Each booking's state at the last look. */
  readonly latest: Map<string, BookingState>;
  readonly doubleHolds: DoubleHold[];
  /** Passwords found on the hosts (what was set with chpasswd): secrets to look for. */
  readonly hostPasswords: Set<string>;
  readonly looks: number;
  tick(elapsedMs: number): Promise<void>;
}

const holding = (state: BookingState) => state === "provisioning" || state === "ready";

/**
 * Hosts held by two bookings, or by a booking while the host names another, judged on what two
 * looks at the bookings (`first`, `second`) agree on around one look at the hosts.
 */
export function doubleHoldsIn(
  first: readonly Booking[],
  hosts: readonly Host[],
  second: readonly Booking[],
): Omit<DoubleHold, "atMs">[] {
  const again = new Map(second.map((b) => [b.id, b]));
  const steady = first.filter((b) => {
    const later = again.get(b.id);
    return (
      later !== undefined &&
      holding(b.state) &&
      holding(later.state) &&
      later.provisionGeneration === b.provisionGeneration
    );
  });
  const found: Omit<DoubleHold, "atMs">[] = [];
  for (const host of hosts) {
    const on = steady.filter((b) => b.hostName === host.name);
    const releasing = first.filter(
      (b) =>
        b.hostName === host.name &&
        b.state === "releasing" &&
        again.get(b.id)?.state === "releasing" &&
        host.bookingId === b.id,
    );
    const holders = [...on, ...releasing].map((b) => b.id);
    const wrongHolder = on.filter((b) => host.bookingId !== null && host.bookingId !== b.id);
    if (holders.length < 2 && wrongHolder.length === 0) continue;
    found.push({
      host: host.name,
      bookings: holders,
      hostState: host.state,
      hostBooking: host.bookingId,
    });
  }
  return found;
}

export function sampler(lab: SimulatedLab, listeners: Listeners): Sampler {
  const seen = new Map<string, BookingSeen>();
  const latest = new Map<string, BookingState>();
  const quarantines: QuarantineSeen[] = [];
  const inQuarantine = new Set<string>();
  let lastHosts: Host[] = [];
  const doubleHolds: DoubleHold[] = [];
  const reported = new Set<string>();
  const hostPasswords = new Set<string>();
  let looks = 0;

  const note = (booking: Booking, atMs: number) => {
    let entry = seen.get(booking.id);
    if (!entry) {
      entry = { states: new Set(), firstSeen: new Map(), handover: new Set() };
      seen.set(booking.id, entry);
    }
    entry.states.add(booking.state);
    if (!entry.firstSeen.has(booking.state)) entry.firstSeen.set(booking.state, atMs);
    if (booking.access) entry.handover.add(booking.access.handover);
  };

  const judge = (atMs: number, first: Booking[], hosts: Host[], second: Booking[]) => {
    for (const found of doubleHoldsIn(first, hosts, second)) {
      const key = `${found.host}:${[...found.bookings].sort().join(",")}:${found.hostBooking}`;
      if (reported.has(key)) continue;
      reported.add(key);
      doubleHolds.push({ atMs, ...found });
    }
  };

  return {
    quarantines,
    get hosts() {
      return lastHosts;
    },
    seen,
    latest,
    doubleHolds,
    hostPasswords,
    get looks() {
      return looks;
    },
    async tick(elapsedMs) {
      for (const host of lab.inventory) {
        for (const password of lab.hosts.shell(host.name).passwords.values()) {
          hostPasswords.add(password);
        }
      }
      const store = listeners.store();
      if (!store) return;
      try {
        const first = await store.listBookings();
        const hosts = await store.listHosts();
        const second = await store.listBookings();
        looks += 1;
        for (const booking of [...first, ...second]) note(booking, elapsedMs);
        for (const booking of second) latest.set(booking.id, booking.state);
        lastHosts = hosts;
        for (const host of hosts) {
          if (host.state !== "quarantined") {
            inQuarantine.delete(host.name);
            continue;
          }
          if (inQuarantine.has(host.name)) continue;
          inQuarantine.add(host.name);
          const last = [...host.history].reverse().find((e) => e.event.includes("quarantine"));
          quarantines.push({
            atMs: elapsedMs,
            host: host.name,
            failures: host.failures,
            reason: host.reason,
            lastFailure: host.lastFailure
              ? `booking ${host.lastFailure.bookingId} ${host.lastFailure.detail ?? ""}`
              : null,
            byOperator: last !== undefined && last.bookingId === null,
          });
        }
        judge(elapsedMs, first, hosts, second);
      } catch {
        // The listener is between processes (killed): look again next time.
      }
    },
  };
}
