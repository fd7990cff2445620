import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  type NativeAttributeValue,
  PutCommand,
  paginateScan,
} from "@aws-sdk/lib-dynamodb";
import pRetry from "p-retry";
import { z } from "zod";
import {
  BOOKING_STATES,
  type Booking,
  type BookingAccess,
  HANDOVER_STATES,
} from "../../domain/booking";
import { HOST_STATES, type Host } from "../../domain/host";
import {
  ConfigError,
  ConflictError,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../../errors";
import type { Store, Updated } from "../../ports/store";
import { defaultTableNames, ensureTables, type TableNames, tableKeys } from "./dynamodb-tables";

type Item = Record<string, NativeAttributeValue>;

// ---------------------------------------------------------------------------------------------
// Item <-> domain mapping. Written out field by field so that a field added to the domain types
// fails to compile here instead of silently not being stored; nullable fields are stored as NULL.

const isoTimestamp = z.iso.datetime({ offset: true });
const counter = z.number().int().nonnegative();

const accessSchema = z.object({
  vpnUser: z.string().nullable(),
  vpnUserDn: z.string().nullable(),
  rootPasswordSet: z.boolean(),
  sshKey: z.string().nullable(),
  sealedCredentials: z.string().nullable(),
  handover: z.enum(HANDOVER_STATES),
  handoverError: z.string().nullable(),
}) satisfies z.ZodType<BookingAccess>;

const bookingSchema = z.object({
  id: z.string().min(1),
  resourceId: z.string(),
  hostName: z.string(),
  start: isoTimestamp,
  end: isoTimestamp,
  installer: z.string().nullable(),
  scenario: z.string().nullable(),
  purpose: z.string(),
  // Absent on items written before bookings knew their user.
  user: z.string().nullable().default(null),
  state: z.enum(BOOKING_STATES),
  provisionGeneration: counter,
  releaseGeneration: counter,
  vanished: z.boolean(),
  failure: z.string().nullable(),
  progress: z.string().nullable(),
  access: accessSchema.nullable().default(null),
  createdAt: isoTimestamp,
  updatedAt: isoTimestamp,
  version: counter,
}) satisfies z.ZodType<Booking, unknown>;

const hostSchema = z.object({
  name: z.string().min(1),
  fogId: z.string().nullable(),
  mac: z.string().nullable(),
  state: z.enum(HOST_STATES),
  bookingId: z.string().nullable(),
  hostKey: z.string().nullable(),
  // Absent on items written before hosts had an address.
  address: z.string().nullable().default(null),
  reason: z.string().nullable(),
  updatedAt: isoTimestamp,
  version: counter,
}) satisfies z.ZodType<Host>;

function bookingToItem(booking: Booking): Item {
  const item: { [K in keyof Booking]-?: Booking[K] } = {
    id: booking.id,
    resourceId: booking.resourceId,
    hostName: booking.hostName,
    start: booking.start,
    end: booking.end,
    installer: booking.installer,
    scenario: booking.scenario,
    purpose: booking.purpose,
    user: booking.user,
    state: booking.state,
    provisionGeneration: booking.provisionGeneration,
    releaseGeneration: booking.releaseGeneration,
    vanished: booking.vanished,
    failure: booking.failure,
    progress: booking.progress,
    access: booking.access,
    createdAt: booking.createdAt,
    updatedAt: booking.updatedAt,
    version: booking.version,
  };
  return item;
}

function hostToItem(host: Host): Item {
  const item: { [K in keyof Host]-?: Host[K] } = {
    name: host.name,
    fogId: host.fogId,
    mac: host.mac,
    state: host.state,
    bookingId: host.bookingId,
    hostKey: host.hostKey,
    address: host.address,
    reason: host.reason,
    updatedAt: host.updatedAt,
    version: host.version,
  };
  return item;
}

/** How one table's items are keyed, written and read back. */
interface ItemKind<T> {
  label: "host" | "booking";
  keyAttribute: string;
  keyOf(value: T): string;
  toItem(value: T): Item;
  schema: z.ZodType<T>;
}

const hostKind: ItemKind<Host> = {
  label: "host",
  keyAttribute: tableKeys.hosts,
  keyOf: (host) => host.name,
  toItem: hostToItem,
  schema: hostSchema,
};

const bookingKind: ItemKind<Booking> = {
  label: "booking",
  keyAttribute: tableKeys.bookings,
  keyOf: (booking) => booking.id,
  toItem: bookingToItem,
  schema: bookingSchema,
};

// ---------------------------------------------------------------------------------------------
// SDK error mapping.

const THROTTLING_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
]);

