/**
 * The sweep, run on a schedule (functions/sweep.ts in the cloud, the listener locally): the
 * directory's VPN entries of bookings that are over, then the bookings and the job records whose
 * retention has run out.
 *
 * The directory sweep: the VPN entries the store records for bookings that are no longer active
 * are removed (a release or a failure that could not reach the directory, an attempt interrupted
 * after recording the DN it chose). It walks the bookings, not the directory: an entry no booking
 * records is never touched, whatever label it carries, and a recorded one goes only while it is
 * still the entry recorded (the directory adapter checks its entryUUID, or, for a DN recorded
 * before its add, the checks that stand in for one) and not a permanent user.
 *
 * The people's accounts (vpn-person.ts): a booking that is over, or gone from the store, lets go
 * of its user's account, which is removed once no booking holds it; entries whose removal was
 * interrupted (`retiring`) are removed. The same adapter checks apply: a permanent user's entry,
 * or one LaaS did not make, is left alone.
 *
 * The expiry sweep (retention.ts): a booking whose expiry has passed is deleted, only while it is
 * the version read, so that one changed meanwhile is looked at again next time. That is DynamoDB
 * TTL's work in the cloud (doing it here too is harmless) and the sweep's alone locally, where
 * dynalite has no TTL. With the local engine's journal, the records of ended executions whose
 * booking is gone go too: nothing else ever removes them, and the engine reads them all at every
 * look. A job record (domain/job.ts) whose expiry has passed is deleted the same way, only while
 * it is the version read.
 */

import type { VpnConfig } from "../config/types";
import { type Booking, isActive } from "../domain/booking";
import type { VpnPerson } from "../domain/vpn-person";
import { ConflictError, errorMessage } from "../errors";
import type { Directory, RemovalOutcome } from "../ports/directory";
import type { ExecutionStatus } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { forgetVpnOther, forgetVpnPerson, forgetVpnUser } from "./access-transitions";
import { imagingConfig } from "./current-run";
import { isExpired } from "./retention";
import { stampExpiry } from "./transitions";
import { leavePerson, personKey, removeRetiring } from "./vpn-person";
import { recordedVpnEntry } from "./vpn-record";

export interface SweepReport {
  /** DNs removed (or found gone already). */
  removed: string[];
  /** Recorded entries kept because their booking is active (a person's: any of their bookings). */
  kept: number;
  /** Recorded entries the adapter left alone (replaced since, not provably made here, permanent). */
  declined: { dn: string; outcome: RemovalOutcome }[];
}

/** One directory per place, though several installer configs may name the same one. */
function directoryKey(vpn: VpnConfig): string {
  return [vpn.ldap.url, vpn.directory.user, vpn.directory.root].join("\u0000");
}

