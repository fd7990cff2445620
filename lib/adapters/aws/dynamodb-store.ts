/**
 * The Store port over DynamoDB (or dynalite, which speaks the same API): hosts, bookings, VPN
 * people and jobs, each item validated on the way in and out, every write conditional (see
 * dynamodb-table.ts).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { z } from "zod";
import {
  BOOKING_STATES,
  type Booking,
  type BookingAccess,
  CLEANUPS,
  END_NOTICE_STATES,
  type EndNotice,
  HANDOVER_STATES,
} from "../../domain/booking";
import { HOST_STATES, type Host } from "../../domain/host";
import { type JobRecord, type JobTaskRecord, jobKey } from "../../domain/job";
import {
  type JsonObject,
  type JsonValue,
  type RunRecord,
  type StepRecord,
  WAIT_EVENTS,
  type WaitRecord,
} from "../../domain/run";
import type { VpnPerson } from "../../domain/vpn-person";
import type { Task, TaskStatus } from "../../ports/jobs-dashboard";
import type { Store, Updated, UpdateOptions } from "../../ports/store";
import {
  counter,
  type Item,
  type ItemKind,
  isoTimestamp,
  phaseSchema,
  VersionedTable,
} from "./dynamodb-table";
import { defaultTableNames, ensureTables, type TableNames, tableKeys } from "./dynamodb-tables";

// ---------------------------------------------------------------------------------------------
// Item <-> domain mapping. Written out field by field so that a field added to the domain types
// fails to compile here instead of silently not being stored; nullable fields are stored as NULL.

const accessSchema = z.object({
  vpnUser: z.string().nullable(),
  vpnUserDn: z.string().nullable(),
  // Absent from items older versions wrote.
  vpnEntryUuid: z.string().nullable().default(null),
  vpnIntendedDn: z.string().nullable().default(null),
  vpnPerson: z.string().nullable().default(null),
  vpnAccountFrom: z.string().nullable().default(null),
  rootPasswordSet: z.boolean(),
  sshKey: z.string().nullable(),
  // Absent from items written before jobs' other users had access.
  vpnOthers: z
    .array(
      z.object({
        user: z.string().min(1),
        person: z.string().min(1),
        uid: z.string().nullable(),
        accountFrom: z.string().nullable(),
      }),
    )
    .default([]),
  otherSshKeys: z.record(z.string(), z.string()).default({}),
  sealedCredentials: z.string().nullable(),
  handover: z.enum(HANDOVER_STATES),
  handoverError: z.string().nullable(),
}) satisfies z.ZodType<BookingAccess>;

const jsonValue = z.json() as z.ZodType<JsonValue>;
const jsonObject = z.record(z.string(), jsonValue) as z.ZodType<JsonObject>;

const stepSchema = z.object({
  done: z.boolean(),
  at: isoTimestamp,
  result: jsonValue,
  intent: jsonObject,
}) satisfies z.ZodType<StepRecord>;

const runSchema = z.object({
  phase: phaseSchema,
  generation: counter,
  steps: z.record(z.string(), stepSchema),
}) satisfies z.ZodType<RunRecord>;

const waitSchema = z.object({
  event: z.enum(WAIT_EVENTS),
  phase: phaseSchema,
  generation: counter,
  token: z.string().min(1),
  since: isoTimestamp,
  deadline: isoTimestamp,
  outcome: z
    .discriminatedUnion("ok", [
      z.object({ ok: z.literal(true), result: jsonObject }),
      z.object({ ok: z.literal(false), error: z.string(), cause: z.string() }),
    ])
    .nullable(),
  answeredAt: isoTimestamp.nullable(),
}) satisfies z.ZodType<WaitRecord>;

const endNoticeSchema = z.object({
  end: isoTimestamp,
  state: z.enum(END_NOTICE_STATES),
  at: isoTimestamp,
  reason: z.string().nullable(),
}) satisfies z.ZodType<EndNotice>;

const jobLinkSchema = z.object({
  jobId: z.number().int().nonnegative(),
  taskId: z.string().min(1),
  labImageId: z.string().nullable(),
  fogImageId: z.number().int().positive().nullable(),
  hostname: z.string().nullable(),
  otherUsers: z.array(z.string().min(1)).default([]),
  otherSshKeys: z.array(z.object({ user: z.string().min(1), key: z.string() })).default([]),
  sshKey: z.string().nullable(),
});

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
  // Absent on items written before failed hosts were cleaned automatically.
  cleanup: z.enum(CLEANUPS).nullable().default(null),
  progress: z.string().nullable(),
  access: accessSchema.nullable().default(null),
  // Absent on items written before runs were recorded.
  run: runSchema.nullable().default(null),
  wait: waitSchema.nullable().default(null),
  // Absent on items written before bookings were told of their end.
  endNotice: endNoticeSchema.nullable().default(null),
  // Absent on items written before bookings were made from jobs.
  job: jobLinkSchema.nullable().default(null),
  createdAt: isoTimestamp,
  updatedAt: isoTimestamp,
  // Absent on items written before bookings expired (lifecycle/retention.ts).
  expiresAtEpochSeconds: z.number().int().nonnegative().nullable().default(null),
  version: counter,
}) satisfies z.ZodType<Booking, unknown>;

const hostEventSchema = z.object({
  at: isoTimestamp,
  event: z.string(),
  bookingId: z.string().nullable(),
  run: z.string().nullable().default(null),
  detail: z.string().nullable(),
});

const hostSchema = z.object({
  name: z.string().min(1),
  fogId: z.string().nullable(),
  mac: z.string().nullable(),
  state: z.enum(HOST_STATES),
  bookingId: z.string().nullable(),
  hostKey: z.string().nullable(),
  // Absent on items written before keys were tied to a deploy: such a key counts as stale.
  hostKeyDeployed: z.string().nullable().default(null),
  deployed: z.string().nullable().default(null),
  // Absent on items written before hosts had an address.
  address: z.string().nullable().default(null),
  reason: z.string().nullable(),
  // Absent on items written before hosts kept a failure streak and a history.
  failures: counter.default(0),
  lastFailure: hostEventSchema.nullable().default(null),
  history: z.array(hostEventSchema).default([]),
  updatedAt: isoTimestamp,
  version: counter,
}) satisfies z.ZodType<Host, unknown>;

const vpnPersonSchema = z.object({
  key: z.string().min(1),
  user: z.string().min(1),
  uid: z.string().nullable(),
  dn: z.string().nullable(),
  entryUuid: z.string().nullable(),
  intendedDn: z.string().nullable(),
  madeFor: z.string().nullable(),
  bookings: z.array(z.string().min(1)),
  retiring: z.array(
    z.object({ dn: z.string().min(1), entryUuid: z.string().nullable(), madeFor: z.string() }),
  ),
  updatedAt: isoTimestamp,
  version: counter,
}) satisfies z.ZodType<VpnPerson>;

// A job's tasks as the jobs dashboard's adapter normalised them (ports/jobs-dashboard.ts).
const labId = z.string().min(1);
const taskBase = { taskId: z.string().min(1), labToken: z.string().nullable() };

const taskSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("hardware"),
    ...taskBase,
    hostLabId: labId,
    imageId: labId.nullable(),
    hostname: z.string().nullable(),
    power: z.enum(["on", "off"]),
    ipmiCreate: z.boolean(),
  }),
  z.object({
    kind: z.literal("network"),
    ...taskBase,
    hosts: z.array(
      z.object({
        hostLabId: labId,
        interfaces: z.array(
          z.object({
            mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, "expected a lower-case MAC"),
            vlans: z.array(z.object({ vlanId: z.int().min(0).max(4095), tagged: z.boolean() })),
          }),
        ),
      }),
    ),
  }),
  z.object({
    kind: z.literal("access"),
    ...taskBase,
    accessType: z.enum(["vpn", "ssh"]),
    user: labId,
    revoke: z.boolean(),
    sshKey: z.string().nullable(),
    hosts: z.array(labId),
  }),
  z.object({
    kind: z.literal("software"),
    ...taskBase,
    installer: z.string().nullable(),
    scenario: z.string().nullable(),
    pdf: z.string().nullable(),
    idf: z.string().nullable(),
    roles: z.array(z.object({ hostLabId: labId, role: z.string() })),
  }),
  z.object({
    kind: z.literal("snapshot"),
    ...taskBase,
    hostLabId: labId.nullable(),
    imageId: labId.nullable(),
    dashboardId: z.int().nonnegative(),
  }),
]) satisfies z.ZodType<Task>;

const taskStatusSchema = z.union([
  z.literal(0),
  z.literal(100),
  z.literal(200),
  z.literal(300),
]) satisfies z.ZodType<TaskStatus>;

const jobTaskSchema = z
  .object({
    taskId: z.string().min(1),
    kind: z.enum(["hardware", "network", "access", "software", "snapshot"]),
    round: z.enum(["provision", "cleanup"]),
    task: taskSchema,
    takenAt: isoTimestamp,
    posted: z.object({ status: taskStatusSchema, at: isoTimestamp }).nullable(),
    postError: z.string().nullable(),
    posting: z
      .object({ by: z.string().min(1), until: isoTimestamp })
      .nullable()
      .default(null),
  })
  .refine((record) => record.task.kind === record.kind, {
    message: "the task's kind is not the record's",
    path: ["task", "kind"],
  })
  .refine((record) => record.task.taskId === record.taskId, {
    message: "the task's id is not the record's",
    path: ["task", "taskId"],
  }) satisfies z.ZodType<JobTaskRecord>;

const jobSchema = z
  .object({
    key: z.string().min(1),
    lab: z.string().min(1),
    jobId: counter,
    tasks: z.record(z.string().min(1), jobTaskSchema),
    cleanupSince: isoTimestamp.nullable(),
    owner: z.string().min(1).nullable().default(null),
    finishedAt: isoTimestamp.nullable(),
    createdAt: isoTimestamp,
    updatedAt: isoTimestamp,
    expiresAtEpochSeconds: z.number().int().nonnegative().nullable(),
    version: counter,
  })
  .superRefine((job, context) => {
    if (job.key !== jobKey(job.lab, job.jobId)) {
      context.addIssue({
        code: "custom",
        message: `expected "${jobKey(job.lab, job.jobId)}" (its lab and job id)`,
        path: ["key"],
      });
    }
    for (const [id, task] of Object.entries(job.tasks)) {
      if (task.taskId !== id) {
        context.addIssue({
          code: "custom",
          message: "the task record's id is not its key",
          path: ["tasks", id, "taskId"],
        });
      }
    }
  }) satisfies z.ZodType<JobRecord>;

function vpnPersonToItem(person: VpnPerson): Item {
  const item: { [K in keyof VpnPerson]-?: VpnPerson[K] } = {
    key: person.key,
    user: person.user,
    uid: person.uid,
    dn: person.dn,
    entryUuid: person.entryUuid,
    intendedDn: person.intendedDn,
    madeFor: person.madeFor,
    bookings: person.bookings,
    retiring: person.retiring,
    updatedAt: person.updatedAt,
    version: person.version,
  };
  return item;
}

function jobToItem(job: JobRecord): Item {
  const item: { [K in keyof JobRecord]-?: JobRecord[K] } = {
    key: job.key,
    lab: job.lab,
    jobId: job.jobId,
    tasks: job.tasks,
    cleanupSince: job.cleanupSince,
    owner: job.owner,
    finishedAt: job.finishedAt,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    // A number is DynamoDB TTL's attribute; NULL is ignored by TTL.
    expiresAtEpochSeconds: job.expiresAtEpochSeconds,
    version: job.version,
  };
  return item;
}

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
    cleanup: booking.cleanup,
    progress: booking.progress,
    access: booking.access,
    run: booking.run,
    wait: booking.wait,
    endNotice: booking.endNotice,
    job: booking.job,
    createdAt: booking.createdAt,
    updatedAt: booking.updatedAt,
    // A number is DynamoDB TTL's attribute; NULL is ignored by TTL.
    expiresAtEpochSeconds: booking.expiresAtEpochSeconds,
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
    hostKeyDeployed: host.hostKeyDeployed,
    deployed: host.deployed,
    address: host.address,
    reason: host.reason,
    failures: host.failures,
    lastFailure: host.lastFailure,
    history: host.history,
    updatedAt: host.updatedAt,
    version: host.version,
  };
  return item;
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

const vpnPersonKind: ItemKind<VpnPerson> = {
  label: "VPN person",
  keyAttribute: tableKeys.vpnPeople,
  keyOf: (person) => person.key,
  toItem: vpnPersonToItem,
  schema: vpnPersonSchema,
};

const jobKind: ItemKind<JobRecord> = {
  label: "job",
  keyAttribute: tableKeys.jobs,
  keyOf: (job) => job.key,
  toItem: jobToItem,
  schema: jobSchema,
};

export interface DynamoDbStoreOptions {
  /** Attempts of one compare-and-set update before giving up with ConflictError. */
  maxUpdateAttempts?: number;
}