const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ENOTFOUND",
]);

function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

function httpStatusOf(error: Error): number | undefined {
  const metadata: unknown = Reflect.get(error, "$metadata");
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const status: unknown = Reflect.get(metadata, "httpStatusCode");
  return typeof status === "number" ? status : undefined;
}

/**
 * Turns an SDK failure into one of the project's errors (the SDK has already retried throttling
 * and network errors a few times by then). Unknown errors pass through unchanged.
 */
function mapSdkError(error: unknown, table: string, action: string): unknown {
  if (!(error instanceof Error)) return error;
  const where = `DynamoDB ${action} on table "${table}"`;
  if (error.name === "ResourceNotFoundException") {
    return new ConfigError(
      `DynamoDB table "${table}" does not exist (check LAAS_HOSTS_TABLE / LAAS_BOOKINGS_TABLE, or deploy the tables)`,
      { cause: error },
    );
  }
  const code: unknown = Reflect.get(error, "code");
  const status = httpStatusOf(error);
  if (
    THROTTLING_ERRORS.has(error.name) ||
    (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) ||
    (status !== undefined && status >= 500)
  ) {
    return new TransientError(`${where} failed: ${error.message}`, { cause: error });
  }
  return error;
}

/** Raised inside the compare-and-set loop when another writer bumped the version first. */
class LostRace extends Error {
  override name = "LostRace";
}

export interface DynamoDbStoreOptions {
  /** Attempts of one compare-and-set update before giving up with ConflictError. */
  maxUpdateAttempts?: number;
}

/**
 * The Store port over DynamoDB (or dynalite, which speaks the same API). Only single-item
 * conditional writes are used — dynalite has no transactions and no TTL.
 */
export class DynamoDbStore implements Store {
  private readonly doc: DynamoDBDocumentClient;
  private readonly maxUpdateAttempts: number;

  constructor(
    client: DynamoDBClient,
    private readonly tables: TableNames,
    options: DynamoDbStoreOptions = {},
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
    this.maxUpdateAttempts = options.maxUpdateAttempts ?? 20;
  }

  /**
   * Creates missing tables, then the store: for the embedded default and tests. In the cloud the
   * tables come from serverless.yml and the constructor is used directly.
   */
  static async open(
    client: DynamoDBClient,
    tables: TableNames = defaultTableNames,
    options: DynamoDbStoreOptions = {},
  ): Promise<DynamoDbStore> {
    await ensureTables(client, tables);
    return new DynamoDbStore(client, tables, options);
  }

  getHost(name: string): Promise<Host | null> {
    return this.read(hostKind, this.tables.hosts, name);
  }

  listHosts(): Promise<Host[]> {
    return this.scan(hostKind, this.tables.hosts);
  }

  createHost(host: Host): Promise<boolean> {
    return this.create(hostKind, this.tables.hosts, host);
  }

  deleteHost(name: string): Promise<void> {
    return this.remove(hostKind, this.tables.hosts, name);
  }

  updateHost(name: string, change: (current: Host) => Host | null): Promise<Updated<Host>> {
    return this.update(hostKind, this.tables.hosts, name, change);
  }

  getBooking(id: string): Promise<Booking | null> {
    return this.read(bookingKind, this.tables.bookings, id);
  }

  listBookings(): Promise<Booking[]> {
    return this.scan(bookingKind, this.tables.bookings);
  }

  createBooking(booking: Booking): Promise<boolean> {
    return this.create(bookingKind, this.tables.bookings, booking);
  }

  deleteBooking(id: string): Promise<void> {
    return this.remove(bookingKind, this.tables.bookings, id);
  }

