/**
 * The Pharos dashboard's API (reference/dashboard-apis.md §1), always with
 * `Authorization: Token <token>`:
 * - `GET api/bookings/`, answered by Django REST Framework as a plain list or, where a deployment
 *   turned pagination on, as pages linked by `next`;
 * - `POST api/resource_status/`, the lab's status notes on a resource;
 * - `GET api/users/<id or name>/`, an extension: the 2017 dashboard had no user endpoint, later
 *   ones expose the booking user with their e-mail address and SSH key. A dashboard without it
 *   answers 404, which reads as "user unknown".
 *
 * Failures are classed where they are met. Transient (tried again by every read, with backoff,
 * within a bounded time; then left to the caller's own retry): no answer, a timeout, 5xx, 408,
 * 429, a body cut short or garbled (truncated JSON). Final: a refused token (AuthError), an HTML
 * page or a 404 where the API should be — the dashboard URL is wrong (ConfigError, with a hint;
 * a page answered 200 is asked for again first, in case it was a login page passing by) — and
 * JSON of the wrong shape (ProtocolError).
 */
import type { InventoryHost } from "../../config/types";
import type { DashboardBooking } from "../../domain/booking";
import { AuthError, ConfigError, ProtocolError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import type { BookingPage, Dashboard, DashboardUser, StatusNote } from "../../ports/dashboard";
import type { Secret } from "../../secret";
import {
  DEFAULT_READ_RETRY,
  PageInsteadOfJsonError,
  type ReadRetryPolicy,
  readWithRetry,
} from "../read-retry";
import { bookingEntryPages } from "./booking-pages";
import { checkBooking, type ListPage, listPageSchema, rawResourceId } from "./booking-schema";
import { dashboardRoot, displayUrl } from "./urls";
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
  /** How reads are tried again (default: 4 attempts within 20 s, see read-retry.ts). */
  retry?: Partial<ReadRetryPolicy>;
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
  readonly #retry: ReadRetryPolicy;
  readonly #logger: Logger;

  constructor(options: PharosDashboardOptions, logger: Logger) {
    this.#token = options.token;
    this.#root = dashboardRoot(options.url);
    this.#bookingsUrl = new URL("api/bookings/", this.#root);
    this.#hostsByResource = new Map(options.inventory.hosts.map((h) => [h.resourceId, h.name]));
    this.#timeoutMs = (options.requestTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    this.#maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
    this.#retry = { ...DEFAULT_READ_RETRY, ...options.retry };
    this.#logger = logger.child({ component: "pharos-dashboard" });
  }

  async listBookings(): Promise<DashboardBooking[]> {
    let reading = 0;
    let bookings: DashboardBooking[] = [];
    for await (const page of this.listBookingPages()) {
      if (page.reading !== reading) {
        reading = page.reading;
        bookings = [];
      }
      for (const booking of page.bookings) bookings.push(booking);
    }
    return bookings;
  }

  async *listBookingPages(): AsyncGenerator<BookingPage, void, undefined> {
    const pages = bookingEntryPages({
      bookingsUrl: this.#bookingsUrl,
      maxPages: this.#maxPages,
      getPage: (url, first) => this.#getPage(url, first),
      logger: this.#logger,
    });
    let reading = 0;
    // Per reading: the ids kept so far (a repeat is skipped), and what was received and kept.
    let seen = new Set<string>();
    let received = 0;
    for await (const page of pages) {
      if (page.reading !== reading) {
        reading = page.reading;
        seen = new Set();
        received = 0;
      }
      received += page.entries.length;
      yield { reading, bookings: this.#keep(page.entries, seen) };
    }
    this.#logger.debug({ received, kept: seen.size }, "listed dashboard bookings");
  }

  /** The entries of one page that are this lab's, well formed and not seen before, mapped. */
  #keep(entries: readonly unknown[], seen: Set<string>): DashboardBooking[] {
    const bookings: DashboardBooking[] = [];
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
    return this.#get(url, async (response, where) => {
      // Unknown user (DRF's JSON 404), or a dashboard without the user endpoint (Django's HTML
      // 404 page): both mean "no user information" (docs/dashboard.md).
      if (response.status === 404) {
        await response.body?.cancel().catch(() => undefined);
        this.#logger.debug({ userRef: ref }, "dashboard knows no such user");
        return null;
      }
      const check = checkUser(await this.#jsonBody(response, where));
      if (!check.ok) {
        throw new ProtocolError(`dashboard answered a malformed user at ${where}: ${check.reason}`);
      }
      return check.user;
    });
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
    // Sent once: a note whose answer was lost (a TransientError) is posted again by the
    // workflow's Retry without looking first. That is safe because a note is only a note: a
    // duplicate says the same thing twice on the resource's page and changes nothing else.
    const response = await this.#send(
      url,
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          resource,
          type: note.type,
          title: note.title,
          content: note.content,
        }),
        // A POST that follows a redirect turns into a GET (and may leave the dashboard's origin):
        // a redirect is reported instead.
        redirect: "manual",
      },
      this.#timeoutMs,
    );
    const text = await response.text().catch(() => "");
    if (response.ok && !looksLikeHtml(response, text)) {
      this.#logger.debug({ resourceId: note.resourceId, type: note.type }, "status note posted");
      return;
    }
    if (response.status === 400) {
      const errors = this.#fieldErrors(text);
      throw new ProtocolError(
        `dashboard refused the status note for resource ${resource} at ${where}: ${errors ?? "no details given"}`,
      );
    }
    if (isTransientStatus(response.status)) {
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    if (looksLikeHtml(response, text)) throw this.#htmlAnswer(response.status, where);
    // 3xx, 404 (no such endpoint), 405, 415…: asking again will not change the answer.
    throw new ProtocolError(`dashboard does not take status notes: ${response.status} at ${where}`);
  }

  /** A page of bookings; "gone" when a later page no longer exists (the listing shrank). */
  async #getPage(url: URL, first: boolean): Promise<ListPage | "gone"> {
    return this.#get(url, async (response, where) => {
      if (response.status === 404 && !first) {
        // DRF's {"detail": "Invalid page."}: fewer pages than when the walk began.
        const text = await this.#text(response, where);
        if (!looksLikeHtml(response, text)) return "gone";
        throw this.#htmlAnswer(response.status, where);
      }
      const page = listPageSchema.safeParse(await this.#jsonBody(response, where));
      if (!page.success) {
        throw new ProtocolError(
          `dashboard answered neither a list nor a page of bookings at ${where}`,
        );
      }
      return page.data;
    });
  }

  /**
   * A GET, judged by `judge`, tried again while it fails with a TransientError (read-retry.ts).
   * The judge reads the body within the same attempt, so a cut-short body is tried again too.
   */
  async #get<T>(url: URL, judge: (response: Response, where: string) => Promise<T>): Promise<T> {
    const where = displayUrl(url);
    return readWithRetry(
      async (timeoutMs) => judge(await this.#send(url, { method: "GET" }, timeoutMs), where),
      {
        policy: this.#retry,
        requestTimeoutMs: this.#timeoutMs,
        onRetry: (error, attemptNumber) =>
          this.#logger.debug({ url: where, attemptNumber, err: error.message }, "dashboard retry"),
      },
    );
  }

  /**
   * The JSON body of an answer that should carry one; any other answer becomes its error:
   * transient for a 5xx/408/429 or a body cut short or garbled, a ConfigError for an HTML page or
   * a 404 (the API is not where the URL says), a ProtocolError for any other status.
   */
  async #jsonBody(response: Response, where: string): Promise<unknown> {
    const text = await this.#text(response, where);
    if (isTransientStatus(response.status)) {
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    if (looksLikeHtml(response, text)) throw this.#htmlAnswer(response.status, where);
    if (response.status === 404) {
      throw new ConfigError(`dashboard answered 404 at ${where}: ${this.#urlHint()}`);
    }
    if (!response.ok) throw new ProtocolError(`dashboard answered ${response.status} at ${where}`);
    try {
      return JSON.parse(text);
    } catch {
      const type = response.headers.get("content-type") ?? "no content type";
      throw new TransientError(
        `dashboard answered a garbled body (${type}, ${text.length} characters) at ${where}: cut short on the way?`,
      );
    }
  }

  async #text(response: Response, where: string): Promise<string> {
    try {
      return await response.text();
    } catch (error) {
      throw new TransientError(`dashboard answer cut short at ${where}: ${this.#describe(error)}`);
    }
  }

  /**
   * An HTML page where the API should answer JSON: the URL leads somewhere else. Answered with
   * 200 it may also be a login page or portal passing by, so a read asks again (within its
   * bounds) before it takes it for the configuration error it most likely is.
   */
  #htmlAnswer(status: number, where: string): ConfigError {
    const message = `dashboard answered an HTML page (${status}) where JSON was expected at ${where}: ${this.#urlHint()}`;
    return status >= 200 && status < 300
      ? new PageInsteadOfJsonError(message)
      : new ConfigError(message);
  }

  #urlHint(): string {
    return (
      "is the dashboard URL right? Expected the dashboard's root (e.g. https://labs.opnfv.org/), " +
      `with api/bookings/ under it; configured: ${displayUrl(this.#root)}`
    );
  }

  /**
   * One request with the token, within the request timeout (which also bounds reading the body).
   * A dashboard out of reach is a TransientError and a refused token an AuthError; any other
   * answer is the caller's to judge.
   */
  async #send(
    url: URL,
    init: RequestInit & { headers?: Record<string, string> },
    timeoutMs: number,
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
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new TransientError(
        `dashboard unreachable at ${where}: ${this.#describe(error, timeoutMs)}`,
      );
    }
    if (response.status === 401 || response.status === 403) {
      const detail = this.#authDetail(await response.text().catch(() => ""));
      throw new AuthError(
        `dashboard refused the token (${response.status}) at ${where}${detail ? `: ${detail}` : ""}`,
      );
    }
    return response;
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

  #describe(error: unknown, timeoutMs = this.#timeoutMs): string {
    if (error instanceof Error && error.name === "TimeoutError") {
      return `no answer within ${timeoutMs / 1000} s`;
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

/** Statuses a later attempt may not get: the server or something in front of it is overloaded. */
function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Django's and web servers' own pages are HTML; JSON never starts with "<". */
function looksLikeHtml(response: Response, text: string): boolean {
  return /\bhtml\b/i.test(response.headers.get("content-type") ?? "") || /^\s*</.test(text);
}
