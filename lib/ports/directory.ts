/**
 * The lab's user directory (LDAP), where VPN accounts live. Every entry this system makes carries
 * its mark and the booking it was made for; removal checks the mark, so an entry made by someone
 * else is never deleted, whatever its name.
 */
import type { Secret } from "../secret";

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
  /** Creates the VPN user under the users directory; its password is stored hashed. */
  createUser(user: NewVpnUser): Promise<VpnAccount>;
  /** Deletes the entry if, and only if, it carries the mark for `bookingId`. */
  removeUser(dn: string, bookingId: string): Promise<RemovalOutcome>;
  /** Every entry under the users directory that carries this system's mark. */
  listManagedUsers(): Promise<ManagedVpnUser[]>;
  /** Logs out and closes connections. */
  close(): Promise<void>;
}
