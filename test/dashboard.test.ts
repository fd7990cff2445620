import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { PharosDashboard } from "../lib/adapters/pharos/dashboard-client";
import type { ReadRetryPolicy } from "../lib/adapters/read-retry";
import { AuthError, ConfigError, ProtocolError, TransientError } from "../lib/errors";
import { type Logger, silentLogger } from "../lib/log";
import { Secret } from "../lib/secret";
import {
  bookingAt,
  type DashboardSim,
  type DashboardSimOptions,
  drfDateTime,
  type SimUser,
  startDashboardSim,
} from "../sim/dashboard-sim";

const TOKEN = "lab-token-7f3a9c";
const inventory = {
  file: "inventory.yaml",
  hosts: [
    { resourceId: "1", name: "pod1", address: null, power: null },
    { resourceId: "2", name: "pod2", address: null, power: null },
  ],
};

const t0 = new Date("2017-06-01T14:00:00Z");
const hours = (n: number): Date => new Date(t0.getTime() + n * 3_600_000);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function sim(options: DashboardSimOptions = {}): Promise<DashboardSim> {
  const started = await startDashboardSim({ token: TOKEN, ...options });
  cleanups.push(() => started.close());
  return started;
}

type LogLine = { level: number; msg: string; bookingId?: string | null; reason?: string } & Record<
  string,
  unknown
>;

function captureLogs(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

const WARN = 40;
const DEBUG = 20;

/** Reads are tried again quickly here; the attempts and their budget are the shipped ones. */
const QUICK_RETRY = { firstDelayMs: 5, maxDelayMs: 20 };

function client(
  url: string,
  options: {
    token?: string;
    timeout?: number;
    maxPages?: number;
    logger?: Logger;
    retry?: Partial<ReadRetryPolicy>;
  } = {},
): PharosDashboard {
  return new PharosDashboard(
    {
      url,
      token: new Secret(options.token ?? TOKEN),
      inventory,
      requestTimeoutSeconds: options.timeout,
      maxPages: options.maxPages,
      retry: { ...QUICK_RETRY, ...options.retry },
    },
    options.logger ?? silentLogger,
  );
}

/** A bare HTTP server for answers the simulator would never give. */
async function rawServer(
  handler: (req: IncomingMessage, res: ServerResponse, base: string) => void,
): Promise<string> {
  let base = "";
  const server = createServer((req, res) => handler(req, res, base));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return base;
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(body));
}

