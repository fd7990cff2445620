/**
 * Poll advances bookings of different hosts side by side, up to its bound, and one host's bookings
 * one at a time in order; one booking's error stops no other, and the report lists what was done
 * in the store's order, however the starts finished. Counted, not timed: an engine stand-in holds
 * every start until as many are in flight as the poll should have at once, then lets them go.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Booking, DashboardBooking, Phase } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { perHost } from "../lib/lifecycle/per-host";
import { ADVANCE_CONCURRENCY, poll } from "../lib/lifecycle/poll";
import { beginProvisioning, claimHost, newBooking } from "../lib/lifecycle/transitions";
import { silentLogger } from "../lib/log";
import type { PhaseInput, WorkflowEngine } from "../lib/ports/engine";
import type { Store } from "../lib/ports/store";
import { startTestStore, type TestStore } from "./helpers/dynalite";
import { ListedBookings, POLL_LAB } from "./helpers/poll-lab";

const NOW = new Date("2026-06-01T12:00:00Z");
const START = new Date("2026-06-01T11:00:00Z");
const END = new Date("2026-06-01T15:00:00Z");

/** If no start comes for this long, the poll cannot reach the expected count: stop holding. */
const STALL_MS = 3_000;

/**
 * Holds each start until `expected()` starts are in flight at once, then lets them all go, the
 * last one first (so they finish in another order than they came). Counts in flight, overall and
 * per host, and each host's starts in order. Starts for `failing` hosts throw once let go.
 */
class HoldingEngine implements WorkflowEngine {
  inFlight = 0;
  maxInFlight = 0;
  maxOnOneHost = 0;
  /** Whether it had to let starts go without the expected count in flight. */
  stalled = false;
  readonly byHost = new Map<string, string[]>();
  readonly #onHost = new Map<string, number>();
  readonly #held: (() => void)[] = [];
  #watchdog: NodeJS.Timeout | null = null;

  constructor(
    readonly expected: (engine: HoldingEngine) => number,
    readonly failing = new Set<string>(),
  ) {}

  /** Starts let go so far, per host. */
  readonly done = new Map<string, number>();

