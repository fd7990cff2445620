/**
 * The local engine's execution journal (adapters/local/journal.ts) as a DynamoDB table, kept in
 * the embedded dynalite next to hosts and bookings. Only the embedded default has it: on AWS,
 * Step Functions keeps its executions itself.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { z } from "zod";
import type { JsonValue } from "../../domain/run";
import type { UpdateOptions } from "../../ports/store";
import type { ExecutionJournal, ExecutionRecord } from "../local/journal";
import {
  counter,
  type Item,
  type ItemKind,
  isoTimestamp,
  phaseSchema as phase,
  VersionedTable,
} from "./dynamodb-table";
import { ensureTable, partitionKeyOnly } from "./dynamodb-tables";

export const EXECUTIONS_TABLE = "laas-executions";

const recordSchema = z.object({
  name: z.string().min(1),
  phase,
  input: z.object({
    bookingId: z.string(),
    hostName: z.string(),
    phase,
    generation: counter,
  }),
  status: z.enum(["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]),
  owner: z.object({ pid: z.number().int(), startTicks: z.number().int().nullable() }).nullable(),
  startedAt: isoTimestamp,
  stoppedAt: isoTimestamp.nullable(),
  error: z.string().nullable(),
  cause: z.string().nullable(),
  position: z
    .object({
      state: z.string(),
      input: z.json() as z.ZodType<JsonValue>,
      enteredAt: isoTimestamp,
    })
    .nullable(),
  stopRequested: z.string().nullable(),
  transitions: counter,
  updatedAt: isoTimestamp,
  version: counter,
}) satisfies z.ZodType<ExecutionRecord>;

function recordToItem(record: ExecutionRecord): Item {
  const item: { [K in keyof ExecutionRecord]-?: ExecutionRecord[K] } = {
    name: record.name,
    phase: record.phase,
    input: record.input,
    status: record.status,
    owner: record.owner,
    startedAt: record.startedAt,
    stoppedAt: record.stoppedAt,
    error: record.error,
    cause: record.cause,
    position: record.position,
    stopRequested: record.stopRequested,
    transitions: record.transitions,
    updatedAt: record.updatedAt,
    version: record.version,
  };
  return item;
}

const executionKind: ItemKind<ExecutionRecord> = {
  label: "execution",
  keyAttribute: "name",
  keyOf: (record) => record.name,
  toItem: recordToItem,
  schema: recordSchema,
};

export class DynamoDbExecutionJournal implements ExecutionJournal {
  readonly #table: VersionedTable<ExecutionRecord>;

  constructor(client: DynamoDBClient, table = EXECUTIONS_TABLE) {
    this.#table = new VersionedTable(client, executionKind, table);
  }

  /** Creates the table when missing, then the journal. */
  static async open(client: DynamoDBClient, table = EXECUTIONS_TABLE) {
    await ensureTable(client, table, partitionKeyOnly("name"));
    return new DynamoDbExecutionJournal(client, table);
  }

  create(record: ExecutionRecord): Promise<boolean> {
    return this.#table.create(record);
  }

  get(name: string): Promise<ExecutionRecord | null> {
    return this.#table.read(name);
  }

  list(): Promise<ExecutionRecord[]> {
    return this.#table.scan();
  }

  update(
    name: string,
    change: (current: ExecutionRecord) => ExecutionRecord | null,
    options: UpdateOptions<ExecutionRecord> = {},
  ) {
    return this.#table.update(name, change, options.expected);
  }

  remove(name: string, ifVersion: number): Promise<void> {
    return this.#table.remove(name, ifVersion);
  }
}