describe("PharosDashboard.listBookings", () => {
  it("reads a plain list and maps it through the inventory, always sending the token", async () => {
    const dashboard = await sim({
      bookings: [
        bookingAt({
          id: 10,
          resource_id: 1,
          start: t0,
          end: hours(4),
          installer_name: "Fuel",
          scenario_name: "os-nosdn-nofeature-noha",
          purpose: "testing Fuel",
          user: 7,
        }),
        bookingAt({ id: 11, resource_id: 2, start: hours(1), end: hours(2) }),
      ],
    });

    const bookings = await client(dashboard.url).listBookings();

    expect(bookings).toEqual([
      {
        id: "10",
        resourceId: "1",
        hostName: "pod1",
        start: t0,
        end: hours(4),
        installer: "Fuel",
        scenario: "os-nosdn-nofeature-noha",
        purpose: "testing Fuel",
        user: "7",
      },
      {
        id: "11",
        resourceId: "2",
        hostName: "pod2",
        start: hours(1),
        end: hours(2),
        installer: null,
        scenario: null,
        purpose: "",
        user: null,
      },
    ]);
    expect(dashboard.requests).toEqual([
      {
        method: "GET",
        path: "/api/bookings/",
        authorization: true,
        authenticated: true,
        status: 200,
      },
    ]);
  });

  it.each(["", "/"])("joins the bookings path onto a dashboard URL ending in %j", async (end) => {
    const dashboard = await sim();
    await client(`${dashboard.url}${end}`).listBookings();
    expect(dashboard.requests.map((r) => r.path)).toEqual(["/api/bookings/"]);
  });

  it("sends the token even where the dashboard lets anonymous users read", async () => {
    const dashboard = await sim({ anonymousRead: true });
    await client(dashboard.url).listBookings();
    expect(dashboard.requests[0]).toMatchObject({ authorization: true, authenticated: true });
  });

  it("follows DRF pagination across several pages", async () => {
    const dashboard = await sim({
      pageSize: 2,
      bookings: [1, 2, 3, 4, 5].map((id) =>
        bookingAt({ id, resource_id: (id % 2) + 1, start: hours(id), end: hours(id + 1) }),
      ),
    });

    const bookings = await client(dashboard.url).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3", "4", "5"]);
    expect(dashboard.requests.map((r) => r.path)).toEqual([
      "/api/bookings/",
      "/api/bookings/?page=2",
      "/api/bookings/?page=3",
    ]);
    expect(dashboard.requests.every((r) => r.authenticated)).toBe(true);
  });

  it("parses Z, +00:00, -05:00 and fractional-second times to the right instants", async () => {
    const raw = (id: number, start: string, end: string) => ({
      id,
      resource_id: 1,
      start,
      end,
      installer_name: null,
      scenario_name: null,
      purpose: "",
    });
    const dashboard = await sim({
      bookings: [
        raw(1, "2017-06-01T14:00:00Z", "2017-06-01T15:00:00Z"),
        raw(2, "2017-06-01T14:00:00+00:00", "2017-06-01T15:00:00+00:00"),
        raw(3, "2017-06-01T09:00:00-05:00", "2017-06-01T10:00:00-05:00"),
        raw(4, "2017-06-01T14:00:00.250000Z", "2017-06-01T16:30:00.5+02:00"),
      ],
    });

    const bookings = await client(dashboard.url).listBookings();

    expect(bookings.map((b) => [b.start.toISOString(), b.end.toISOString()])).toEqual([
      ["2017-06-01T14:00:00.000Z", "2017-06-01T15:00:00.000Z"],
      ["2017-06-01T14:00:00.000Z", "2017-06-01T15:00:00.000Z"],
      ["2017-06-01T14:00:00.000Z", "2017-06-01T15:00:00.000Z"],
      ["2017-06-01T14:00:00.250Z", "2017-06-01T14:30:00.500Z"],
    ]);
  });

  it("treats null, missing and empty installer and scenario as none, and missing purpose as empty", async () => {
    const times = { start: "2017-06-01T14:00:00Z", end: "2017-06-01T15:00:00Z" };
    const dashboard = await sim({
      bookings: [
        {
          id: 1,
          resource_id: 1,
          ...times,
          installer_name: null,
          scenario_name: null,
          purpose: null,
        },
        { id: 2, resource_id: 1, ...times },
        { id: 3, resource_id: 2, ...times, installer_name: "", scenario_name: "  ", purpose: "x" },
        { id: 4, resource_id: "2", ...times, installer_name: "Joid", scenario_name: "k8s" },
      ],
    });

    const bookings = await client(dashboard.url).listBookings();

    expect(bookings.map((b) => [b.id, b.resourceId, b.installer, b.scenario, b.purpose])).toEqual([
      ["1", "1", null, null, ""],
      ["2", "1", null, null, ""],
      ["3", "2", null, null, "x"],
      ["4", "2", "Joid", "k8s", ""],
    ]);
  });

  it("ignores bookings of resources not in the inventory, without warning about them", async () => {
    const { logger, lines } = captureLogs();
    const dashboard = await sim({
      bookings: [
        bookingAt({ id: 1, resource_id: 1, start: t0, end: hours(1) }),
        bookingAt({ id: 2, resource_id: 99, start: t0, end: hours(1) }),
        // Another lab's broken booking is that lab's business.
        { id: 3, resource_id: 98, start: "tomorrow", end: null },
      ],
    });

    const bookings = await client(dashboard.url, { logger }).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1"]);
    expect(lines.filter((l) => l.level === WARN)).toEqual([]);
    expect(
      lines.filter((l) => l.level === DEBUG && l.msg.includes("not in the inventory")),
    ).toHaveLength(2);
  });

  it("skips and logs each malformed booking while the good ones still come through", async () => {
    const { logger, lines } = captureLogs();
    const good = (id: number) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) });
    const dashboard = await sim({
      bookings: [
        good(1),
        { ...good(20), start: "tomorrow" },
        { id: 21, start: "2017-06-01T14:00:00Z", end: "2017-06-01T15:00:00Z", purpose: "" },
        { ...good(0), id: "abc" },
        { ...good(23), start: drfDateTime(hours(2)), end: drfDateTime(hours(1)) },
        { ...good(24), end: "2017-06-01T15:00:00" },
        "not a booking",
        null,
        good(2),
      ],
    });

    const bookings = await client(dashboard.url, { logger }).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2"]);
    const warnings = lines.filter((l) => l.level === WARN);
    expect(warnings.map((w) => w.bookingId)).toEqual(["20", "21", "abc", "23", "24", null, null]);
    expect(warnings.every((w) => w.msg === "skipping malformed dashboard booking")).toBe(true);
    const reasons = warnings.map((w) => w.reason ?? "");
    expect(reasons[0]).toMatch(/^start: /);
    expect(reasons[1]).toMatch(/^resource_id: /);
    expect(reasons[2]).toMatch(/^id: /);
    expect(reasons[3]).toBe("end: end is not after start");
    expect(reasons[4]).toMatch(/^end: .*time zone/);
    expect(reasons[5]).toMatch(/object/);
  });

  it("keeps the first of two entries with the same id", async () => {
    const { logger, lines } = captureLogs();
    const dashboard = await sim({
      bookings: [
        bookingAt({ id: 5, resource_id: 1, start: t0, end: hours(1), purpose: "first" }),
        bookingAt({ id: 5, resource_id: 2, start: t0, end: hours(1), purpose: "second" }),
      ],
    });
    const bookings = await client(dashboard.url, { logger }).listBookings();
    expect(bookings.map((b) => b.purpose)).toEqual(["first"]);
    expect(lines.some((l) => l.level === WARN && l.bookingId === "5")).toBe(true);
  });

  it.each([403, 401] as const)(
    "raises AuthError on a %i for a bad token, without the token in the message",
    async (status) => {
      const dashboard = await sim({ authFailureStatus: status });
      const wrong = "wrong-token-4b1d2e";
      const error = await client(dashboard.url, { token: wrong })
        .listBookings()
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(AuthError);
      const message = (error as Error).message;
      expect(message).toContain(`dashboard refused the token (${status}) at ${dashboard.url}/`);
      expect(message).toContain("Invalid token.");
      expect(message).not.toContain(wrong);
      expect(message).not.toContain(TOKEN);
      expect(dashboard.requests[0]).toMatchObject({ authorization: true, status });
    },
  );

  it("raises AuthError on an empty-bodied 403", async () => {
    const dashboard = await sim();
    dashboard.failNext(1, 403);
    await expect(client(dashboard.url).listBookings()).rejects.toThrow(
      new AuthError(`dashboard refused the token (403) at ${dashboard.url}/api/bookings/`),
    );
  });

  it.each([500, 502, 503, 408, 429])(
    "raises TransientError on %i once its attempts are spent",
    async (status) => {
      const dashboard = await sim();
      dashboard.failNext(10, status);
      const error = await client(dashboard.url)
        .listBookings()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).toBe(
        `dashboard answered ${status} at ${dashboard.url}/api/bookings/`,
      );
      // Four attempts in all, then the caller (the next poll, the workflow's Retry) decides.
      expect(dashboard.requests).toHaveLength(4);
    },
  );

  it("raises TransientError when the dashboard is down or does not answer in time", async () => {
    const dashboard = await sim();
    dashboard.hangNext(2);
    await expect(
      client(dashboard.url, { timeout: 0.2, retry: { attempts: 2 } }).listBookings(),
    ).rejects.toThrow(/no answer within 0.2 s/);
    expect(dashboard.requests).toHaveLength(2);
    const url = dashboard.url;
    await dashboard.close();
    const error = await client(url)
      .listBookings()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/unreachable .*ECONNREFUSED/);
  });

  it("raises ProtocolError, without asking again, on JSON of the wrong shape", async () => {
    const dashboard = await sim();
    dashboard.failNext(1, 200, { contentType: "application/json", body: '{"bookings": []}' });
    dashboard.failNext(1, 200, {
      contentType: "application/json",
      body: '{"count": 1, "next": null, "results": "nope"}',
    });
    const dashboardClient = client(dashboard.url);

    await expect(dashboardClient.listBookings()).rejects.toThrow(
      new ProtocolError(
        `dashboard answered neither a list nor a page of bookings at ${dashboard.url}/api/bookings/`,
      ),
    );
    await expect(dashboardClient.listBookings()).rejects.toBeInstanceOf(ProtocolError);
    expect(dashboard.requests).toHaveLength(2);
  });

  it("stops after maxPages pages", async () => {
    const dashboard = await sim({
      pageSize: 1,
      bookings: [1, 2, 3].map((id) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) })),
    });
    await expect(client(dashboard.url, { maxPages: 2 }).listBookings()).rejects.toThrow(
      /more than 2 pages/,
    );
    expect(dashboard.requests).toHaveLength(2);
  });

  it("refuses a next link that loops back", async () => {
    const base = await rawServer((req, res, root) =>
      sendJson(res, {
        count: 2,
        next: `${root}${req.url === "/api/bookings/" ? "/api/bookings/?page=2" : "/api/bookings/"}`,
        previous: null,
        results: [],
      }),
    );
    await expect(client(base).listBookings()).rejects.toThrow(
      new ProtocolError(`dashboard pagination loops back to ${base}/api/bookings/`),
    );
  });

  it("follows next links on the configured dashboard only, whatever host they name", async () => {
    const seen: Array<{ path?: string; auth?: string }> = [];
    const base = await rawServer((req, res) => {
      seen.push({ path: req.url, auth: req.headers.authorization });
      const first = req.url === "/api/bookings/";
      sendJson(res, {
        count: 2,
        // What DRF builds behind a proxy that does not pass the Host on.
        next: first ? "http://internal.example:8000/api/bookings/?page=2" : null,
        previous: null,
        results: [bookingAt({ id: first ? 1 : 2, resource_id: 1, start: t0, end: hours(1) })],
      });
    });

    const bookings = await client(base).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2"]);
    expect(seen).toEqual([
      { path: "/api/bookings/", auth: `Token ${TOKEN}` },
      { path: "/api/bookings/?page=2", auth: `Token ${TOKEN}` },
    ]);
  });

  it("reads a listing whose pages shifted under it again from the start", async () => {
    const dashboard = await sim({
      pageSize: 2,
      bookings: [1, 2, 3, 4, 5].map((id) =>
        bookingAt({ id, resource_id: 1, start: t0, end: hours(1) }),
      ),
    });
    let cancelled = false;
    dashboard.onRequest(({ path }) => {
      if (path.endsWith("page=2") && !cancelled) {
        cancelled = true;
        dashboard.removeBooking(1); // booking 3 moves to page 1 and would be missed
      }
    });
    const { logger, lines } = captureLogs();

    const bookings = await client(dashboard.url, { logger }).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["2", "3", "4", "5"]);
    // The count changed on page 2: the listing is read again, whole.
    expect(dashboard.requests.map((r) => r.path)).toEqual([
      "/api/bookings/",
      "/api/bookings/?page=2",
      "/api/bookings/",
      "/api/bookings/?page=2",
    ]);
    expect(lines.some((l) => l.level === WARN && /read again/.test(l.msg))).toBe(true);
  });

  it("reads a listing that shrank past a page (DRF's Invalid page) again from the start", async () => {
    const dashboard = await sim({
      pageSize: 2,
      bookings: [1, 2, 3, 4, 5].map((id) =>
        bookingAt({ id, resource_id: 1, start: t0, end: hours(1) }),
      ),
    });
    let cancelled = false;
    dashboard.onRequest(({ path }) => {
      if (path.endsWith("page=3") && !cancelled) {
        cancelled = true;
        dashboard.removeBooking(5); // two pages are left: page 3 answers 404 "Invalid page."
      }
    });

    const bookings = await client(dashboard.url).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3", "4"]);
    expect(dashboard.requests.map((r) => `${r.path} ${r.status}`)).toEqual([
      "/api/bookings/ 200",
      "/api/bookings/?page=2 200",
      "/api/bookings/?page=3 404",
      "/api/bookings/ 200",
      "/api/bookings/?page=2 200",
    ]);
  });

  it("gives up with TransientError on a listing that shifts every time it is read", async () => {
    const dashboard = await sim({
      pageSize: 2,
      bookings: [1, 2, 3, 4, 5, 6, 7, 8].map((id) =>
        bookingAt({ id, resource_id: 1, start: t0, end: hours(1) }),
      ),
    });
    let next = 1;
    dashboard.onRequest(({ path }) => {
      if (path.endsWith("page=2")) dashboard.removeBooking(next++);
    });

    await expect(client(dashboard.url).listBookings()).rejects.toThrow(
      new TransientError(
        `dashboard bookings changed while their pages were read, 3 times running, at ${dashboard.url}/api/bookings/; the next poll reads them again`,
      ),
    );
    expect(dashboard.requests).toHaveLength(6);
  });

  it("reads again when the pages held fewer bookings than their count said", async () => {
    // Every page gives the same count, but a booking fell between two of them.
    let readings = 0;
    const base = await rawServer((req, res, root) => {
      const page2 = req.url === "/api/bookings/?page=2";
      if (!page2) readings += 1;
      const ids = page2 ? (readings === 1 ? [3] : [3, 4]) : [1, 2];
      sendJson(res, {
        count: 4,
        next: page2 ? null : `${root}/api/bookings/?page=2`,
        previous: null,
        results: ids.map((id) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) })),
      });
    });

    const bookings = await client(base).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3", "4"]);
    expect(readings).toBe(2);
  });

  it("skips a booking repeated across pages with a warning, as in the plain list", async () => {
    // A queryset that yields one booking twice (a join): DRF counts it twice too, so the pages
    // agree with each other and nothing changed. Issue 10: this stopped every poll.
    const booking = (id: number) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) });
    const dashboard = await sim({
      pageSize: 2,
      bookings: [booking(1), booking(2), booking(2), booking(3)],
    });
    const { logger, lines } = captureLogs();

    const bookings = await client(dashboard.url, { logger }).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3"]);
    expect(lines.some((l) => l.level === WARN && l.bookingId === "2")).toBe(true);
    // Read twice: the same repeat both times shows that no other booking was pushed off a page.
    expect(dashboard.requests.map((r) => r.path)).toEqual([
      "/api/bookings/",
      "/api/bookings/?page=2",
      "/api/bookings/",
      "/api/bookings/?page=2",
    ]);
  });

  it("reads again when a repeat across pages hid another booking (pages in no stable order)", async () => {
    // An unordered queryset: each page is its own query, and the database may return the rows
    // in another order each time. Booking 4 is missing from the first reading, not cancelled.
    let readings = 0;
    const base = await rawServer((req, res, root) => {
      const page2 = req.url === "/api/bookings/?page=2";
      if (!page2) readings += 1;
      const ids = page2 ? (readings === 1 ? [2, 3] : [3, 4]) : [1, 2];
      sendJson(res, {
        count: 4,
        next: page2 ? null : `${root}/api/bookings/?page=2`,
        previous: null,
        results: ids.map((id) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) })),
      });
    });

    const bookings = await client(base).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3", "4"]);
    expect(readings).toBe(2);
  });

  it("follows next links under the configured path when DRF names another (a proxy's prefix)", async () => {
    // Behind a proxy that strips /dashboard, Django sees /api/bookings/ and links to that.
    const seen: string[] = [];
    const base = await rawServer((req, res) => {
      seen.push(req.url ?? "");
      if (!req.url?.startsWith("/dashboard/")) {
        res.statusCode = 404;
        res.setHeader("Content-Type", "text/html");
        res.end("<html><body><h1>Not Found</h1></body></html>");
        return;
      }
      const first = req.url === "/dashboard/api/bookings/";
      sendJson(res, {
        count: 2,
        next: first ? "http://internal.example:8000/api/bookings/?page=2" : null,
        previous: null,
        results: [bookingAt({ id: first ? 1 : 2, resource_id: 1, start: t0, end: hours(1) })],
      });
    });

    const bookings = await client(`${base}/dashboard/`).listBookings();

    expect(bookings.map((b) => b.id)).toEqual(["1", "2"]);
    expect(seen).toEqual(["/dashboard/api/bookings/", "/dashboard/api/bookings/?page=2"]);
  });

  it("rejects a dashboard URL it cannot use", () => {
    expect(() => client("labs.opnfv.org")).toThrow(ConfigError);
    expect(() => client("ftp://labs.opnfv.org/")).toThrow(ConfigError);
    expect(() => client("https://user:pw@labs.opnfv.org/")).toThrow(ConfigError);
  });
});

