/**
 * One poll: reconcile the dashboard's bookings into the store, then start each phase that is due.
 *
 * Safe to run as often and as concurrently as anyone likes. A phase starts only for the poller
 * whose conditional write moved the booking into it, under an execution name derived from the
 * booking, the phase and its generation; the engine refuses a second start of a name.
 *
 * A booking the lab cannot serve (booking-rules.ts) is refused here, before its host is claimed;
 * a failed booking whose host was left dirty gets the release run that cleans it. Then each ready
 * booking whose end is near gets its notice (end-notice.ts), from the same reading of the store.
 */

import type { Booking, Phase } from "../domain/booking";
import { executionName, isManual } from "../domain/booking";
import type { JobRecord } from "../domain/job";
import { errorMessage, ignoreNotFound, NotFoundError } from "../errors";
import type { Dashboard } from "../ports/dashboard";
import type { PhaseInput } from "../ports/engine";
import type { JobsDashboard } from "../ports/jobs-dashboard";
import type { Runtime } from "../ports/runtime";
import { bookingUserProblem } from "./booking-rules";
import { allOf, doneResult, recordDone, stepRecord } from "./checkpoints";
import { sendEndNotices } from "./end-notice";
import { FAILURE_MAIL, FAILURE_RECORD, type FailureRecord } from "./failure-record";
import { JobBookings } from "./jobs/bookings";
import { takeNewTasks } from "./jobs/intake";
import { answerJob } from "./jobs/statuses";
import { mailFailure, operatorsReachable } from "./operator-mail";
import { hostAfterRunFailed, tellOperatorsOfFailure } from "./outcomes";
import { perHost } from "./per-host";
import { reconcile } from "./reconcile";
import { isRefusal, noteRefused, refusal, refusalInput } from "./refusal";
import { retentionOf } from "./retention";
import { postStatus } from "./status-notes";
import {
  beginCleaning,
  beginProvisioning,
  beginReleasing,
  cancel,
  claimHost,
  cleanupAfter,
  failPhase,
  freeHost,
  holds,
  hostCleaning,
} from "./transitions";

export interface PollReport {
  /** Bookings the dashboard listed (after inventory filtering and validation). */
  seen: number;
  created: string[];
  updated: string[];
  vanished: string[];
  cancelled: string[];
  /** Execution names started by this poll. */
  started: string[];
  /** Bookings that are due but wait for their host. */
  waiting: string[];
  /** Bookings whose workflow ended without recording an outcome, now marked failed. */
  recovered: string[];
  /** Bookings refused as the lab cannot serve them (booking-rules.ts), their hosts untouched. */
  refused: string[];
  /** Failed bookings whose host this poll started cleaning (a release run). */
  cleaning: string[];
  /** Bookings whose user this poll told that it ends soon (end-notice.ts). */
  noticed: string[];
  /** Jobs API: `<job>/<task> <round>` of each task this poll took (jobs/intake.ts). */
  tasksTaken: string[];
  /** Jobs API: `<job>/<task> <status>` of each task status this poll posted (jobs/statuses.ts). */
  tasksPosted: string[];
  errors: string[];
}

type PollDeps = Pick<
  Runtime,
  "dashboard" | "jobs" | "store" | "engine" | "logger" | "now" | "config" | "mailer"
>;

/**
 * How many hosts' bookings a poll advances at once (each host's one after another, per-host.ts).
 * A start is a few store requests, one at a time, and one engine call: 48 stays under the SDK's 50
 * sockets per client, and a burst of 200 starts within Step Functions' StartExecution bucket (800
 * to 1,300, refilled at 150 to 300 a second). On the embedded default the poll shares its thread
 * with the steps of every workflow already started; at 16 a burst's last start came 8 s late
 * there, at 48 about 4 s (BENCHMARKS.md, "Burst").
 */
export const ADVANCE_CONCURRENCY = 48;

export interface PollOptions {
  /** Hosts advanced at once (default ADVANCE_CONCURRENCY). */
  concurrency?: number;
}

