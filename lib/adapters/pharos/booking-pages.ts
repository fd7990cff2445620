/**
 * Reading the dashboard's bookings list across DRF's pages (PageNumberPagination and the like):
 * following `next`, telling a listing that shifted under its pages from one that merely lists a
 * booking twice, and reading it again when it shifted.
 */
import { ProtocolError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import { type ListPage, rawBookingId } from "./booking-schema";
import { displayUrl } from "./urls";

/** Readings of a paginated listing that shifted under them, before the poll is left to fail. */
const MAX_LISTING_READINGS = 3;

export interface BookingPages {
  /** The first page (the list endpoint itself). */
  bookingsUrl: URL;
  /** Most pages followed in one reading; more means a loop or a runaway dashboard. */
  maxPages: number;
  /**
   * One page, its own retries done; "gone" when a later page no longer exists (DRF's
   * "Invalid page.": the listing shrank since its first page was read).
   */
  getPage(url: URL, first: boolean): Promise<ListPage | "gone">;
  logger: Logger;
}

/** One page of raw entries as read, under the reading it belongs to (1, 2, …). */
export interface EntryPage {
  reading: number;
  entries: unknown[];
}

/**
 * What one reading of a paginated listing turned out to be, once its pages were read: whole, or
 * shifted under it (read it again). Only the ids are kept: the entries went out page by page.
 */
type Listing =
  | { kind: "whole"; ids: ReadonlySet<string>; repeated: string[] }
  | { kind: "shifted"; why: string };

/**
 * Every raw entry of the bookings list, following `next` links across pages, page by page as
 * read. Pages are numbered, so a booking added or deleted while they are walked shifts the rest:
 * one booking would show twice and another not at all — and a booking missing from a listing
 * reads as a cancellation downstream. A listing whose count changed between pages (or whose page
 * vanished) is read again from the start, up to MAX_LISTING_READINGS times; the pages of each
 * reading come under its number, and the iteration ends after a whole one.
 *
 * A booking listed on two pages of a listing that did not change (the count agrees throughout)
 * is a queryset that yields it twice: the repeat is skipped with a warning, as in a plain list.
 * But pages of an unordered queryset can also overlap and leave a booking out, without any
 * change of count; so such a listing is read once more, and taken when the second reading lists
 * the same bookings.
 *
 * A page is handed on before its reading is known to be whole: what it says of a booking is what
 * the dashboard said then, true of that booking either way. Only a booking's absence needs the
 * whole listing, and only the last reading gives it.
 */
export async function* bookingEntryPages(
  source: BookingPages,
): AsyncGenerator<EntryPage, void, undefined> {
  let suspect: string | null = null;
  for (let reading = 1; reading <= MAX_LISTING_READINGS; reading++) {
    const listing = yield* readListing(source, reading);
    if (listing.kind === "shifted") {
      source.logger.warn(
        { reading, why: listing.why },
        "dashboard bookings changed while their pages were read: read again from the start",
      );
      continue;
    }
    if (listing.repeated.length === 0) return;
    const ids = [...listing.ids].sort().join(",");
    if (ids === suspect) return;
    suspect = ids;
    source.logger.warn(
      { reading, bookingIds: listing.repeated.slice(0, 10) },
      "dashboard listed bookings on two pages: read again to see that none was left out",
    );
  }
  throw new TransientError(
    `dashboard bookings changed while their pages were read, ${MAX_LISTING_READINGS} times running, at ${displayUrl(source.bookingsUrl)}; the next poll reads them again`,
  );
}

/** One reading of the listing, its pages handed on as they come. */
async function* readListing(
  source: BookingPages,
  reading: number,
): AsyncGenerator<EntryPage, Listing, undefined> {
  const visited = new Set<string>();
  const ids = new Set<string>();
  const repeated: string[] = [];
  let received = 0;
  let firstCount: number | undefined;
  let url: URL | null = source.bookingsUrl;
  while (url !== null) {
    if (visited.has(url.href)) {
      throw new ProtocolError(`dashboard pagination loops back to ${displayUrl(url)}`);
    }
    if (visited.size >= source.maxPages) {
      throw new ProtocolError(
        `dashboard bookings span more than ${source.maxPages} pages at ${displayUrl(source.bookingsUrl)}`,
      );
    }
    visited.add(url.href);
    const first = visited.size === 1;
    const page: ListPage | "gone" = await source.getPage(url, first);
    if (page === "gone") return { kind: "shifted", why: `${displayUrl(url)} is no longer a page` };
    if (first) {
      firstCount = page.count;
    } else if (page.count !== firstCount) {
      return { kind: "shifted", why: `the count went from ${firstCount} to ${page.count}` };
    }
    const onThisPage = new Set<string>();
    for (const entry of page.results) {
      const id = rawBookingId(entry);
      if (id === null) continue;
      // A repeat within one page is one query's answer, as in a plain list; across pages it
      // may mean a shifted listing.
      if (ids.has(id)) repeated.push(id);
      onThisPage.add(id);
    }
    for (const id of onThisPage) ids.add(id);
    received += page.results.length;
    const next: URL | null = page.next === null ? null : nextPageUrl(source, page.next, url);
    yield { reading, entries: page.results };
    url = next;
  }
  if (visited.size > 1 && firstCount !== undefined && received !== firstCount) {
    return {
      kind: "shifted",
      why: `the pages held ${received} bookings where the count said ${firstCount}`,
    };
  }
  return { kind: "whole", ids, repeated };
}

/**
 * DRF builds `next` from the request as Django saw it: behind a reverse proxy that may be an
 * internal name, plain http or a path without the proxy's prefix. Pagination only ever changes
 * the query (page, limit and offset, cursor), so the link's query is followed on the configured
 * bookings URL — and the token only ever goes to the configured dashboard.
 */
function nextPageUrl(source: BookingPages, next: string, current: URL): URL {
  let link: URL;
  try {
    link = new URL(next, current);
  } catch {
    throw new ProtocolError(`dashboard sent an invalid next-page link at ${displayUrl(current)}`);
  }
  const rebased = new URL(source.bookingsUrl);
  rebased.search = link.search;
  if (link.origin !== rebased.origin || link.pathname !== rebased.pathname) {
    source.logger.debug(
      { next: displayUrl(link), following: displayUrl(rebased) },
      "next-page link names another place; following its query on the configured dashboard",
    );
  }
  return rebased;
}