const ADA_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx9Hq3yTQm2b0yLx7cZt4s8Wn5rPd6eHj2gA1iBqCE ada@laptop";

const ada: SimUser = {
  id: 7,
  username: "ada",
  email: "ada@users.test",
  first_name: "Ada",
  last_name: "Lovelace",
  ssh_public_key: ADA_KEY,
};

describe("PharosDashboard.bookingUser", () => {
  it("reads the user by id or by name, with the SSH key, sending the token", async () => {
    const dashboard = await sim({ users: [ada] });
    const dashboardClient = client(dashboard.url);
    const expected = {
      username: "ada",
      fullName: "Ada Lovelace",
      email: "ada@users.test",
      sshPublicKey: ADA_KEY,
    };

    expect(await dashboardClient.bookingUser("7")).toEqual(expected);
    expect(await dashboardClient.bookingUser("ada")).toEqual(expected);
    expect(dashboard.requests).toEqual([
      {
        method: "GET",
        path: "/api/users/7/",
        authorization: true,
        authenticated: true,
        status: 200,
      },
      {
        method: "GET",
        path: "/api/users/ada/",
        authorization: true,
        authenticated: true,
        status: 200,
      },
    ]);
  });

  it("reads a user without a key or names (a dashboard whose serializer lacks them)", async () => {
    const dashboard = await sim({ users: [{ id: 3, username: "bob", email: "bob@users.test" }] });
    expect(await client(dashboard.url).bookingUser("3")).toEqual({
      username: "bob",
      fullName: null,
      email: "bob@users.test",
      sshPublicKey: null,
    });
  });

  it("reads Django's blank fields as not given", async () => {
    const dashboard = await sim({
      users: [
        { id: 4, username: "carol", email: "", first_name: "", last_name: "", ssh_public_key: "" },
        {
          id: 5,
          username: "dave",
          email: " ",
          first_name: "Dave",
          last_name: "",
          ssh_public_key: null,
        },
      ],
    });
    const dashboardClient = client(dashboard.url);
    expect(await dashboardClient.bookingUser("4")).toEqual({
      username: "carol",
      fullName: null,
      email: null,
      sshPublicKey: null,
    });
    expect(await dashboardClient.bookingUser("5")).toEqual({
      username: "dave",
      fullName: "Dave",
      email: null,
      sshPublicKey: null,
    });
  });

  it("encodes the user reference as one path segment", async () => {
    const dashboard = await sim({
      users: [{ id: 9, username: "eve+lab@x/y?z", email: "eve@users.test" }],
    });
    const user = await client(dashboard.url).bookingUser("eve+lab@x/y?z");
    expect(user?.username).toBe("eve+lab@x/y?z");
    expect(dashboard.requests.map((r) => r.path)).toEqual(["/api/users/eve%2Blab%40x%2Fy%3Fz/"]);
  });

  it.each(["..", ".", "", "  "])(
    "answers null for %j without asking: it cannot name one user in a URL",
    async (ref) => {
      const dashboard = await sim({ users: [ada] });
      expect(await client(dashboard.url).bookingUser(ref)).toBeNull();
      expect(dashboard.requests).toEqual([]);
    },
  );

  it("sends a percent-encoded dot segment as text, not as a path step", async () => {
    const dashboard = await sim({ users: [{ id: 2, username: "%2e%2e", email: "" }] });
    expect((await client(dashboard.url).bookingUser("%2e%2e"))?.username).toBe("%2e%2e");
    expect(dashboard.requests.map((r) => r.path)).toEqual(["/api/users/%252e%252e/"]);
  });

  it("answers null for a user the dashboard does not know", async () => {
    const dashboard = await sim({ users: [ada] });
    expect(await client(dashboard.url).bookingUser("8")).toBeNull();
    expect(await client(dashboard.url).bookingUser("mallory")).toBeNull();
    expect(dashboard.requests.map((r) => r.status)).toEqual([404, 404]);
  });

  it("answers null when the dashboard has no user endpoint (Django's HTML 404)", async () => {
    const dashboard = await sim({ users: [ada] });
    dashboard.failNext(1, 404, {
      contentType: "text/html; charset=utf-8",
      body: "<!doctype html><html><body><h1>Not Found</h1></body></html>",
    });
    expect(await client(dashboard.url).bookingUser("7")).toBeNull();
  });

  it.each([403, 401] as const)("raises AuthError on %i, without the token", async (status) => {
    const dashboard = await sim({ users: [ada], authFailureStatus: status });
    const wrong = "wrong-token-77aa";
    const error = await client(dashboard.url, { token: wrong })
      .bookingUser("7")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toBe(
      `dashboard refused the token (${status}) at ${dashboard.url}/api/users/7/: Invalid token.`,
    );
    expect((error as Error).message).not.toContain(wrong);
  });

  it.each([500, 502, 503])(
    "raises TransientError on %i once its attempts are spent",
    async (status) => {
      const dashboard = await sim({ users: [ada] });
      dashboard.failNext(10, status);
      await expect(client(dashboard.url).bookingUser("7")).rejects.toThrow(
        new TransientError(`dashboard answered ${status} at ${dashboard.url}/api/users/7/`),
      );
      expect(dashboard.requests).toHaveLength(4);
    },
  );

  it("raises TransientError when the dashboard is down", async () => {
    const dashboard = await sim();
    const url = dashboard.url;
    await dashboard.close();
    await expect(client(url).bookingUser("7")).rejects.toBeInstanceOf(TransientError);
  });

  it("raises ProtocolError on a malformed user, naming fields but not their values", async () => {
    const dashboard = await sim();
    const json = { contentType: "application/json" };
    dashboard.failNext(1, 200, { ...json, body: '{"username": 5, "email": "x@y.test"}' });
    dashboard.failNext(1, 200, {
      ...json,
      body: '{"username": "ada", "email": "ada@users.test", "ssh_public_key": ["not-a-key-line"]}',
    });
    dashboard.failNext(1, 200, { ...json, body: '["ada"]' });
    const dashboardClient = client(dashboard.url);
    const where = `${dashboard.url}/api/users/7/`;

    const first = await dashboardClient.bookingUser("7").catch((e: unknown) => e);
    expect(first).toBeInstanceOf(ProtocolError);
    expect((first as Error).message).toMatch(
      new RegExp(`^dashboard answered a malformed user at ${where}: username: `),
    );
    const second = await dashboardClient.bookingUser("7").catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ProtocolError);
    expect((second as Error).message).toContain("ssh_public_key: ");
    expect((second as Error).message).not.toContain("not-a-key-line");
    await expect(dashboardClient.bookingUser("7")).rejects.toBeInstanceOf(ProtocolError);
    // A malformed answer is the dashboard's word, not a blip: it is not asked again.
    expect(dashboard.requests).toHaveLength(3);
  });
});

