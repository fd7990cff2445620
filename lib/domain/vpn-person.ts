/**
 * One VPN account per person (laas-fog's rule): the directory entry made for a dashboard user at
 * their first active booking, kept while any of their bookings holds it, removed when the last one
 * lets go. The record is the reference count: the ids of the bookings holding the account, a set
 * (a step run twice adds or removes its id once), every change a conditional write on `version`.
 */

/** An entry whose removal is under way: deleted (only while it is still the recorded one), then dropped. */
export interface RetiringEntry {
  dn: string;
  /** Null for an entry whose add was interrupted before its entryUUID was read. */
  entryUuid: string | null;
  /** The booking the entry is labelled for (`laas-managed booking=<id>`). */
  madeFor: string;
}

export interface VpnPerson {
  /** The directory and the dashboard user: see personKey (lifecycle/vpn-person.ts). */
  key: string;
  /** The dashboard user, as bookings name them. */
  user: string;
  /** The account held now: all three set once made and recorded, all null before. */
  uid: string | null;
  dn: string | null;
  entryUuid: string | null;
  /** The DN the making booking chose, recorded before its add; null once the entry is recorded. */
  intendedDn: string | null;
  /**
   * The booking that makes (or made) the account: its label is on the entry and its hand-over
   * carried the password. Null while nobody has claimed the making.
   */
  madeFor: string | null;
  /** Ids of the bookings holding the account. */
  bookings: string[];
  /** Entries of this person being removed (their last booking ended). */
  retiring: RetiringEntry[];
  updatedAt: string;
  version: number;
}