  updateBooking(
    id: string,
    change: (current: Booking) => Booking | null,
  ): Promise<Updated<Booking>> {
    return this.update(bookingKind, this.tables.bookings, id, change);
  }

  private parse<T>(kind: ItemKind<T>, table: string, item: Item): T {
    const result = kind.schema.safeParse(item);
    if (result.success) return result.data;
    const key: unknown = item[kind.keyAttribute];
    const problems = result.error.issues
      .map((issue) => `${issue.path.join(".") || "(item)"}: ${issue.message}`)
      .join("; ");
    throw new ProtocolError(
      `Corrupted ${kind.label} item ${typeof key === "string" ? `"${key}" ` : ""}in table "${table}": ${problems}`,
    );
  }

  private async read<T>(kind: ItemKind<T>, table: string, key: string): Promise<T | null> {
    let item: Item | undefined;
    try {
      const output = await this.doc.send(
        new GetCommand({
          TableName: table,
          Key: { [kind.keyAttribute]: key },
          ConsistentRead: true,
        }),
      );
      item = output.Item;
    } catch (error) {
      throw mapSdkError(error, table, "GetItem");
    }
    return item === undefined ? null : this.parse(kind, table, item);
  }

  private async scan<T>(kind: ItemKind<T>, table: string): Promise<T[]> {
    const items: T[] = [];
    try {
      for await (const page of paginateScan(
        { client: this.doc },
        { TableName: table, ConsistentRead: true },
      )) {
        for (const item of page.Items ?? []) items.push(this.parse(kind, table, item));
      }
    } catch (error) {
      throw mapSdkError(error, table, "Scan");
    }
    return items;
  }

  private async create<T>(kind: ItemKind<T>, table: string, value: T): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: table,
          Item: kind.toItem(value),
          ConditionExpression: "attribute_not_exists(#key)",
          ExpressionAttributeNames: { "#key": kind.keyAttribute },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw mapSdkError(error, table, "PutItem");
    }
  }

  private async remove<T>(kind: ItemKind<T>, table: string, key: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({ TableName: table, Key: { [kind.keyAttribute]: key } }),
      );
    } catch (error) {
      throw mapSdkError(error, table, "DeleteItem");
    }
  }

  /**
   * Compare-and-set: read the latest item, let `change` decide, write only if nobody bumped the
   * version meanwhile; otherwise read again and let `change` decide again. `change` must be pure:
   * it may run several times and only its last result is written.
   */
  private async update<T extends { version: number; updatedAt: string }>(
    kind: ItemKind<T>,
    table: string,
    key: string,
    change: (current: T) => T | null,
  ): Promise<Updated<T>> {
    const attempt = async (): Promise<Updated<T>> => {
      const current = await this.read(kind, table, key);
      if (current === null) {
        throw new NotFoundError(`No ${kind.label} "${key}" in table "${table}"`);
      }
      const proposed = change(current);
      if (proposed === null) return { changed: false, item: current };
      if (kind.keyOf(proposed) !== key) {
        throw new Error(`A ${kind.label} update may not change its key ("${key}")`);
      }
      const next: T = {
        ...proposed,
        version: current.version + 1,
        updatedAt: new Date().toISOString(),
      };
      try {
        await this.doc.send(
          new PutCommand({
            TableName: table,
            Item: kind.toItem(next),
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: { ":expected": current.version },
          }),
        );
      } catch (error) {
        if (isConditionalCheckFailed(error)) throw new LostRace();
        throw mapSdkError(error, table, "PutItem");
      }
      return { changed: true, item: next };
    };

    try {
      return await pRetry(attempt, {
        retries: this.maxUpdateAttempts - 1,
        // Small, jittered delays: racing writers are on the same item, so spreading them out
        // matters more than waiting long.
        minTimeout: 5,
        maxTimeout: 150,
        factor: 1.5,
        randomize: true,
        shouldRetry: ({ error }) => error instanceof LostRace,
      });
    } catch (error) {
      if (error instanceof LostRace) {
        throw new ConflictError(
          `${kind.label} "${key}" in table "${table}" kept changing under concurrent writers; gave up after ${this.maxUpdateAttempts} attempts`,
        );
      }
      throw error;
    }
  }
}
