import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbStore } from "../lib/adapters/aws/dynamodb-store";
import { createDynamoClient, ensureTables } from "../lib/adapters/aws/dynamodb-tables";
import { StoreLockedError, startEmbeddedDynamo } from "../lib/adapters/local/embedded-dynamodb";
import type { Booking } from "../lib/domain/booking";
import type { Host } from "../lib/domain/host";
import {
  ConfigError,
  ConflictError,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../lib/errors";
import { startTestStore, type TestStore, uniqueTableNames } from "./helpers/dynalite";

const T0 = "2024-05-01T10:00:00.000Z";

function makeBooking(overrides: Partial<Booking> = {}): Booking {
  return {
    id: "101",
    resourceId: "7",
    hostName: "pod1-node1",
    start: "2024-05-02T09:00:00.000Z",
    end: "2024-05-09T09:00:00.000Z",
    installer: "Fuel",
    scenario: null,
    purpose: "testing",
    user: null,
    state: "scheduled",
    provisionGeneration: 0,
    releaseGeneration: 0,
    vanished: false,
    failure: null,
    cleanup: null,
    progress: null,
    access: null,
    run: null,
    wait: null,
    endNotice: null,
    job: null,
    createdAt: T0,
    updatedAt: T0,
    expiresAtEpochSeconds: null,
    version: 1,
    ...overrides,
  };
}

function makeHost(overrides: Partial<Host> = {}): Host {
  return {
    name: "pod1-node1",
    fogId: "12",
    mac: "aa:bb:cc:dd:ee:01",
    state: "free",
    bookingId: null,
    hostKey: null,
    hostKeyDeployed: null,
    deployed: null,
    address: null,
    reason: null,
    failures: 0,
    lastFailure: null,
    history: [],
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}

/** The claim rule the booking logic uses: a free host, or one this booking already holds. */
function claimFor(bookingId: string) {
  return (host: Host): Host | null =>
    host.state === "free" || host.bookingId === bookingId
      ? { ...host, state: "claimed", bookingId }
      : null;
}

let t: TestStore;
let nextId = 1000;
/** Each test works on its own items so the tests stay independent on one shared dynalite. */
const freshId = (): string => String(nextId++);

beforeAll(async () => {
  t = await startTestStore();
});

afterAll(async () => {
  await t?.close();
});

describe("DynamoDbStore creates", () => {
  it("creates a booking once and reads it back unchanged, nulls included", async () => {
    const booking = makeBooking({ id: freshId(), installer: null, scenario: null });
    expect(await t.store.createBooking(booking)).toBe(true);
    expect(await t.store.createBooking({ ...booking, purpose: "overwrite?" })).toBe(false);
    expect(await t.store.getBooking(booking.id)).toEqual(booking);
  });

  it("creates a host once", async () => {
    const host = makeHost({ name: `host-${freshId()}` });
    expect(await t.store.createHost(host)).toBe(true);
    expect(await t.store.createHost({ ...host, state: "quarantined" })).toBe(false);
    expect(await t.store.getHost(host.name)).toEqual(host);
  });

  it("returns null for missing items and deletes idempotently", async () => {
    const booking = makeBooking({ id: freshId() });
    expect(await t.store.getBooking(booking.id)).toBeNull();
    expect(await t.store.getHost("no-such-host")).toBeNull();
    await t.store.createBooking(booking);
    await t.store.deleteBooking(booking.id);
    expect(await t.store.getBooking(booking.id)).toBeNull();
    await expect(t.store.deleteBooking(booking.id)).resolves.toBeUndefined();
  });

  it("lists every item of a table", async () => {
    const s = await startTestStore();
    try {
      const names = ["a", "b", "c"].map((n) => `host-${n}`);
      for (const name of names) await s.store.createHost(makeHost({ name }));
      await s.store.createBooking(makeBooking({ id: "1" }));
      const hosts = await s.store.listHosts();
      expect(hosts.map((h) => h.name).sort()).toEqual(names);
      expect((await s.store.listBookings()).map((b) => b.id)).toEqual(["1"]);
    } finally {
      await s.close();
    }
  });
});

describe("DynamoDbStore compare-and-set updates", () => {
  it("applies a change, bumping version and updatedAt", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    const result = await t.store.updateBooking(booking.id, (b) => ({
      ...b,
      progress: "imaging 45%",
    }));
    expect(result.changed).toBe(true);
    expect(result.item.progress).toBe("imaging 45%");
    expect(result.item.version).toBe(booking.version + 1);
    expect(result.item.updatedAt).not.toBe(T0);
    expect(await t.store.getBooking(booking.id)).toEqual(result.item);
  });

  it("writes nothing when the change function declines", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    const result = await t.store.updateBooking(booking.id, () => null);
    expect(result).toEqual({ changed: false, item: booking });
    expect((await t.store.getBooking(booking.id))?.version).toBe(booking.version);
  });

  it("throws NotFoundError for missing items", async () => {
    await expect(t.store.updateBooking("missing", (b) => b)).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.store.updateHost("missing", (h) => h)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("refuses a change that renames the item", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    await expect(t.store.updateBooking(booking.id, (b) => ({ ...b, id: "other" }))).rejects.toThrow(
      /may not change its key/,
    );
  });

  it("loses no update among 20 concurrent writers on separate clients", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    const writers = Array.from({ length: 20 }, () => t.openStore());
    const results = await Promise.all(
      writers.map((store) =>
        store.updateBooking(booking.id, (b) => ({
          ...b,
          provisionGeneration: b.provisionGeneration + 1,
        })),
      ),
    );
    expect(results.every((r) => r.changed)).toBe(true);
    const final = await t.store.getBooking(booking.id);
    expect(final?.provisionGeneration).toBe(20);
    expect(final?.version).toBe(booking.version + 20);
  });

  it("lets exactly one of 10 racing transitions move scheduled -> provisioning", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    const racers = Array.from({ length: 10 }, () => t.openStore());
    const results = await Promise.all(
      racers.map((store) =>
        store.updateBooking(booking.id, (b) =>
          b.state === "scheduled"
            ? { ...b, state: "provisioning", provisionGeneration: b.provisionGeneration + 1 }
            : null,
        ),
      ),
    );
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    const final = await t.store.getBooking(booking.id);
    expect(final?.state).toBe("provisioning");
    expect(final?.provisionGeneration).toBe(1);
    expect(final?.version).toBe(booking.version + 1);
  });

  it("gives a free host to exactly one of several bookings claiming it", async () => {
    const host = makeHost({ name: `host-${freshId()}` });
    await t.store.createHost(host);
    const bookingIds = Array.from({ length: 8 }, (_, i) => `claim-${i}`);
    const results = await Promise.all(
      bookingIds.map((id) => t.openStore().updateHost(host.name, claimFor(id))),
    );
    const winners = results.filter((r) => r.changed);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!.item.bookingId;
    const final = await t.store.getHost(host.name);
    expect(final).toMatchObject({ state: "claimed", bookingId: winner });
    // Losers see the winner's claim; the winner may claim again (a retried step).
    expect(results.filter((r) => !r.changed).every((r) => r.item.bookingId === winner)).toBe(true);
    expect((await t.store.updateHost(host.name, claimFor(winner!))).changed).toBe(true);
    expect((await t.store.updateHost(host.name, claimFor("late"))).changed).toBe(false);
  });
});

