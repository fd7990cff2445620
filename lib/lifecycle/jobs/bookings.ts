/**
 * A job's hardware tasks as bookings: the jobs API seen through the Dashboard port, so that the
 * same poll, workflows and hand-over serve both APIs. Each hardware task is a booking of its host
 * (by the host's lab id, the inventory's key); the job's software task gives its installer and
 * scenario, its first VPN access task its user, its other VPN tasks the other users whose
 * accounts each booking holds too, and the ssh tasks the keys for each host.
 *
 * The jobs API says nothing of a booking's end: a job's booking runs until the dashboard
 * re-issues its hardware task as cleanup, and ends when that was taken (intake.ts).
 */
import { inventoryHostByResource } from "../../config/lookup";
import type { PharosConfig } from "../../config/types";
import { type DashboardBooking, OPEN_END } from "../../domain/booking";
import type { JobRecord, JobTaskRecord } from "../../domain/job";
import type { Logger } from "../../log";
import type { Dashboard, DashboardUser, StatusNote } from "../../ports/dashboard";
import type { AccessTask, HardwareTask, SoftwareTask } from "../../ports/jobs-dashboard";
import type { Store } from "../../ports/store";

/** The booking id of a job's hardware task: the job and the host's lab id. */
export function jobBookingId(jobId: number, hostLabId: string): string {
  return `job-${jobId}-${hostLabId.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
}

function tasksOf<K extends JobTaskRecord["kind"]>(
  record: JobRecord,
  kind: K,
): Array<JobTaskRecord & { task: Extract<JobTaskRecord["task"], { kind: K }> }> {
  return Object.values(record.tasks).filter(
    (t): t is JobTaskRecord & { task: Extract<JobTaskRecord["task"], { kind: K }> } =>
      t.task.kind === kind,
  );
}

export function hardwareTasks(record: JobRecord): Array<JobTaskRecord & { task: HardwareTask }> {
  return tasksOf(record, "hardware");
}

export function accessTasks(record: JobRecord): Array<JobTaskRecord & { task: AccessTask }> {
  return tasksOf(record, "access");
}

function softwareTask(record: JobRecord): SoftwareTask | null {
  return tasksOf(record, "software")[0]?.task ?? null;
}

/**
 * The job's booking user: its owner, the user of its first VPN access task as first listed
 * (intake.ts); null when it has none (then no VPN account is made for the booking itself).
 */
export function jobUser(record: JobRecord): string | null {
  return record.owner;
}

/** The job's other users with a VPN access task (collaborators), in the dashboard's order. */
export function otherUsers(record: JobRecord): string[] {
  const user = jobUser(record);
  const others = accessTasks(record)
    .filter((t) => t.task.accessType === "vpn" && t.task.user !== user)
    .map((t) => t.task.user);
  // Sorted: the booking's fields compare equal whatever order the store gives the tasks in.
  return [...new Set(others)].sort();
}

/** The ssh tasks that put a key on a host (one naming no hosts is for all of the job's). */
function sshTasksFor(record: JobRecord, hostLabId: string): AccessTask[] {
  return accessTasks(record)
    .map((t) => t.task)
    .filter(
      (t) =>
        t.accessType === "ssh" &&
        !t.revoke &&
        t.sshKey !== null &&
        (t.hosts.length === 0 || t.hosts.includes(hostLabId)),
    );
}

/** The bookings of one job; a hardware task whose host the inventory lacks is left out (warned). */
export function bookingsOfJob(
  record: JobRecord,
  config: Pick<PharosConfig, "inventory" | "jobs">,
  logger?: Logger,
): DashboardBooking[] {
  const software = softwareTask(record);
  const user = jobUser(record);
  const bookings: DashboardBooking[] = [];
  for (const hardware of hardwareTasks(record)) {
    const { hostLabId, imageId } = hardware.task;
    const host = inventoryHostByResource(config.inventory, hostLabId);
    const keys = sshTasksFor(record, hostLabId);
    if (!host) {
      logger?.warn(
        { jobId: record.jobId, taskId: hardware.taskId, hostLabId },
        "job names a host the inventory does not have",
      );
      continue;
    }
    bookings.push({
      id: jobBookingId(record.jobId, hostLabId),
      resourceId: hostLabId,
      hostName: host.name,
      start: new Date(record.createdAt),
      end: new Date(hardware.round === "cleanup" ? hardware.takenAt : OPEN_END),
      installer: software?.installer ?? null,
      scenario: software?.scenario ?? null,
      purpose: `job ${record.jobId}`,
      user,
      job: {
        jobId: record.jobId,
        taskId: hardware.taskId,
        labImageId: imageId,
        fogImageId: imageId === null ? null : (config.jobs?.images.get(imageId) ?? null),
        hostname: hardware.task.hostname,
        sshKey: keys.find((t) => t.user === user)?.sshKey ?? null,
        otherUsers: otherUsers(record),
        otherSshKeys: keys
          .filter((t) => t.user !== user)
          .map((t) => ({ user: t.user, key: t.sshKey as string }))
          .sort((a, b) => a.user.localeCompare(b.user) || a.key.localeCompare(b.key)),
      },
    });
  }
  return bookings;
}

/** A dashboard user id as a directory uid: as it is when it is one, else prefixed (`u17`). */
export function usernameOf(userId: string): string {
  return /^[a-z_][a-z0-9_.-]*$/i.test(userId) ? userId : `u${userId.replace(/[^A-Za-z0-9]/g, "")}`;
}

/**
 * The Dashboard port over the job records: the bookings of every job not finished. The jobs API
 * has no user API (a user is an id in the access tasks) and no status notes (each task's status
 * and message say it, lifecycle/jobs/statuses.ts).
 */
export class JobBookings implements Dashboard {
  readonly #records: Pick<Store, "listJobs"> | JobRecord[];
  readonly #config: Pick<PharosConfig, "inventory" | "jobs">;
  readonly #logger: Logger;
  readonly #lab: string;

  /**
   * `records`: where the job records come from — the store (read at each listing), or those a
   * poll's intake has just read (so that the poll does not read them twice).
   */
  constructor(
    lab: string,
    records: Pick<Store, "listJobs"> | JobRecord[],
    config: Pick<PharosConfig, "inventory" | "jobs">,
    logger: Logger,
  ) {
    this.#lab = lab;
    this.#records = records;
    this.#config = config;
    this.#logger = logger;
  }

  async listBookings(): Promise<DashboardBooking[]> {
    const source = this.#records;
    const records = Array.isArray(source) ? source : await source.listJobs();
    return records
      .filter((record) => record.lab === this.#lab && record.finishedAt === null)
      .flatMap((record) => bookingsOfJob(record, this.#config, this.#logger));
  }

  async bookingUser(userRef: string): Promise<DashboardUser | null> {
    return { username: usernameOf(userRef), fullName: null, email: null, sshPublicKey: null };
  }

  async postStatusNote(_note: StatusNote): Promise<void> {
    // Nothing to post: on the jobs API a booking's news is its tasks' statuses.
  }
}
