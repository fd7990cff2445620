/**
 * One VPN account per person: acquired by each booking of a dashboard user, made by the first,
 * reused by the others while any holds it, removed when the last lets go. The person's record
 * (domain/vpn-person.ts) is the reference count; every step is a conditional write on it, ordered
 * so that a crash between any two leaves a state the next attempt, or the sweep, converges from:
 *
 *   acquire  1. the booking's id joins the record (created if missing); the first booking of
 *               nobody's making claims it (madeFor)
 *            2. entries retiring from an earlier holding are removed first (their uid is free
 *               again for the new entry)
 *            3. an account on record is reused; otherwise the claiming booking makes it: the DN
 *               recorded before the add (intendedDn, adopted by a later attempt), the entry and
 *               its entryUUID after; another booking waits (TransientError) until it is made
 *   release  1. the booking's id leaves the record; the last one out moves the account (or the
 *               DN a claim recorded) to `retiring` in the same write, so a booking joining after
 *               it makes a new account rather than reusing one about to go
 *            2. each retiring entry is removed, only while it is the recorded entry (entryUUID,
 *               see ports/directory.ts), then dropped from the record
 *
 * Two bookings ending together: each write applies to the record as it is, so exactly one of
 * them sees the set empty after its own removal and retires the entry; both then remove whatever
 * is retiring (a removal may be repeated). A permanent user's entry, or one LaaS did not make, is
 * left alone by the directory adapter.
 */
import type { VpnConfig } from "../config/types";
import type { RetiringEntry, VpnPerson } from "../domain/vpn-person";
import { SupersededError, TransientError } from "../errors";
import type { Logger } from "../log";
import type { Directory, NewVpnUser, RemovalOutcome } from "../ports/directory";
import type { Store } from "../ports/store";
import type { Secret } from "../secret";

/** The key of a dashboard user's record in one directory. */
export function personKey(vpn: VpnConfig, user: string): string {
  return [vpn.ldap.url, `${vpn.directory.user},${vpn.directory.root}`, user].join(" ");
}

function emptyPerson(key: string, user: string): VpnPerson {
  return {
    key,
    user,
    uid: null,
    dn: null,
    entryUuid: null,
    intendedDn: null,
    madeFor: null,
    bookings: [],
    retiring: [],
    updatedAt: new Date().toISOString(),
    version: 0,
  };
}

/** The account as the booking gets it. */
export interface HeldAccount {
  uid: string;
  dn: string;
  entryUUID: string;
  /** The booking that made it (and whose hand-over carried its password). */
  madeFor: string;
  /** Whether this booking made it now: its hand-over carries the password. */
  made: boolean;
}

/** The account a booking leaves going in its place: the entries its end retires. */
function retired(person: VpnPerson): RetiringEntry[] {
  const madeFor = person.madeFor ?? "";
  if (person.dn !== null) {
    return [{ dn: person.dn, entryUuid: person.entryUuid, madeFor }];
  }
  if (person.intendedDn !== null) return [{ dn: person.intendedDn, entryUuid: null, madeFor }];
  return [];
}

function withoutAccount(person: VpnPerson): VpnPerson {
  return {
    ...person,
    uid: null,
    dn: null,
    entryUuid: null,
    intendedDn: null,
    madeFor: null,
    retiring: [...person.retiring, ...retired(person)],
  };
}

/** Change: the booking holds the account (claiming its making when nobody does). */
export function joinPerson(bookingId: string): (p: VpnPerson) => VpnPerson | null {
  return (current) => {
    const has = current.bookings.includes(bookingId);
    const bookings = has ? current.bookings : [...current.bookings, bookingId];
    // A claim whose booking no longer holds the account is void: what it may have added retires.
    let person = current;
    if (person.madeFor !== null && !bookings.includes(person.madeFor)) {
      person = withoutAccount(person);
    }
    const claim = person.entryUuid === null && person.madeFor === null;
    if (has && !claim && person === current) return null;
    return { ...person, bookings, madeFor: claim ? bookingId : person.madeFor };
  };
}

/** Change: the booking lets go; the last one out retires the account. */
export function leavePerson(bookingId: string): (p: VpnPerson) => VpnPerson | null {
  return (current) => {
    if (!current.bookings.includes(bookingId)) return null;
    const bookings = current.bookings.filter((id) => id !== bookingId);
    const person = { ...current, bookings };
    // The last booking out, or the maker leaving before the account was recorded.
    if (bookings.length === 0) return withoutAccount(person);
    if (person.madeFor === bookingId && person.entryUuid === null) return withoutAccount(person);
    return person;
  };
}

function dropRetiring(dn: string): (p: VpnPerson) => VpnPerson | null {
  return (current) =>
    current.retiring.some((r) => r.dn === dn)
      ? { ...current, retiring: current.retiring.filter((r) => r.dn !== dn) }
      : null;
}

