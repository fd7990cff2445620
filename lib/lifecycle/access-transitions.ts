/**
 * The booking's access record as pure change functions (see transitions.ts): what was handed over,
 * and what release must take back. Each applies only while the run that made the change is still
 * the booking's current one, so a superseded run never overwrites a newer run's record.
 */
import type { Booking, BookingAccess, Phase } from "../domain/booking";
import { isCurrentRun } from "./transitions";

type BookingChange = (current: Booking) => Booking | null;

export function emptyAccess(): BookingAccess {
  return {
    vpnUser: null,
    vpnUserDn: null,
    vpnEntryUuid: null,
    vpnIntendedDn: null,
    vpnPerson: null,
    vpnAccountFrom: null,
    rootPasswordSet: false,
    sshKey: null,
    vpnOthers: [],
    otherSshKeys: {},
    sealedCredentials: null,
    handover: "pending",
    handoverError: null,
  };
}

/**
 * The provision run that made the pod delivers its hand-over once the booking is ready; anything
 * later (release, a failure) ends that.
 */
export function isHandoverRun(booking: Booking, generation: number): boolean {
  return booking.state === "ready" && booking.provisionGeneration === generation;
}

/** Changes the access record during a run of `phase`; null when the run is no longer current. */
export function changeAccess(
  phase: Phase,
  generation: number,
  change: (access: BookingAccess) => BookingAccess,
): BookingChange {
  return (current) => {
    if (!isCurrentRun(current, phase, generation)) return null;
    return { ...current, access: change(current.access ?? emptyAccess()) };
  };
}

/** The hand-over went out: the sealed credentials are no longer needed and are dropped. */
export function handoverDelivered(generation: number): BookingChange {
  return (current) => {
    if (!isHandoverRun(current, generation) || !current.access) return null;
    return {
      ...current,
      access: {
        ...current.access,
        handover: "delivered",
        handoverError: null,
        sealedCredentials: null,
      },
    };
  };
}

/**
 * Delivery gave up. The sealed credentials stay, so that `laas handover` can send them once the
 * mail server is fixed; release drops them.
 */
export function handoverUndelivered(generation: number, reason: string): BookingChange {
  return (current) => {
    if (!isHandoverRun(current, generation) || !current.access) return null;
    if (current.access.handover === "delivered") return null;
    return {
      ...current,
      access: { ...current.access, handover: "undelivered", handoverError: reason },
    };
  };
}

/** What the VPN user's removal leaves on the record: nothing to take back, nothing to deliver. */
export function accessWithdrawn(access: BookingAccess): BookingAccess {
  return {
    ...access,
    vpnUser: null,
    vpnUserDn: null,
    vpnEntryUuid: null,
    vpnIntendedDn: null,
    vpnPerson: null,
    vpnAccountFrom: null,
    vpnOthers: [],
    sealedCredentials: null,
    handover: access.handover === "delivered" ? "delivered" : "withdrawn",
  };
}

/**
 * A sweep dealt with the booking's VPN entry (the booking is over, whatever its state): the
 * record forgets it. Applies only while the record still names that entry (made or intended).
 */
export function forgetVpnUser(dn: string): BookingChange {
  return (current) =>
    current.access && (current.access.vpnUserDn === dn || current.access.vpnIntendedDn === dn)
      ? { ...current, access: accessWithdrawn(current.access) }
      : null;
}

/**
 * A sweep let go of the person's account for the booking (the booking is over): the record
 * forgets it. Applies only while the record still names that person.
 */
export function forgetVpnPerson(key: string): BookingChange {
  return (current) =>
    current.access && current.access.vpnPerson === key
      ? { ...current, access: accessWithdrawn(current.access) }
      : null;
}

/**
 * A sweep let go of the account of one of the job's other users (`key`, the person's record) for
 * the booking: the booking forgets it.
 */
export function forgetVpnOther(key: string): BookingChange {
  return (current) =>
    current.access?.vpnOthers.some((o) => o.person === key)
      ? {
          ...current,
          access: {
            ...current.access,
            vpnOthers: current.access.vpnOthers.filter((o) => o.person !== key),
          },
        }
      : null;
}