export async function sweepVpnUsers(rt: Runtime): Promise<SweepReport> {
  const report: SweepReport = { removed: [], kept: 0, declined: [] };
  if (!rt.config.handover?.vpn) return report;
  const directories = new Map<string, Directory>();
  const directoryFor = (vpn: VpnConfig): Directory => {
    const key = directoryKey(vpn);
    let directory = directories.get(key);
    if (!directory) {
      directory = rt.directoryFor(vpn);
      directories.set(key, directory);
    }
    return directory;
  };
  // The directory the booking's entry was made in: its installer's vpn_config.
  const directoryOf = (booking: Booking): Directory =>
    directoryFor(imagingConfig(rt, booking, "provision").vpn);
  const outcomes = (removed: { dn: string; outcome: RemovalOutcome }[]) => {
    for (const { dn, outcome } of removed) {
      if (outcome === "deleted" || outcome === "absent") report.removed.push(dn);
      else report.declined.push({ dn, outcome });
    }
  };
  // One booking's trouble (its directory unreachable, its installer gone from the config) does
  // not keep the others' entries; the sweep fails afterwards with the first such trouble.
  let trouble: unknown = null;
  try {
    for (const booking of await rt.store.listBookings()) {
      const others = booking.access?.vpnOthers ?? [];
      if (others.length > 0 && !isActive(booking.state)) {
        // Over, and still holding accounts of its job's other users: it lets go of each.
        try {
          for (const other of others) {
            if ((await rt.store.getVpnPerson(other.person)) !== null) {
              const { item } = await rt.store.updateVpnPerson(
                other.person,
                leavePerson(booking.id),
              );
              outcomes(await removeRetiring(rt, directoryOf(booking), item, rt.logger));
            }
            await rt.store.updateBooking(booking.id, forgetVpnOther(other.person));
          }
        } catch (error) {
          rt.logger.warn(
            { bookingId: booking.id, err: errorMessage(error) },
            "sweep could not let go of a VPN account",
          );
          trouble ??= error;
        }
      }
      const person = booking.access?.vpnPerson ?? null;
      if (person !== null && !isActive(booking.state)) {
        // Over, and still naming its user's account: it lets go (a booking that never joined
        // the record lets go of nothing), and the record forgets it.
        try {
          if ((await rt.store.getVpnPerson(person)) !== null) {
            const { item } = await rt.store.updateVpnPerson(person, leavePerson(booking.id));
            outcomes(await removeRetiring(rt, directoryOf(booking), item, rt.logger));
          }
          await rt.store.updateBooking(booking.id, forgetVpnPerson(person));
        } catch (error) {
          rt.logger.warn(
            { bookingId: booking.id, err: errorMessage(error) },
            "sweep could not let go of a VPN account",
          );
          trouble ??= error;
        }
        continue;
      }
      const entry = recordedVpnEntry(booking.access);
      if (!entry) continue;
      // A booking that is over stays over (released, cancelled and failed are final), so what
      // it records is nobody's any more.
      if (isActive(booking.state)) {
        report.kept++;
        continue;
      }
      try {
        const outcome = await directoryOf(booking).removeUser(entry, booking.id);
        if (outcome === "deleted" || outcome === "absent") report.removed.push(entry.dn);
        else report.declined.push({ dn: entry.dn, outcome });
        // Whatever the outcome, the recorded entry is not there to take back any more (or never
        // will be, for a permanent user): the record forgets it, so it is looked at once.
        await rt.store.updateBooking(booking.id, forgetVpnUser(entry.dn));
      } catch (error) {
        rt.logger.warn(
          { bookingId: booking.id, dn: entry.dn, err: errorMessage(error) },
          "sweep could not remove a recorded VPN user",
        );
        trouble ??= error;
      }
    }
    const people = await rt.store.listVpnPersons();
    for (const person of people) {
      try {
        if (await sweepPerson(rt, person, directoryFor, outcomes)) report.kept++;
      } catch (error) {
        rt.logger.warn(
          { user: person.user, err: errorMessage(error) },
          "sweep could not deal with a person's VPN account",
        );
        trouble ??= error;
      }
    }
  } finally {
    await Promise.all([...directories.values()].map((d) => d.close().catch(() => undefined)));
  }
  if (report.removed.length > 0) {
    rt.logger.info({ removed: report.removed }, "sweep removed VPN users of ended bookings");
  }
  if (report.declined.length > 0) {
    rt.logger.warn({ declined: report.declined }, "sweep left recorded VPN entries alone");
  }
  if (trouble !== null) throw trouble;
  return report;
}

/**
 * One person's account: the bookings it names that are gone or over let go, and the entries
 * retiring are removed. Answers whether an active booking still holds the account.
 */
async function sweepPerson(
  rt: Runtime,
  person: VpnPerson,
  directoryFor: (vpn: VpnConfig) => Directory,
  outcomes: (removed: { dn: string; outcome: RemovalOutcome }[]) => void,
): Promise<boolean> {
  let current = person;
  let held = false;
  for (const id of person.bookings) {
    const booking = await rt.store.getBooking(id);
    if (booking && isActive(booking.state)) {
      held = true;
      continue;
    }
    ({ item: current } = await rt.store.updateVpnPerson(person.key, leavePerson(id)));
    if (booking) await rt.store.updateBooking(id, forgetVpnPerson(person.key));
  }
  if (current.retiring.length === 0) return held;
  // The directory the key names: one of the installers' vpn_configs.
  const vpn = [...rt.config.defaultConfigs.values()]
    .map((config) => config.vpn)
    .find((candidate) => personKey(candidate, person.user) === person.key);
  if (!vpn) throw new Error(`VPN person ${person.key}: no installer config names its directory`);
  outcomes(await removeRetiring(rt, directoryFor(vpn), current, rt.logger));
  return held;
}

export interface ExpiryReport {
  /** Bookings deleted, their retention over. */
  deleted: string[];
  /** Bookings ended for good that had no expiry yet (older versions' items), now given one. */
  stamped: string[];
  /** Expired bookings kept: changed since they were read, or still recording a VPN entry or account. */
  kept: string[];
  /** Journal records of ended executions whose booking is gone, removed. */
  executions: string[];
}

/** The local engine's journal, as far as the sweep uses it (adapters/local/journal.ts). */
export interface ExecutionRecords {
  list(): Promise<
    { name: string; input: { bookingId: string }; status: ExecutionStatus; version: number }[]
  >;
  /** ConflictError when the record is no longer at `ifVersion`. */
  remove(name: string, ifVersion: number): Promise<void>;
}

