/**
 * The lab's user directory (LDAP), where VPN accounts live. Every entry this system makes carries
 * its mark and the booking it was made for; removal checks the mark, so an entry made by someone
 * else is never deleted, whatever its name.
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
  /** Booking the account is for; written into the entry's mark. */
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

export interface VpnAccount {
  uid: string;
  dn: string;
}

/** An entry carrying this system's mark. */
export interface ManagedVpnUser extends VpnAccount {
  bookingId: string;
}

export type RemovalOutcome =
  /** The entry was there, carried the mark for this booking, and is gone now. */
  | "deleted"
  /** There was no such entry (removed before: removal is idempotent). */
  | "absent"
  /** The entry does not carry this system's mark for this booking: left alone. */
  | "not-managed"
  /** The user is one of permanent_users: left alone. */
  | "permanent";

export interface Directory {
  /**
   * Creates the VPN user under the users directory; its password is stored hashed.
   *
   * Not idempotent: each call makes a new entry (a numbered name when the first is taken).
   * Callers that may run twice choose and keep the password first, and, run again, remove the
   * entry an earlier attempt made for the same booking (listManagedUsers) before making it anew.
   */
  createUser(user: NewVpnUser): Promise<VpnAccount>;
  /** Deletes the entry if, and only if, it carries the mark for `bookingId`. */
  removeUser(dn: string, bookingId: string): Promise<RemovalOutcome>;
  /** Every entry under the users directory that carries this system's mark. */
  listManagedUsers(): Promise<ManagedVpnUser[]>;
  /** Logs out and closes connections. */
  close(): Promise<void>;
}