describe("DynamoDbStore failures", () => {
  it("gives up with ConflictError when every write loses to a rival", async () => {
    const booking = makeBooking({ id: freshId() });
    await t.store.createBooking(booking);
    const client = createDynamoClient({ endpoint: t.endpoint, credentials: t.credentials });
    let rivalWrites = 0;
    // Before each of our conditional puts, a rival bumps the version: every attempt must lose.
    client.middlewareStack.add(
      (next) => async (args) => {
        if ("ConditionExpression" in args.input && args.input.TableName === t.tables.bookings) {
          await t.store.updateBooking(booking.id, (b) => ({ ...b }));
          rivalWrites++;
        }
        return next(args);
      },
      { step: "initialize" },
    );
    try {
      const store = new DynamoDbStore(client, t.tables, { maxUpdateAttempts: 3 });
      const update = store.updateBooking(booking.id, (b) => ({ ...b, progress: "mine" }));
      await expect(update).rejects.toBeInstanceOf(ConflictError);
      await expect(update).rejects.toThrow(new RegExp(`booking "${booking.id}"`));
      expect(rivalWrites).toBe(3);
      expect(await t.store.getBooking(booking.id)).toMatchObject({
        progress: null,
        version: booking.version + 3,
      });
    } finally {
      client.destroy();
    }
  });

  it("reports a corrupted item clearly instead of returning it", async () => {
    await t.client.send(
      new PutItemCommand({
        TableName: t.tables.bookings,
        Item: {
          id: { S: "corrupt-1" },
          state: { S: "exploded" },
          version: { S: "not a number" },
        },
      }),
    );
    const read = t.store.getBooking("corrupt-1");
    await expect(read).rejects.toBeInstanceOf(ProtocolError);
    await expect(read).rejects.toThrow(/booking item "corrupt-1".*state/);
    await expect(t.store.updateBooking("corrupt-1", (b) => b)).rejects.toBeInstanceOf(
      ProtocolError,
    );
    await t.store.deleteBooking("corrupt-1");
  });

  it("reports an unreachable endpoint as TransientError", async () => {
    const gone = await startEmbeddedDynamo({ path: null });
    await gone.close();
    const client = createDynamoClient({ endpoint: gone.endpoint });
    try {
      const store = new DynamoDbStore(client, t.tables);
      await expect(store.getBooking("1")).rejects.toBeInstanceOf(TransientError);
    } finally {
      client.destroy();
    }
  });

  it("names the missing table", async () => {
    const store = new DynamoDbStore(t.client, {
      hosts: "nope-hosts",
      bookings: "nope-bookings",
      vpnPeople: "nope-vpn-people",
      jobs: "nope-jobs",
    });
    const read = store.getBooking("1");
    await expect(read).rejects.toBeInstanceOf(ConfigError);
    await expect(read).rejects.toThrow(/"nope-bookings"/);
    await expect(store.listHosts()).rejects.toThrow(/"nope-hosts"/);
  });
});