describe("PharosDashboard: what is read again, and what is not", () => {
  it("reads a user again after a truncated JSON answer (issue 10: CreateVpnUser failed on one)", async () => {
    const dashboard = await sim({ users: [ada] });
    dashboard.failNext(1, 200, { truncate: 40 });
    expect(await client(dashboard.url).bookingUser("7")).toEqual({
      username: "ada",
      fullName: "Ada Lovelace",
      email: "ada@users.test",
      sshPublicKey: ADA_KEY,
    });
    expect(dashboard.requests.map((r) => r.path)).toEqual(["/api/users/7/", "/api/users/7/"]);
  });

  it("reads a user again after a 5xx, a 429 or no answer in time", async () => {
    const dashboard = await sim({ users: [ada] });
    dashboard.hangNext(1);
    dashboard.failNext(1, 502);
    dashboard.failNext(1, 429, {
      contentType: "application/json",
      body: '{"detail": "slow down"}',
    });
    const user = await client(dashboard.url, { timeout: 0.3 }).bookingUser("ada");
    expect(user?.username).toBe("ada");
    expect(dashboard.requests.map((r) => r.status)).toEqual([0, 502, 429, 200]);
  });

  it("reads a page of bookings again after a truncated answer, whatever page it is", async () => {
    const dashboard = await sim({
      pageSize: 2,
      bookings: [1, 2, 3].map((id) => bookingAt({ id, resource_id: 1, start: t0, end: hours(1) })),
    });
    dashboard.onRequest(({ path }) => {
      if (path.endsWith("page=2") && dashboard.requests.length === 1) {
        dashboard.failNext(1, 200, { truncate: 25 });
      }
    });
    const bookings = await client(dashboard.url).listBookings();
    expect(bookings.map((b) => b.id)).toEqual(["1", "2", "3"]);
    expect(dashboard.requests.map((r) => r.path)).toEqual([
      "/api/bookings/",
      "/api/bookings/?page=2",
      "/api/bookings/?page=2",
    ]);
  });

  it("reads again within a bounded time: a dashboard that never answers costs one budget", async () => {
    const dashboard = await sim();
    dashboard.hangNext(100);
    const started = performance.now();
    const error = await client(dashboard.url, { timeout: 0.2, retry: { budgetMs: 500 } })
      .listBookings()
      .catch((e: unknown) => e);
    const tookMs = performance.now() - started;
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/no answer within/);
    // Attempts of 0.2 s and short waits until the 0.5 s budget is spent, never past it by much.
    expect(dashboard.requests.length).toBeGreaterThanOrEqual(2);
    expect(dashboard.requests.length).toBeLessThanOrEqual(3);
    expect(tookMs).toBeLessThan(1_000);
  });

  it("does not ask again when the token is refused", async () => {
    const dashboard = await sim({ users: [ada] });
    const error = await client(dashboard.url, { token: "wrong-token-5c5c" })
      .bookingUser("7")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(dashboard.requests).toHaveLength(1);
  });

  it("names a wrong dashboard path (Django's HTML 404) a configuration error, with a hint, asking once", async () => {
    const dashboard = await sim({
      basePath: "/dashboard",
      bookings: [bookingAt({ id: 1, resource_id: 1, start: t0, end: hours(1) })],
    });
    const wrong = new URL(dashboard.url).origin; // the /dashboard prefix left out
    const error = await client(wrong)
      .listBookings()
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`${wrong}/api/bookings/`);
    expect(message).toContain("404");
    expect(message).toMatch(/is the dashboard URL right\? .*with api\/bookings\/ under it/);
    expect(dashboard.requests).toHaveLength(1);
    // The same dashboard at its right URL.
    expect((await client(dashboard.url).listBookings()).map((b) => b.id)).toEqual(["1"]);
  });

  it("names an empty 404 on the bookings a configuration error too", async () => {
    const dashboard = await sim();
    dashboard.failNext(1, 404);
    await expect(client(dashboard.url).listBookings()).rejects.toBeInstanceOf(ConfigError);
    expect(dashboard.requests).toHaveLength(1);
  });

  it("asks again after an HTML page answered with 200 (a login page passing by)", async () => {
    const dashboard = await sim({ users: [ada] });
    dashboard.failNext(1, 200, {
      contentType: "text/html; charset=utf-8",
      body: "<!doctype html><title>Log in</title>",
    });
    expect((await client(dashboard.url).bookingUser("7"))?.username).toBe("ada");
    expect(dashboard.requests).toHaveLength(2);
  });

  it("names an HTML page answered with 200 on every attempt a configuration error", async () => {
    const dashboard = await sim({ users: [ada] });
    const page = {
      contentType: "text/html; charset=utf-8",
      body: "<!doctype html><title>Log in</title>",
    };
    dashboard.failNext(8, 200, page);
    const dashboardClient = client(dashboard.url);
    const listing = await dashboardClient.listBookings().catch((e: unknown) => e);
    expect(listing).toBeInstanceOf(ConfigError);
    expect((listing as Error).name).toBe("ConfigError");
    expect((listing as Error).message).toContain(
      `dashboard answered an HTML page (200) where JSON was expected at ${dashboard.url}/api/bookings/`,
    );
    await expect(dashboardClient.bookingUser("7")).rejects.toBeInstanceOf(ConfigError);
    // Four attempts each, within the read's bounds; never more.
    expect(dashboard.requests).toHaveLength(8);
  });

  it("keeps a 5xx HTML page transient (a proxy's error page)", async () => {
    const dashboard = await sim({ users: [ada] });
    dashboard.failNext(1, 502, { contentType: "text/html", body: "<html>Bad Gateway</html>" });
    expect((await client(dashboard.url).bookingUser("7"))?.username).toBe("ada");
  });
});

