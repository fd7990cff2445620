/**
 * The booking and host lifecycles as pure change functions for Store.updateBooking/updateHost.
 * Each returns the new item, or null when the transition does not apply to the item as it is now
 * (another poller or a retried step got there first). Being pure, they may be re-run on a fresher
 * copy of the item after a lost compare-and-set.
 */
import {
  type Booking,
  type BookingState,
  type Cleanup,
  type DashboardBooking,
  OPEN_END,
  type Phase,
} from "../domain/booking";
import { type Host, withEvent } from "../domain/host";
import { expiryAfterEndMoved, expiryOf, type Retention } from "./retention";
import { recordedVpnEntry } from "./vpn-record";

type BookingChange = (current: Booking) => Booking | null;
type HostChange = (current: Host) => Host | null;

export function newBooking(from: DashboardBooking, now: Date): Booking {
  const at = now.toISOString();
  return {
    id: from.id,
    resourceId: from.resourceId,
    hostName: from.hostName,
    start: from.start.toISOString(),
    end: from.end.toISOString(),
    installer: from.installer,
    scenario: from.scenario,
    purpose: from.purpose,
    user: from.user,
    state: "scheduled",
    provisionGeneration: 0,
    releaseGeneration: 0,
    vanished: false,
    failure: null,
    cleanup: null,
    progress: null,
    access: null,
    run: null,
    wait: null,
    endNotice: null,
    job: from.job ?? null,
    createdAt: at,
    updatedAt: at,
    expiresAtEpochSeconds: null,
    version: 0,
  };
}

/**
 * Copies what the dashboard may change into the stored booking. Before provisioning everything
 * may change (the user edited the booking); afterwards only the end (an extension) is taken, as
 * the pod is already built for the installer and host it was built for.
 */
export function refreshFromDashboard(from: DashboardBooking): BookingChange {
  return (current) => {
    const end = from.end.toISOString();
    const next: Booking =
      current.state === "scheduled"
        ? {
            ...current,
            resourceId: from.resourceId,
            hostName: from.hostName,
            start: from.start.toISOString(),
            end,
            installer: from.installer,
            scenario: from.scenario,
            purpose: from.purpose,
            user: from.user,
            job: from.job ?? current.job,
            vanished: false,
          }
        : { ...current, end, vanished: false };
    if (sameBookingFields(current, next)) return null;
    // An ended booking's end moved on the dashboard: its expiry moves with it (retention.ts).
    const expiry = current.expiresAtEpochSeconds;
    return expiry === null
      ? next
      : { ...next, expiresAtEpochSeconds: expiryAfterEndMoved(expiry, current.end, end) };
  };
}

function sameBookingFields(a: Booking, b: Booking): boolean {
  return (
    a.resourceId === b.resourceId &&
    a.hostName === b.hostName &&
    a.start === b.start &&
    a.end === b.end &&
    a.installer === b.installer &&
    a.scenario === b.scenario &&
    a.purpose === b.purpose &&
    a.user === b.user &&
    JSON.stringify(a.job) === JSON.stringify(b.job) &&
    a.vanished === b.vanished
  );
}

export const markVanished: BookingChange = (current) =>
  current.vanished || isFinished(current.state) ? null : { ...current, vanished: true };

export function isFinished(state: BookingState): boolean {
  return state === "released" || state === "cancelled" || state === "failed";
}

/**
 * Ended for good: finished, no cleaning of its host pending (a cleaning moves it again), and no
 * VPN entry still recorded (one whose removal failed: the sweep takes it back, and until then the
 * booking must not expire — DynamoDB's TTL would delete the only record of that entry).
 */
export function isFinal(booking: Pick<Booking, "state" | "cleanup" | "access">): boolean {
  return (
    isFinished(booking.state) &&
    booking.cleanup === null &&
    recordedVpnEntry(booking.access) === null
  );
}

/**
 * A job's booking that ended before its job did (failed, refused, released by an operator): it
 * stays, with no expiry, until the dashboard re-issues its hardware task as cleanup and so gives
 * it an end. The job still lists it until then, and a booking gone would be made again (and its
 * host imaged again) from that listing.
 */
export function awaitsItsJobsEnd(booking: Pick<Booking, "job" | "end">): boolean {
  return booking.job !== null && booking.end === OPEN_END;
}

/**
 * `next` as the transition that ends it for good leaves it: with its expiry (retention.ts). A
 * caller without `retention` leaves the expiry to the sweep (stampExpiry).
 */
function ending(next: Booking, retention: Retention): Booking {
  if (!isFinal(next) || awaitsItsJobsEnd(next)) return next;
  return {
    ...next,
    expiresAtEpochSeconds: expiryOf(next, retention.now, retention.retentionDays),
  };
}

