/**
 * Each task's status on the dashboard, from what the job's bookings did: 100 when its work
 * starts, 200 with its message and lab token when done, 300 with the reason when it cannot be.
 * The answer is worked out again from the store whenever asked (the workflows' status steps, and
 * every poll), and posted only when it moves the task on from what was last posted: a post lost
 * or refused is posted again by the next one to ask, and a post twice is one (the dashboard keeps
 * the last). What the dashboard took is recorded on the job, on its task's round.
 *
 * Two answers carry secrets and are never made here: a hardware task's 200 (its host's root
 * password) and a VPN task's 200 (the account's password) are the hand-over (handover.ts), posted
 * while the passwords are still sealed on the booking. Nothing posted is ever logged.
 */

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { HandoverConfig } from "../../config/types";
import type { Booking } from "../../domain/booking";
import type { Host } from "../../domain/host";
import type { JobRecord, JobTaskRecord } from "../../domain/job";
import { errorMessage, TransientError } from "../../errors";
import type { JobsDashboard, StatusUpdate, TaskStatus } from "../../ports/jobs-dashboard";
import type { Runtime } from "../../ports/runtime";
import { recordedFailure } from "../failure-record";
import { powersOffAfterCleaning } from "../imaging";
import { isRefusal } from "../refusal";
import { retentionOf } from "../retention";
import { publicReason } from "../status-notes";
import { isFinal } from "../transitions";
import { recordedVpnEntry } from "../vpn-record";
import { hardwareTasks, jobBookingId, jobUser } from "./bookings";

export type JobsDeps = Pick<Runtime, "store" | "logger" | "now" | "config"> & {
  jobs: JobsDashboard;
};

/** What a task is answered, when it is answered now. */
export interface TaskAnswer extends StatusUpdate {
  message: string;
}

/** The message of a network task while the lab has no switch adapter (never a silent 200). */
export const NO_SWITCH_ADAPTER =
  "This lab has no switch adapter: VLANs are not configured by its automation yet, and the hosts stay on the lab's own network.";

/**
 * 0 → 100 → 300 → 200: a post moves a task on, never back, within a round. A 300 may still give
 * way to a 200 (a host an operator repaired and released), never a 200 to anything.
 */
function rank(status: TaskStatus | undefined): number {
  if (status === undefined) return -1;
  return status === 300 ? 150 : status;
}

/** A booking with nothing left to do: ended, its host cleaned (or never touched). */
function ended(booking: Booking): boolean {
  return isFinal(booking) || booking.state === "cancelled" || booking.state === "released";
}

/** Whether the booking still holds a VPN account (its user's, one of its own, another user's). */
function holdsAccount(booking: Booking): boolean {
  const access = booking.access;
  return (
    access !== null &&
    (access.vpnPerson !== null || access.vpnOthers.length > 0 || recordedVpnEntry(access) !== null)
  );
}

function installed(booking: Booking): boolean {
  return booking.state === "ready" || booking.state === "releasing" || booking.state === "released";
}

function hostsText(bookings: Booking[]): string {
  return bookings.map((b) => b.hostName).join(", ");
}

function failureText(booking: Booking): string {
  if (booking.state === "cancelled")
    return `${booking.hostName}: ${booking.failure ?? "cancelled"}`;
  // The short, safe reason of its kind, as the bookings API's notes give it.
  return `${booking.hostName} could not be provisioned: ${publicReason(recordedFailure(booking, "provision"))}.`;
}

/** What the job's bookings are, per hardware task id (null: not made yet, or host unknown). */
export interface JobState {
  record: JobRecord;
  bookings: Map<string, Booking | null>;
  /** The hosts of its bookings whose cleaning failed, by name: freed by an operator or not. */
  hosts: Map<string, Host | null>;
  /** Hardware task ids whose host the inventory lacks. */
  unknownHosts: Set<string>;
}

export async function jobState(deps: JobsDeps, record: JobRecord): Promise<JobState> {
  const bookings = new Map<string, Booking | null>();
  const unknownHosts = new Set<string>();
  const hosts = new Map<string, Host | null>();
  for (const hardware of hardwareTasks(record)) {
    const known = deps.config.inventory.hosts.some((h) => h.resourceId === hardware.task.hostLabId);
    if (!known) unknownHosts.add(hardware.taskId);
    const id = jobBookingId(record.jobId, hardware.task.hostLabId);
    const booking = known ? await deps.store.getBooking(id) : null;
    bookings.set(hardware.taskId, booking);
    if (
      hardware.round === "cleanup" &&
      booking &&
      (recordedFailure(booking, "release") || booking.state === "failed")
    ) {
      hosts.set(booking.hostName, await deps.store.getHost(booking.hostName));
    }
  }
  return { record, bookings, unknownHosts, hosts };
}

