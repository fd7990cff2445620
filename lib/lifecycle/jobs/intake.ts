/**
 * Taking the dashboard's new tasks into the store: the first part of a poll on the jobs API.
 *
 * The dashboard has no claim or lease: every poller sees a task at 0 until some lab posts 100
 * for it. So a task is taken by the conditional write that adds it to its job's record (or moves
 * it to its cleanup round), and that record is what everything after works from; a second poller
 * reading the same listing finds its change already there and writes nothing. A steady listing
 * (nothing new at 0) costs one read of each listing and no write.
 *
 * `jobs/current` is read too: it lists tasks some lab answered 100 for. One missing from the
 * store (a store rebuilt by `laas reset-db`, a record lost) is taken from there, and so is a
 * cleanup re-issue that a late provision post moved to 100 — so that no task the dashboard thinks
 * is under way is forgotten.
 */
import { type JobRecord, type JobTaskRecord, jobKey, type TaskRound } from "../../domain/job";
import { errorMessage } from "../../errors";
import type { Logger } from "../../log";
import type { Job, JobsDashboard, Task } from "../../ports/jobs-dashboard";
import type { Store } from "../../ports/store";

export interface IntakeDeps {
  jobs: JobsDashboard;
  store: Store;
  logger: Logger;
  now(): Date;
}

export interface IntakeReport {
  /** `<job>/<task> <round>` of each task this poller took. */
  taken: string[];
  errors: string[];
}

/**
 * Whether a task's config is a cleanup re-issue by its content: hardware powered off, access
 * revoked, every interface taken off its VLANs. (A software cleanup cannot be told by its
 * content: only having answered the task before tells it apart, see roundAtNew.)
 */
export function isCleanupConfig(task: Task): boolean {
  switch (task.kind) {
    case "hardware":
      return task.power === "off";
    case "access":
      return task.revoke;
    case "network":
      // Every interface named, and none left on a VLAN (a task naming none is no cleanup).
      return (
        task.hosts.length > 0 &&
        task.hosts.every((host) => host.interfaces.every((i) => i.vlans.length === 0))
      );
    // A 2019 software cleanup (`{"opnfv": {}}`) is a provision with nothing to install too.
    case "software":
    case "snapshot":
      return false;
  }
}

/**
 * The round a task listed at 0 is in, against what the record holds of it: a task this lab had
 * answered (100, 200 or 300) coming back to 0 is its cleanup; so is one whose config says so. One
 * taken but not yet answered (a poller stopped in between) is still its provision.
 */
function roundAtNew(task: Task, held: JobTaskRecord | undefined): TaskRound {
  if (held?.round === "cleanup") return "cleanup";
  // Answered before: by this lab as recorded, or by any lab (only a post sets a lab token; one
  // whose answer was lost is recorded nowhere here).
  if (held?.posted || task.labToken !== null) return "cleanup";
  return isCleanupConfig(task) ? "cleanup" : "provision";
}

/**
 * The change that takes a listing's tasks into the job's record; null when none is new. `taken`
 * is filled, at each application, with the tasks that application took: after the write, those
 * of the one written (a compare-and-set lost to another poller is applied again on its copy).
 */
export function takeTasks(
  job: Job,
  listing: "new" | "current",
  now: Date,
  taken: JobTaskRecord[] = [],
): (current: JobRecord) => JobRecord | null {
  return (current) => {
    const at = now.toISOString();
    const tasks = { ...current.tasks };
    taken.length = 0;
    let cleanup = false;
    for (const task of job.tasks) {
      const held = tasks[task.taskId];
      if (listing === "new") {
        const round = roundAtNew(task, held);
        if (held && held.round === round) continue;
        tasks[task.taskId] = fresh(task, round, at, null, held);
        cleanup ||= round === "cleanup";
      } else {
        // At 100. Missing here (a store that lost it): taken as under way, in the round its
        // config says. Held as its provision with a cleanup config: re-issued, then moved to 100
        // by a provision post that landed late — its cleanup, which jobs/new no longer lists.
        const round = held ? "cleanup" : isCleanupConfig(task) ? "cleanup" : "provision";
        if (held && (held.round === "cleanup" || !isCleanupConfig(task))) continue;
        tasks[task.taskId] = fresh(task, round, at, held ? null : { status: 100, at }, held);
        cleanup ||= round === "cleanup";
      }
      taken.push(tasks[task.taskId] as JobTaskRecord);
    }
    if (taken.length === 0) return null;
    // The owner is the user of the first VPN task as the dashboard lists them, fixed once known.
    const firstVpn = job.tasks.find((t) => t.kind === "access" && t.accessType === "vpn");
    const owner = current.owner ?? (firstVpn?.kind === "access" ? firstVpn.user : null);
    return {
      ...current,
      owner,
      tasks,
      cleanupSince: current.cleanupSince ?? (cleanup ? at : null),
      // A task taken again reopens a job that was finished.
      finishedAt: null,
      expiresAtEpochSeconds: null,
    };
  };
}