/**
 * A booking ended for good that has no expiry (written by an older version, or ended by a writer
 * that did not stamp one): its expiry counted from its last change, which is no earlier than the
 * moment it ended.
 */
export function stampExpiry(retentionDays: number): BookingChange {
  return (current) =>
    isFinal(current) && !awaitsItsJobsEnd(current) && current.expiresAtEpochSeconds === null
      ? {
          ...current,
          expiresAtEpochSeconds: expiryOf(current, new Date(current.updatedAt), retentionDays),
        }
      : null;
}

/** scheduled → provisioning, opening the next provision generation. */
export const beginProvisioning: BookingChange = (current) =>
  current.state === "scheduled"
    ? {
        ...current,
        state: "provisioning",
        provisionGeneration: current.provisionGeneration + 1,
        progress: "provisioning started",
        failure: null,
      }
    : null;

/** provisioning | ready → releasing, opening the next release generation. */
export const beginReleasing: BookingChange = (current) =>
  current.state === "provisioning" || current.state === "ready"
    ? {
        ...current,
        state: "releasing",
        releaseGeneration: current.releaseGeneration + 1,
        progress: "release started",
      }
    : null;

export function cancel(reason: string, retention: Retention): BookingChange {
  return (current) =>
    current.state === "scheduled"
      ? ending({ ...current, state: "cancelled", progress: reason }, retention)
      : null;
}

/** The step of `phase`, generation `generation`, is still the current one for this booking. */
export function isCurrentRun(booking: Booking, phase: Phase, generation: number): boolean {
  if (phase === "provision") {
    return booking.state === "provisioning" && booking.provisionGeneration === generation;
  }
  return booking.state === "releasing" && booking.releaseGeneration === generation;
}

export function noteProgress(phase: Phase, generation: number, progress: string): BookingChange {
  return (current) =>
    isCurrentRun(current, phase, generation) && current.progress !== progress
      ? { ...current, progress }
      : null;
}

/** A release that ends the booking stamps its expiry (retention.ts). */
export function finishPhase(phase: Phase, generation: number, retention: Retention): BookingChange {
  return (current) => {
    if (!isCurrentRun(current, phase, generation)) return null;
    if (phase === "provision") return { ...current, state: "ready", progress: "ready", wait: null };
    // The cleaning after a failed provision ends the booking as it was: failed, for its reason.
    if (current.cleanup === "after-provision") {
      return ending(
        {
          ...current,
          state: "failed",
          cleanup: null,
          progress: "failed; host cleaned",
          wait: null,
        },
        retention,
      );
    }
    return ending(
      { ...current, state: "released", cleanup: null, progress: "released", wait: null },
      retention,
    );
  };
}

/**
 * The run failed. With `cleanup`, the host it touched is left for the lab to clean (poll starts a
 * release run for it: beginCleaning); without, it was never touched, or is quarantined, and the
 * booking has ended for good (and its expiry is stamped from `retention`).
 */
export function failPhase(
  phase: Phase,
  generation: number,
  reason: string,
  cleanup: Cleanup | null,
  retention: Retention,
): BookingChange {
  return (current) =>
    isCurrentRun(current, phase, generation)
      ? ending(
          { ...current, state: "failed", failure: reason, cleanup, progress: "failed", wait: null },
          retention,
        )
      : null;
}

/**
 * What a failed run leaves to clean: nothing unless its host went to cleaning; a provision's
 * failure, or a release's (the cleaning after a failed provision stays one).
 */
export function cleanupAfter(
  booking: Pick<Booking, "cleanup">,
  phase: Phase,
  host: HostOutcome,
): Cleanup | null {
  if (host !== "cleaning") return null;
  return phase === "provision" ? "after-provision" : (booking.cleanup ?? "after-release");
}

/** failed, with its host left dirty → releasing: a release run cleans the host. */
export const beginCleaning: BookingChange = (current) =>
  current.state === "failed" && current.cleanup !== null
    ? {
        ...current,
        state: "releasing",
        releaseGeneration: current.releaseGeneration + 1,
        progress: "cleaning the host after a failure",
        wait: null,
      }
    : null;

/**
 * scheduled → failed, before anything was done for it: the dashboard's booking asks for what the
 * lab cannot serve (booking-rules.ts). The reason names the field, never its value.
 */
export function refuseBooking(reason: string, retention: Retention): BookingChange {
  return (current) =>
    current.state === "scheduled"
      ? ending(
          { ...current, state: "failed", failure: reason, progress: "refused", wait: null },
          retention,
        )
      : null;
}

/**
 * Hosts. free → claimed (poll, for a booking about to provision) → in-use (the host was touched:
 * rebooted into imaging) → cleaning (release) → free. A host held by the same booking may be
 * claimed again: a retried claim is not a double booking.
 */
