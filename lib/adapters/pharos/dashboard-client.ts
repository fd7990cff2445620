/**
 * The Pharos dashboard's API (reference/dashboard-apis.md §1), always with
 * `Authorization: Token <token>`:
 * - `GET api/bookings/`, answered by Django REST Framework as a plain list or, where a deployment
 *   turned pagination on, as pages linked by `next`;
 * - `POST api/resource_status/`, the lab's status notes on a resource;
 * - `GET api/users/<id or name>/`, an extension: the 2017 dashboard had no user endpoint, later
 *   ones expose the booking user with their e-mail address and SSH key. A dashboard without it
 *   answers 404, which reads as "user unknown".
 */
import type { InventoryHost } from "../../config/types";
import type { DashboardBooking } from "../../domain/booking";
import { AuthError, ConfigError, ProtocolError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import type { Dashboard, DashboardUser, StatusNote } from "../../ports/dashboard";
import type { Secret } from "../../secret";
import {
  checkBooking,
  type ListPage,
  listPageSchema,
  rawBookingId,
  rawResourceId,
} from "./booking-schema";
import { checkUser } from "./user-schema";

export interface PharosDashboardOptions {
  /** Dashboard root, e.g. https://labs.opnfv.org/ (a trailing "/" is optional). */
  url: string;
  token: Secret;
  /** Only bookings of these hosts' resources are returned. */
  inventory: { hosts: Pick<InventoryHost, "resourceId" | "name">[] };
  /** Per-request timeout, body included (default 30). */
  requestTimeoutSeconds?: number;
  /** Most pages followed in one listing; more means a loop or a runaway dashboard (default 100). */
  maxPages?: number;
}

const DEFAULT_TIMEOUT_SECONDS = 30;
const DEFAULT_MAX_PAGES = 100;
/** Most characters of a 400's field errors quoted in an error. */
const MAX_FIELD_ERRORS = 300;

export class PharosDashboard implements Dashboard {
  readonly #token: Secret;
  readonly #root: URL;
  readonly #bookingsUrl: URL;
  readonly #hostsByResource: ReadonlyMap<string, string>;
  readonly #timeoutMs: number;
  readonly #maxPages: number;
  readonly #logger: Logger;

  constructor(options: PharosDashboardOptions, logger: Logger) {
    this.#token = options.token;
    this.#root = dashboardRoot(options.url);
    this.#bookingsUrl = new URL("api/bookings/", this.#root);
    this.#hostsByResource = new Map(options.inventory.hosts.map((h) => [h.resourceId, h.name]));
    this.#timeoutMs = (options.requestTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    this.#maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
    this.#logger = logger.child({ component: "pharos-dashboard" });
  }

  async listBookings(): Promise<DashboardBooking[]> {
    const entries = await this.#fetchAllEntries();
    const bookings: DashboardBooking[] = [];
    const seen = new Set<string>();
    for (const raw of entries) {
      // The dashboard serves every lab's bookings (its resource filter takes one resource at a
      // time), so other labs' entries are set aside first, whatever their state.
      const resourceId = rawResourceId(raw);
      if (resourceId !== null && !this.#hostsByResource.has(resourceId)) {
        this.#logger.debug({ resourceId }, "ignoring booking of a resource not in the inventory");
        continue;
      }
      const check = checkBooking(raw);
      if (!check.ok) {
        this.#logger.warn(
          { bookingId: check.id, reason: check.reason },
          "skipping malformed dashboard booking",
        );
        continue;
      }
      const booking = check.booking;
      const hostName = this.#hostsByResource.get(booking.resource_id);
      if (hostName === undefined) continue; // unreachable: resource checked above
      if (seen.has(booking.id)) {
        this.#logger.warn({ bookingId: booking.id }, "skipping repeated dashboard booking");
        continue;
      }
      seen.add(booking.id);
      bookings.push({
        id: booking.id,
        resourceId: booking.resource_id,
        hostName,
        start: booking.start,
        end: booking.end,
        installer: booking.installer_name,
        scenario: booking.scenario_name,
        purpose: booking.purpose,
        user: booking.user,
      });
    }
    this.#logger.debug(
      { received: entries.length, kept: bookings.length },
      "listed dashboard bookings",
    );
    return bookings;
  }

  async bookingUser(userRef: string): Promise<DashboardUser | null> {
    const ref = userRef.trim();
    // encodeURIComponent leaves dots alone, and "." and ".." are path segments a URL resolves
    // away: the request would reach another endpoint. Django allows such user names, but they
    // cannot be asked for. ("%2e" is safe: its "%" is encoded.)
    if (ref === "" || ref === "." || ref === "..") {
      this.#logger.warn({ userRef: ref }, "dashboard user reference cannot be looked up by URL");
      return null;
    }
    const url = new URL(`api/users/${encodeURIComponent(ref)}/`, this.#root);
    const where = displayUrl(url);
    const response = await this.#send(url, { method: "GET" });
    // Unknown user, or a dashboard without the user endpoint (Django's HTML 404 page then).
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      this.#logger.debug({ userRef: ref }, "dashboard knows no such user");
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    const check = checkUser(await this.#readJson(response, where));
    if (!check.ok) {
      throw new ProtocolError(`dashboard answered a malformed user at ${where}: ${check.reason}`);
    }
    return check.user;
  }

  async postStatusNote(note: StatusNote): Promise<void> {
    const resource = Number(note.resourceId);
    if (!/^\d+$/.test(note.resourceId) || !Number.isSafeInteger(resource)) {
      throw new ConfigError(
        `resource id ${JSON.stringify(note.resourceId)} is not a dashboard resource number`,
      );
    }
    const url = new URL("api/resource_status/", this.#root);
    const where = displayUrl(url);
    const response = await this.#send(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ resource, type: note.type, title: note.title, content: note.content }),
      // A POST that follows a redirect turns into a GET (and may leave the dashboard's origin):
      // a redirect is reported instead.
      redirect: "manual",
    });
    const text = await response.text().catch(() => "");
    if (response.ok) {
      this.#logger.debug({ resourceId: note.resourceId, type: note.type }, "status note posted");
      return;
    }
    if (response.status === 400) {
      const errors = this.#fieldErrors(text);
      throw new ProtocolError(
        `dashboard refused the status note for resource ${resource} at ${where}: ${errors ?? "no details given"}`,
      );
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    // 3xx, 404 (no such endpoint), 405, 415…: asking again will not change the answer.
    throw new ProtocolError(`dashboard does not take status notes: ${response.status} at ${where}`);
  }

  /** Every raw entry of the bookings list, following `next` links across pages. */
  async #fetchAllEntries(): Promise<unknown[]> {
    const entries: unknown[] = [];
    const visited = new Set<string>();
    const idsOnEarlierPages = new Set<string>();
    let firstCount: number | undefined;
    let url: URL | null = this.#bookingsUrl;
    while (url !== null) {
      if (visited.has(url.href)) {
        throw new ProtocolError(`dashboard pagination loops back to ${displayUrl(url)}`);
      }
      if (visited.size >= this.#maxPages) {
        throw new ProtocolError(
          `dashboard bookings span more than ${this.#maxPages} pages at ${displayUrl(this.#bookingsUrl)}`,
        );
      }
      visited.add(url.href);
      const page: ListPage = await this.#getPage(url);
      if (visited.size === 1) {
        firstCount = page.count;
      } else {
        this.#checkConsistentPage(page, firstCount, idsOnEarlierPages);
      }
      for (const entry of page.results) {
        const id = rawBookingId(entry);
        if (id !== null) idsOnEarlierPages.add(id);
      }
      entries.push(...page.results);
      url = page.next === null ? null : this.#nextPageUrl(page.next, url);
    }
    if (visited.size > 1 && firstCount !== undefined && entries.length !== firstCount) {
      throw changedWhilePaging();
    }
    return entries;
  }

  /**
   * Pages are numbered, so a booking added or deleted while we walk them shifts the rest: one
   * booking would show twice and another not at all. A missing booking reads as a cancellation
   * downstream, so a listing that shifted is refused and the next poll tries again.
   */
  #checkConsistentPage(
    page: ListPage,
    firstCount: number | undefined,
    idsOnEarlierPages: ReadonlySet<string>,
  ): void {
    if (page.count !== firstCount) throw changedWhilePaging();
    for (const entry of page.results) {
      const id = rawBookingId(entry);
      if (id !== null && idsOnEarlierPages.has(id)) throw changedWhilePaging();
    }
  }

  /**
   * DRF builds `next` from the scheme and Host the request reached it with, which behind a reverse
   * proxy may be an internal name or plain http. The token must only ever go to the configured
   * dashboard, so the link's path and query are kept and its origin replaced by ours.
   */
  #nextPageUrl(next: string, current: URL): URL {
    let link: URL;
    try {
      link = new URL(next, current);
    } catch {
      throw new ProtocolError(`dashboard sent an invalid next-page link at ${displayUrl(current)}`);
    }
    const rebased = new URL(`${link.pathname}${link.search}`, this.#bookingsUrl.origin);
    if (link.origin !== rebased.origin) {
      this.#logger.debug(
        { next: displayUrl(link), following: displayUrl(rebased) },
        "next-page link names another origin; following it on the configured dashboard",
      );
    }
    return rebased;
  }

  async #getPage(url: URL): Promise<ListPage> {
    const where = displayUrl(url);
    const response = await this.#send(url, { method: "GET" });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    const body = await this.#readJson(response, where);
    const page = listPageSchema.safeParse(body);
    if (!page.success) {
      throw new ProtocolError(
        `dashboard answered neither a list nor a page of bookings at ${where}`,
      );
    }
    return page.data;
  }

  /**
   * One request with the token, within the request timeout (which also bounds reading the body).
   * A dashboard out of reach is a TransientError and a refused token an AuthError; any other
   * answer is the caller's to judge.
   */
  async #send(
    url: URL,
    init: RequestInit & { headers?: Record<string, string> },
  ): Promise<Response> {
    const where = displayUrl(url);
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        headers: {
          ...init.headers,
          Authorization: `Token ${this.#token.reveal()}`,
          Accept: "application/json",
        },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new TransientError(`dashboard unreachable at ${where}: ${this.#describe(error)}`);
    }
    if (response.status === 401 || response.status === 403) {
      const detail = this.#authDetail(await response.text().catch(() => ""));
      throw new AuthError(
        `dashboard refused the token (${response.status}) at ${where}${detail ? `: ${detail}` : ""}`,
      );
    }
    return response;
  }

  async #readJson(response: Response, where: string): Promise<unknown> {
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new TransientError(`dashboard answer cut short at ${where}: ${this.#describe(error)}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      const type = response.headers.get("content-type") ?? "no content type";
      throw new ProtocolError(`dashboard answered non-JSON (${type}) at ${where}`);
    }
  }

  /**
   * DRF's 400 body, `{"field": ["message", …], …}`, as one line. These messages describe the
   * request, not the dashboard's secrets; they are cut short all the same, and dropped if they
   * quote the token.
   */
  #fieldErrors(text: string): string | null {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return null;
    }
    if (typeof body !== "object" || body === null) return null;
    const parts = Object.entries(body).map(([field, messages]) => {
      const list = Array.isArray(messages) ? messages : [messages];
      const said = list.map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ");
      return field === "detail" || field === "non_field_errors" ? said : `${field}: ${said}`;
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is dropped
    const line = parts.join("; ").replace(/[\u0000-\u001f\u007f]+/g, " ");
    if (line === "" || line.includes(this.#token.reveal())) return null;
    return line.length > MAX_FIELD_ERRORS ? `${line.slice(0, MAX_FIELD_ERRORS - 1)}…` : line;
  }

  /** DRF's `{"detail": …}` says whether the token was missing or wrong; worth keeping. */
  #authDetail(text: string): string | null {
    let detail: unknown;
    try {
      detail = (JSON.parse(text) as { detail?: unknown })?.detail;
    } catch {
      return null;
    }
    if (typeof detail !== "string") return null;
    const short = detail.slice(0, 200);
    // Never echo a message that quotes the token back.
    return short.includes(this.#token.reveal()) ? null : short;
  }

  #describe(error: unknown): string {
    if (error instanceof Error && error.name === "TimeoutError") {
      return `no answer within ${this.#timeoutMs / 1000} s`;
    }
    // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, …) in `cause`.
    const cause = error instanceof Error ? error.cause : undefined;
    const message = error instanceof Error ? error.message : String(error);
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return code ? `${message} (${code})` : `${message} (${cause.message})`;
    }
    return message;
  }
}

/** The dashboard URL as a base that relative paths extend rather than replace. */
function dashboardRoot(url: string): URL {
  let root: URL;
  try {
    root = new URL(url);
  } catch {
    throw new ConfigError(`dashboard URL is not a valid URL: ${JSON.stringify(url)}`);
  }
  if (root.protocol !== "http:" && root.protocol !== "https:") {
    throw new ConfigError(`dashboard URL must be http or https: ${displayUrl(root)}`);
  }
  if (root.username !== "" || root.password !== "") {
    throw new ConfigError("dashboard URL must not carry credentials; use the token setting");
  }
  root.search = "";
  root.hash = "";
  if (!root.pathname.endsWith("/")) root.pathname = `${root.pathname}/`;
  return root;
}

/** A URL fit for messages: never with user info. */
function displayUrl(url: URL): string {
  const copy = new URL(url);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

function changedWhilePaging(): TransientError {
  return new TransientError("dashboard bookings changed while their pages were read; try again");
}