/** Bookings of the job, all made: null while any hardware task with a known host has none yet. */
function madeBookings(state: JobState): Booking[] | null {
  const made: Booking[] = [];
  for (const [taskId, booking] of state.bookings) {
    if (state.unknownHosts.has(taskId)) continue;
    if (!booking) return null;
    made.push(booking);
  }
  return made;
}

/**
 * The answer for several bookings' shared work (software, access, network cleanup): 300 when
 * one failed (or its host is unknown), 200 when all did it, 100 once one started; null before.
 */
function together(
  state: JobState,
  of: Booking[] | null,
  done: (bookings: Booking[]) => TaskAnswer,
): TaskAnswer | null {
  if (state.unknownHosts.size > 0) {
    return { status: 300, message: "The job names a host this lab's inventory does not have." };
  }
  if (of === null || of.length === 0) return null;
  const failed = of.filter((b) => b.state === "failed" || b.state === "cancelled");
  if (failed.length > 0) {
    return { status: 300, message: failed.map(failureText).join(" ") };
  }
  if (of.every(installed)) return done(of);
  if (of.some((b) => b.state !== "scheduled")) {
    return { status: 100, message: `Provisioning ${hostsText(of)}.` };
  }
  return null;
}

function provisionAnswer(deps: JobsDeps, state: JobState, task: JobTaskRecord): TaskAnswer | null {
  const handover: HandoverConfig | null = deps.config.handover;
  const all = madeBookings(state);
  const labToken = `job-${state.record.jobId}`;
  const t = task.task;
  switch (t.kind) {
    case "hardware": {
      if (state.unknownHosts.has(task.taskId)) {
        return {
          status: 300,
          message: `Host ${t.hostLabId} is not in this lab's inventory.`,
        };
      }
      const booking = state.bookings.get(task.taskId) ?? null;
      if (!booking || booking.state === "scheduled") return null;
      if (booking.state === "failed" || booking.state === "cancelled") {
        return { status: 300, message: failureText(booking) };
      }
      if (booking.state === "provisioning") {
        return { status: 100, message: `Imaging ${booking.hostName}.`, labToken: booking.id };
      }
      // Ready: with a hand-over, its 200 carries the root password (handover.ts).
      if (handover) return null;
      return { status: 200, message: `${booking.hostName} is ready.`, labToken: booking.id };
    }
    case "network":
      return { status: 300, message: NO_SWITCH_ADAPTER };
    case "snapshot":
      return { status: 300, message: "This lab does not take snapshots of hosts." };
    case "software":
      return together(state, all, (bookings) => ({
        status: 200,
        message: t.installer
          ? `${t.installer}${t.scenario ? ` (scenario ${t.scenario})` : ""} deployed on ${hostsText(bookings)}.`
          : `No installer asked: ${hostsText(bookings)} ready.`,
        labToken,
      }));
    case "access": {
      // The job's user's key is the booking's own; another user's is among its others'.
      const ownKey = t.user === jobUser(state.record);
      const keyOf = (b: Booking) => (ownKey ? b.access?.sshKey : b.access?.otherSshKeys[t.user]);
      if (t.accessType === "vpn") {
        if (!handover?.vpn) return { status: 300, message: "This lab gives no VPN access." };
        // Ready: its 200 carries the account's password (handover.ts).
        const answer = together(state, all, () => ({ status: 200, message: "" }));
        return answer?.status === 200 ? null : answer;
      }
      if (!handover?.sshKey) {
        return { status: 300, message: "This lab does not install SSH keys." };
      }
      const targets =
        all === null
          ? null
          : all.filter((b) => t.hosts.length === 0 || t.hosts.includes(b.resourceId));
      return together(state, targets, (bookings) => {
        const refused = bookings.find((b) => !keyOf(b)?.startsWith("installed "));
        if (refused) {
          return {
            status: 300,
            message: `The key was not installed on ${refused.hostName}: ${keyOf(refused) ?? "no key"}.`,
          };
        }
        const fingerprint = (bookings[0] && keyOf(bookings[0]))?.slice("installed ".length) ?? "";
        return {
          status: 200,
          message: `Key ${fingerprint} installed for root on ${hostsText(bookings)}.`,
          labToken: `ssh-${t.user}`.slice(0, 50),
        };
      });
    }
  }
}

