/**
 * The first half of a poll: the dashboard's bookings into the store.
 *
 * The store is read once (one paged Scan) and each page of the dashboard's listing is compared
 * with it in memory as the page comes in, so a poll writes only what changed: nothing at all when
 * nothing did, one conditional create per new booking, one compare-and-set per edited one (on the
 * version read, without reading the item again). Of the dashboard's listing only the ids are
 * held, to tell which stored bookings vanished from it.
 *
 * Every write stays single-item and conditional. A create fails when the booking exists, which
 * guards two pollers that both found it new; creates cannot be batched for that reason
 * (BatchWriteItem takes no conditions, and dynalite, the embedded store, has no
 * TransactWriteItems), so they go out one by one, RECONCILE_CONCURRENCY at a time. An update
 * written on a version that moved on (another writer came first) is read again and decided again.
 */
import pLimit from "p-limit";
import type { Booking, DashboardBooking } from "../domain/booking";
import { isManual } from "../domain/booking";
import { ignoreNotFound, NotFoundError } from "../errors";
import type { BookingPage, Dashboard } from "../ports/dashboard";
import type { Runtime } from "../ports/runtime";
import { bookingProblem } from "./booking-rules";
import { readAhead } from "./read-ahead";
import { noteRefused, refusal } from "./refusal";
import { pastRetention, retentionOf } from "./retention";
import {
  freeHost,
  isFinished,
  markVanished,
  newBooking,
  refreshFromDashboard,
} from "./transitions";

/**
 * Store writes a reconciliation has under way at once: well under the SDK's 50 sockets per
 * client, and enough to keep one DynamoDB table (or the embedded dynalite) busy.
 */
export const RECONCILE_CONCURRENCY = 16;

/**
 * How many of the dashboard's bookings may be held, read ahead of the comparison (about 2 MB).
 * Its pages come one after another (each names the next), and reading 10,000 bookings in pages of
 * 100 takes about as long as the store's Scan of as many: this lets most of a listing that size
 * arrive while the store is read, and a larger one still be held only in part.
 */
export const DASHBOARD_BOOKINGS_AHEAD = 5_000;

/** What reconcile did, in the poll's report. */
export interface ReconcileReport {
  /** Bookings the dashboard listed (after inventory filtering and validation). */
  seen: number;
  created: string[];
  updated: string[];
  vanished: string[];
  refused: string[];
}

type ReconcileDeps = Pick<Runtime, "dashboard" | "store" | "logger" | "now" | "config">;

/**
 * Reconciles the dashboard's listing into the store, and answers the store's bookings as this
 * reconciliation leaves them: as read, with its own writes applied (what others wrote since the
 * read is not in them). A write that fails ends the reconciliation with its error once the
 * writes under way have ended.
 */
export async function reconcile(rt: ReconcileDeps, report: ReconcileReport): Promise<Booking[]> {
  // The dashboard's pages are read while the store is, and while each page before is compared:
  // the two reads overlap, and pages of DASHBOARD_BOOKINGS_AHEAD bookings at most are held.
  const pages = readAhead(bookingPages(rt.dashboard), {
    most: DASHBOARD_BOOKINGS_AHEAD,
    weight: (page) => page.bookings.length,
  });
  const stored = new Map<string, Booking>();
  const limit = pLimit(RECONCILE_CONCURRENCY);
  let reading = 0;
  let listed = new Set<string>();
  try {
    for (const booking of await rt.store.listBookings()) stored.set(booking.id, booking);
    for (let next = await pages.next(); !next.done; next = await pages.next()) {
      const page = next.value;
      // A listing read again from the start (it shifted under its pages): only the last
      // reading says which bookings are listed.
      if (page.reading !== reading) {
        reading = page.reading;
        listed = new Set();
      }
      for (const fromDashboard of page.bookings) listed.add(fromDashboard.id);
      // Most of a steady listing is unchanged: told apart here, without a write or a promise.
      const toWrite = page.bookings.filter(
        (fromDashboard) => !unchanged(rt, fromDashboard, stored.get(fromDashboard.id)),
      );
      const outcomes = await allOrFirstError(
        toWrite.map((fromDashboard) => {
          const current = stored.get(fromDashboard.id);
          return limit(() => reconcileOne(rt, fromDashboard, current));
        }),
      );
      for (const { id, item, part } of outcomes) {
        if (item === null) {
          stored.delete(id);
          continue;
        }
        stored.set(item.id, item);
        report.created.push(...part.created);
        report.updated.push(...part.updated);
        report.refused.push(...part.refused);
      }
    }
  } finally {
    // Left early (a failure): the listing is let go once the page under way is in.
    pages.return().catch(() => undefined);
  }
  report.seen = listed.size;

  const gone = [...stored.values()].filter(
    (b) => !listed.has(b.id) && !b.vanished && !isFinished(b.state) && !isManual(b.id),
  );
  const marked = await allOrFirstError(
    gone.map((b) =>
      limit(async () => ({
        id: b.id,
        outcome: await unlessDeleted(rt.store.updateBooking(b.id, markVanished, { expected: b })),
      })),
    ),
  );
  for (const { id, outcome } of marked) {
    if (outcome === null) {
      stored.delete(id);
      continue;
    }
    stored.set(id, outcome.item);
    if (outcome.changed) report.vanished.push(id);
  }
  return [...stored.values()];
}

