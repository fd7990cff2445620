import type { RunRecord, WaitRecord } from "./run";

/**
 * A booking as LaaS keeps it. It starts as a copy of the dashboard's booking and then moves
 * through its lifecycle; every move is a conditional write (see ports/store.ts).
 *
 *   scheduled → provisioning → ready → releasing → released
 *        ↘ cancelled (vanished before it started)      any step that gives up → failed
 *   failed (host left dirty) → releasing (cleaning) → failed, or released after a release
 *   scheduled → failed: refused at poll (a field that cannot be served); its host never touched
 */
export const BOOKING_STATES = [
  "scheduled",
  "provisioning",
  "ready",
  "releasing",
  "released",
  "cancelled",
  "failed",
] as const;
export type BookingState = (typeof BOOKING_STATES)[number];

export type Phase = "provision" | "release";

/** What the dashboard says about a booking, normalised (see ports/dashboard.ts). */
export interface DashboardBooking {
  /** Dashboard booking id, kept as a string: it is only ever compared and printed. */
  id: string;
  resourceId: string;
  /** FOG host name, from the inventory. */
  hostName: string;
  start: Date;
  end: Date;
  /** As the dashboard spells it (e.g. "Fuel"), or null when none was chosen. */
  installer: string | null;
  scenario: string | null;
  purpose: string;
  /**
   * Who booked, as the dashboard refers to them (user id or name), when it says: the key to
   * their e-mail address and SSH key (see ports/dashboard.ts).
   */
  user: string | null;
  /** Set for a booking made from a job's hardware task (the jobs API); absent otherwise. */
  job?: JobLink;
}

/**
 * What ties a booking to the job it was made from (lifecycle/jobs/): the jobs API has one
 * hardware task per host, and each becomes a booking of that host.
 */
export interface JobLink {
  /** The dashboard's job id. */
  jobId: number;
  /** The hardware task this booking is. */
  taskId: string;
  /** The lab's image id the hardware task asks for; null when it names none. */
  labImageId: string | null;
  /**
   * The FOG image that is (pharos.yaml `jobs.images`), or null to use the installer config's. A
   * lab image id the mapping does not have leaves it null, and the booking is refused
   * (booking-rules.ts).
   */
  fogImageId: number | null;
  /** The host name the hardware task asks the host to have; null when it names none. */
  hostname: string | null;
  /**
   * The job's other users with a VPN access task (collaborators), by dashboard user id: each
   * booking of the job holds their accounts too (BookingAccess.vpnOthers).
   */
  otherUsers: string[];
  /** The keys the other users' ssh access tasks give for this host. */
  otherSshKeys: Array<{ user: string; key: string }>;
  /**
   * The OpenSSH public key the job's ssh access task gives for this host and the booking user,
   * unchecked; null when none (the jobs API has no user API to ask).
   */
  sshKey: string | null;
}

/**
 * The end of a booking whose end the dashboard does not say (a job's: the jobs API tells the end
 * by re-issuing its tasks as cleanup). Far enough that nothing is ever due by it.
 */
export const OPEN_END = "9999-12-31T23:59:59.000Z";

/**
 * A VPN account of another user of the booking's job (a collaborator, jobs API), held by the
 * booking as its own user's is (the person's record counts the booking among its holders).
 */
export interface OtherVpnAccount {
  /** The dashboard's user id. */
  user: string;
  /** The key of the person's record, written here before the booking joins it. */
  person: string;
  /** The account's uid once got; null before. */
  uid: string | null;
  /** The booking that made the account (its hand-over carried the password); null before. */
  accountFrom: string | null;
}

/**
 * What was handed to the booking user, so that release can take it back. Secrets are never here
 * in clear: the credentials waiting to be delivered are sealed (lib/access/sealed.ts).
 */
export interface BookingAccess {
  /** The VPN user made for this booking; null until made and again once removed. */
  vpnUser: string | null;
  vpnUserDn: string | null;
  /**
   * The entryUUID (RFC 4530) the directory gave the entry at vpnUserDn, read back after the add:
   * what proves the entry is the one made for this booking. Removal deletes only the entry that
   * still has it. Null with a vpnUserDn only in records older versions made.
   */
  vpnEntryUuid: string | null;
  /**
   * The DN CreateVpnUser chose and is about to add, written before the add; null once the entry
   * is recorded above or taken back. Left set by an interrupted attempt, it names an entry whose
   * entryUUID was never read: the next attempt adopts it, and release or the sweep removes it,
   * under the checks that stand in for a record (see ports/directory.ts RecordedEntry).
   */
  vpnIntendedDn: string | null;
  /**
   * The key of the person's record (domain/vpn-person.ts) when the booking holds its user's one
   * VPN account (vpnUser names it; vpnUserDn stays null: the entry is the person's, not the
   * booking's). Written before the booking joins the record, so release always lets go of it.
   */
  vpnPerson: string | null;
  /**
   * The booking that made the person's account: this one (its hand-over has the password), or an
   * earlier one (the account is unchanged, its password the one given with that booking).
   */
  vpnAccountFrom: string | null;
  /** Whether a fresh root password was set on the host. */
  rootPasswordSet: boolean;
  /** What became of the user's SSH key ("installed SHA256:…", "none given", "refused: why"). */
  sshKey: string | null;
  /** The accounts of the job's other users this booking holds (jobs API); empty otherwise. */
  vpnOthers: OtherVpnAccount[];
  /** What became of the other users' keys, by user id (as sshKey says it). */
  otherSshKeys: Record<string, string>;
  /** VPN and root passwords, sealed, until the hand-over is delivered; then null. */
  sealedCredentials: string | null;
  handover: HandoverState;
  /** Why the last delivery attempt failed (never holds secrets). */
  handoverError: string | null;
}

