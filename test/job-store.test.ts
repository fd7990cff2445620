/**
 * The store's job records (domain/job.ts) against dynalite: creates only create, every kind of
 * task comes back as written, updates are compare-and-set on the version (no update lost to a
 * concurrent one), deletes can be conditional on the version read, and an item that is not a job
 * record is reported, not returned.
 */
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobRecord, type JobTaskRecord, jobKey } from "../lib/domain/job";
import { ConflictError, NotFoundError, ProtocolError } from "../lib/errors";
import type { Task } from "../lib/ports/jobs-dashboard";
import { startTestStore, type TestStore } from "./helpers/dynalite";

const T0 = "2026-05-01T10:00:00.000Z";
const LAB = "unh_iol";

/** One task of each kind, as the jobs dashboard's adapter normalises them. */
const TASKS: Task[] = [
  {
    kind: "hardware",
    taskId: "0b8f6a5e-0000-4000-8000-000000000001",
    labToken: null,
    hostLabId: "hpe3",
    imageId: "12",
    hostname: "my-pod",
    power: "on",
    ipmiCreate: true,
  },
  {
    kind: "network",
    taskId: "0b8f6a5e-0000-4000-8000-000000000002",
    labToken: null,
    hosts: [
      {
        hostLabId: "hpe3",
        interfaces: [
          {
            mac: "aa:bb:cc:dd:ee:01",
            vlans: [
              { vlanId: 101, tagged: true },
              { vlanId: 0, tagged: false },
            ],
          },
          { mac: "aa:bb:cc:dd:ee:02", vlans: [] },
        ],
      },
    ],
  },
  {
    kind: "access",
    taskId: "0b8f6a5e-0000-4000-8000-000000000003",
    labToken: "vpn-ada",
    accessType: "ssh",
    user: "42",
    revoke: false,
    sshKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@laptop",
    hosts: ["hpe3"],
  },
  {
    kind: "software",
    taskId: "0b8f6a5e-0000-4000-8000-000000000004",
    labToken: null,
    installer: "Fuel",
    scenario: "os-nosdn-nofeature-ha",
    pdf: "/api/resource/1/pdf",
    idf: null,
    roles: [{ hostLabId: "hpe3", role: "controller" }],
  },
  {
    kind: "snapshot",
    taskId: "0b8f6a5e-0000-4000-8000-000000000005",
    labToken: null,
    hostLabId: "hpe3",
    imageId: null,
    dashboardId: 7,
  },
];

function taskRecord(task: Task, fields: Partial<JobTaskRecord> = {}): JobTaskRecord {
  return {
    taskId: task.taskId,
    kind: task.kind,
    round: "provision",
    task,
    takenAt: T0,
    posted: null,
    postError: null,
    posting: null,
    ...fields,
  };
}

let t: TestStore;
let nextId = 1000;

/** A job record of its own for each test (one shared dynalite), with `tasks`. */
function makeJob(tasks: JobTaskRecord[] = [], fields: Partial<JobRecord> = {}): JobRecord {
  const jobId = nextId++;
  return {
    key: jobKey(LAB, jobId),
    lab: LAB,
    jobId,
    tasks: Object.fromEntries(tasks.map((task) => [task.taskId, task])),
    cleanupSince: null,
    owner: null,
    finishedAt: null,
    createdAt: T0,
    updatedAt: T0,
    expiresAtEpochSeconds: null,
    version: 1,
    ...fields,
  };
}

const withTask =
  (task: JobTaskRecord) =>
  (job: JobRecord): JobRecord => ({ ...job, tasks: { ...job.tasks, [task.taskId]: task } });

beforeAll(async () => {
  t = await startTestStore();
});

afterAll(async () => {
  await t?.close();
});

describe("the store's job records", () => {
  it("are created once: a second create of the same key is refused and changes nothing", async () => {
    const job = makeJob([taskRecord(TASKS[0]!)]);
    expect(await t.store.createJob(job)).toBe(true);
    expect(await t.store.createJob({ ...job, tasks: {}, version: 9 })).toBe(false);
    expect(await t.store.getJob(job.key)).toEqual(job);
  });

  it("read back as written, one task of each kind, from a get and from the list", async () => {
    const job = makeJob(
      TASKS.map((task, i) =>
        taskRecord(
          task,
          i === 0 ? { posted: { status: 200, at: T0 }, postError: "once: 502" } : {},
        ),
      ),
      {
        cleanupSince: T0,
        finishedAt: "2026-05-02T10:00:00.000Z",
        expiresAtEpochSeconds: 1_780_000_000,
      },
    );
    expect(await t.store.createJob(job)).toBe(true);
    expect(await t.store.getJob(job.key)).toEqual(job);
    expect(await t.store.listJobs()).toContainEqual(job);
    // DynamoDB TTL reads only a Number attribute.
    const raw = await t.client.send(
      new GetItemCommand({ TableName: t.tables.jobs, Key: { key: { S: job.key } } }),
    );
    expect(raw.Item?.expiresAtEpochSeconds).toEqual({ N: "1780000000" });
  });

  it("are null when missing", async () => {
    expect(await t.store.getJob(jobKey(LAB, 999_999))).toBeNull();
  });
});