/** Every write conditional: creates only create, updates are compare-and-set on `version`. */
export class DynamoDbStore implements Store {
  readonly #hosts: VersionedTable<Host>;
  readonly #bookings: VersionedTable<Booking>;
  readonly #vpnPeople: VersionedTable<VpnPerson>;
  readonly #jobs: VersionedTable<JobRecord>;

  constructor(client: DynamoDBClient, tables: TableNames, options: DynamoDbStoreOptions = {}) {
    this.#hosts = new VersionedTable(client, hostKind, tables.hosts, options);
    this.#bookings = new VersionedTable(client, bookingKind, tables.bookings, options);
    this.#vpnPeople = new VersionedTable(client, vpnPersonKind, tables.vpnPeople, options);
    this.#jobs = new VersionedTable(client, jobKind, tables.jobs, options);
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
    return this.#hosts.read(name);
  }

  listHosts(): Promise<Host[]> {
    return this.#hosts.scan();
  }

  createHost(host: Host): Promise<boolean> {
    return this.#hosts.create(host);
  }

  deleteHost(name: string): Promise<void> {
    return this.#hosts.remove(name);
  }

  updateHost(
    name: string,
    change: (current: Host) => Host | null,
    options: UpdateOptions<Host> = {},
  ): Promise<Updated<Host>> {
    return this.#hosts.update(name, change, options.expected);
  }