/**
 * Removes the person's retiring entries, each only while it is the recorded one, and drops each
 * from the record whatever the directory answered (gone, replaced, a permanent user, not LaaS's):
 * it is looked at once. Answers the outcomes by DN.
 */
export async function removeRetiring(
  rt: { store: Store },
  directory: Directory,
  person: VpnPerson,
  logger: Logger,
): Promise<{ dn: string; outcome: RemovalOutcome }[]> {
  const outcomes: { dn: string; outcome: RemovalOutcome }[] = [];
  for (const entry of person.retiring) {
    const outcome = await directory.removeUser(
      { dn: entry.dn, entryUUID: entry.entryUuid },
      entry.madeFor,
    );
    await rt.store.updateVpnPerson(person.key, dropRetiring(entry.dn));
    logger.info({ user: person.user, dn: entry.dn, outcome }, "VPN account of a person removed");
    outcomes.push({ dn: entry.dn, outcome });
  }
  return outcomes;
}

export interface AcquireRequest {
  key: string;
  user: string;
  bookingId: string;
  /** The entry's details, should this booking make it. */
  newUser: Omit<NewVpnUser, "bookingId" | "password">;
  /** The password of an account this booking makes: kept by the caller before any use. */
  password: () => Promise<Secret>;
}

/** Acquires the person's account for the booking; see the top of this file. */
export async function acquirePersonAccount(
  rt: { store: Store },
  directory: Directory,
  request: AcquireRequest,
  logger: Logger,
): Promise<HeldAccount> {
  const { key, bookingId } = request;
  await rt.store.createVpnPerson(emptyPerson(key, request.user));
  let { item: person } = await rt.store.updateVpnPerson(key, joinPerson(bookingId));
  if (person.retiring.length > 0) {
    await removeRetiring(rt, directory, person, logger);
    const read = await rt.store.getVpnPerson(key);
    if (read) person = read;
  }
  const held = (p: VpnPerson, made: boolean): HeldAccount | null =>
    p.uid !== null && p.dn !== null && p.entryUuid !== null && p.madeFor !== null
      ? { uid: p.uid, dn: p.dn, entryUUID: p.entryUuid, madeFor: p.madeFor, made }
      : null;
  const reused = held(person, false);
  if (reused) return reused.madeFor === bookingId ? { ...reused, made: true } : reused;
  if (person.madeFor !== bookingId) {
    throw new TransientError(
      `the VPN account of user ${request.user} is being made for booking ${person.madeFor ?? "?"}`,
    );
  }
  const stillMaking = (change: (p: VpnPerson) => VpnPerson) => (p: VpnPerson) =>
    p.madeFor === bookingId && p.bookings.includes(bookingId) ? change(p) : null;
  const password = await request.password();
  let account = null;
  if (person.intendedDn !== null) {
    const adopted = await directory.adoptUser(person.intendedDn, bookingId, password);
    if (typeof adopted === "object") account = adopted;
    else logger.info({ dn: person.intendedDn, outcome: adopted }, "VPN entry not adopted");
  }
  account ??= await directory.createUser(
    { ...request.newUser, bookingId, password },
    async ({ dn }) => {
      const { changed } = await rt.store.updateVpnPerson(
        key,
        stillMaking((p) => ({ ...p, intendedDn: dn })),
      );
      if (!changed) throw new SupersededError(`booking ${bookingId}: no longer making the account`);
    },
  );
  const made = account;
  const { changed, item } = await rt.store.updateVpnPerson(
    key,
    stillMaking((p) => ({
      ...p,
      uid: made.uid,
      dn: made.dn,
      entryUuid: made.entryUUID,
      intendedDn: null,
    })),
  );
  if (!changed) {
    // The booking let go meanwhile: the entry is nobody's.
    await directory.removeUser({ dn: made.dn, entryUUID: made.entryUUID }, bookingId);
    throw new SupersededError(`booking ${bookingId}: let go of the VPN account while making it`);
  }
  const mine = held(item, true);
  if (!mine) throw new Error(`VPN person ${key}: the account just recorded is not on the record`);
  logger.info({ user: request.user, uid: made.uid, dn: made.dn }, "VPN account of a person made");
  return mine;
}

/**
 * The booking lets go of the person's account: "kept" while another booking holds it, otherwise
 * what became of the entry ("none" when there was none).
 */
export async function releasePersonAccount(
  rt: { store: Store },
  directory: Directory,
  key: string,
  bookingId: string,
  logger: Logger,
): Promise<RemovalOutcome | "kept" | "none"> {
  if ((await rt.store.getVpnPerson(key)) === null) return "none";
  const { item } = await rt.store.updateVpnPerson(key, leavePerson(bookingId));
  if (item.retiring.length === 0) return item.bookings.length > 0 ? "kept" : "none";
  const outcomes = await removeRetiring(rt, directory, item, logger);
  return outcomes.at(-1)?.outcome ?? "none";
}
