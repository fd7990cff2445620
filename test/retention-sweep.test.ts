/**
 * Bookings leaving the store (lifecycle/retention.ts) against the real store (dynalite): the
 * expiry as DynamoDB's TTL reads it, the steps that end a booking stamping it from the lab's
 * retention, and the sweep deleting what expired — only the version it read, never a booking whose
 * VPN entry is still recorded — with the local engine's records of its ended executions; the
 * job records past their expiry, on the same terms; the listener's sweep, with or without a
 * hand-over section.
 */
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DynamoDbExecutionJournal } from "../lib/adapters/aws/dynamodb-journal";
import type { ExecutionJournal, ExecutionRecord } from "../lib/adapters/local/journal";
import type { EmbeddedRuntime } from "../lib/app/embedded";
import { Listener } from "../lib/app/listener";
import type { Runtime } from "../lib/app/runtime";
import type { PharosConfig } from "../lib/config/types";
import { type Booking, executionName, type Phase } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { type JobRecord, jobKey } from "../lib/domain/job";
import { ConflictError, TransientError } from "../lib/errors";
import { markReleased, recordFailure } from "../lib/lifecycle/outcomes";
import { sweep, sweepExpiredBookings, sweepExpiredJobs } from "../lib/lifecycle/sweep";
import { newBooking } from "../lib/lifecycle/transitions";
import { silentLogger } from "../lib/log";
import type { ExecutionStatus } from "../lib/ports/engine";
import type { Store } from "../lib/ports/store";
import { dashboardBooking } from "./helpers/bookings";
import { startTestStore, type TestStore } from "./helpers/dynalite";

const DAYS = 7;
const NOW = new Date("2026-06-01T12:00:00.000Z");
const nowS = NOW.getTime() / 1000;
const CONFIG = { bookingRetentionDays: DAYS, quarantineAfter: 2, handover: null };

let db: TestStore;
let journal: DynamoDbExecutionJournal;

beforeEach(async () => {
  db = await startTestStore();
  journal = await DynamoDbExecutionJournal.open(db.client, `test-executions-${db.tables.hosts}`);
});
afterEach(async () => {
  await db?.close();
});

function runtime(store: Store = db.store, config: object = CONFIG): Runtime {
  return {
    store,
    config: config as unknown as PharosConfig,
    logger: silentLogger,
    mailer: null,
    now: () => NOW,
  } as unknown as Runtime;
}

/** A booking as stored: `fields` over a fresh one ended a day before NOW. */
async function stored(id: string, fields: Partial<Booking> = {}): Promise<Booking> {
  const fresh = newBooking(
    dashboardBooking({
      id,
      hostName: `host-${id}`,
      start: new Date(NOW.getTime() - 2 * 86_400_000),
      end: new Date(NOW.getTime() - 86_400_000),
    }),
    NOW,
  );
  const booking: Booking = { ...fresh, ...fields };
  expect(await db.store.createBooking(booking)).toBe(true);
  return booking;
}

/** A job record as stored: `fields` over one with no tasks that has not finished. */
async function storedJob(jobId: number, fields: Partial<JobRecord> = {}): Promise<JobRecord> {
  const job: JobRecord = {
    key: jobKey("lab", jobId),
    lab: "lab",
    jobId,
    tasks: {},
    cleanupSince: null,
    owner: null,
    finishedAt: null,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    expiresAtEpochSeconds: null,
    version: 1,
    ...fields,
  };
  expect(await db.store.createJob(job)).toBe(true);
  return job;
}

const expired = { state: "released" as const, expiresAtEpochSeconds: nowS - 1 };
const unexpired = { state: "released" as const, expiresAtEpochSeconds: nowS + 60 };

async function execution(
  bookingId: string,
  phase: Phase,
  status: ExecutionStatus,
): Promise<ExecutionRecord> {
  const record: ExecutionRecord = {
    name: executionName(bookingId, phase, 1),
    phase,
    input: { bookingId, hostName: `host-${bookingId}`, phase, generation: 1 },
    status,
    owner: null,
    startedAt: NOW.toISOString(),
    stoppedAt: status === "RUNNING" ? null : NOW.toISOString(),
    error: null,
    cause: null,
    position: null,
    stopRequested: null,
    transitions: 3,
    updatedAt: NOW.toISOString(),
    version: 0,
  };
  expect(await journal.create(record)).toBe(true);
  return record;
}

/**
 * The store, with `afterList` run once each time the bookings have been listed, `afterListJobs`
 * each time the job records have.
 */