  getBooking(id: string): Promise<Booking | null> {
    return this.#bookings.read(id);
  }

  listBookings(): Promise<Booking[]> {
    return this.#bookings.scan();
  }

  createBooking(booking: Booking): Promise<boolean> {
    return this.#bookings.create(booking);
  }

  deleteBooking(id: string, ifVersion?: number): Promise<void> {
    return this.#bookings.remove(id, ifVersion);
  }

  updateBooking(
    id: string,
    change: (current: Booking) => Booking | null,
    options: UpdateOptions<Booking> = {},
  ): Promise<Updated<Booking>> {
    return this.#bookings.update(id, change, options.expected);
  }

  getVpnPerson(key: string): Promise<VpnPerson | null> {
    return this.#vpnPeople.read(key);
  }

  listVpnPersons(): Promise<VpnPerson[]> {
    return this.#vpnPeople.scan();
  }

  createVpnPerson(person: VpnPerson): Promise<boolean> {
    return this.#vpnPeople.create(person);
  }

  updateVpnPerson(
    key: string,
    change: (current: VpnPerson) => VpnPerson | null,
  ): Promise<Updated<VpnPerson>> {
    return this.#vpnPeople.update(key, change);
  }

  getJob(key: string): Promise<JobRecord | null> {
    return this.#jobs.read(key);
  }

  listJobs(): Promise<JobRecord[]> {
    return this.#jobs.scan();
  }

  createJob(record: JobRecord): Promise<boolean> {
    return this.#jobs.create(record);
  }

  updateJob(
    key: string,
    change: (current: JobRecord) => JobRecord | null,
    options: UpdateOptions<JobRecord> = {},
  ): Promise<Updated<JobRecord>> {
    return this.#jobs.update(key, change, options.expected);
  }

  deleteJob(key: string, ifVersion?: number): Promise<void> {
    return this.#jobs.remove(key, ifVersion);
  }
}