describe("PharosDashboard.postStatusNote", () => {
  const note = {
    resourceId: "1",
    type: "info" as const,
    title: "Booking 10: ready",
    content: "pod1 is ready until 2017-06-01T18:00:00Z.",
  };

  it("creates a note that the dashboard lists, for the resource as a number", async () => {
    const dashboard = await sim({ resources: [{ id: 1, name: "pod1" }] });

    await client(dashboard.url).postStatusNote(note);

    expect(dashboard.statusNotes).toEqual([
      {
        id: 1,
        resource: 1,
        type: "info",
        title: "Booking 10: ready",
        content: "pod1 is ready until 2017-06-01T18:00:00Z.",
        timestamp: expect.any(String),
      },
    ]);
    expect(dashboard.requests).toEqual([
      {
        method: "POST",
        path: "/api/resource_status/",
        authorization: true,
        authenticated: true,
        status: 201,
      },
    ]);
    const listed = await fetch(`${dashboard.url}/api/resource_status/`, {
      headers: { Authorization: `Token ${TOKEN}` },
    });
    expect(await listed.json()).toEqual([expect.objectContaining({ resource: 1, type: "info" })]);
  });

  it("sends JSON with the token header", async () => {
    const seen: Array<{ method?: string; auth?: string; type?: string; body: string }> = [];
    const base = await rawServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => {
        body += chunk;
      });
      req.on("end", () => {
        seen.push({
          method: req.method,
          auth: req.headers.authorization,
          type: req.headers["content-type"],
          body,
        });
        res.statusCode = 201;
        sendJson(res, { id: 1 });
      });
    });

    await client(base).postStatusNote({ ...note, resourceId: "12" });

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: "POST",
      auth: `Token ${TOKEN}`,
      type: "application/json",
    });
    expect(JSON.parse(seen[0]?.body ?? "")).toEqual({
      resource: 12,
      type: "info",
      title: "Booking 10: ready",
      content: "pod1 is ready until 2017-06-01T18:00:00Z.",
    });
  });

  it("raises ProtocolError quoting DRF's field errors for an unknown resource", async () => {
    const dashboard = await sim({ resources: [{ id: 1, name: "pod1" }] });
    const error = await client(dashboard.url)
      .postStatusNote({ ...note, resourceId: "42" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toBe(
      `dashboard refused the status note for resource 42 at ${dashboard.url}/api/resource_status/: ` +
        'resource: Invalid pk "42" - object does not exist.',
    );
    expect(dashboard.statusNotes).toEqual([]);
  });

  it("cuts long field errors short", async () => {
    const dashboard = await sim({ resources: [{ id: 1, name: "pod1" }] });
    dashboard.failNext(1, 400, {
      contentType: "application/json",
      body: JSON.stringify({
        content: ["x".repeat(1000)],
        title: ["This field may not be blank."],
      }),
    });
    const error = await client(dashboard.url)
      .postStatusNote(note)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    const quoted = (error as Error).message.split("/api/resource_status/: ")[1] ?? "";
    expect(quoted.startsWith("content: xxx")).toBe(true);
    expect(quoted).toHaveLength(300);
    expect(quoted.endsWith("…")).toBe(true);
  });

  it.each([403, 401] as const)("raises AuthError on %i, without the token", async (status) => {
    const dashboard = await sim({
      resources: [{ id: 1, name: "pod1" }],
      authFailureStatus: status,
    });
    const wrong = "wrong-token-99bb";
    const error = await client(dashboard.url, { token: wrong })
      .postStatusNote(note)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toContain(`dashboard refused the token (${status})`);
    expect((error as Error).message).not.toContain(wrong);
    expect(dashboard.statusNotes).toEqual([]);
  });

  it("raises TransientError on a 5xx or when the dashboard is down", async () => {
    const dashboard = await sim({ resources: [{ id: 1, name: "pod1" }] });
    dashboard.failNext(1, 502);
    await expect(client(dashboard.url).postStatusNote(note)).rejects.toThrow(
      new TransientError(`dashboard answered 502 at ${dashboard.url}/api/resource_status/`),
    );
    const url = dashboard.url;
    await dashboard.close();
    await expect(client(url).postStatusNote(note)).rejects.toBeInstanceOf(TransientError);
  });

  it("raises ProtocolError when the dashboard has no status notes (a JSON 404)", async () => {
    const dashboard = await sim();
    dashboard.failNext(1, 404, {
      contentType: "application/json",
      body: '{"detail": "Not found."}',
    });
    await expect(client(dashboard.url).postStatusNote(note)).rejects.toThrow(
      new ProtocolError(
        `dashboard does not take status notes: 404 at ${dashboard.url}/api/resource_status/`,
      ),
    );
  });

  it("raises ConfigError with a hint on Django's HTML 404 (a dashboard URL without its prefix)", async () => {
    const dashboard = await sim({ basePath: "/dashboard", resources: [{ id: 1, name: "pod1" }] });
    const wrong = new URL(dashboard.url).origin;
    const error = await client(wrong)
      .postStatusNote(note)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`${wrong}/api/resource_status/`);
    expect((error as Error).message).toContain("is the dashboard URL right?");
    expect(dashboard.statusNotes).toEqual([]);
  });

  it("posts a note once: a lost answer is the workflow's to repeat, a duplicate note being harmless", async () => {
    const dashboard = await sim({ resources: [{ id: 1, name: "pod1" }] });
    dashboard.failNext(1, 502, { afterWork: true });
    await expect(client(dashboard.url).postStatusNote(note)).rejects.toBeInstanceOf(TransientError);
    expect(dashboard.requests).toHaveLength(1);
    expect(dashboard.statusNotes).toHaveLength(1);
  });

  it("refuses a resource id that is not a number, without asking", async () => {
    const dashboard = await sim();
    await expect(
      client(dashboard.url).postStatusNote({ ...note, resourceId: "pod-1" }),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(dashboard.requests).toEqual([]);
  });
});

