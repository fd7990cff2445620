/**
 * One DynamoDB table of items validated by a schema and versioned for compare-and-set: what the
 * store's two tables and the local engine's execution journal share. Only single-item
 * conditional writes are used — dynalite has no transactions and no TTL.
 */
import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  paginateScan,
} from "@aws-sdk/client-dynamodb";
import { marshall, type NativeAttributeValue, unmarshall } from "@aws-sdk/util-dynamodb";
import pRetry from "p-retry";
import { z } from "zod";
import {
  ConfigError,
  ConflictError,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../../errors";
import type { Updated } from "../../ports/store";
import { isNetworkErrorCode } from "../network-errors";

export type Item = Record<string, NativeAttributeValue>;

/** Field schemas the tables' items share. */
export const isoTimestamp = z.iso.datetime({ offset: true });
export const counter = z.number().int().nonnegative();
export const phaseSchema = z.enum(["provision", "release"]);

/** How one table's items are keyed, written and read back. */
export interface ItemKind<T> {
  label: string;
  keyAttribute: string;
  keyOf(value: T): string;
  toItem(value: T): Item;
  schema: z.ZodType<T>;
}

const THROTTLING_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
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
export function mapSdkError(error: unknown, table: string, action: string): unknown {
  if (!(error instanceof Error)) return error;
  const where = `DynamoDB ${action} on table "${table}"`;
  if (error.name === "ResourceNotFoundException") {
    return new ConfigError(
      `DynamoDB table "${table}" does not exist (check LAAS_HOSTS_TABLE / LAAS_BOOKINGS_TABLE / LAAS_VPN_PEOPLE_TABLE, or deploy the tables)`,
      { cause: error },
    );
  }
  const code: unknown = Reflect.get(error, "code");
  const status = httpStatusOf(error);
  if (
    THROTTLING_ERRORS.has(error.name) ||
    isNetworkErrorCode(code) ||
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

export interface VersionedTableOptions {
  /** Attempts of one compare-and-set update before giving up with ConflictError. */
  maxUpdateAttempts?: number;
}

/**
 * Items are marshalled here rather than by lib-dynamodb's DocumentClient, which cannot be used
 * with the client's `cacheMiddleware` (see createDynamoClient): resolving each command's
 * middleware on every request was a large share of the CPU a burst of starts took.
 */
export class VersionedTable<T extends { version: number; updatedAt: string }> {
  readonly #client: DynamoDBClient;
  readonly #kind: ItemKind<T>;
  readonly #table: string;
  readonly #maxUpdateAttempts: number;

  constructor(
    client: DynamoDBClient,
    kind: ItemKind<T>,
    table: string,
    options: VersionedTableOptions = {},
  ) {
    this.#client = client;
    this.#kind = kind;
    this.#table = table;
    this.#maxUpdateAttempts = options.maxUpdateAttempts ?? 20;
  }

  #parse(item: Item): T {
    const kind = this.#kind;
    const result = kind.schema.safeParse(item);
    if (result.success) return result.data;
    const key: unknown = item[kind.keyAttribute];
    const problems = result.error.issues
      .map((issue) => `${issue.path.join(".") || "(item)"}: ${issue.message}`)
      .join("; ");
    throw new ProtocolError(
      `Corrupted ${kind.label} item ${typeof key === "string" ? `"${key}" ` : ""}in table "${this.#table}": ${problems}`,
    );
  }

  async read(key: string): Promise<T | null> {
    let item: Item | undefined;
    try {
      const output = await this.#client.send(
        new GetItemCommand({
          TableName: this.#table,
          Key: marshall({ [this.#kind.keyAttribute]: key }),
          ConsistentRead: true,
        }),
      );
      item = output.Item === undefined ? undefined : unmarshall(output.Item);
    } catch (error) {
      throw mapSdkError(error, this.#table, "GetItem");
    }
    return item === undefined ? null : this.#parse(item);
  }

  async scan(): Promise<T[]> {
    const items: T[] = [];
    try {
      for await (const page of paginateScan(
        { client: this.#client },
        { TableName: this.#table, ConsistentRead: true },
      )) {
        for (const item of page.Items ?? []) items.push(this.#parse(unmarshall(item)));
      }
    } catch (error) {
      throw mapSdkError(error, this.#table, "Scan");
    }
    return items;
  }

  /** Creates the item; false if one with its key exists already. */
  async create(value: T): Promise<boolean> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: marshall(this.#kind.toItem(value)),
          ConditionExpression: "attribute_not_exists(#key)",
          ExpressionAttributeNames: { "#key": this.#kind.keyAttribute },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw mapSdkError(error, this.#table, "PutItem");
    }
  }

  /**
   * Deletes the item. With `ifVersion`, only while it is still at that version: ConflictError if
   * it changed since or is gone.
   */
  async remove(key: string, ifVersion?: number): Promise<void> {
    const condition =
      ifVersion === undefined
        ? {}
        : {
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: marshall({ ":expected": ifVersion }),
          };
    try {
      await this.#client.send(
        new DeleteItemCommand({
          TableName: this.#table,
          Key: marshall({ [this.#kind.keyAttribute]: key }),
          ...condition,
        }),
      );
    } catch (error) {
      if (ifVersion !== undefined && isConditionalCheckFailed(error)) {
        throw new ConflictError(
          `${this.#kind.label} "${key}" in table "${this.#table}" is no longer at version ${ifVersion}: not deleted`,
        );
      }
      throw mapSdkError(error, this.#table, "DeleteItem");
    }
  }

  /**
   * Compare-and-set: read the latest item, let `change` decide, write only if nobody bumped the
   * version meanwhile; otherwise read again and let `change` decide again. `change` must be pure:
   * it may run several times and only its last result is written.
   *
   * With `expected` (the item as the caller read it), the first attempt skips the read: `change`
   * decides on that copy and the write is conditional on its version. A copy that is no longer
   * the latest loses that write like any raced writer and is read again; a change that declines
   * on the copy is decided again on the latest item, which may differ.
   */
  async update(key: string, change: (current: T) => T | null, expected?: T): Promise<Updated<T>> {
    const kind = this.#kind;
    let held = expected ?? null;
    if (held !== null && kind.keyOf(held) !== key) {
      throw new Error(`The ${kind.label} expected for "${key}" is "${kind.keyOf(held)}"`);
    }
    const write = async (current: T, proposed: T): Promise<Updated<T>> => {
      if (kind.keyOf(proposed) !== key) {
        throw new Error(`A ${kind.label} update may not change its key ("${key}")`);
      }
      const next: T = {
        ...proposed,
        version: current.version + 1,
        updatedAt: new Date().toISOString(),
      };
      try {
        await this.#client.send(
          new PutItemCommand({
            TableName: this.#table,
            Item: marshall(kind.toItem(next)),
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: marshall({ ":expected": current.version }),
          }),
        );
      } catch (error) {
        if (isConditionalCheckFailed(error)) throw new LostRace();
        throw mapSdkError(error, this.#table, "PutItem");
      }
      return { changed: true, item: next };
    };
    const attempt = async (): Promise<Updated<T>> => {
      // Only the first attempt may trust the caller's copy: a lost race means it is stale.
      const copy = held;
      held = null;
      if (copy !== null) {
        const proposed = change(copy);
        if (proposed !== null) return write(copy, proposed);
      }
      const current = await this.read(key);
      if (current === null) {
        throw new NotFoundError(`No ${kind.label} "${key}" in table "${this.#table}"`);
      }
      const proposed = change(current);
      if (proposed === null) return { changed: false, item: current };
      return write(current, proposed);
    };

    try {
      return await pRetry(attempt, {
        retries: this.#maxUpdateAttempts - 1,
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
          `${kind.label} "${key}" in table "${this.#table}" kept changing under concurrent writers; gave up after ${this.#maxUpdateAttempts} attempts`,
        );
      }
      throw error;
    }
  }
}