  async start(_phase: Phase, _name: string, input: PhaseInput) {
    const host = input.hostName;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const onHost = (this.#onHost.get(host) ?? 0) + 1;
    this.#onHost.set(host, onHost);
    this.maxOnOneHost = Math.max(this.maxOnOneHost, onHost);
    this.byHost.set(host, [...(this.byHost.get(host) ?? []), input.bookingId]);
    if (!this.stalled) {
      await new Promise<void>((resolve) => {
        this.#held.push(resolve);
        this.#check();
      });
    }
    this.inFlight -= 1;
    this.#onHost.set(host, onHost - 1);
    this.done.set(host, (this.done.get(host) ?? 0) + 1);
    if (this.failing.has(host)) throw new Error(`Step Functions refused ${input.bookingId}`);
    return { started: true };
  }

  #check() {
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#watchdog = null;
    if (this.inFlight >= this.expected(this)) {
      this.#releaseAll();
      return;
    }
    this.#watchdog = setTimeout(() => {
      this.stalled = true;
      this.#releaseAll();
    }, STALL_MS);
  }

  #releaseAll() {
    for (const release of this.#held.splice(0).reverse()) release();
  }

  async stop() {}
  // Every booking here is in a phase whose execution this engine has never seen.
  async status() {
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

/** As many in flight as the poll should have: one per host still to start, up to the bound. */
function onePerHostUpTo(bound: number, startsPerHost: Map<string, number>) {
  return (engine: HoldingEngine) => {
    let hostsLeft = 0;
    for (const [host, starts] of startsPerHost) {
      if ((engine.done.get(host) ?? 0) < starts) hostsLeft += 1;
    }
    return Math.min(bound, hostsLeft);
  };
}

function dashboardBooking(id: string, hostName: string): DashboardBooking {
  return {
    id,
    resourceId: id,
    hostName,
    start: START,
    end: END,
    installer: "Fuel",
    scenario: null,
    purpose: "test",
    user: null,
  };
}

describe("poll's advance loop", () => {
  let db: TestStore;
  let dashboard: ListedBookings;
  /** What the poll's last listing of the store's bookings answered, in its order. */
  let listing: Booking[];
  let store: Store;

  beforeEach(async () => {
    db = await startTestStore();
    dashboard = new ListedBookings();
    listing = [];
    store = new Proxy(db.store, {
      get(target, property) {
        if (property === "listBookings") {
          return async () => {
            listing = await target.listBookings();
            return listing;
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  });
  afterEach(async () => db.close());

  const run = (engine: WorkflowEngine, concurrency?: number) =>
    poll(
      {
        dashboard,
        store,
        engine,
        logger: silentLogger,
        now: () => NOW,
        config: POLL_LAB,
        mailer: null,
      },
      concurrency === undefined ? {} : { concurrency },
    );

  /** Bookings due now, one per host, each host free. */
  async function duePerHost(hosts: number): Promise<Map<string, number>> {
    const starts = new Map<string, number>();
    for (let n = 1; n <= hosts; n++) {
      await db.store.createHost(newHost(`h${n}`, null));
      dashboard.bookings.push(dashboardBooking(String(n), `h${n}`));
      starts.set(`h${n}`, 1);
    }
    return starts;
  }

  /**
   * `perHost` bookings on each of `hosts` hosts, all provisioning with no execution known (as
   * after a restart): each one's advance starts its phase again. Written straight into the store —
   * no lab would have them — as the loop, not the lab, is under test.
   */
  async function provisioningOnEachHost(hosts: number, each: number) {
    const starts = new Map<string, number>();
    let id = 0;
    for (let n = 1; n <= hosts; n++) {
      const host = `h${n}`;
      await db.store.createHost(newHost(host, null));
      for (let k = 0; k < each; k++) {
        id += 1;
        const listed = dashboardBooking(String(id), host);
        dashboard.bookings.push(listed);
        await db.store.createBooking(beginProvisioning(newBooking(listed, NOW))!);
      }
      starts.set(host, each);
    }
    return starts;
  }

  it("starts due bookings of different hosts side by side, never more than its bound", async () => {
    const bound = 4;
    const starts = await duePerHost(10);
    const engine = new HoldingEngine(onePerHostUpTo(bound, starts));
    const report = await run(engine, bound);
    expect(engine.stalled).toBe(false);
    expect(engine.maxInFlight).toBe(bound);
    expect(report.started).toHaveLength(10);
    expect(report.errors).toEqual([]);
  });

  it("has a default bound that lets a burst start side by side", async () => {
    const starts = await duePerHost(ADVANCE_CONCURRENCY + 2);
    const engine = new HoldingEngine(onePerHostUpTo(ADVANCE_CONCURRENCY, starts));
    await run(engine);
    expect(engine.stalled).toBe(false);
    expect(engine.maxInFlight).toBe(ADVANCE_CONCURRENCY);
    expect(ADVANCE_CONCURRENCY).toBeGreaterThan(1);
  });

  it("advances one host's bookings one at a time, in the order it was given them", async () => {
    // More room than hosts: only the hosts keep the bookings apart.
    const starts = await provisioningOnEachHost(3, 3);
    const engine = new HoldingEngine(onePerHostUpTo(8, starts));
    const report = await run(engine, 8);
    expect(engine.stalled).toBe(false);
    expect(engine.maxOnOneHost).toBe(1);
    expect(engine.maxInFlight).toBe(3);
    for (const host of starts.keys()) {
      const given = listing.filter((b) => b.hostName === host).map((b) => b.id);
      expect(engine.byHost.get(host)).toEqual(given);
    }
    expect(report.started).toHaveLength(9);
  });

  it("reports in the store's order, and one booking's error stops no other, on its host either", async () => {
    const starts = await provisioningOnEachHost(4, 2);
    const engine = new HoldingEngine(onePerHostUpTo(3, starts), new Set(["h2"]));
    const report = await run(engine, 3);
    expect(engine.stalled).toBe(false);
    const ids = listing.map((b) => b.id);
    const onH2 = listing.filter((b) => b.hostName === "h2").map((b) => b.id);
    // Both of h2's bookings were tried: the first one's failure did not end its host's turn.
    expect(report.errors).toEqual(onH2.map((id) => `booking ${id}: Step Functions refused ${id}`));
    expect(report.started).toEqual(
      ids.filter((id) => !onH2.includes(id)).map((id) => `booking-${id}-provision-1`),
    );
  });

  it("makes the next booking of a host that one is leaving wait for it, as before", async () => {
    await db.store.createHost(newHost("h1", null));
    const leaving = { ...dashboardBooking("1", "h1"), end: new Date("2026-06-01T11:30:00Z") };
    const next = { ...dashboardBooking("2", "h1"), start: new Date("2026-06-01T11:30:00Z") };
    dashboard.bookings = [leaving, next];
    await db.store.createBooking({
      ...beginProvisioning(newBooking(leaving, START))!,
      state: "ready",
    });
    await db.store.updateHost("h1", claimHost("1", START));
    await db.store.updateHost("h1", (h) => ({ ...h, state: "in-use" }));
    const engine = new HoldingEngine(() => 1);
    const report = await run(engine);
    expect(report.started).toEqual(["booking-1-release-1"]);
    expect(report.waiting).toEqual(["2"]);
    expect(await db.store.getHost("h1")).toMatchObject({ state: "cleaning", bookingId: "1" });
    expect((await db.store.getBooking("2"))?.state).toBe("scheduled");
  });
});

describe("perHost", () => {
  it("waits for every host before it rethrows the first error", async () => {
    const ended: string[] = [];
    let letGo = (): void => undefined;
    const slow = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    let settled = false;
    const running = perHost(
      ["a", "b"],
      (x) => x,
      2,
      async (x) => {
        if (x === "a") throw new Error("a failed");
        await slow;
        ended.push(x);
      },
    ).finally(() => {
      settled = true;
    });
    running.catch(() => undefined);
    // Everything that can run without b's end has run by then.
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    letGo();
    await expect(running).rejects.toThrow("a failed");
    expect(ended).toEqual(["b"]);
  });

  it("refuses a bound that is not a positive integer", async () => {
    await expect(perHost([], String, 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});