/** A task's new round; a post of the round before still under way keeps its lease (statuses.ts). */
function fresh(
  task: Task,
  round: TaskRound,
  at: string,
  posted: JobTaskRecord["posted"],
  held?: JobTaskRecord,
): JobTaskRecord {
  return {
    taskId: task.taskId,
    kind: task.kind,
    round,
    task,
    takenAt: at,
    posted,
    postError: null,
    posting: held?.posting ?? null,
  };
}

export function emptyJob(lab: string, jobId: number, now: Date): JobRecord {
  const at = now.toISOString();
  return {
    key: jobKey(lab, jobId),
    lab,
    jobId,
    tasks: {},
    cleanupSince: null,
    owner: null,
    finishedAt: null,
    createdAt: at,
    updatedAt: at,
    expiresAtEpochSeconds: null,
    version: 0,
  };
}

/**
 * Reads the listings and takes what is new. Answers every job record of this lab the store holds
 * after the intake (read once, this intake's writes applied), whatever the dashboard answered:
 * a dashboard that cannot be reached leaves the jobs already taken to go on.
 */
export async function takeNewTasks(deps: IntakeDeps, report: IntakeReport): Promise<JobRecord[]> {
  const lab = deps.jobs.lab;
  const records = new Map<string, JobRecord>();
  for (const record of await deps.store.listJobs()) {
    if (record.lab === lab) records.set(record.key, record);
  }
  const listings = ["new", "current"] as const;
  for (const listing of listings) {
    let jobs: Job[];
    try {
      jobs = await deps.jobs.listJobs(listing);
    } catch (error) {
      report.errors.push(`jobs/${listing}: ${errorMessage(error)}`);
      deps.logger.error({ listing, err: errorMessage(error) }, "could not read the job listing");
      continue;
    }
    for (const job of jobs) {
      try {
        const record = await takeJob(deps, job, listing, records.get(jobKey(lab, job.id)), report);
        records.set(record.key, record);
      } catch (error) {
        // One job's trouble must not stop the others; the next poll takes it again.
        report.errors.push(`job ${job.id}: ${errorMessage(error)}`);
        deps.logger.error({ jobId: job.id, err: errorMessage(error) }, "could not take job");
      }
    }
  }
  return [...records.values()];
}

async function takeJob(
  deps: IntakeDeps,
  job: Job,
  listing: "new" | "current",
  stored: JobRecord | undefined,
  report: IntakeReport,
): Promise<JobRecord> {
  const now = deps.now();
  const taken: JobTaskRecord[] = [];
  const change = takeTasks(job, listing, now, taken);
  let current = stored;
  if (current === undefined) {
    const empty = emptyJob(deps.jobs.lab, job.id, now);
    // Another poller may have made it since the store was read: then its copy is the one changed.
    if (await deps.store.createJob(empty)) current = empty;
  }
  const before = current;
  const { changed, item } = await deps.store.updateJob(
    jobKey(deps.jobs.lab, job.id),
    change,
    before ? { expected: before } : {},
  );
  for (const task of changed ? taken : []) {
    report.taken.push(`${job.id}/${task.taskId} ${task.round}`);
    deps.logger.info(
      { jobId: job.id, taskId: task.taskId, kind: task.kind, round: task.round },
      "task taken",
    );
  }
  return item;
}