export function claimHost(bookingId: string, now: Date = new Date()): HostChange {
  return (current) => {
    if (current.state !== "free") return null;
    const claimed: Host = { ...current, state: "claimed", bookingId, reason: null };
    return withEvent(claimed, "claimed", bookingId, null, now);
  };
}

export function holds(host: Host, bookingId: string): boolean {
  return host.bookingId === bookingId && host.state !== "free" && host.state !== "quarantined";
}

export function hostInUse(bookingId: string): HostChange {
  return (current) =>
    current.bookingId === bookingId && current.state === "claimed"
      ? { ...current, state: "in-use" }
      : null;
}

export function hostCleaning(bookingId: string): HostChange {
  return (current) =>
    current.bookingId === bookingId && (current.state === "claimed" || current.state === "in-use")
      ? { ...current, state: "cleaning" }
      : null;
}

export function freeHost(bookingId: string, now: Date = new Date()): HostChange {
  return (current) => {
    if (current.bookingId !== bookingId || current.state === "free") return null;
    if (current.state === "quarantined") return null;
    const freed: Host = { ...current, state: "free", bookingId: null, reason: null };
    return withEvent(freed, "freed", bookingId, null, now);
  };
}

/** The booking's provision succeeded on the host: its failure streak ends. */
export function hostServed(bookingId: string): HostChange {
  return (current) =>
    current.bookingId === bookingId && current.failures !== 0 ? { ...current, failures: 0 } : null;
}

/** What a failed run did to the host it held (see hostAfterFailure). */
export type HostOutcome = "free" | "cleaning" | "quarantined" | "unchanged";

/** How a run is named in a host's history, so that its failure is counted once. */
export function runLabel(phase: Phase, generation: number): string {
  return `${phase} ${generation}`;
}

/**
 * Run `run` of booking `bookingId` failed with the host in `current`. A host only claimed was
 * never touched: it is freed, and the failure is not its own. A touched host counts the failure
 * in its streak and goes to cleaning, or, at `quarantineAfter` failures in a row, to quarantine
 * until an operator releases it. Counted once per run: run again (a retried RecordFailure), it
 * answers what the first time did.
 */
export function hostAfterFailure(
  current: Host,
  failure: { bookingId: string; run: string; reason: string },
  quarantineAfter: number,
  now: Date,
): { host: Host | null; outcome: HostOutcome } {
  const { bookingId, run, reason } = failure;
  if (current.bookingId !== bookingId || current.state === "free") {
    return { host: null, outcome: "unchanged" };
  }
  if (current.state === "claimed") {
    return { host: freeHost(bookingId, now)(current), outcome: "free" };
  }
  const counted = current.lastFailure?.bookingId === bookingId && current.lastFailure.run === run;
  if (counted || current.state === "quarantined") {
    return { host: null, outcome: current.state === "quarantined" ? "quarantined" : "cleaning" };
  }
  const failures = current.failures + 1;
  const lastFailure = { at: now.toISOString(), event: "failed", bookingId, run, detail: reason };
  const failed = withEvent(
    { ...current, failures, lastFailure },
    "failed",
    bookingId,
    reason,
    now,
    run,
  );
  if (failures >= quarantineAfter) {
    const why = `${failures} failure(s) in a row; the last: booking ${bookingId}: ${reason}`;
    const quarantined = { ...failed, state: "quarantined" as const, reason: why };
    return {
      host: withEvent(quarantined, "quarantined", bookingId, why, now, run),
      outcome: "quarantined",
    };
  }
  return {
    host: withEvent({ ...failed, state: "cleaning" }, "cleaning", bookingId, null, now, run),
    outcome: "cleaning",
  };
}

/** hostAfterFailure as a store change. */
export function hostFailed(
  failure: { bookingId: string; run: string; reason: string },
  quarantineAfter: number,
  now: Date,
): HostChange {
  return (current) => hostAfterFailure(current, failure, quarantineAfter, now).host;
}

/**
 * A host key was accepted (first seen since the last deploy, or the one required): record it as
 * the key of the system FOG deployed last.
 */
export function recordHostKey(hostKey: string): HostChange {
  return (current) =>
    current.hostKey === hostKey && current.hostKeyDeployed === current.deployed
      ? null
      : { ...current, hostKey, hostKeyDeployed: current.deployed };
}

/**
 * FOG says the host's last deploy completed at `deployed`. A key recorded for an earlier deploy
 * belongs to a system that is gone: it is forgotten, and the first key seen from now on is
 * recorded (and then required).
 */
export function observeDeployed(deployed: string | null): HostChange {
  return (current) => {
    const stale = current.hostKey !== null && current.hostKeyDeployed !== deployed;
    if (current.deployed === deployed && !stale) return null;
    return stale
      ? { ...current, deployed, hostKey: null, hostKeyDeployed: null }
      : { ...current, deployed };
  };
}