function listingStore(
  afterList: () => Promise<void>,
  afterListJobs: () => Promise<void> = async () => undefined,
): Store {
  const store = db.store;
  return {
    getHost: (name) => store.getHost(name),
    listHosts: () => store.listHosts(),
    createHost: (host) => store.createHost(host),
    deleteHost: (name) => store.deleteHost(name),
    updateHost: (name, change) => store.updateHost(name, change),
    getBooking: (id) => store.getBooking(id),
    listBookings: async () => {
      const listed = await store.listBookings();
      await afterList();
      return listed;
    },
    createBooking: (booking) => store.createBooking(booking),
    deleteBooking: (id, ifVersion) => store.deleteBooking(id, ifVersion),
    updateBooking: (id, change, options) => store.updateBooking(id, change, options),
    getVpnPerson: (key) => store.getVpnPerson(key),
    listVpnPersons: () => store.listVpnPersons(),
    createVpnPerson: (person) => store.createVpnPerson(person),
    updateVpnPerson: (key, change) => store.updateVpnPerson(key, change),
    getJob: (key) => store.getJob(key),
    listJobs: async () => {
      const listed = await store.listJobs();
      await afterListJobs();
      return listed;
    },
    createJob: (record) => store.createJob(record),
    updateJob: (key, change, options) => store.updateJob(key, change, options),
    deleteJob: (key, ifVersion) => store.deleteJob(key, ifVersion),
  };
}

describe("the expiry in the store", () => {
  it("is a Number attribute (DynamoDB TTL ignores any other type), null until stamped", async () => {
    await stored("1", expired);
    await stored("2");
    const raw = async (id: string) =>
      (
        await db.client.send(
          new GetItemCommand({ TableName: db.tables.bookings, Key: { id: { S: id } } }),
        )
      ).Item?.expiresAtEpochSeconds;
    expect(await raw("1")).toEqual({ N: String(nowS - 1) });
    expect(await raw("2")).toEqual({ NULL: true });
    expect((await db.store.getBooking("1"))?.expiresAtEpochSeconds).toBe(nowS - 1);
  });

  it("is null on items older versions wrote, which have no such attribute", async () => {
    const booking = newBooking(dashboardBooking({ id: "old", hostName: "h" }), NOW);
    const { expiresAtEpochSeconds: _none, ...older } = booking;
    await db.client.send(
      new PutItemCommand({ TableName: db.tables.bookings, Item: marshall(older) }),
    );
    expect(await db.store.getBooking("old")).toEqual(booking);
  });

  it("a delete at a version the booking is no longer at is refused", async () => {
    const booking = await stored("1", expired);
    await db.store.updateBooking("1", (b) => ({ ...b, progress: "changed" }));
    await expect(db.store.deleteBooking("1", booking.version)).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(await db.store.getBooking("1")).not.toBeNull();
    await db.store.deleteBooking("1", booking.version + 1);
    expect(await db.store.getBooking("1")).toBeNull();
  });
});

describe("the steps that end a booking stamp its expiry from the lab's retention", () => {
  const input = (id: string, phase: Phase) => ({
    bookingId: id,
    hostName: `host-${id}`,
    phase,
    generation: 1,
  });
  const holding = async (id: string, state: "claimed" | "in-use") => {
    await db.store.createHost(newHost(`host-${id}`, null, NOW));
    await db.store.updateHost(`host-${id}`, (h) => ({ ...h, state, bookingId: id }));
  };
  const inDays = (fromS: number) => fromS + DAYS * 86_400;

  it("MarkReleased", async () => {
    // Released after its end: counted from now.
    await stored("1", { state: "releasing", provisionGeneration: 1, releaseGeneration: 1 });
    await holding("1", "in-use");
    await markReleased(runtime(), input("1", "release"));
    expect(await db.store.getBooking("1")).toMatchObject({
      state: "released",
      expiresAtEpochSeconds: inDays(nowS),
    });
  });

  it("RecordFailure, only when no cleaning of the host is pending", async () => {
    const failure = { Error: "HostUnreachable", Cause: "no SSH" };
    // Its host only claimed, never touched: freed, the booking over.
    await stored("1", { state: "provisioning", provisionGeneration: 1 });
    await holding("1", "claimed");
    await recordFailure(runtime(), { ...input("1", "provision"), error: failure });
    expect(await db.store.getBooking("1")).toMatchObject({
      state: "failed",
      cleanup: null,
      expiresAtEpochSeconds: inDays(nowS),
    });
    // Its host touched: left for cleaning, the booking not over yet.
    await stored("2", { state: "provisioning", provisionGeneration: 1 });
    await holding("2", "in-use");
    await recordFailure(runtime(), { ...input("2", "provision"), error: failure });
    expect(await db.store.getBooking("2")).toMatchObject({
      state: "failed",
      cleanup: "after-provision",
      expiresAtEpochSeconds: null,
    });
  });
});

