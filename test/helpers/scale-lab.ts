/**
 * A lab at scale for poll's reconciliation: many hosts, many future bookings on a paginated
 * simulated dashboard, and a dynalite whose every request is counted (dynamo-counter.ts). The
 * store and dashboard a poller uses are opened separately (openStore, openDashboard), so that a
 * benchmark can keep the lab in another process and measure the poller's own memory.
 */
import { DynamoDbStore } from "../../lib/adapters/aws/dynamodb-store";
import {
  createDynamoClient,
  ensureTables,
  type TableNames,
} from "../../lib/adapters/aws/dynamodb-tables";
import type { StoreCredentials } from "../../lib/adapters/local/embedded-dynamodb";
import { startEmbeddedDynamoThread } from "../../lib/adapters/local/embedded-dynamodb-thread";
import { PharosDashboard } from "../../lib/adapters/pharos/dashboard-client";
import type { InventoryHost } from "../../lib/config/types";
import { newHost } from "../../lib/domain/host";
import { silentLogger } from "../../lib/log";
import { Secret } from "../../lib/secret";
import {
  bookingAt,
  type DashboardSim,
  type RawBooking,
  startDashboardSim,
} from "../../sim/dashboard-sim";
import { uniqueTableNames } from "./dynalite";
import { type CountingProxy, startCountingProxy } from "./dynamo-counter";

/** The poll's clock in a scale lab: every booking starts a day or more after it. */
export const SCALE_NOW = new Date("2026-06-01T12:00:00Z");

/** Bookings per dashboard page, as DRF's PageNumberPagination serves them. */
export const SCALE_PAGE_SIZE = 100;

/** Host `h<n>` is dashboard resource `<n>`. */
export function scaleInventory(hosts: number): { file: string; hosts: InventoryHost[] } {
  return {
    file: "inventory.yaml",
    hosts: Array.from({ length: hosts }, (_, i) => ({
      resourceId: String(i + 1),
      name: `h${i + 1}`,
      address: null,
      power: null,
    })),
  };
}

/**
 * Booking `first + k` on resource `k % hosts + 1`, an hour long, on day `1 + ⌊k / hosts⌋` after
 * SCALE_NOW: one a day on each host, none due.
 */
export function scaleBooking(id: number, hosts: number): RawBooking {
  const k = id - 1;
  const start = new Date(SCALE_NOW.getTime() + (1 + Math.floor(k / hosts)) * 86_400_000);
  return bookingAt({
    id,
    resource_id: (k % hosts) + 1,
    start,
    end: new Date(start.getTime() + 3_600_000),
    installer_name: "Fuel",
    purpose: `booking ${id}`,
  });
}

export interface ScaleLabOptions {
  bookings: number;
  hosts: number;
  /** The store's LevelDB directory, as the embedded default keeps it; default: in memory. */
  database?: string;
}

/** Where a poller reaches the lab: what openStore/openDashboard need, and nothing else. */
export interface ScaleLabAddress {
  /** The counting proxy in front of dynalite. */
  storeEndpoint: string;
  credentials: StoreCredentials;
  tables: TableNames;
  dashboardUrl: string;
  dashboardToken: string;
  hosts: number;
}

export interface ScaleLab {
  readonly address: ScaleLabAddress;
  /** The store straight at dynalite, its requests not counted: for a test's own looks. */
  readonly direct: DynamoDbStore;
  readonly proxy: CountingProxy;
  readonly dashboard: DashboardSim;
  close(): Promise<void>;
}

export async function startScaleLab(options: ScaleLabOptions): Promise<ScaleLab> {
  // In a thread of its own, as the embedded default runs it (and so not sharing one with the
  // dashboard, a server of its own in a real lab).
  const dynamo = await startEmbeddedDynamoThread({ path: options.database ?? null });
  const closers: Array<() => Promise<void>> = [() => dynamo.close()];
  const close = async () => {
    while (closers.length > 0) await closers.pop()?.();
  };
  try {
    const client = createDynamoClient({
      endpoint: dynamo.endpoint,
      credentials: dynamo.credentials,
    });
    closers.push(async () => client.destroy());
    const tables = uniqueTableNames();
    await ensureTables(client, tables);
    const direct = new DynamoDbStore(client, tables);
    const proxy = await startCountingProxy(dynamo.endpoint);
    closers.push(() => proxy.close());
    const dashboard = await startDashboardSim({
      pageSize: SCALE_PAGE_SIZE,
      bookings: Array.from({ length: options.bookings }, (_, i) =>
        scaleBooking(i + 1, options.hosts),
      ),
    });
    closers.push(() => dashboard.close());
    // Straight to dynalite: the hosts are the lab's, not what a poll is measured by.
    for (let i = 1; i <= options.hosts; i++) await direct.createHost(newHost(`h${i}`, null));
    return {
      address: {
        storeEndpoint: proxy.endpoint,
        credentials: dynamo.credentials,
        tables,
        dashboardUrl: dashboard.url,
        dashboardToken: dashboard.token,
        hosts: options.hosts,
      },
      direct,
      proxy,
      dashboard,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A store through the counting proxy, on its own client (as a poller process has). */
export function openStore(address: ScaleLabAddress): { store: DynamoDbStore; close(): void } {
  const client = createDynamoClient({
    endpoint: address.storeEndpoint,
    credentials: address.credentials,
  });
  return { store: new DynamoDbStore(client, address.tables), close: () => client.destroy() };
}

export function openDashboard(address: ScaleLabAddress): PharosDashboard {
  return new PharosDashboard(
    {
      url: address.dashboardUrl,
      token: new Secret(address.dashboardToken),
      inventory: scaleInventory(address.hosts),
      // Pages of SCALE_PAGE_SIZE: room for the largest lab measured (10,000 bookings).
      maxPages: 1_000,
    },
    silentLogger,
  );
}