function cleanupAnswer(
  deps: Pick<JobsDeps, "config">,
  state: JobState,
  task: JobTaskRecord,
): TaskAnswer | null {
  const t = task.task;
  if (t.kind === "hardware") {
    if (state.unknownHosts.has(task.taskId)) {
      return {
        status: 200,
        message: `Host ${t.hostLabId} was never this lab's: nothing to clean.`,
      };
    }
    const booking = state.bookings.get(task.taskId) ?? null;
    if (!booking) return null;
    if (booking.state === "releasing" || (booking.state === "failed" && booking.cleanup)) {
      return { status: 100, message: `Reimaging ${booking.hostName} clean.`, labToken: booking.id };
    }
    if (booking.state === "cancelled" || (booking.state === "failed" && isRefusal(booking))) {
      return { status: 200, message: `${booking.hostName} was never imaged: nothing to clean.` };
    }
    if (booking.state === "released" || booking.state === "failed") {
      const released = recordedFailure(booking, "release");
      const provisioned = booking.state === "failed" ? recordedFailure(booking, "provision") : null;
      const failure = released ?? (provisioned?.host === "quarantined" ? provisioned : null);
      if (failure) {
        // Out of service: an operator who repaired it and released it (`laas host release`,
        // which reimages it clean) frees it, and the cleanup is answered again then.
        const host = state.hosts.get(booking.hostName);
        if (host?.state === "free") {
          return {
            status: 200,
            message: `${booking.hostName} was cleaned by the lab's operators.`,
            labToken: booking.id,
          };
        }
        return {
          status: 300,
          message: `${booking.hostName} could not be cleaned up: ${publicReason(failure)}. It stays out of service until the lab's operators release it.`,
        };
      }
      if (booking.state === "failed" && booking.releaseGeneration === 0) {
        return { status: 200, message: `${booking.hostName} was never imaged: nothing to clean.` };
      }
      const off = powersOffAfterCleaning(deps, booking, {
        bookingId: booking.id,
        hostName: booking.hostName,
        phase: "release",
        generation: booking.releaseGeneration,
      });
      return {
        status: 200,
        message: off
          ? `${booking.hostName} reimaged clean and powered off.`
          : `${booking.hostName} reimaged clean; left on, as this lab powers it over SSH, which cannot start it again.`,
        labToken: booking.id,
      };
    }
    return null;
  }
  const all = madeBookings(state);
  if (all === null) return null;
  if (!all.every(ended)) {
    return all.some((b) => b.state === "releasing" || b.cleanup !== null)
      ? { status: 100, message: `Cleaning up ${hostsText(all)}.` }
      : null;
  }
  switch (t.kind) {
    case "network":
      return {
        status: 200,
        message: "No VLANs were set by this lab (it has no switch adapter): nothing to undo.",
      };
    case "access":
      // Revoked once no booking of the job still holds an account (a release whose RevokeAccess
      // failed leaves it to the sweep, which lets go of it later).
      if (t.accessType === "vpn" && all.some(holdsAccount)) {
        return { status: 100, message: "Revoking VPN access." };
      }
      return {
        status: 200,
        message:
          t.accessType === "vpn"
            ? "VPN access for this booking is revoked (an account still used by your other bookings stays until they end)."
            : "The hosts were reimaged: the key is gone with them.",
      };
    default:
      return { status: 200, message: "The hosts were reimaged: nothing is left to undo." };
  }
}

/**
 * What a task is answered now, or null when nothing is to be posted for it yet. Every answer
 * carries a lab token (the job's, unless it names its own): it is what tells a task this lab
 * answered from a new one, should the store lose the job's record (intake.ts).
 */
export function answerFor(deps: JobsDeps, state: JobState, task: JobTaskRecord): TaskAnswer | null {
  const answer =
    task.round === "cleanup"
      ? cleanupAnswer(deps, state, task)
      : provisionAnswer(deps, state, task);
  return answer && { labToken: `job-${state.record.jobId}`, ...answer };
}

/**
 * How long a post under way keeps the others waiting: more than one post's bounded retries
 * (DEFAULT_POST_RETRY, 20 s) and its request timeout (30 s), so that a poster that stopped
 * mid-post holds nobody for long.
 */
export const POSTING_LEASE_MS = 90_000;

/** How long a poster waits for another's post to the same task before giving up (retried later). */
const POSTING_WAIT_MS = 5_000;

/**
 * Posts an answer and records it on the task's round, one post of a task at a time: the post is
 * leased on the record first (a conditional write), made, then recorded and the lease let go. An
 * answer no further than what was posted already is not posted; a round moved on in between (the
 * cleanup re-issue taken) is left as it is. A post's failure is recorded (its error's text, which
 * never holds the message) and thrown; so is a lease held by another poster past the wait.
 */