describe("dashboard simulator", () => {
  const auth = { Authorization: `Token ${TOKEN}` };
  const bookings = [
    bookingAt({ id: 1, resource_id: 1, start: t0, end: hours(1) }),
    bookingAt({ id: 2, resource_id: 2, start: t0, end: hours(1) }),
    bookingAt({ id: 3, resource_id: 1, start: t0, end: hours(1) }),
  ];
  const ids = async (response: Response) =>
    ((await response.json()) as Array<{ id: number }>).map((b) => b.id);

  it("renders bookings as the dashboard does", () => {
    expect(
      bookingAt({ id: 7, resource_id: 3, start: t0, end: new Date("2017-06-01T18:00:00.250Z") }),
    ).toEqual({
      id: 7,
      resource_id: 3,
      start: "2017-06-01T14:00:00Z",
      end: "2017-06-01T18:00:00.250000Z",
      installer_name: null,
      scenario_name: null,
      purpose: "",
    });
  });

  it("silently ignores ?resource_id= and honours ?resource= and ?id=", async () => {
    const dashboard = await sim({ bookings });
    const get = (query: string) =>
      fetch(`${dashboard.url}/api/bookings/${query}`, { headers: auth });

    expect(await ids(await get("?resource_id=2"))).toEqual([1, 2, 3]);
    expect(await ids(await get("?resource=1"))).toEqual([1, 3]);
    expect(await ids(await get("?id=2"))).toEqual([2]);
    const invalid = await get("?resource=abc");
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({
      resource: ["Select a valid choice. That choice is not one of the available choices."],
    });
  });

  it("answers 403 with DRF's detail for a missing or wrong token, 401 when so configured", async () => {
    const strict = await sim({ bookings });
    const missing = await fetch(`${strict.url}/api/bookings/`);
    expect(missing.status).toBe(403);
    expect(missing.headers.get("www-authenticate")).toBeNull();
    expect(await missing.json()).toEqual({
      detail: "Authentication credentials were not provided.",
    });

    const tokenFirst = await sim({ bookings, authFailureStatus: 401 });
    const wrong = await fetch(`${tokenFirst.url}/api/bookings/`, {
      headers: { Authorization: "Token nope" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe("Token");
    expect(await wrong.json()).toEqual({ detail: "Invalid token." });
    expect(tokenFirst.requests[0]).toMatchObject({ authorization: true, authenticated: false });
  });

  it("paginates like DRF with absolute next and previous links", async () => {
    const dashboard = await sim({ bookings, pageSize: 2 });
    const page2 = await fetch(`${dashboard.url}/api/bookings/?page=2`, { headers: auth });
    expect(await page2.json()).toEqual({
      count: 3,
      next: null,
      previous: `${dashboard.url}/api/bookings/`,
      results: [bookings[2]],
    });
    const beyond = await fetch(`${dashboard.url}/api/bookings/?page=3`, { headers: auth });
    expect(beyond.status).toBe(404);
    expect(await beyond.json()).toEqual({ detail: "Invalid page." });
  });

  it("makes a cancelled booking vanish", async () => {
    const dashboard = await sim({ bookings });
    expect(dashboard.removeBooking(2)).toBe(true);
    expect(dashboard.removeBooking(2)).toBe(false);
    const list = await fetch(`${dashboard.url}/api/bookings/`, { headers: auth });
    expect(await ids(list)).toEqual([1, 3]);
  });

  it("stores resource status notes posted with the token", async () => {
    const dashboard = await sim({ bookings, resources: [{ id: 5, name: "pod5" }] });
    const post = (body: unknown, headers: Record<string, string> = auth) =>
      fetch(`${dashboard.url}/api/resource_status/`, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    const note = { resource: 5, type: "info", title: "Imaging", content: "pod5 is being imaged" };

    expect((await post(note, {})).status).toBe(403);
    const created = await post(note);
    expect(created.status).toBe(201);
    const unknown = await post({ ...note, resource: 42 });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({
      resource: ['Invalid pk "42" - object does not exist.'],
    });
    expect(dashboard.statusNotes).toEqual([{ id: 1, ...note, timestamp: expect.any(String) }]);

    const resources = await fetch(`${dashboard.url}/api/resources/`, { headers: auth });
    expect(await ids(resources)).toEqual([5, 1, 2]);
  });

  it("renders a booking's user only when given", () => {
    const base = { id: 1, resource_id: 1, start: t0, end: hours(1) };
    expect(bookingAt(base)).not.toHaveProperty("user");
    expect(bookingAt({ ...base, user: 7 }).user).toBe(7);
    expect(bookingAt({ ...base, user: "ada" }).user).toBe("ada");
  });

  it("serves users by id and by name, lists them, and wants the token", async () => {
    const bob: SimUser = { id: 3, username: "bob", email: "bob@users.test" };
    const dashboard = await sim({ users: [ada] });
    dashboard.addUser(bob);
    const get = (path: string, headers: Record<string, string> = auth) =>
      fetch(`${dashboard.url}${path}`, { headers });

    expect(await (await get("/api/users/7/")).json()).toEqual({
      id: 7,
      username: "ada",
      email: "ada@users.test",
      first_name: "Ada",
      last_name: "Lovelace",
      ssh_public_key: ADA_KEY,
    });
    expect(await (await get("/api/users/bob/")).json()).toEqual({
      id: 3,
      username: "bob",
      email: "bob@users.test",
    });
    const list = await get("/api/users/");
    expect(((await list.json()) as Array<{ id: number }>).map((u) => u.id)).toEqual([7, 3]);

    const unknown = await get("/api/users/99/");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ detail: "Not found." });
    expect((await get("/api/users/%E0%A4%A/")).status).toBe(404);
    expect((await get("/api/users/7/", {})).status).toBe(403);

    dashboard.setUsers([bob]);
    expect((await get("/api/users/7/")).status).toBe(404);
    expect(dashboard.users).toEqual([bob]);
  });

  it("serves the API under basePath, and Django's HTML 404 outside it", async () => {
    const dashboard = await sim({ bookings, basePath: "/dashboard", pageSize: 2 });
    expect(dashboard.url).toMatch(/\/dashboard$/);
    const inside = await fetch(`${dashboard.url}/api/bookings/`, { headers: auth });
    expect(inside.status).toBe(200);
    expect(((await inside.json()) as { next: string }).next).toBe(
      `${dashboard.url}/api/bookings/?page=2`,
    );
    const outside = await fetch(`${new URL(dashboard.url).origin}/api/bookings/`, {
      headers: auth,
    });
    expect(outside.status).toBe(404);
    expect(outside.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await outside.text()).toContain("The requested resource was not found on this server.");
  });

  it("truncates a real answer, and answers a failure after doing the work", async () => {
    const dashboard = await sim({ bookings, resources: [{ id: 5, name: "pod5" }] });
    dashboard.failNext(1, 200, { truncate: 20 });
    const cut = await fetch(`${dashboard.url}/api/bookings/`, { headers: auth });
    expect(cut.status).toBe(200);
    expect(cut.headers.get("content-type")).toBe("application/json");
    const text = await cut.text();
    expect(text).toBe(JSON.stringify(bookings).slice(0, 20));

    dashboard.failNext(1, 500, { afterWork: true });
    const lost = await fetch(`${dashboard.url}/api/resource_status/`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ resource: 5, type: "info", title: "t", content: "c" }),
    });
    expect(lost.status).toBe(500);
    expect(dashboard.statusNotes).toHaveLength(1);
  });

  it("answers unknown routes, wrong methods and missing slashes as Django does", async () => {
    const dashboard = await sim({ bookings });
    // No URL pattern matches: Django's own HTML page, not DRF's JSON.
    const missing = await fetch(`${dashboard.url}/api/nothing/`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await missing.text()).toContain("<h1>Not Found</h1>");

    const post = await fetch(`${dashboard.url}/api/bookings/`, { method: "POST", headers: auth });
    expect(post.status).toBe(405);
    expect(await post.json()).toEqual({ detail: 'Method "POST" not allowed.' });

    const noSlash = await fetch(`${dashboard.url}/api/bookings?id=1`, {
      headers: auth,
      redirect: "manual",
    });
    expect(noSlash.status).toBe(301);
    expect(noSlash.headers.get("location")).toBe("/api/bookings/?id=1");
  });
});
