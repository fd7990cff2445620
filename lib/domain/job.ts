/**
 * A job of the later dashboard's jobs API (ports/jobs-dashboard.ts) as LaaS keeps it: which of
 * its tasks the lab took, in which round, and what it last posted for each. The record is what
 * makes the listing safe to read by two pollers: a task is taken by the conditional write that
 * adds it, and only the poller whose write did so acts on it (lifecycle/jobs/intake.ts).
 *
 * A job's hardware tasks become bookings, one per host (lifecycle/jobs/bookings.ts); the rest are
 * answered from what those bookings do (lifecycle/jobs/statuses.ts).
 */
import type { Task, TaskKind, TaskStatus } from "../ports/jobs-dashboard";

/**
 * "provision": the task as first issued. "cleanup": the same task id re-issued at 0 at the
 * booking's end (hardware `power: "off"`, access `revoke: true`, VLANs emptied), or any task the
 * lab had already answered coming back to 0.
 */
export type TaskRound = "provision" | "cleanup";

/** A status the dashboard took for a task in its current round. */
export interface PostedStatus {
  status: TaskStatus;
  /** ISO-8601 of the post. */
  at: string;
}

export interface JobTaskRecord {
  taskId: string;
  kind: TaskKind;
  round: TaskRound;
  /** The task's config as taken for this round (its lab token left out, see Task.labToken). */
  task: Task;
  /** ISO-8601: when this round of the task was taken. */
  takenAt: string;
  /** The last status posted for this round and taken by the dashboard; null before any. */
  posted: PostedStatus | null;
  /** Why the last post for this round failed (never holds secrets); null once one goes through. */
  postError: string | null;
  /**
   * A post under way: who makes it and until when the others wait for it. Posts of one task are
   * made one at a time, so that a slower, older answer never lands after a newer one (the
   * dashboard keeps the last). Null when none is.
   */
  posting: { by: string; until: string } | null;
}

export interface JobRecord {
  /** The store's key: the lab's name and the job id (`<lab>/<id>`), see jobKey. */
  key: string;
  lab: string;
  jobId: number;
  /** By task id (in no particular order: DynamoDB keeps a map's keys in none). */
  tasks: Record<string, JobTaskRecord>;
  /**
   * The job's user: the user of the first VPN access task the dashboard listed (it issues the
   * owner's first), fixed when first seen; null while the job has none.
   */
  owner: string | null;
  /** ISO-8601: when the first cleanup task was taken (the booking's end as the lab saw it). */
  cleanupSince: string | null;
  /**
   * ISO-8601: when every task's last round was answered and every booking of the job had ended;
   * from then on the job is no longer listed as bookings.
   */
  finishedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** When the record leaves the store (epoch seconds, DynamoDB TTL's format); null until finished. */
  expiresAtEpochSeconds: number | null;
  /** Optimistic-locking counter: every write checks and bumps it. */
  version: number;
}

export function jobKey(lab: string, jobId: number): string {
  return `${lab}/${jobId}`;
}