export async function postAnswer(
  deps: JobsDeps,
  record: JobRecord,
  taskId: string,
  answer: TaskAnswer,
): Promise<JobRecord> {
  const round = record.tasks[taskId]?.round;
  const onRound = (change: (t: JobTaskRecord) => JobTaskRecord | null) => (r: JobRecord) => {
    const current = r.tasks[taskId];
    if (!current || current.round !== round) return null;
    const next = change(current);
    return next ? { ...r, tasks: { ...r.tasks, [taskId]: next } } : null;
  };
  const me = randomUUID();
  let item = record;
  for (const started = Date.now(); ; await sleep(200)) {
    const now = deps.now();
    ({ item } = await deps.store.updateJob(
      record.key,
      onRound((t) => {
        if (rank(t.posted?.status) >= rank(answer.status)) return null;
        if (t.posting && Date.parse(t.posting.until) > now.getTime()) return null;
        const until = new Date(now.getTime() + POSTING_LEASE_MS).toISOString();
        return { ...t, posting: { by: me, until } };
      }),
    ));
    const task = item.tasks[taskId];
    // Posted already (by another, or the round moved on): nothing to post.
    if (!task || task.round !== round || rank(task.posted?.status) >= rank(answer.status)) {
      return item;
    }
    if (task.posting?.by === me) break;
    if (Date.now() - started > POSTING_WAIT_MS) {
      throw new TransientError(`task ${taskId}: another status post of it is under way`);
    }
  }
  const letGo = (change: (t: JobTaskRecord) => JobTaskRecord) =>
    deps.store.updateJob(
      record.key,
      onRound((t) => (t.posting?.by === me ? change({ ...t, posting: null }) : null)),
    );
  try {
    await deps.jobs.postStatus(record.jobId, taskId, answer);
  } catch (error) {
    const reason = errorMessage(error);
    await letGo((t) => ({ ...t, postError: reason })).catch(() => undefined);
    throw error;
  }
  const at = deps.now().toISOString();
  ({ item } = await letGo((t) => ({
    ...t,
    posted: { status: answer.status, at },
    postError: null,
  })));
  deps.logger.info(
    { jobId: record.jobId, taskId, kind: record.tasks[taskId]?.kind, round, status: answer.status },
    "task status posted",
  );
  return item;
}

export interface AnswerReport {
  /** `<job>/<task> <status>` of each post made. */
  posted: string[];
  errors: string[];
}

/**
 * Answers every task of the job that has moved on since its last post, and marks the job
 * finished once its hardware tasks came back for cleanup and every cleanup is answered.
 */
export async function answerJob(
  deps: JobsDeps,
  record: JobRecord,
  report: AnswerReport = { posted: [], errors: [] },
): Promise<AnswerReport> {
  let current = record;
  const state = await jobState(deps, current);
  for (const task of Object.values(current.tasks)) {
    const answer = answerFor(deps, state, task);
    if (!answer || rank(answer.status) <= rank(task.posted?.status)) continue;
    try {
      current = await postAnswer(deps, current, task.taskId, answer);
      report.posted.push(`${current.jobId}/${task.taskId} ${answer.status}`);
    } catch (error) {
      report.errors.push(`job ${current.jobId} task ${task.taskId}: ${errorMessage(error)}`);
      deps.logger.warn(
        { jobId: current.jobId, taskId: task.taskId, err: errorMessage(error) },
        "task status not posted; the next poll posts it again",
      );
      // A dashboard in trouble answers the next post no better: the next poll goes on.
      break;
    }
  }
  await finishIfDone(deps, current);
  return report;
}

async function finishIfDone(deps: JobsDeps, record: JobRecord): Promise<void> {
  if (!isDone(record)) return;
  const retention = retentionOf(deps);
  await deps.store.updateJob(record.key, (r) => {
    if (r.finishedAt !== null || !isDone(r)) return null;
    const at = retention.now;
    return {
      ...r,
      finishedAt: at.toISOString(),
      expiresAtEpochSeconds:
        Math.ceil(at.getTime() / 1000) + retention.retentionDays * 24 * 60 * 60,
    };
  });
}

function isDone(record: JobRecord): boolean {
  if (record.cleanupSince === null || record.finishedAt !== null) return false;
  const hardware = hardwareTasks(record);
  if (hardware.length === 0 || hardware.some((t) => t.round !== "cleanup")) return false;
  // Every task answered for good: a host's or network's cleanup done (at 300 the dashboard keeps
  // the host allocated, and an operator's repair answers it again), the rest done or refused.
  return Object.values(record.tasks).every((t) => {
    const needsDone = t.round === "cleanup" && (t.kind === "hardware" || t.kind === "network");
    return needsDone ? t.posted?.status === 200 : rank(t.posted?.status) >= rank(300);
  });
}
