/**
 * Poll's reconciliation against the real store (dynalite): what it creates, starts, waits for and
 * cancels — and pollers racing over the same bookings, each with its own store client and its own
 * engine (as two processes would be), so only the store's conditional writes keep them apart.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Runtime } from "../lib/app/runtime";
import type { PharosConfig } from "../lib/config/types";
import type { DashboardBooking, Phase } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { TransientError } from "../lib/errors";
import { recordFailure } from "../lib/lifecycle/outcomes";
import { poll } from "../lib/lifecycle/poll";
import { silentLogger } from "../lib/log";
import type { ExecutionStatus, PhaseInput, WorkflowEngine } from "../lib/ports/engine";
import type { Mailer } from "../lib/ports/mailer";
import type { Store } from "../lib/ports/store";
import { startTestStore, type TestStore } from "./helpers/dynalite";
import { ListedBookings, POLL_LAB } from "./helpers/poll-lab";

/**
 * Step Functions as the pollers see it: one registry of execution names per state machine, shared
 * by every caller; a second start of a name is refused (ExecutionAlreadyExists). It records each
 * start it accepted, so a poller that moved a booking into a phase twice (two generations) would
 * show up as two executions.
 */
class RecordingEngine implements WorkflowEngine {
  constructor(
    readonly log: { phase: Phase; name: string; input: PhaseInput }[],
    readonly executions = new Map<string, ExecutionStatus>(),
  ) {}
  async start(phase: Phase, name: string, input: PhaseInput) {
    if (this.executions.has(name)) return { started: false };
    this.executions.set(name, "RUNNING");
    this.log.push({ phase, name, input });
    return { started: true };
  }
  async stop(name: string) {
    if (this.executions.get(name) === "RUNNING") this.executions.set(name, "ABORTED");
  }
  async status(name: string) {
    return this.executions.get(name) ?? null;
  }
  // Poll never answers task tokens: the watcher does.
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

/** What RecordFailure needs of a runtime, for failures recorded by hand. */
function fakeRuntime(store: Store, config: PharosConfig, mailer: Mailer): Runtime {
  return {
    store,
    config,
    mailer,
    logger: silentLogger,
    now: () => new Date(),
  } as unknown as Runtime;
}

/** A lab that mails its operators (and posts no notes). */
const MAILING_LAB = {
  ...POLL_LAB,
  handover: { dashboardNotes: false, email: { operators: ["ops@lab.example.org"] } },
} as unknown as PharosConfig;

function booking(id: string, hostName: string, start: Date, end: Date): DashboardBooking {
  return {
    id,
    resourceId: id,
    hostName,
    start,
    end,
    installer: "Fuel",
    scenario: null,
    purpose: "test",
    user: null,
  };
}

describe("poll", () => {
  let db: TestStore;
  let dashboard: ListedBookings;
  let log: { phase: Phase; name: string; input: PhaseInput }[];
  let now: Date;

  const poller = (store: Store = db.store, engine = new RecordingEngine(log)) => ({
    engine,
    run: () =>
      poll({
        dashboard,
        store,
        engine,
        logger: silentLogger,
        now: () => now,
        config: POLL_LAB,
        mailer: null,
      }),
  });

  beforeEach(async () => {
    db = await startTestStore();
    dashboard = new ListedBookings();
    log = [];
    now = new Date("2026-06-01T12:00:00Z");
    for (const name of ["h1", "h2", "h3", "h4", "h5"])
      await db.store.createHost(newHost(name, null));
  });
  afterEach(async () => db.close());

  it("stores new bookings and starts nothing before their start", async () => {
    dashboard.bookings = [
      booking("1", "h1", new Date("2026-06-01T13:00:00Z"), new Date("2026-06-01T14:00:00Z")),
    ];
    const report = await poller().run();
    expect(report.created).toEqual(["1"]);
    expect(report.started).toEqual([]);
    expect((await db.store.getBooking("1"))?.state).toBe("scheduled");
    expect((await db.store.getHost("h1"))?.state).toBe("free");
  });

  it("takes dashboard edits before provisioning and only the end afterwards", async () => {
    const later = new Date("2026-06-01T13:00:00Z");
    dashboard.bookings = [booking("1", "h1", later, new Date("2026-06-01T14:00:00Z"))];
    await poller().run();
    dashboard.bookings = [{ ...dashboard.bookings[0]!, installer: "Joid" }];
    const edited = await poller().run();
    expect(edited.updated).toEqual(["1"]);
    expect((await db.store.getBooking("1"))?.installer).toBe("Joid");
  });

  it("cancels a scheduled booking that vanished, and one that ended while its host was busy", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T11:30:00Z");
    dashboard.bookings = [
      booking("1", "h1", new Date("2026-06-01T13:00:00Z"), new Date("2026-06-01T14:00:00Z")),
    ];
    await poller().run();
    dashboard.bookings = [booking("2", "h2", start, end)];
    const report = await poller().run();
    expect(report.vanished).toEqual(["1"]);
    expect(report.cancelled.sort()).toEqual(["1", "2"]);
    expect(report.started).toEqual([]);
    expect((await db.store.getBooking("1"))?.state).toBe("cancelled");
  });

  it("never records a listed booking that ended longer ago than the retention, nor brings back one removed", async () => {
    const day = 86_400_000;
    const old = (id: string, endedDaysAgo: number) =>
      booking(
        id,
        "h1",
        new Date(now.getTime() - (endedDaysAgo + 1) * day),
        new Date(now.getTime() - endedDaysAgo * day),
      );
    // The 2017 dashboard lists every booking it ever had: one ended 31 days ago is past a
    // 30-day retention; one ended 29 days ago is still within it (cancelled, as it never ran).
    dashboard.bookings = [old("past", 31), old("within", 29)];
    const report = await poller().run();
    expect(report.created).toEqual(["within"]);
    expect(report.cancelled).toEqual(["within"]);
    expect(await db.store.getBooking("past")).toBeNull();
    // Retention removed "within" later (sweep or TTL, once its expiry passed): still listed, it
    // is not created again.
    const expiry = (await db.store.getBooking("within"))?.expiresAtEpochSeconds;
    expect(expiry).toBeGreaterThanOrEqual((now.getTime() - 29 * day + 30 * day) / 1000);
    now = new Date((expiry ?? 0) * 1000 + 1000);
    await db.store.deleteBooking("within");
    const later = await poller().run();
    expect(later.created).toEqual([]);
    expect(await db.store.getBooking("within")).toBeNull();
  });

  it("provisions nothing on a host a newer reading of the dashboard moved the booking from", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T15:00:00Z");
    now = new Date("2026-06-01T10:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, end)];
    await poller().run();
    // This poller's reading: the booking on h1, as the store held it when it was read...
    const stale = await db.store.listBookings();
    // ...and meanwhile another poller, reading the dashboard later, moved it to h2, which
    // another booking holds.
    await db.store.updateBooking("1", (b) => ({ ...b, hostName: "h2" }));
    await db.store.updateHost("h2", (h) => ({ ...h, state: "in-use", bookingId: "other" }));
    const behind = new Proxy(db.store, {
      get(store, name) {
        if (name === "listBookings") return async () => stale;
        const value: unknown = Reflect.get(store, name, store);
        return typeof value === "function" ? value.bind(store) : value;
      },
    });
    now = start;
    const report = await poller(behind).run();
    expect(report.errors).toEqual([]);
    expect(report.started).toEqual([]);
    expect(log).toEqual([]);
    expect(await db.store.getBooking("1")).toMatchObject({ state: "scheduled", hostName: "h2" });
    // The claim it made for h1 on the old reading is given back; h2 is untouched.
    expect(await db.store.getHost("h1")).toMatchObject({ state: "free", bookingId: null });
    expect(await db.store.getHost("h2")).toMatchObject({ state: "in-use", bookingId: "other" });
  });

  it("takes a booking deleted since the store was read as gone, and goes on with the others", async () => {
    const t0 = now.getTime();
    const later = (hours: number) => new Date(t0 + hours * 3600_000);
    dashboard.bookings = [
      booking("1", "h1", later(1), later(2)),
      booking("2", "h2", later(1), later(2)),
      booking("3", "h3", later(0.5), later(2)),
    ];
    await poller().run();
    const stale = await db.store.listBookings();
    // Retention's deletions land between this poller's read and its writes: "1" is edited on the
    // dashboard, "2" vanished from it.
    await db.store.deleteBooking("1");
    await db.store.deleteBooking("2");
    dashboard.bookings = [
      booking("1", "h1", later(1), later(3)),
      booking("3", "h3", later(0.5), later(2)),
    ];
    now = later(0.75); // "3" is due now: the poll goes on to start it.
    const behind = new Proxy(db.store, {
      get(store, name) {
        if (name === "listBookings") return async () => stale;
        const value: unknown = Reflect.get(store, name, store);
        return typeof value === "function" ? value.bind(store) : value;
      },
    });
    const report = await poller(behind).run();
    expect(report.errors).toEqual([]);
    expect(report.updated).toEqual([]);
    expect(report.vanished).toEqual([]);
    expect(report.started).toEqual(["booking-3-provision-1"]);
    expect(await db.store.getBooking("1")).toBeNull();
    expect(await db.store.getBooking("2")).toBeNull();
  });

  it("makes a due booking wait while its host is held, then provisions it once free", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T15:00:00Z");
    await db.store.updateHost("h1", (h) => ({ ...h, state: "cleaning", bookingId: "old" }));
    dashboard.bookings = [booking("1", "h1", start, end)];
    const waiting = await poller().run();
    expect(waiting.waiting).toEqual(["1"]);
    expect((await db.store.getBooking("1"))?.progress).toBe("waiting for host h1 (booking old)");
    await db.store.updateHost("h1", (h) => ({ ...h, state: "free", bookingId: null }));
    const started = await poller().run();
    expect(started.started).toEqual(["booking-1-provision-1"]);
    expect(await db.store.getHost("h1")).toMatchObject({ state: "claimed", bookingId: "1" });
  });

