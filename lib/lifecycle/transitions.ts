/**
 * The booking and host lifecycles as pure change functions for Store.updateBooking/updateHost.
 * Each returns the new item, or null when the transition does not apply to the item as it is now
 * (another poller or a retried step got there first). Being pure, they may be re-run on a fresher
 * copy of the item after a lost compare-and-set.
 */
import type { Booking, BookingState, DashboardBooking, Phase } from "../domain/booking";
import type { Host } from "../domain/host";

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
    progress: null,
    access: null,
    run: null,
    wait: null,
    createdAt: at,
    updatedAt: at,
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
            vanished: false,
          }
        : { ...current, end, vanished: false };
    return sameBookingFields(current, next) ? null : next;
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
    a.vanished === b.vanished
  );
}

export const markVanished: BookingChange = (current) =>
  current.vanished || isFinished(current.state) ? null : { ...current, vanished: true };

export function isFinished(state: BookingState): boolean {
  return state === "released" || state === "cancelled" || state === "failed";
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

export function cancel(reason: string): BookingChange {
  return (current) =>
    current.state === "scheduled" ? { ...current, state: "cancelled", progress: reason } : null;
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

export function finishPhase(phase: Phase, generation: number): BookingChange {
  return (current) => {
    if (!isCurrentRun(current, phase, generation)) return null;
    return phase === "provision"
      ? { ...current, state: "ready", progress: "ready", wait: null }
      : { ...current, state: "released", progress: "released", wait: null };
  };
}

export function failPhase(phase: Phase, generation: number, reason: string): BookingChange {
  return (current) =>
    isCurrentRun(current, phase, generation)
      ? { ...current, state: "failed", failure: reason, progress: "failed", wait: null }
      : null;
}

/**
 * Hosts. free → claimed (poll, for a booking about to provision) → in-use (the host was touched:
 * rebooted into imaging) → cleaning (release) → free. A host held by the same booking may be
 * claimed again: a retried claim is not a double booking.
 */
export function claimHost(bookingId: string): HostChange {
  return (current) => {
    if (current.state === "free") return { ...current, state: "claimed", bookingId, reason: null };
    return null;
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

export function freeHost(bookingId: string): HostChange {
  return (current) =>
    current.bookingId === bookingId && current.state !== "free" && current.state !== "quarantined"
      ? { ...current, state: "free", bookingId: null, reason: null }
      : null;
}

export function quarantineHost(bookingId: string, reason: string): HostChange {
  return (current) =>
    current.bookingId === bookingId && current.state !== "free" && current.state !== "quarantined"
      ? { ...current, state: "quarantined", reason }
      : null;
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