export async function poll(rt: PollDeps, options: PollOptions = {}): Promise<PollReport> {
  const report = emptyReport();
  // On the jobs API, the new tasks are taken first: the bookings are the jobs' hardware tasks.
  const jobs = rt.jobs ? await takeJobs({ ...rt, jobs: rt.jobs }, report) : null;
  // The store's bookings, read once by reconcile and given back with its writes applied.
  const stored = await reconcile(jobs ? { ...rt, dashboard: jobs.bookings } : rt, report);

  const now = rt.now();
  // `laas deploy` runs its own bookings' workflows in its own process.
  const bookings = stored.filter((b) => !isManual(b.id));
  const parts = await perHost(
    bookings,
    (booking) => booking.hostName,
    options.concurrency ?? ADVANCE_CONCURRENCY,
    (booking) => advanceOne(rt, booking, now),
  );
  // In the store's order, whichever booking finished first.
  for (const part of parts) appendLists(report, part);
  // On the bookings as read: one another writer moved since is decided again on its claim.
  const notices = await sendEndNotices(rt, stored);
  report.noticed.push(...notices.sent);
  report.errors.push(...notices.errors);
  // Each job's tasks answered from what its bookings did, a post lost earlier posted again.
  for (const record of jobs?.records ?? []) {
    if (record.finishedAt !== null || !rt.jobs) continue;
    const answered = await answerJob({ ...rt, jobs: rt.jobs }, record);
    report.tasksPosted.push(...answered.posted);
    report.errors.push(...answered.errors);
    // Each post is retried for up to 20 s: against a dashboard in trouble, one is enough.
    if (answered.errors.length > 0) break;
  }
  rt.logger.info(
    {
      seen: report.seen,
      created: report.created.length,
      started: report.started,
      waiting: report.waiting,
      errors: report.errors.length,
    },
    "poll done",
  );
  return report;
}

function emptyReport(): PollReport {
  return {
    seen: 0,
    created: [],
    updated: [],
    vanished: [],
    cancelled: [],
    started: [],
    waiting: [],
    recovered: [],
    refused: [],
    cleaning: [],
    noticed: [],
    tasksTaken: [],
    tasksPosted: [],
    errors: [],
  };
}

/**
 * The jobs API's intake (jobs/new and jobs/current), and its jobs as the bookings reconcile
 * reads. A listing that cannot be read leaves the jobs already taken to go on.
 */
async function takeJobs(
  rt: PollDeps & { jobs: JobsDashboard },
  report: PollReport,
): Promise<{ records: JobRecord[]; bookings: Dashboard }> {
  const intake = { taken: report.tasksTaken, errors: report.errors };
  const records = await takeNewTasks(rt, intake);
  const bookings = new JobBookings(rt.jobs.lab, records, rt.config, rt.logger);
  return { records, bookings };
}

function appendLists(into: PollReport, part: PollReport): void {
  for (const key of Object.keys(part) as (keyof PollReport)[]) {
    const target = into[key];
    const items = part[key];
    if (Array.isArray(target) && Array.isArray(items)) target.push(...items);
  }
}

/** One booking advanced, what it did in a report of its own. */
async function advanceOne(rt: PollDeps, booking: Booking, now: Date): Promise<PollReport> {
  const part = emptyReport();
  try {
    await advance(rt, booking, now, part);
  } catch (error) {
    // One booking's trouble must not stop the others; the next poll tries it again.
    part.errors.push(`booking ${booking.id}: ${errorMessage(error)}`);
    rt.logger.error(
      { bookingId: booking.id, err: errorMessage(error) },
      "poll could not advance booking",
    );
  }
  return part;
}

async function advance(rt: PollDeps, booking: Booking, now: Date, report: PollReport) {
  const ended = booking.vanished || now.getTime() >= Date.parse(booking.end);
  switch (booking.state) {
    case "failed": {
      if (isRefusal(booking)) {
        await tellRefusal(rt, booking);
        return;
      }
      const mailPending = await mailPendingFailure(rt, booking);
      if (booking.cleanup !== null && !mailPending) await startCleaning(rt, booking, report);
      return;
    }
    case "scheduled":
      if (ended) {
        await cancelUnstarted(rt, booking, report);
      } else if (now.getTime() >= Date.parse(booking.start)) {
        await startProvisioning(rt, booking, report);
      }
      return;
    case "provisioning":
    case "ready":
      if (ended) {
        await startReleasing(rt, booking, report);
      } else if (booking.state === "provisioning") {
        await ensureRunning(rt, booking, "provision", report);
      }
      return;
    case "releasing":
      await ensureRunning(rt, booking, "release", report);
      return;
    default:
      return;
  }
}

