/**
 * Poll's reconciliation at lab scale, counted where it costs: at the store's endpoint (every
 * DynamoDB request by its X-Amz-Target, dynamo-counter.ts). 10,000 bookings over 1,000 hosts on a
 * paginated simulated dashboard; none is due, so the poll's work is the reconciliation alone.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { poll } from "../lib/lifecycle/poll";
import {
  DASHBOARD_BOOKINGS_AHEAD,
  RECONCILE_CONCURRENCY,
  reconcile,
} from "../lib/lifecycle/reconcile";
import { silentLogger } from "../lib/log";
import type { Dashboard } from "../lib/ports/dashboard";
import type { ExecutionStatus, WorkflowEngine } from "../lib/ports/engine";
import type { Store } from "../lib/ports/store";
import { bookingAt, drfDateTime } from "../sim/dashboard-sim";
import { POLL_LAB } from "./helpers/poll-lab";
import {
  openDashboard,
  openStore,
  SCALE_NOW,
  SCALE_PAGE_SIZE,
  type ScaleLab,
  scaleBooking,
  startScaleLab,
} from "./helpers/scale-lab";

/** Nothing here is due: an engine that is asked anything is a failure of the test. */
class UnusedEngine implements WorkflowEngine {
  async start(): Promise<{ started: boolean }> {
    throw new Error("no phase is due in this lab");
  }
  async stop() {}
  async status(): Promise<ExecutionStatus | null> {
    return null;
  }
  async sendTaskSuccess() {
    return "gone" as const;
  }
  async sendTaskFailure() {
    return "gone" as const;
  }
  async sendTaskHeartbeat() {
    return "gone" as const;
  }
  async history() {
    return null;
  }
}

function pollWith(store: Store, dashboard: Dashboard) {
  return poll({
    dashboard,
    store,
    engine: new UnusedEngine(),
    logger: silentLogger,
    now: () => SCALE_NOW,
    config: POLL_LAB,
    mailer: null,
  });
}