/** The dashboard's pages as they are read; a dashboard that cannot page is one page. */
function bookingPages(dashboard: Dashboard): AsyncIterable<BookingPage> {
  if (dashboard.listBookingPages) return dashboard.listBookingPages();
  return (async function* () {
    yield { reading: 1, bookings: await dashboard.listBookings() };
  })();
}

interface Reconciled {
  id: string;
  /**
   * The booking as the store holds it after this reconciliation's writes; null for one the store
   * does not hold and never will again, as it ended longer ago than the retention (retention.ts),
   * or that retention deleted since the store was read.
   */
  item: Booking | null;
  part: Pick<ReconcileReport, "created" | "updated" | "refused">;
}

/** Whether the store's copy already says what the dashboard lists, leaving nothing to do. */
function unchanged(
  rt: ReconcileDeps,
  fromDashboard: DashboardBooking,
  current: Booking | undefined,
): boolean {
  if (current === undefined) return false;
  if (refreshFromDashboard(fromDashboard)(current) !== null) return false;
  // A scheduled booking the lab cannot serve is refused (reconcileOne).
  return current.state !== "scheduled" || bookingProblem(fromDashboard, rt.config) === null;
}

/**
 * One booking the dashboard lists, against the store's copy read at the start (undefined when
 * there was none). What it did goes into a report of its own, so that the poll's report lists
 * bookings in the dashboard's order however the writes interleave.
 */
async function reconcileOne(
  rt: ReconcileDeps,
  fromDashboard: DashboardBooking,
  current: Booking | undefined,
): Promise<Reconciled> {
  const part: Reconciled["part"] = { created: [], updated: [], refused: [] };
  const problem = bookingProblem(fromDashboard, rt.config);
  if (current === undefined) {
    // The dashboard lists bookings long past (the 2017 API lists them all): one past its
    // retention is either one the sweep or TTL removed, or one never worth recording.
    if (pastRetention(fromDashboard.end.toISOString(), rt.now(), rt.config.bookingRetentionDays)) {
      return { id: fromDashboard.id, item: null, part };
    }
    const fresh = newBooking(fromDashboard, rt.now());
    const first = problem ? (refusal(problem, retentionOf(rt))(fresh) ?? fresh) : fresh;
    if (await rt.store.createBooking(first)) {
      part.created.push(fromDashboard.id);
      if (problem) noteRefused(rt, fromDashboard.id, problem, part);
      return { id: fromDashboard.id, item: first, part };
    }
    // Another poller created it since the store was read: updated like any stored booking.
  }
  const refresh = refreshFromDashboard(fromDashboard);
  let item: Booking;
  if (current !== undefined && refresh(current) === null) {
    item = current;
  } else {
    const refreshed = await unlessDeleted(
      rt.store.updateBooking(
        fromDashboard.id,
        refresh,
        current === undefined ? {} : { expected: current },
      ),
    );
    // Deleted by the sweep (or TTL) since the store was read: left for the next poll to judge.
    if (refreshed === null) return { id: fromDashboard.id, item: null, part };
    if (refreshed.changed) part.updated.push(fromDashboard.id);
    item = refreshed.item;
  }
  // Edited into something the lab cannot serve before it started: refused now.
  if (problem && item.state === "scheduled") {
    const refused = await rt.store.updateBooking(item.id, refusal(problem, retentionOf(rt)), {
      expected: item,
    });
    if (refused.changed) {
      noteRefused(rt, item.id, problem, part);
      // A claim left by a poll that stopped before provisioning began.
      await rt.store.updateHost(item.hostName, freeHost(item.id, rt.now())).catch(ignoreNotFound);
    }
    item = refused.item;
  }
  return { id: fromDashboard.id, item, part };
}

/** A write's outcome, or null when the booking it was for is no longer in the store. */
async function unlessDeleted<T>(write: Promise<T>): Promise<T | null> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/**
 * Every result in order once all have settled (none is left running behind a failure), or the
 * first failure in order.
 */
async function allOrFirstError<T>(work: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const values: T[] = [];
  for (const each of settled) {
    if (each.status === "rejected") throw each.reason;
    values.push(each.value);
  }
  return values;
}
