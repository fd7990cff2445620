/**
 * The embedded store in a thread of its own (lib/adapters/local/embedded-dynamodb-thread.ts), as
 * the embedded default runs it: it serves the same guarded dynalite, its refusals cross back as
 * the same errors, it gives the directory back when closed, and a thread that dies unasked is
 * reported rather than left as an endpoint nobody answers on.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DynamoDbStore } from "../lib/adapters/aws/dynamodb-store";
import {
  createDynamoClient,
  ensureTables,
  type TableNames,
} from "../lib/adapters/aws/dynamodb-tables";
import { StoreLockedError } from "../lib/adapters/local/embedded-dynamodb";
import {
  StoreThreadError,
  startEmbeddedDynamoThread,
} from "../lib/adapters/local/embedded-dynamodb-thread";
import { newHost } from "../lib/domain/host";

const TABLES: TableNames = {
  hosts: "hosts",
  bookings: "bookings",
  vpnPeople: "vpn-people",
  jobs: "jobs",
};

describe("the embedded store's thread", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "laas-store-thread-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("serves the store, signed requests only, and keeps what it was given across a restart", async () => {
    const path = join(dir, "dynamodb");
    const first = await startEmbeddedDynamoThread({ path });
    const client = createDynamoClient({ endpoint: first.endpoint, credentials: first.credentials });
    await ensureTables(client, TABLES);
    await new DynamoDbStore(client, TABLES).createHost(newHost("h1", null));
    const unsigned = await fetch(first.endpoint, { method: "POST", body: "{}" });
    expect(unsigned.status).toBe(403);
    client.destroy();
    await first.close();

    const second = await startEmbeddedDynamoThread({ path });
    const again = createDynamoClient({
      endpoint: second.endpoint,
      credentials: second.credentials,
    });
    try {
      expect(await new DynamoDbStore(again, TABLES).getHost("h1")).toMatchObject({ name: "h1" });
    } finally {
      again.destroy();
      await second.close();
    }
  });

  it("refuses a directory another store holds with the same error as in one thread", async () => {
    const path = join(dir, "dynamodb");
    const holder = await startEmbeddedDynamoThread({ path });
    try {
      const second = startEmbeddedDynamoThread({ path });
      await expect(second).rejects.toBeInstanceOf(StoreLockedError);
      await expect(second).rejects.toThrow(/in use by another process/);
    } finally {
      await holder.close();
    }
  });

  it("reports a thread that stopped unasked, and closes at once after it", async () => {
    const reported: StoreThreadError[] = [];
    const store = await startEmbeddedDynamoThread(
      { path: null },
      {
        entry: pathToFileURL(join(import.meta.dirname, "fixtures/store-thread-crash.ts")).href,
        onUnexpectedExit: (error) => reported.push(error),
      },
    );
    await expect.poll(() => reported.length).toBeGreaterThan(0);
    expect(reported[0]).toBeInstanceOf(StoreThreadError);
    expect(reported.map((e) => e.message).join(" ")).toMatch(/crashed|exited/);
    await store.close();
  });

  it("reports nothing for a thread closed as asked", async () => {
    const reported: StoreThreadError[] = [];
    const store = await startEmbeddedDynamoThread(
      { path: null },
      { onUnexpectedExit: (error) => reported.push(error) },
    );
    await store.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reported).toEqual([]);
  });
});