describe("poll at 10,000 bookings over 1,000 hosts", () => {
  const BOOKINGS = 10_000;
  const HOSTS = 1_000;
  let lab: ScaleLab;
  let store: Store;
  let closeStore: () => void;
  let dashboard: Dashboard;
  const run = () => pollWith(store, dashboard);

  beforeAll(async () => {
    lab = await startScaleLab({ bookings: BOOKINGS, hosts: HOSTS });
    ({ store, close: closeStore } = openStore(lab.address));
    dashboard = openDashboard(lab.address);
  }, 60_000);
  afterAll(async () => {
    closeStore?.();
    await lab?.close();
  });

  // The cases build on each other, in order: the first poll fills the store the others read.
  it("first poll: one conditional create per booking, and nothing read item by item", async () => {
    // Counted at each page's request: pages are read ahead of the comparison only while fewer
    // than DASHBOARD_BOOKINGS_AHEAD bookings wait, so the writes of the pages before those are
    // done by then: the listing is reconciled as it streams in, never held whole.
    const writesAtPage: number[] = [];
    lab.dashboard.onRequest(({ path }) => {
      if (path.startsWith("/api/bookings/")) writesAtPage.push(lab.proxy.counts().writes);
    });
    lab.proxy.reset();
    const report = await run();
    const counts = lab.proxy.counts();
    expect(report.seen).toBe(BOOKINGS);
    expect(report.created).toHaveLength(BOOKINGS);
    expect(report.created.slice(0, 3)).toEqual(["1", "2", "3"]);
    expect(report.errors).toEqual([]);
    expect(counts.byOperation.PutItem).toBe(BOOKINGS);
    expect(counts.failedWrites).toBe(0);
    expect(counts.byOperation.GetItem).toBeUndefined();
    expect(counts.writes).toBe(BOOKINGS);
    // Concurrent, within the bound.
    expect(counts.mostAtOnce).toBeGreaterThan(1);
    expect(counts.mostAtOnce).toBeLessThanOrEqual(RECONCILE_CONCURRENCY);
    // Page k is asked for once fewer than `ahead` pages wait: the pages before those are written.
    const ahead = DASHBOARD_BOOKINGS_AHEAD / SCALE_PAGE_SIZE;
    expect(ahead).toBeLessThanOrEqual(BOOKINGS / SCALE_PAGE_SIZE / 2);
    expect(writesAtPage).toHaveLength(BOOKINGS / SCALE_PAGE_SIZE);
    writesAtPage.forEach((writes, index) => {
      expect(writes).toBeGreaterThanOrEqual(Math.max(0, index - 1 - ahead) * SCALE_PAGE_SIZE);
    });
  }, 120_000);

  it("steady poll: no write, no item read, the store scanned once", async () => {
    lab.proxy.reset();
    await store.listBookings();
    const oneScan = lab.proxy.counts().byOperation.Scan ?? 0;
    expect(oneScan).toBeGreaterThan(0);

    lab.proxy.reset();
    const report = await run();
    const counts = lab.proxy.counts();
    expect(report).toMatchObject({ seen: BOOKINGS, created: [], updated: [], vanished: [] });
    expect(counts.writes).toBe(0);
    expect(counts.byOperation).toEqual({ Scan: oneScan });
    expect(counts.total).toBeLessThanOrEqual(36);
  }, 120_000);

  it("creates only the bookings new on the dashboard", async () => {
    for (let id = BOOKINGS + 1; id <= BOOKINGS + 5; id++) {
      lab.dashboard.addBooking(scaleBooking(id, HOSTS));
    }
    lab.proxy.reset();
    const report = await run();
    const counts = lab.proxy.counts();
    expect(report.created).toEqual(["10001", "10002", "10003", "10004", "10005"]);
    expect(report.updated).toEqual([]);
    expect(counts.byOperation.PutItem).toBe(5);
    expect(counts.writes).toBe(5);
    expect(counts.failedWrites).toBe(0);
    expect(counts.byOperation.GetItem).toBeUndefined();
  }, 120_000);

  it("writes a booking edited on the dashboard once, on the version it read", async () => {
    const edited = scaleBooking(4242, HOSTS);
    const end = new Date(Date.parse(edited.end) + 3_600_000);
    const at = lab.dashboard.bookings.findIndex((raw) => (raw as { id: number }).id === 4242);
    const list = [...lab.dashboard.bookings];
    list[at] = { ...edited, end: drfDateTime(end), purpose: "edited" };
    lab.dashboard.setBookings(list);
    const before = await lab.direct.getBooking("4242");

    lab.proxy.reset();
    const report = await run();
    const counts = lab.proxy.counts();
    expect(report.updated).toEqual(["4242"]);
    expect(report.created).toEqual([]);
    expect(counts.byOperation.PutItem).toBe(1);
    expect(counts.writes).toBe(1);
    expect(counts.failedWrites).toBe(0);
    expect(counts.byOperation.GetItem).toBeUndefined();
    expect(await lab.direct.getBooking("4242")).toMatchObject({
      purpose: "edited",
      end: end.toISOString(),
      version: (before?.version ?? 0) + 1,
    });
  }, 120_000);

  it("marks the bookings that left the dashboard vanished, one write each", async () => {
    const gone = ["17", "9999"];
    for (const id of gone) expect(lab.dashboard.removeBooking(id)).toBe(true);
    lab.proxy.reset();
    // Reconciliation alone: the advance loop's cancellations are not what is counted here.
    const report = { seen: 0, created: [], updated: [], vanished: [], refused: [] };
    const items = await reconcile(
      { dashboard, store, logger: silentLogger, now: () => SCALE_NOW, config: POLL_LAB },
      report,
    );
    const counts = lab.proxy.counts();
    expect(report.vanished.sort()).toEqual(gone);
    expect(report.seen).toBe(BOOKINGS + 5 - gone.length);
    expect(counts.byOperation).toEqual({ Scan: expect.any(Number), PutItem: gone.length });
    // What the advance loop is given: every stored booking, the vanished ones as now written.
    expect(items).toHaveLength(BOOKINGS + 5);
    for (const id of gone) {
      expect(items.find((b) => b.id === id)).toEqual(await lab.direct.getBooking(id));
      expect(await lab.direct.getBooking(id)).toMatchObject({ vanished: true });
    }
    // The poll after it cancels them, seeing them vanished in the items reconcile gave it.
    expect((await run()).cancelled.sort()).toEqual(gone);
  }, 120_000);
});