export const CLEANUPS = ["after-provision", "after-release"] as const;
export type Cleanup = (typeof CLEANUPS)[number];

export const HANDOVER_STATES = ["pending", "delivered", "undelivered", "withdrawn"] as const;
export type HandoverState = (typeof HANDOVER_STATES)[number];

export const END_NOTICE_STATES = ["sending", "sent", "failed", "skipped"] as const;
export type EndNoticeState = (typeof END_NOTICE_STATES)[number];

/**
 * The notice before the end (lifecycle/end-notice.ts), for one end of the booking: the user is
 * told at most once per end, and an end moved by the dashboard (an extension) opens a new one.
 */
export interface EndNotice {
  /** The booking end (ISO-8601) this notice is for. */
  end: string;
  /**
   * "sending": claimed by a poller that is sending it; "sent"; "failed": the mail server did not
   * take it (tried again later); "skipped": not sent, for `reason`.
   */
  state: EndNoticeState;
  /** When it took this state, ISO-8601. */
  at: string;
  /** Why it was skipped or failed (never holds secrets); null otherwise. */
  reason: string | null;
}

export interface Booking {
  id: string;
  resourceId: string;
  hostName: string;
  /** ISO-8601 UTC. */
  start: string;
  end: string;
  installer: string | null;
  scenario: string | null;
  purpose: string;
  /** Dashboard user reference (see DashboardBooking.user). */
  user: string | null;
  state: BookingState;
  /**
   * Which run of each phase is current. Execution names carry it, so a phase is started at most
   * once per generation.
   */
  provisionGeneration: number;
  releaseGeneration: number;
  /** Set when the booking vanished from the dashboard. */
  vanished: boolean;
  /** Why the booking failed, for the operator and the user (never holds secrets). */
  failure: string | null;
  /**
   * Set when a failed run left the host dirty (touched, state unknown) and the lab cleans it: a
   * release run removes the pod and writes the clean image, then frees the host. The booking ends
   * failed after a failed provision, released after a release that needed a second cleaning.
   */
  cleanup: Cleanup | null;
  /** Short human-readable note on what is happening now ("imaging 45%"). */
  progress: string | null;
  /** The access handed over (VPN user, root password, SSH key); null before the access stage. */
  access: BookingAccess | null;
  /** What the current run's steps have done (see domain/run.ts); null before the first step. */
  run: RunRecord | null;
  /** The world event the current run waits for (imaging, boot, installer), with its task token. */
  wait: WaitRecord | null;
  /** The notice before the end, for the end it was last decided for; null before. */
  endNotice: EndNotice | null;
  /** The job this booking is a hardware task of (the jobs API); null for the bookings API's. */
  job: JobLink | null;
  createdAt: string;
  updatedAt: string;
  /**
   * When the booking leaves the store, in epoch seconds (DynamoDB TTL's format): set once it has
   * ended for good (released, cancelled, failed with no cleaning pending), null before. See
   * lifecycle/retention.ts.
   */
  expiresAtEpochSeconds: number | null;
  /** Optimistic-locking counter: every write checks and bumps it. */
  version: number;
}

export function executionName(bookingId: string, phase: Phase, generation: number): string {
  // Step Functions names: 1–80 chars of [A-Za-z0-9-_]. Dashboard ids are integers, but keep the
  // name valid whatever they are.
  const safeId = bookingId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60);
  return `booking-${safeId}-${phase}-${generation}`;
}

/**
 * Bookings made by `laas deploy` rather than the dashboard carry this prefix; poll leaves them
 * alone (they are not the dashboard's to cancel or end).
 */
export const MANUAL_PREFIX = "manual-";

export function manualBookingId(hostName: string, at: Date): string {
  return `${MANUAL_PREFIX}${hostName}-${at.getTime()}`;
}

export function isManual(bookingId: string): boolean {
  return bookingId.startsWith(MANUAL_PREFIX);
}

export function phaseOfExecution(name: string): Phase {
  return /-release-\d+$/.test(name) ? "release" : "provision";
}

export function isActive(state: BookingState): boolean {
  return state === "provisioning" || state === "ready" || state === "releasing";
}