export async function sweepExpiredBookings(
  rt: Pick<Runtime, "store" | "config" | "logger" | "now">,
  journal: ExecutionRecords | null = null,
): Promise<ExpiryReport> {
  const report: ExpiryReport = { deleted: [], stamped: [], kept: [], executions: [] };
  const now = rt.now();
  // Read before the bookings: each record in it was started for a booking that existed by then,
  // so one whose booking is not among those read next belongs to a booking that is gone.
  const executions = journal ? await journal.list() : [];
  const stillThere = new Set<string>();
  let trouble: unknown = null;
  for (const listed of await rt.store.listBookings()) {
    stillThere.add(listed.id);
    try {
      const booking = await withExpiry(rt, listed, report);
      if (!isExpired(booking, now)) continue;
      // Its entry could not be removed yet (the directory sweep failed for it): deleting the
      // booking would leave the entry recorded nowhere, out of every later sweep's reach.
      // Nor one still holding its user's account: the directory sweep lets go of it first.
      if (
        recordedVpnEntry(booking.access) !== null ||
        booking.access?.vpnPerson ||
        (booking.access?.vpnOthers.length ?? 0) > 0
      ) {
        report.kept.push(booking.id);
        continue;
      }
      await rt.store.deleteBooking(booking.id, booking.version);
      stillThere.delete(booking.id);
      report.deleted.push(booking.id);
    } catch (error) {
      if (error instanceof ConflictError) {
        report.kept.push(listed.id);
        continue;
      }
      rt.logger.warn({ bookingId: listed.id, err: errorMessage(error) }, "sweep could not expire");
      trouble ??= error;
    }
  }
  for (const record of executions) {
    if (record.status === "RUNNING" || stillThere.has(record.input.bookingId)) continue;
    try {
      await journal?.remove(record.name, record.version);
      report.executions.push(record.name);
    } catch (error) {
      if (error instanceof ConflictError) continue;
      rt.logger.warn({ execution: record.name, err: errorMessage(error) }, "sweep kept a record");
      trouble ??= error;
    }
  }
  if (report.deleted.length > 0 || report.executions.length > 0) {
    rt.logger.info(
      { deleted: report.deleted, executions: report.executions.length },
      "sweep removed bookings past their retention",
    );
  }
  if (trouble !== null) throw trouble;
  return report;
}

/** The booking with its expiry: stamped now if it ended for good without one. */
async function withExpiry(
  rt: Pick<Runtime, "store" | "config">,
  booking: Booking,
  report: ExpiryReport,
): Promise<Booking> {
  if (booking.expiresAtEpochSeconds !== null) return booking;
  const stamp = stampExpiry(rt.config.bookingRetentionDays);
  if (stamp(booking) === null) return booking;
  const { changed, item } = await rt.store.updateBooking(booking.id, stamp);
  if (changed) report.stamped.push(booking.id);
  return item;
}

export interface JobExpiryReport {
  /** Keys of the job records deleted, their expiry past. */
  deleted: string[];
  /** Expired job records kept: changed since they were read (looked at again next time). */
  kept: string[];
}

/**
 * Deletes the job records whose expiry has passed (set once a job is finished), each only while
 * it is the version read: one changed meanwhile is looked at again by the next sweep. DynamoDB
 * TTL's work in the cloud too, as for bookings.
 */
export async function sweepExpiredJobs(
  rt: Pick<Runtime, "store" | "logger" | "now">,
): Promise<JobExpiryReport> {
  const report: JobExpiryReport = { deleted: [], kept: [] };
  const now = rt.now();
  let trouble: unknown = null;
  const expired = (await rt.store.listJobs()).filter((job) => isExpired(job, now));
  for (const job of expired) {
    try {
      await rt.store.deleteJob(job.key, job.version);
      report.deleted.push(job.key);
    } catch (error) {
      if (error instanceof ConflictError) {
        report.kept.push(job.key);
        continue;
      }
      rt.logger.warn({ job: job.key, err: errorMessage(error) }, "sweep could not expire a job");
      trouble ??= error;
    }
  }
  if (report.deleted.length > 0) {
    rt.logger.info({ deleted: report.deleted }, "sweep removed job records past their retention");
  }
  if (trouble !== null) throw trouble;
  return report;
}

export interface FullSweepReport {
  vpn: SweepReport;
  expiry: ExpiryReport;
  jobs: JobExpiryReport;
}

/**
 * The whole sweep: the directory's entries first, so that an expired booking's entry is taken
 * back before the booking goes; the expiry sweeps (bookings, then job records) run even when an
 * earlier part failed, and the first failure is then thrown.
 */
export async function sweep(
  rt: Runtime,
  journal: ExecutionRecords | null = null,
): Promise<FullSweepReport> {
  let vpn: SweepReport = { removed: [], kept: 0, declined: [] };
  let expiry: ExpiryReport = { deleted: [], stamped: [], kept: [], executions: [] };
  let jobs: JobExpiryReport = { deleted: [], kept: [] };
  let trouble: unknown = null;
  try {
    vpn = await sweepVpnUsers(rt);
  } catch (error) {
    trouble = error;
  }
  try {
    expiry = await sweepExpiredBookings(rt, journal);
  } catch (error) {
    trouble ??= error;
  }
  try {
    jobs = await sweepExpiredJobs(rt);
  } catch (error) {
    trouble ??= error;
  }
  if (trouble !== null) throw trouble;
  return { vpn, expiry, jobs };
}