describe("the expiry sweep", () => {
  it("deletes an expired booking and keeps an unexpired one and those not ended for good", async () => {
    await stored("gone", expired);
    await stored("stays", unexpired);
    await stored("ready", { state: "ready" });
    await stored("dirty", { state: "failed", cleanup: "after-provision" });
    const report = await sweepExpiredBookings(runtime());
    expect(report.deleted).toEqual(["gone"]);
    expect(report.stamped).toEqual([]);
    expect(await db.store.getBooking("gone")).toBeNull();
    for (const id of ["stays", "ready", "dirty"]) {
      expect(await db.store.getBooking(id), id).not.toBeNull();
    }
  });

  it("keeps an expired booking that changed after it was read", async () => {
    await stored("changed", expired);
    await stored("gone", expired);
    const store = listingStore(async () => {
      await db.store.updateBooking("changed", (b) => ({ ...b, progress: "looked at meanwhile" }));
    });
    const report = await sweepExpiredBookings(runtime(store));
    expect(report.deleted).toEqual(["gone"]);
    expect(report.kept).toEqual(["changed"]);
    expect(await db.store.getBooking("changed")).toMatchObject({ progress: "looked at meanwhile" });
    // The next sweep reads it again and decides on what it is now.
    expect((await sweepExpiredBookings(runtime())).deleted).toEqual(["changed"]);
  });

  it("keeps an expired booking that still records a VPN entry", async () => {
    await stored("entry", {
      ...expired,
      access: {
        vpnUser: "ada",
        vpnUserDn: "uid=ada,ou=people,dc=lab",
        vpnEntryUuid: null,
        vpnIntendedDn: null,
        vpnPerson: null,
        vpnAccountFrom: null,
        rootPasswordSet: false,
        sshKey: null,
        vpnOthers: [],
        otherSshKeys: {},
        sealedCredentials: null,
        handover: "delivered",
        handoverError: null,
      },
    });
    const report = await sweepExpiredBookings(runtime());
    expect(report).toMatchObject({ deleted: [], kept: ["entry"] });
    expect(await db.store.getBooking("entry")).not.toBeNull();
  });

  it("gives bookings that ended without an expiry one from their last change, and deletes those past it", async () => {
    const longAgo = new Date(NOW.getTime() - 40 * 86_400_000);
    await stored("ancient", {
      state: "cancelled",
      end: longAgo.toISOString(),
      updatedAt: longAgo.toISOString(),
    });
    await stored("recent", { state: "failed", updatedAt: NOW.toISOString() });
    await stored("dirty", { state: "failed", cleanup: "after-release" });
    const report = await sweepExpiredBookings(runtime());
    expect(report.stamped.sort()).toEqual(["ancient", "recent"]);
    expect(report.deleted).toEqual(["ancient"]);
    expect((await db.store.getBooking("recent"))?.expiresAtEpochSeconds).toBe(nowS + DAYS * 86_400);
    expect((await db.store.getBooking("dirty"))?.expiresAtEpochSeconds).toBeNull();
  });

  it("removes the journal records of ended executions whose booking is gone, and no other", async () => {
    await stored("gone", expired);
    await stored("stays", unexpired);
    await execution("gone", "provision", "SUCCEEDED");
    await execution("gone", "release", "FAILED");
    // A record left by a booking deleted earlier (a reset-db, a sweep interrupted).
    await execution("earlier", "provision", "ABORTED");
    // Still running: whatever became of its booking, not the sweep's to remove.
    await execution("orphan", "release", "RUNNING");
    await execution("stays", "provision", "SUCCEEDED");
    const report = await sweepExpiredBookings(runtime(), journal);
    expect(report.executions.sort()).toEqual(
      ["booking-earlier-provision-1", "booking-gone-provision-1", "booking-gone-release-1"].sort(),
    );
    expect((await journal.list()).map((r) => r.name).sort()).toEqual([
      "booking-orphan-release-1",
      "booking-stays-provision-1",
    ]);
  });

  it("keeps the record of a booking made after the journal was read", async () => {
    // The booking appears, runs and ends after the bookings were read: it is not among them, yet
    // it is not gone.
    const store = listingStore(async () => {
      await stored("new", { state: "failed" });
      await execution("new", "provision", "FAILED");
    });
    const report = await sweepExpiredBookings(runtime(store), journal);
    expect(report.executions).toEqual([]);
    expect((await journal.list()).map((r) => r.name)).toEqual(["booking-new-provision-1"]);
  });

  it("writes nothing for bookings that need no expiry stamped", async () => {
    await stored("ready", { state: "ready" });
    await stored("stays", unexpired);
    await stored("dirty", { state: "failed", cleanup: "after-provision" });
    let updates = 0;
    const store = listingStore(async () => undefined);
    store.updateBooking = (id, change, options) => {
      updates++;
      return db.store.updateBooking(id, change, options);
    };
    const report = await sweepExpiredBookings(runtime(store), journal);
    expect(report).toEqual({ deleted: [], stamped: [], kept: [], executions: [] });
    expect(updates).toBe(0);
  });

  it("keeps a journal record that changed after it was read", async () => {
    const record = await execution("earlier", "provision", "FAILED");
    const changing: ExecutionJournal = {
      create: (r) => journal.create(r),
      get: (name) => journal.get(name),
      update: (name, change) => journal.update(name, change),
      remove: (name, ifVersion) => journal.remove(name, ifVersion),
      list: async () => {
        const listed = await journal.list();
        await journal.update(record.name, (r) => ({ ...r, cause: "written meanwhile" }));
        return listed;
      },
    };
    const report = await sweepExpiredBookings(runtime(), changing);
    expect(report.executions).toEqual([]);
    expect(await journal.get(record.name)).toMatchObject({ cause: "written meanwhile" });
  });
});