/**
 * The user a due booking names is looked up before its host is claimed, when the lab hands
 * access over: their dashboard name becomes a VPN uid and goes into mail, and a name the
 * dashboard should never have allowed is refused here rather than after imaging. A lookup that
 * fails throws: the booking waits for the next poll.
 */
async function refusedForItsUser(
  rt: PollDeps,
  booking: Booking,
  report: PollReport,
): Promise<boolean> {
  if (!rt.config.handover || booking.user === null) return false;
  const user = await rt.dashboard.bookingUser(booking.user);
  const problem = user && bookingUserProblem(user);
  if (!problem) return false;
  const { changed } = await rt.store.updateBooking(booking.id, refusal(problem, retentionOf(rt)));
  if (changed) noteRefused(rt, booking.id, problem, report);
  return true;
}

/**
 * A refused booking's operators' mail and dashboard note, each once: tried at every poll until
 * done (the poll that refused it, or a later one if the mail server or the dashboard was down).
 */
async function tellRefusal(rt: PollDeps, booking: Booking) {
  const input = refusalInput(booking);
  const mailed = doneResult(booking, input, FAILURE_MAIL) !== undefined;
  const noted = doneResult(booking, input, "postStatus:failed") !== undefined;
  if (!mailed) await tellOperatorsOfFailure(rt, input);
  if (!noted && rt.config.handover?.dashboardNotes) {
    await postStatus(rt, { ...input, stage: "failed" });
  }
}

/**
 * How long a dirty host waits for its failure's mail to the operators before it is cleaned all
 * the same: the cleaning's run takes the failed run's place on the booking, records and all.
 */
const FAILURE_MAIL_GRACE_MS = 10 * 60_000;

/**
 * A failure whose operators' mail could not be sent when it was recorded (the mail server was
 * down) is mailed by a later poll, once its workflow has ended (so that no two processes send it).
 * Answers whether it is still pending (and within its grace, see FAILURE_MAIL_GRACE_MS).
 */
async function mailPendingFailure(rt: PollDeps, booking: Booking): Promise<boolean> {
  const run = booking.run;
  if (!run || !operatorsReachable(rt)) return false;
  const input: PhaseInput = {
    bookingId: booking.id,
    hostName: booking.hostName,
    phase: run.phase,
    generation: run.generation,
  };
  const recorded = stepRecord(booking, run.phase, run.generation, FAILURE_RECORD);
  if (!recorded?.done || doneResult(booking, input, FAILURE_MAIL) !== undefined) return false;
  const name = executionName(booking.id, run.phase, run.generation);
  if ((await rt.engine.status(name)) === "RUNNING") return true;
  if (await mailFailure(rt, input)) return false;
  return rt.now().getTime() - Date.parse(recorded.at) < FAILURE_MAIL_GRACE_MS;
}

/**
 * A failed booking whose host was left dirty: once its failed run has ended (its failure note
 * posted, its operators told), a release run cleans the host (pod removed, clean image written)
 * and frees it. The booking stays failed.
 */
async function startCleaning(rt: PollDeps, booking: Booking, report: PollReport) {
  const runs: string[] = [executionName(booking.id, "provision", booking.provisionGeneration)];
  if (booking.releaseGeneration > 0) {
    runs.push(executionName(booking.id, "release", booking.releaseGeneration));
  }
  for (const name of runs) {
    if ((await rt.engine.status(name)) === "RUNNING") return;
  }
  const { changed, item } = await rt.store.updateBooking(booking.id, beginCleaning);
  if (!changed) return;
  report.cleaning.push(booking.id);
  await startPhase(rt, item, "release", report);
}

async function cancelUnstarted(rt: PollDeps, booking: Booking, report: PollReport) {
  const reason = booking.vanished
    ? "cancelled on the dashboard before it started"
    : "ended before its host became free";
  const { changed } = await rt.store.updateBooking(booking.id, cancel(reason, retentionOf(rt)));
  if (!changed) return;
  report.cancelled.push(booking.id);
  await rt.store.updateHost(booking.hostName, freeHost(booking.id, rt.now())).catch(ignoreNotFound);
}

