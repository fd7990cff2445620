/**
 * Store.updateBooking with the item the caller already holds (`expected`): the compare-and-set
 * is written on that copy's version without reading first, and falls back to reading the latest
 * item whenever the copy may not be it. Counted at the store's endpoint (dynamo-counter.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DynamoDbStore } from "../lib/adapters/aws/dynamodb-store";
import { createDynamoClient } from "../lib/adapters/aws/dynamodb-tables";
import type { Booking } from "../lib/domain/booking";
import { NotFoundError } from "../lib/errors";
import { newBooking } from "../lib/lifecycle/transitions";
import { dashboardBooking } from "./helpers/bookings";
import { startTestStore, type TestStore } from "./helpers/dynalite";
import { type CountingProxy, startCountingProxy } from "./helpers/dynamo-counter";

const noted =
  (progress: string) =>
  (b: Booking): Booking | null =>
    b.progress === progress ? null : { ...b, progress };

describe("Store.updateBooking on an expected item", () => {
  let db: TestStore;
  let proxy: CountingProxy;
  let store: DynamoDbStore;
  let destroy: () => void;
  let held: Booking;

  beforeEach(async () => {
    db = await startTestStore();
    proxy = await startCountingProxy(db.endpoint);
    const client = createDynamoClient({ endpoint: proxy.endpoint, credentials: db.credentials });
    destroy = () => client.destroy();
    store = new DynamoDbStore(client, db.tables);
    held = newBooking(dashboardBooking({ id: "1", hostName: "h1" }), new Date());
    await db.store.createBooking(held);
    proxy.reset();
  });
  afterEach(async () => {
    destroy();
    await proxy.close();
    await db.close();
  });

  it("writes on the copy's version without reading when the copy is the latest", async () => {
    const { changed, item } = await store.updateBooking("1", noted("edited"), { expected: held });
    expect(changed).toBe(true);
    expect(item).toMatchObject({ progress: "edited", version: held.version + 1 });
    expect(proxy.counts().byOperation).toEqual({ PutItem: 1 });
    expect(await db.store.getBooking("1")).toEqual(item);
  });

  it("reads again and keeps the other writer's change when the copy is stale", async () => {
    await db.store.updateBooking("1", (b) => ({ ...b, purpose: "another writer" }));
    const { changed, item } = await store.updateBooking("1", noted("edited"), { expected: held });
    expect(changed).toBe(true);
    expect(item).toMatchObject({ progress: "edited", purpose: "another writer", version: 2 });
    expect(proxy.counts().failedByOperation).toEqual({ PutItem: 1 });
    expect(proxy.counts().byOperation).toEqual({ PutItem: 2, GetItem: 1 });
  });

  it("decides again on the latest item when the change declines on the copy", async () => {
    // Another writer noted "edited" and a later writer took it back: the copy says "edited"
    // already, the store does not.
    const stale = { ...held, progress: "edited" };
    const { changed, item } = await store.updateBooking("1", noted("edited"), { expected: stale });
    expect(changed).toBe(true);
    expect(item.progress).toBe("edited");
    expect(proxy.counts().byOperation).toEqual({ GetItem: 1, PutItem: 1 });
  });

  it("never brings back a deleted booking from the copy", async () => {
    await db.store.deleteBooking("1");
    await expect(
      store.updateBooking("1", noted("edited"), { expected: held }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await db.store.getBooking("1")).toBeNull();
  });

  it("refuses a copy of another booking", async () => {
    await expect(store.updateBooking("2", noted("edited"), { expected: held })).rejects.toThrow(
      /expected for "2" is "1"/,
    );
    expect(proxy.counts().total).toBe(0);
  });
});