describe("the job records' expiry sweep", () => {
  const finished = { finishedAt: NOW.toISOString() };

  it("deletes an expired job record and keeps an unexpired one and an unfinished one", async () => {
    const gone = await storedJob(1, { ...finished, expiresAtEpochSeconds: nowS - 1 });
    const stays = await storedJob(2, { ...finished, expiresAtEpochSeconds: nowS + 60 });
    const running = await storedJob(3);
    const report = await sweepExpiredJobs(runtime());
    expect(report).toEqual({ deleted: [gone.key], kept: [] });
    expect(await db.store.getJob(gone.key)).toBeNull();
    expect(await db.store.getJob(stays.key)).toEqual(stays);
    expect(await db.store.getJob(running.key)).toEqual(running);
  });

  it("keeps an expired job record that changed after it was read", async () => {
    const changed = await storedJob(1, { ...finished, expiresAtEpochSeconds: nowS - 1 });
    const gone = await storedJob(2, { ...finished, expiresAtEpochSeconds: nowS - 1 });
    const store = listingStore(
      async () => undefined,
      async () => {
        await db.store.updateJob(changed.key, (job) => ({ ...job, cleanupSince: job.createdAt }));
      },
    );
    const report = await sweepExpiredJobs(runtime(store));
    expect(report).toEqual({ deleted: [gone.key], kept: [changed.key] });
    expect(await db.store.getJob(changed.key)).toMatchObject({ version: 2 });
    // The next sweep reads it again and decides on what it is now.
    expect((await sweepExpiredJobs(runtime())).deleted).toEqual([changed.key]);
  });

  it("is part of the whole sweep, beside the bookings'", async () => {
    await stored("gone", expired);
    const job = await storedJob(1, { ...finished, expiresAtEpochSeconds: nowS - 1 });
    const report = await sweep(runtime(), journal);
    expect(report.expiry.deleted).toEqual(["gone"]);
    expect(report.jobs).toEqual({ deleted: [job.key], kept: [] });
    expect(await db.store.getJob(job.key)).toBeNull();
    expect(await db.store.listJobs()).toEqual([]);
  });
});

describe("the whole sweep", () => {
  it("deletes expired bookings even when the directory sweep fails, then says it failed", async () => {
    await stored("gone", expired);
    await stored("entry", {
      state: "failed",
      access: {
        vpnUser: "ada",
        vpnUserDn: "uid=ada,ou=people,dc=lab",
        vpnEntryUuid: null,
        vpnIntendedDn: null,
        vpnPerson: null,
        vpnAccountFrom: null,
        rootPasswordSet: false,
        sshKey: null,
        vpnOthers: [],
        otherSshKeys: {},
        sealedCredentials: null,
        handover: "delivered",
        handoverError: null,
      },
    });
    const config = {
      ...CONFIG,
      handover: { vpn: true },
      cleanConfig: {
        vpn: { ldap: { url: "ldap://127.0.0.1:9" }, directory: { user: "u", root: "r" } },
      },
    };
    const rt = {
      ...runtime(db.store, config),
      directoryFor: () => {
        throw new TransientError("directory unreachable");
      },
    };
    await expect(sweep(rt, journal)).rejects.toThrow("directory unreachable");
    expect(await db.store.getBooking("gone")).toBeNull();
    expect(await db.store.getBooking("entry")).not.toBeNull();
  });

  it("the listener sweeps without a hand-over section too, with its journal, once per interval", async () => {
    await stored("gone", expired);
    await execution("gone", "release", "SUCCEEDED");
    const embedded = {
      runtime: runtime(),
      storeHandle: { journal },
    } as unknown as EmbeddedRuntime;
    const listener = new Listener(embedded, { drainMs: 0, watchIntervalMs: 1000 });
    await listener.sweepIfDue();
    expect(await db.store.getBooking("gone")).toBeNull();
    expect(await journal.list()).toEqual([]);
    // Not due again before the interval (an hour without a hand-over section).
    await stored("next", expired);
    await listener.sweepIfDue();
    expect(await db.store.getBooking("next")).not.toBeNull();
  });
});
