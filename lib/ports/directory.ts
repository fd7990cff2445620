/**
 * The lab's user directory (LDAP), where VPN accounts live. What this system may delete is what
 * its own store records: the DN of each entry it made and the entry's server-given identity
 * (entryUUID, RFC 4530), read back after the add. A removal deletes the entry only while the
 * server still gives that identity, so an entry someone else put under the same name since is
 * never touched. Entries also carry a `laas-managed booking=<id>` description, but as a label:
 * users may be able to edit it, so it proves nothing on its own.
 */
import type { Secret } from "../secret";

/** Longest user name a directory is given, in characters. */
export const MAX_VPN_USER_NAME_LENGTH = 64;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Why `name` cannot be a VPN user name (empty, too long, a control character), or null when it
 * can. Anything else is fine: adapters escape what their directory needs escaped.
 */
export function vpnUserNameProblem(name: string): string | null {
  const length = [...name].length;
  if (length === 0) return "VPN user name is empty";
  if (length > MAX_VPN_USER_NAME_LENGTH) {
    return `VPN user name is ${length} characters long; at most ${MAX_VPN_USER_NAME_LENGTH} are allowed`;
  }
  const control = CONTROL_CHARACTER.exec(name);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, "0");
    return `VPN user name ${JSON.stringify(name)} contains a control character (U+${code})`;
  }
  return null;
}

export interface NewVpnUser {
  /** Booking the account is for; written into the entry's label. */
  bookingId: string;
  /**
   * The user name wanted (the dashboard user's name, or one made from the booking). When taken,
   * a numbered variant is used ("name-2", "name-3", …).
   */
  preferredName: string;
  /** Shown as cn; defaults to the user name. */
  fullName: string | null;
  email: string | null;
  password: Secret;
}

/** A name createUser is about to add: recorded by the caller before the add. */
export interface IntendedVpnUser {
  uid: string;
  dn: string;
}

export interface VpnAccount extends IntendedVpnUser {
  /** The entry's entryUUID as the server gave it: what a removal checks. */
  entryUUID: string;
}

/**
 * An entry as this system's store records it. `entryUUID` is null when it was never read: the
 * DN was recorded before the add and the attempt was interrupted, or an older version of this
 * system made the entry. Such an entry is taken as this system's only when it is right under the
 * users directory, carries the booking's label and was made by the account this system binds as
 * (creatorsName, which the server sets and nobody can edit).
 */
export interface RecordedEntry {
  dn: string;
  entryUUID: string | null;
}

export type RemovalOutcome =
  /** The entry was the recorded one and is gone now. */
  | "deleted"
  /** There was no such entry (removed before: removal is idempotent). */
  | "absent"
  /** Another entry stands at the recorded DN now (its entryUUID differs): left alone. */
  | "replaced"
  /**
   * Not provably this system's (not right under the users directory; or, its entryUUID never
   * recorded, not labelled for the booking or made by another account): left alone.
   */
  | "not-managed"
  /** The user is one of permanent_users: left alone. */
  | "permanent";

/** What adoptUser found: the entry taken over, or why it was left alone. */
export type AdoptionOutcome = VpnAccount | "absent" | "not-managed" | "permanent";

export interface Directory {
  /**
   * Creates the VPN user under the users directory, with a name no entry anywhere below the
   * users directory has (a numbered variant when the preferred one is taken). Before the add it
   * calls `intend` with the DN it is about to use, so that the caller records it: an attempt
   * interrupted after the add leaves the DN on record (see adoptUser). The entry is added
   * without a password; the password is then set with the Password Modify extended operation
   * (RFC 3062), so that the server stores it hashed with its own scheme. Answers the entry's
   * entryUUID, read back from the server.
   *
   * Not idempotent: each call makes a new entry. A caller that may run twice chooses and keeps
   * the password first, records what `intend` gives, and, run again, adopts that entry instead
   * of calling createUser once more. Within one call, an attempt that failed on the network is
   * made again (`intend` may then be called again), and an entry whose add went through while
   * its answer was lost is recognised as this call's own and answered, not made a second time.
   *
   * Errors (all methods): TransientError while the server is down, busy, silent or the
   * connection is lost (after the adapter's own retries); AuthError for refused credentials or
   * access; ConfigError for a server that will never do it (TLS, a DN outside its databases);
   * InvalidUserNameError; DirectoryError with the LDAP result code for anything else the server
   * refuses.
   */
  createUser(
    user: NewVpnUser,
    intend: (name: IntendedVpnUser) => Promise<void>,
  ): Promise<VpnAccount>;
  /**
   * Takes over the entry an interrupted createUser may have left at `dn` for `bookingId` (its
   * entryUUID was never recorded): only when it passes the checks of an unrecorded entry (see
   * RecordedEntry). Sets its password to `password` and answers its entryUUID. May be repeated.
   */
  adoptUser(dn: string, bookingId: string, password: Secret): Promise<AdoptionOutcome>;
  /**
   * Deletes the recorded entry if, and only if, the server still gives it the recorded entryUUID
   * (checked by the server itself in the delete), or, for an entry whose entryUUID was never
   * read, if it passes the checks of an unrecorded entry. Never a permanent user. May be repeated.
   */
  removeUser(entry: RecordedEntry, bookingId: string): Promise<RemovalOutcome>;
  /** Logs out and closes connections. */
  close(): Promise<void>;
}