describe("job record updates", () => {
  it("apply both of two concurrent changes, each adding its own task", async () => {
    const job = makeJob();
    await t.store.createJob(job);
    const other = t.openStore();
    const [first, second] = await Promise.all([
      t.store.updateJob(job.key, withTask(taskRecord(TASKS[0]!))),
      other.updateJob(job.key, withTask(taskRecord(TASKS[2]!))),
    ]);
    expect(first.changed && second.changed).toBe(true);
    const stored = await t.store.getJob(job.key);
    expect(Object.keys(stored?.tasks ?? {}).sort()).toEqual(
      [TASKS[0]!.taskId, TASKS[2]!.taskId].sort(),
    );
    expect(stored?.version).toBe(job.version + 2);
  });

  it("decide again on the latest record when the copy they were given is stale", async () => {
    const job = makeJob();
    await t.store.createJob(job);
    await t.store.updateJob(job.key, withTask(taskRecord(TASKS[1]!)));
    const { item } = await t.store.updateJob(job.key, withTask(taskRecord(TASKS[3]!)), {
      expected: job,
    });
    expect(Object.keys(item.tasks).sort()).toEqual([TASKS[1]!.taskId, TASKS[3]!.taskId].sort());
    expect(await t.store.getJob(job.key)).toEqual(item);
  });

  it("write nothing when the change declines", async () => {
    const job = makeJob([taskRecord(TASKS[4]!)]);
    await t.store.createJob(job);
    const result = await t.store.updateJob(job.key, () => null);
    expect(result).toEqual({ changed: false, item: job });
    expect(await t.store.getJob(job.key)).toEqual(job);
  });

  it("throw NotFoundError for a missing record", async () => {
    const update = t.store.updateJob(jobKey(LAB, 999_998), (job) => job);
    await expect(update).rejects.toBeInstanceOf(NotFoundError);
    await expect(update).rejects.toThrow(/job "unh_iol\/999998"/);
  });
});

describe("job record deletes", () => {
  it("refuse a version the record is no longer at, and delete at the one it is", async () => {
    const job = makeJob();
    await t.store.createJob(job);
    const { item } = await t.store.updateJob(job.key, withTask(taskRecord(TASKS[0]!)));
    await expect(t.store.deleteJob(job.key, job.version)).rejects.toBeInstanceOf(ConflictError);
    expect(await t.store.getJob(job.key)).toEqual(item);
    await t.store.deleteJob(job.key, item.version);
    expect(await t.store.getJob(job.key)).toBeNull();
  });
});

describe("a malformed job item", () => {
  const put = (item: Record<string, unknown>) =>
    t.client.send(
      new PutItemCommand({
        TableName: t.tables.jobs,
        Item: marshall(item, { removeUndefinedValues: true }),
      }),
    );

  it("is reported with its key and what is wrong, by a get, the list and an update", async () => {
    const job = makeJob([taskRecord(TASKS[0]!)]);
    const taskId = TASKS[0]!.taskId;
    await put({
      ...job,
      tasks: {
        [taskId]: { ...taskRecord(TASKS[0]!), task: { ...TASKS[0]!, power: "maybe" } },
      },
    });
    const read = t.store.getJob(job.key);
    await expect(read).rejects.toBeInstanceOf(ProtocolError);
    await expect(read).rejects.toThrow(
      new RegExp(
        `job item "${job.key}" in table "${t.tables.jobs}".*tasks\\.${taskId}\\.task\\.power`,
      ),
    );
    await expect(t.store.listJobs()).rejects.toThrow(/Corrupted job item/);
    await expect(t.store.updateJob(job.key, (j) => j)).rejects.toBeInstanceOf(ProtocolError);
    await t.store.deleteJob(job.key);
  });

  it("is reported when its task is of an unknown kind, or of another kind than recorded", async () => {
    const unknown = makeJob();
    await put({
      ...unknown,
      tasks: { x: { ...taskRecord(TASKS[4]!), taskId: "x", task: { kind: "firmware" } } },
    });
    await expect(t.store.getJob(unknown.key)).rejects.toThrow(/tasks\.x\.task\.kind/);
    await t.store.deleteJob(unknown.key);

    const mismatched = makeJob([{ ...taskRecord(TASKS[1]!), kind: "hardware" }]);
    await put({ ...mismatched });
    await expect(t.store.getJob(mismatched.key)).rejects.toThrow(
      /task\.kind: the task's kind is not the record's/,
    );
    await t.store.deleteJob(mismatched.key);
  });

  it("is reported when its key is not its lab's and job id's", async () => {
    const job = { ...makeJob(), lab: "another_lab" };
    await put({ ...job });
    await expect(t.store.getJob(job.key)).rejects.toThrow(/key: expected "another_lab\//);
    await t.store.deleteJob(job.key);
  });
});