describe("poll's reconciliation, racing and raced", () => {
  let lab: ScaleLab;
  const opened: Array<() => void> = [];
  const storeOf = () => {
    const { store, close } = openStore(lab.address);
    opened.push(close);
    return store;
  };

  beforeEach(async () => {
    lab = await startScaleLab({ bookings: 500, hosts: 50 });
  });
  afterEach(async () => {
    while (opened.length > 0) opened.pop()?.();
    await lab.close();
  });

  it("creates each new booking once when two pollers race over them", async () => {
    // Both pollers read the store before either writes: each finds all 500 bookings new.
    let arrived = 0;
    let bothRead = (): void => undefined;
    const barrier = new Promise<void>((resolve) => {
      bothRead = resolve;
    });
    const racer = (): Store =>
      new Proxy(storeOf(), {
        get(target, property) {
          if (property === "listBookings") {
            return async () => {
              const read = await target.listBookings();
              if (++arrived === 2) bothRead();
              await barrier;
              return read;
            };
          }
          const value: unknown = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const [a, b] = await Promise.all([
      pollWith(racer(), openDashboard(lab.address)),
      pollWith(racer(), openDashboard(lab.address)),
    ]);
    const created = [...a.created, ...b.created];
    expect(created).toHaveLength(500);
    expect(new Set(created).size).toBe(500);
    const counts = lab.proxy.counts();
    // Each booking: one create won, one lost (its condition failed); the loser read the
    // winner's item and found nothing to change.
    expect(counts.byOperation.PutItem).toBe(1000);
    expect(counts.failedByOperation.PutItem).toBe(500);
    expect(counts.byOperation.GetItem).toBe(500);
    expect(a.updated).toEqual([]);
    expect(b.updated).toEqual([]);
    const stored = await lab.direct.listBookings();
    expect(stored).toHaveLength(500);
    expect(stored.every((booking) => booking.version === 0)).toBe(true);
  }, 60_000);

  it("keeps another writer's change that came between the store's read and the edit", async () => {
    const store = storeOf();
    const dashboard = openDashboard(lab.address);
    await pollWith(store, dashboard);
    // The booking is edited on the dashboard, and another writer changes the stored item just
    // after this poller read the store: the poller's copy is stale when it writes.
    const edited = scaleBooking(7, 50);
    const list = [...lab.dashboard.bookings];
    list[6] = { ...edited, purpose: "edited" };
    lab.dashboard.setBookings(list);
    const raced: Store = new Proxy(store, {
      get(target, property) {
        if (property === "listBookings") {
          return async () => {
            const read = await target.listBookings();
            await lab.direct.updateBooking("7", (b) => ({ ...b, progress: "another writer" }));
            return read;
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    lab.proxy.reset();
    const report = await pollWith(raced, dashboard);
    expect(report.updated).toEqual(["7"]);
    expect(await lab.direct.getBooking("7")).toMatchObject({
      purpose: "edited",
      progress: "another writer",
      version: 2,
    });
    // The write on the stale version failed, the item was read again and written.
    const counts = lab.proxy.counts();
    expect(counts.failedByOperation.PutItem).toBe(1);
    expect(counts.byOperation.GetItem).toBe(1);
    expect(counts.byOperation.PutItem).toBe(2);
  }, 60_000);

  it("marks vanished only what the last reading of a listing that shifted lacks", async () => {
    const store = storeOf();
    await pollWith(store, openDashboard(lab.address));
    // While the first reading is on its third page, booking 3 (on its first page) is cancelled
    // on the dashboard: the count changes, and the listing is read again from the start.
    let removed = false;
    lab.dashboard.onRequest(({ path }) => {
      if (!removed && path.includes("page=3")) removed = lab.dashboard.removeBooking(3);
    });
    const report = await pollWith(store, openDashboard(lab.address));
    expect(removed).toBe(true);
    expect(report.seen).toBe(499);
    expect(report.vanished).toEqual(["3"]);
    expect(report.cancelled).toEqual(["3"]);
  }, 60_000);

  it("refuses a booking edited into one the lab cannot serve, once", async () => {
    const store = storeOf();
    const dashboard = openDashboard(lab.address);
    await pollWith(store, dashboard);
    const list = [...lab.dashboard.bookings];
    list[9] = { ...scaleBooking(10, 50), installer_name: "NoSuchInstaller" };
    list.push(
      bookingAt({
        id: 9001,
        resource_id: 1,
        start: new Date("2026-07-01T10:00:00Z"),
        end: new Date("2026-07-01T11:00:00Z"),
        scenario_name: "a b",
      }),
    );
    lab.dashboard.setBookings(list);
    const report = await pollWith(store, dashboard);
    expect(report.refused).toEqual(["10", "9001"]);
    expect(report.created).toEqual(["9001"]);
    expect(report.updated).toEqual(["10"]);
    expect(await lab.direct.getBooking("10")).toMatchObject({ state: "failed" });
    expect((await lab.direct.getBooking("10"))?.failure).toMatch(/installer_name/);
    expect(await lab.direct.getBooking("9001")).toMatchObject({ state: "failed" });
    // Refused bookings are failed: nothing more to write for them.
    lab.proxy.reset();
    const again = await pollWith(store, dashboard);
    expect(again.refused).toEqual([]);
    expect(lab.proxy.counts().writes).toBe(0);
  }, 60_000);
});