describe("embedded dynalite on disk", () => {
  it("keeps data across close and restart on the same path, and locks the path meanwhile", async () => {
    const dir = await mkdtemp(join(tmpdir(), "laas-store-"));
    const path = join(dir, "db");
    const tables = uniqueTableNames();
    const booking = makeBooking({ id: "persisted" });
    const host = makeHost({ name: "persisted-host" });
    try {
      const first = await startEmbeddedDynamo({ path });
      const firstClient = createDynamoClient({
        endpoint: first.endpoint,
        credentials: first.credentials,
      });
      try {
        await ensureTables(firstClient, tables);
        const store = new DynamoDbStore(firstClient, tables);
        await store.createBooking(booking);
        await store.createHost(host);
        await store.updateBooking(booking.id, (b) => ({ ...b, state: "ready" }));
        await expect(startEmbeddedDynamo({ path })).rejects.toBeInstanceOf(StoreLockedError);
      } finally {
        firstClient.destroy();
        await first.close();
      }

      const second = await startEmbeddedDynamo({ path });
      const secondClient = createDynamoClient({
        endpoint: second.endpoint,
        credentials: second.credentials,
      });
      try {
        await ensureTables(secondClient, tables);
        const store = new DynamoDbStore(secondClient, tables);
        expect(await store.getBooking(booking.id)).toMatchObject({ state: "ready", version: 2 });
        expect(await store.getHost(host.name)).toEqual(host);
      } finally {
        secondClient.destroy();
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("createDynamoClient", () => {
  it("uses dummy credentials and us-east-1 for a loopback endpoint", async () => {
    const client = createDynamoClient({ endpoint: "http://127.0.0.1:4567" }, {});
    try {
      expect(await client.config.region()).toBe("us-east-1");
      expect(await client.config.credentials()).toMatchObject({ accessKeyId: "local" });
    } finally {
      client.destroy();
    }
  });

  it("treats AWS_ENDPOINT_URL on loopback (LocalStack) the same way", async () => {
    const client = createDynamoClient({}, { AWS_ENDPOINT_URL: "http://localhost:4566" });
    try {
      expect(await client.config.region()).toBe("us-east-1");
      expect(await client.config.credentials()).toMatchObject({ accessKeyId: "local" });
    } finally {
      client.destroy();
    }
  });
});
