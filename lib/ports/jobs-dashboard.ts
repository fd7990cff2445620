/**
 * The later dashboard's jobs API (reference/dashboard-apis.md §2), normalised. The lab polls; the
 * dashboard never calls the lab. A job is a booking's work for this lab, made of tasks; each task
 * moves 0 (new) → 100 (current) → 200 (done), or 300 (error), by the lab's status posts, and at
 * the booking's end the dashboard re-issues the same task ids at 0 with cleanup configs.
 *
 * There is no claim or lease: two pollers both see a task until its status moves to 100, so a
 * caller records which task ids it took (conditional writes) before it acts on them.
 */

/** The listings: a job is listed under each whose status at least one of its tasks has. */
export type JobListing = "new" | "current" | "done";

/** A task's status as the dashboard keeps it. */
export type TaskStatus = 0 | 100 | 200 | 300;

export const TASK_STATUS = { new: 0, current: 100, done: 200, error: 300 } as const;

/** The status each listing lists (300 is listed nowhere). */
export const LISTING_STATUS: Readonly<Record<JobListing, TaskStatus>> = {
  new: 0,
  current: 100,
  done: 200,
};

interface TaskBase {
  /** The task's id on the dashboard: a UUID, the same for its cleanup re-issue. */
  taskId: string;
  /**
   * What the lab last posted as the task's `lab_token` (its handle on what it did), or null when it
   * never posted one. Taken out of the config: nothing else in the task carries it.
   */
  labToken: string | null;
}

/** Image, name and power of one host. A cleanup re-issue says `power: "off"`. */
export interface HardwareTask extends TaskBase {
  kind: "hardware";
  /** The host's lab id (the inventory's key for it). */
  hostLabId: string;
  /** The lab's image id; null when the config names none (the 2019 cleanup: no reimage). */
  imageId: string | null;
  /** The host name the user asked for; null when the config names none. */
  hostname: string | null;
  power: "on" | "off";
  /** Whether the dashboard asks for an IPMI account for the user. */
  ipmiCreate: boolean;
}

export interface Vlan {
  vlanId: number;
  tagged: boolean;
}

export interface InterfaceVlans {
  /** The interface's MAC address, lower case. */
  mac: string;
  /** The VLANs it carries; empty in a cleanup re-issue (the interface is taken off them). */
  vlans: Vlan[];
}

/** The VLANs of each interface of each host. */
export interface NetworkTask extends TaskBase {
  kind: "network";
  hosts: Array<{ hostLabId: string; interfaces: InterfaceVlans[] }>;
}

/** A user's VPN account, or their SSH key on hosts; `revoke` undoes what `labToken` names. */
export interface AccessTask extends TaskBase {
  kind: "access";
  accessType: "vpn" | "ssh";
  /** The dashboard's user id. */
  user: string;
  revoke: boolean;
  /** The OpenSSH public key line (ssh tasks), unchecked; null when none was sent. */
  sshKey: string | null;
  /** Lab ids of the hosts the key goes on (ssh tasks); empty when none were named. */
  hosts: string[];
}

/** The installer to run. Every field may be missing (the 2019 cleanup sends none). */
export interface SoftwareTask extends TaskBase {
  kind: "software";
  installer: string | null;
  scenario: string | null;
  /** Dashboard paths of the OPNFV pod descriptor files. */
  pdf: string | null;
  idf: string | null;
  roles: Array<{ hostLabId: string; role: string }>;
}

/** An image to be taken of a host. */
export interface SnapshotTask extends TaskBase {
  kind: "snapshot";
  hostLabId: string | null;
  imageId: string | null;
  /** The dashboard's id for the image being made. */
  dashboardId: number;
}

export type Task = HardwareTask | NetworkTask | AccessTask | SoftwareTask | SnapshotTask;
export type TaskKind = Task["kind"];

export interface Job {
  id: number;
  /** In a listing, only the tasks at that listing's status; from getJob, every task. */
  tasks: Task[];
}

export interface StatusUpdate {
  status: TaskStatus;
  /** Shown to the user (credentials, addresses, what failed); left as it was when not given. */
  message?: string;
  /** The lab's handle on what it did, at most 50 characters; left as it was when not given. */
  labToken?: string;
}

/**
 * The dashboard's jobs API for one lab. Every method sends the lab token and may throw:
 * - AuthError: the dashboard refused the lab token or does not know the lab (both 403); the
 *   message names the lab, never the token;
 * - TransientError: the dashboard could not be reached, answered 5xx (other than the 500 below),
 *   or an answer was cut short — after the adapter's own bounded retries;
 * - ConfigError: the route is not where the dashboard URL says (404, or an HTML page where JSON
 *   was expected);
 * - ProtocolError: the answer was JSON of the wrong shape.
 * A malformed job or task in an answer is skipped with a warning, so the others still go through;
 * so is a task of a kind this client does not know.
 */
export interface JobsDashboard {
  /** Lab name the port speaks for (in messages). */
  readonly lab: string;
  /**
   * The jobs with at least one task at the listing's status, each with only those tasks (jobs
   * with none are left out by the dashboard). Safe to repeat: it reads only.
   */
  listJobs(which: JobListing): Promise<Job[]>;
  /**
   * Every task of one job, whatever its status. Throws NotFoundError when the dashboard answers
   * 500 to each attempt — what it answers for a job id it does not know.
   */
  getJob(jobId: number): Promise<Job>;
  /**
   * One task's current config. The dashboard does not check that the task belongs to the job
   * named. Throws NotFoundError when the dashboard answers 500 to each attempt (an unknown task).
   */
  getTask(jobId: number, taskId: string): Promise<Task>;
  /**
   * Sets a task's status (and message, lab token). Idempotent: posting the same update again
   * leaves the task as one post does, so the adapter posts again, within a bounded time, when a
   * post's answer is lost (no answer, a dropped connection, 5xx); the caller may repeat it too.
   * Throws OutcomeUnknownError (a TransientError) when no attempt was answered and one may have
   * been applied, NotFoundError when each answer was 500 (an unknown task), ProtocolError when
   * the dashboard's answer shows it did not take the status.
   */
  postStatus(jobId: number, taskId: string, update: StatusUpdate): Promise<void>;
}