  it("restarts a phase whose execution is unknown and fails one that ended without an outcome", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, new Date("2026-06-01T15:00:00Z"))];
    await poller().run();
    // A restarted process: its engine knows no executions, so the phase is started again.
    const restarted = poller();
    expect((await restarted.run()).started).toEqual(["booking-1-provision-1"]);
    // The execution stops without recording anything (e.g. aborted by an operator).
    await restarted.engine.stop("booking-1-provision-1");
    const recovered = await restarted.run();
    expect(recovered.recovered).toEqual(["1"]);
    expect((await db.store.getBooking("1"))?.failure).toMatch(/ended ABORTED without recording/);
    // Only claimed, never touched: the host goes back to the pool, its streak untouched.
    expect(await db.store.getHost("h1")).toMatchObject({ state: "free", failures: 0 });
  });

  it("cleans a host a failed run touched, and quarantines it at the second failure in a row", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, new Date("2026-06-01T15:00:00Z"))];
    const first = poller();
    await first.run();
    // The run reached the host (rebooted it into imaging), then its execution stopped.
    await db.store.updateHost("h1", (h) => ({ ...h, state: "in-use" }));
    await first.engine.stop("booking-1-provision-1");
    const recovered = await first.run();
    expect(recovered.recovered).toEqual(["1"]);
    expect(await db.store.getHost("h1")).toMatchObject({
      state: "cleaning",
      bookingId: "1",
      failures: 1,
    });
    expect(await db.store.getBooking("1")).toMatchObject({
      state: "failed",
      cleanup: "after-provision",
    });
    // The next poll starts the release run that cleans the host; the booking stays failed.
    const cleaning = await first.run();
    expect(cleaning.cleaning).toEqual(["1"]);
    expect(cleaning.started).toEqual(["booking-1-release-1"]);
    expect((await db.store.getBooking("1"))?.state).toBe("releasing");
    expect(await first.run()).toMatchObject({ started: [], cleaning: [] });
    // The cleaning fails too: the second failure in a row quarantines the host.
    await first.engine.stop("booking-1-release-1");
    await first.run();
    const host = await db.store.getHost("h1");
    expect(host).toMatchObject({ state: "quarantined", bookingId: "1", failures: 2 });
    expect(host?.reason).toMatch(/2 failure\(s\) in a row/);
    expect(host?.history.map((e) => e.event)).toEqual([
      "claimed",
      "failed",
      "cleaning",
      "failed",
      "quarantined",
    ]);
    expect(await db.store.getBooking("1")).toMatchObject({ state: "failed", cleanup: null });
    expect((await first.run()).started).toEqual([]);
  });

  it("refuses a booking it cannot serve before touching its host, and serves the next one", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T15:00:00Z");
    const later = new Date("2026-06-01T11:30:00Z");
    dashboard.bookings = [
      { ...booking("1", "h1", start, end), scenario: "os-nosdn\u0000; reboot" },
      { ...booking("2", "h1", later, end), installer: "NoSuchInstaller" },
      { ...booking("3", "h1", later, end), purpose: "x".repeat(1001) },
      { ...booking("4", "h1", later, end), user: "ada;rm -rf /" },
      booking("5", "h1", later, end),
    ];
    const report = await poller().run();
    expect(report.refused).toEqual(["1", "2", "3", "4"]);
    expect(report.started).toEqual(["booking-5-provision-1"]);
    const refused = await db.store.getBooking("1");
    expect(refused).toMatchObject({ state: "failed", provisionGeneration: 0 });
    expect(refused?.failure).toMatch(/scenario_name holds a control character \(U\+0000\)/);
    // The reason names the field, never the hostile value.
    expect(refused?.failure).not.toContain("reboot");
    expect((await db.store.getBooking("2"))?.failure).toMatch(/installer_name names no installer/);
    expect((await db.store.getBooking("3"))?.failure).toMatch(/purpose is 1001 characters/);
    expect((await db.store.getBooking("4"))?.failure).toMatch(/user may hold only/);
    expect(await db.store.getHost("h1")).toMatchObject({ bookingId: "5", failures: 0 });
    // A booking edited into one the lab cannot serve before it starts is refused then.
    const sixth = booking("6", "h2", new Date("2026-06-01T13:00:00Z"), end);
    dashboard.bookings.push(sixth);
    await poller().run();
    dashboard.bookings[5] = { ...sixth, scenario: "a b" };
    expect((await poller().run()).refused).toEqual(["6"]);
    expect((await poller().run()).refused).toEqual([]);
  });

  it("refuses a booking whose dashboard user has a name the dashboard should not allow, before claiming its host", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T15:00:00Z");
    dashboard.bookings = [
      { ...booking("1", "h1", start, end), user: "8" },
      { ...booking("2", "h2", start, end), user: "9" },
    ];
    const names: Record<string, string> = { "8": "eve;$(reboot)`id`", "9": "grace.hopper" };
    dashboard.bookingUser = async (ref: string) => ({
      username: names[ref] ?? "",
      fullName: null,
      email: null,
      sshPublicKey: null,
    });
    const withHandover = {
      ...POLL_LAB,
      handover: { dashboardNotes: false },
    } as unknown as PharosConfig;
    const report = await poll({
      dashboard,
      store: db.store,
      engine: new RecordingEngine(log),
      logger: silentLogger,
      now: () => now,
      config: withHandover,
      mailer: null,
    });
    expect(report.refused).toEqual(["1"]);
    expect(report.started).toEqual(["booking-2-provision-1"]);
    const refused = await db.store.getBooking("1");
    expect(refused?.failure).toMatch(/user names a dashboard user whose name may hold only/);
    expect(refused?.failure).not.toContain("reboot");
    expect(await db.store.getHost("h1")).toMatchObject({ state: "free", bookingId: null });
  });

  it("mails a failure the mail server refused once its workflow ended, and holds the cleaning meanwhile", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, new Date("2026-06-01T15:00:00Z"))];
    const engine = new RecordingEngine(log);
    const sent: string[] = [];
    let mailServerUp = false;
    const mailer: Mailer = {
      send: async (mail) => {
        if (!mailServerUp) throw new TransientError("mail server unreachable");
        sent.push(mail.subject);
        return { messageId: `<${sent.length}@lab>` };
      },
    };
    const config = MAILING_LAB;
    const run = () =>
      poll({
        dashboard,
        store: db.store,
        engine,
        logger: silentLogger,
        now: () => now,
        config,
        mailer,
      });
    await run();
    // The run touched the host and failed; RecordFailure could not mail the operators.
    await db.store.updateHost("h1", (h) => ({ ...h, state: "in-use" }));
    const input = { bookingId: "1", hostName: "h1", phase: "provision", generation: 1 } as const;
    await recordFailure(
      { ...fakeRuntime(db.store, config, mailer), now: () => now },
      {
        ...input,
        error: { Error: "HostUnreachable", Cause: "no SSH by its deadline" },
      },
    );
    expect(sent).toEqual([]);
    expect((await db.store.getBooking("1"))?.cleanup).toBe("after-provision");
    // While the workflow runs (its RecordFailure may be retried), the poll sends nothing.
    mailServerUp = true;
    expect((await run()).cleaning).toEqual([]);
    expect(sent).toEqual([]);
    // Once it ended, the mail is tried again, and the host waits for it (within its grace).
    mailServerUp = false;
    await engine.stop("booking-1-provision-1");
    expect((await run()).cleaning).toEqual([]);
    mailServerUp = true;
    const report = await run();
    expect(sent).toEqual(["LaaS: booking 1 provision failed on h1 (StartImaging)"]);
    expect(report.cleaning).toEqual(["1"]);
    await run();
    expect(sent).toHaveLength(1);
  });

  it("cleans a dirty host whose failure mail still cannot go out once the grace is over", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, new Date("2026-06-01T15:00:00Z"))];
    const engine = new RecordingEngine(log);
    const mailer: Mailer = {
      send: async () => {
        throw new TransientError("mail server unreachable");
      },
    };
    const config = MAILING_LAB;
    const run = () =>
      poll({
        dashboard,
        store: db.store,
        engine,
        logger: silentLogger,
        now: () => now,
        config,
        mailer,
      });
    await run();
    await db.store.updateHost("h1", (h) => ({ ...h, state: "in-use" }));
    await recordFailure(
      { ...fakeRuntime(db.store, config, mailer), now: () => now },
      {
        bookingId: "1",
        hostName: "h1",
        phase: "provision",
        generation: 1,
        error: { Error: "HostUnreachable", Cause: "no SSH by its deadline" },
      },
    );
    await engine.stop("booking-1-provision-1");
    expect((await run()).cleaning).toEqual([]);
    now = new Date(now.getTime() + 11 * 60_000);
    expect((await run()).cleaning).toEqual(["1"]);
  });

  it("never starts a phase when the write that moves the booking into it lost", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    dashboard.bookings = [booking("1", "h1", start, new Date("2026-06-01T15:00:00Z"))];
    // A second process cancels the booking between this poller's read and its write.
    const updateBooking: Store["updateBooking"] = async (id, change) => {
      const current = await db.store.getBooking(id);
      if (current?.state === "scheduled" && change(current)?.state === "provisioning") {
        await db.store.updateBooking(id, (b) => ({ ...b, state: "cancelled" }));
      }
      return db.store.updateBooking(id, change);
    };
    const racing = new Proxy(db.store, {
      get(target, property) {
        if (property === "updateBooking") return updateBooking;
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const report = await poller(racing).run();
    expect(report.errors).toEqual([]);
    expect(report.started).toEqual([]);
    expect(log).toEqual([]);
    expect((await db.store.getBooking("1"))?.state).toBe("cancelled");
  });

  it("starts each phase once and claims each host once when pollers race", async () => {
    const start = new Date("2026-06-01T11:00:00Z");
    const end = new Date("2026-06-01T15:00:00Z");
    dashboard.bookings = [
      booking("1", "h1", start, end),
      booking("2", "h2", start, end),
      booking("3", "h3", start, end),
      booking("4", "h4", start, end),
      // Two bookings for one host (a dashboard double booking): only one may have it.
      booking("5", "h5", start, end),
      booking("6", "h5", start, end),
    ];
    // Four pollers, each with its own store client, sharing one Step Functions.
    const stepFunctions = new Map<string, ExecutionStatus>();
    const pollers = Array.from({ length: 4 }, () =>
      poller(db.openStore(), new RecordingEngine(log, stepFunctions)),
    );
    for (let round = 0; round < 3; round++) {
      await Promise.all(pollers.map((p) => p.run()));
    }
    const provisions = log
      .filter((l) => l.phase === "provision")
      .map((l) => l.name)
      .sort();
    expect(new Set(provisions).size).toBe(provisions.length);
    const h5 = await db.store.getHost("h5");
    const winner = h5?.bookingId;
    expect(["5", "6"]).toContain(winner);
    expect(provisions).toEqual(
      ["1", "2", "3", "4", winner].map((id) => `booking-${id}-provision-1`).sort(),
    );
    const loser = winner === "5" ? "6" : "5";
    expect((await db.store.getBooking(loser))?.state).toBe("scheduled");
    for (const [id, name] of [
      ["1", "h1"],
      ["2", "h2"],
      ["3", "h3"],
      ["4", "h4"],
    ]) {
      expect(await db.store.getHost(name!)).toMatchObject({ state: "claimed", bookingId: id });
    }

    // The bookings end: the release phases race the same way.
    now = new Date("2026-06-01T16:00:00Z");
    for (let round = 0; round < 3; round++) {
      await Promise.all(pollers.map((p) => p.run()));
    }
    const releases = log.filter((l) => l.phase === "release").map((l) => l.name);
    expect(releases.sort()).toEqual(
      ["1", "2", "3", "4", winner].map((id) => `booking-${id}-release-1`).sort(),
    );
    expect((await db.store.getBooking(loser))?.state).toBe("cancelled");
  });
});