async function startProvisioning(rt: PollDeps, booking: Booking, report: PollReport) {
  // Claim first: a claim by the same booking is a no-op, so racing pollers both pass here and
  // then race on the booking's own transition, which only one wins.
  const host = await rt.store.getHost(booking.hostName);
  if (!host) {
    throw new NotFoundError(
      `host ${booking.hostName} is not in the store (run \`laas reset-db --host\` to fill it from FOG)`,
    );
  }
  if (host.state === "free" && (await refusedForItsUser(rt, booking, report))) return;
  if (!holds(host, booking.id)) {
    // On the version just read: a claim that declines on it is decided again on the latest.
    const { changed, item } = await rt.store.updateHost(
      host.name,
      claimHost(booking.id, rt.now()),
      { expected: host },
    );
    if (!changed && !holds(item, booking.id)) {
      report.waiting.push(booking.id);
      const holder = item.bookingId ? `booking ${item.bookingId}` : item.state;
      await rt.store.updateBooking(booking.id, (b) => {
        const progress = `waiting for host ${item.name} (${holder})`;
        return b.state === "scheduled" && b.progress !== progress ? { ...b, progress } : null;
      });
      if (item.state === "quarantined") {
        rt.logger.warn({ bookingId: booking.id, host: item.name }, "host is quarantined");
      }
      return;
    }
  }
  // On the version this poll read: a burst of due bookings starts with one store read fewer each.
  // Only on the host claimed: a poller with a newer reading of the dashboard may have moved the
  // booking to another host since this one read it (the write then re-decides on that version).
  const { changed, item } = await rt.store.updateBooking(
    booking.id,
    (current) => (current.hostName === host.name ? beginProvisioning(current) : null),
    { expected: booking },
  );
  if (!changed) {
    if (item.state === "scheduled" && item.hostName !== host.name) {
      // The claim made here for the host it left is given back; a later poll claims the new one.
      await rt.store
        .updateHost(host.name, (h) =>
          h.state === "claimed" ? freeHost(booking.id, rt.now())(h) : null,
        )
        .catch(ignoreNotFound);
    }
    return;
  }
  await startPhase(rt, item, "provision", report);
}

async function startReleasing(rt: PollDeps, booking: Booking, report: PollReport) {
  const { changed, item } = await rt.store.updateBooking(booking.id, beginReleasing);
  if (!changed) return;
  if (booking.state === "provisioning") {
    // The booking ended while it was being built: stop building before taking it back.
    await rt.engine.stop(
      executionName(booking.id, "provision", booking.provisionGeneration),
      "booking ended during provisioning",
    );
  }
  await rt.store.updateHost(item.hostName, hostCleaning(item.id)).catch(ignoreNotFound);
  await startPhase(rt, item, "release", report);
}

async function startPhase(rt: PollDeps, booking: Booking, phase: Phase, report: PollReport) {
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  const name = executionName(booking.id, phase, generation);
  const input: PhaseInput = {
    bookingId: booking.id,
    hostName: booking.hostName,
    phase,
    generation,
  };
  const { started } = await rt.engine.start(phase, name, input);
  if (started) {
    report.started.push(name);
    rt.logger.info({ bookingId: booking.id, execution: name }, `${phase} started`);
  }
}

/**
 * A booking in a phase has an execution, unless the process that moved it there stopped before
 * starting it (or a local listener was restarted). Start it again under the same name — the
 * engine makes that a no-op if it is known — and fail bookings whose execution ended without
 * recording an outcome (the failure step itself failed).
 */
async function ensureRunning(rt: PollDeps, booking: Booking, phase: Phase, report: PollReport) {
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  const name = executionName(booking.id, phase, generation);
  const status = await rt.engine.status(name);
  if (status === null) {
    await startPhase(rt, booking, phase, report);
    return;
  }
  if (status === "RUNNING" || status === "SUCCEEDED") return;
  const reason = `${phase} workflow ${name} ended ${status} without recording an outcome`;
  const input: PhaseInput = {
    bookingId: booking.id,
    hostName: booking.hostName,
    phase,
    generation,
  };
  const host = await hostAfterRunFailed(rt, booking, input, reason);
  const cleanup = cleanupAfter(booking, phase, host);
  const record: FailureRecord = { step: "unknown", error: `Execution${status}`, host, field: null };
  const { changed } = await rt.store.updateBooking(
    booking.id,
    allOf(
      failPhase(phase, generation, reason, cleanup, retentionOf(rt)),
      recordDone(input, FAILURE_RECORD, record, rt.now()),
    ),
  );
  if (!changed) return;
  report.recovered.push(booking.id);
  await tellOperatorsOfFailure(rt, input);
}
