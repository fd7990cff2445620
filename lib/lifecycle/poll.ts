/**
 * One poll: reconcile the dashboard's bookings into the store, then start each phase that is due.
 *
 * Safe to run as often and as concurrently as anyone likes. A phase starts only for the poller
 * whose conditional write moved the booking into it, under an execution name derived from the
 * booking, the phase and its generation; the engine refuses a second start of a name.
 *
 * A booking the lab cannot serve (booking-rules.ts) is refused here, before its host is claimed;
 * a failed booking whose host was left dirty gets the release run that cleans it.
 */
import type { Runtime } from "../app/runtime";
import type { Booking, DashboardBooking, Phase } from "../domain/booking";
import { executionName, isManual } from "../domain/booking";
import { errorMessage, NotFoundError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import {
  type BookingProblem,
  bookingProblem,
  bookingUserProblem,
  refusalReason,
} from "./booking-rules";
import { allOf, doneResult, recordDone, stepRecord } from "./checkpoints";
import {
  FAILURE_MAIL,
  FAILURE_RECORD,
  type FailureRecord,
  recordedFailure,
} from "./failure-record";
import { mailFailure, operatorsReachable } from "./operator-mail";
import { hostAfterRunFailed, tellOperatorsOfFailure } from "./outcomes";
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
  isFinished,
  markVanished,
  newBooking,
  refreshFromDashboard,
  refuseBooking,
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
  errors: string[];
}

type PollDeps = Pick<
  Runtime,
  "dashboard" | "store" | "engine" | "logger" | "now" | "config" | "mailer"
>;

export async function poll(rt: PollDeps): Promise<PollReport> {
  const report: PollReport = {
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
    errors: [],
  };
  const listed = await rt.dashboard.listBookings();
  report.seen = listed.length;
  await reconcile(rt, listed, report);

  const now = rt.now();
  for (const booking of await rt.store.listBookings()) {
    // `laas deploy` runs its own bookings' workflows in its own process.
    if (isManual(booking.id)) continue;
    try {
      await advance(rt, booking, now, report);
    } catch (error) {
      // One booking's trouble must not stop the others; the next poll tries it again.
      report.errors.push(`booking ${booking.id}: ${errorMessage(error)}`);
      rt.logger.error(
        { bookingId: booking.id, err: errorMessage(error) },
        "poll could not advance booking",
      );
    }
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

async function reconcile(rt: PollDeps, listed: DashboardBooking[], report: PollReport) {
  const listedIds = new Set(listed.map((b) => b.id));
  for (const fromDashboard of listed) {
    const problem = bookingProblem(fromDashboard, rt.config);
    const fresh = newBooking(fromDashboard, rt.now());
    const created = await rt.store.createBooking(
      problem ? (refusal(problem)(fresh) ?? fresh) : fresh,
    );
    if (created) {
      report.created.push(fromDashboard.id);
      if (problem) noteRefused(rt, fromDashboard.id, problem, report);
      continue;
    }
    const { changed, item } = await rt.store.updateBooking(
      fromDashboard.id,
      refreshFromDashboard(fromDashboard),
    );
    if (changed) report.updated.push(fromDashboard.id);
    // Edited into something the lab cannot serve before it started: refused now.
    if (problem && item.state === "scheduled") {
      const refused = await rt.store.updateBooking(item.id, refusal(problem));
      if (refused.changed) {
        noteRefused(rt, item.id, problem, report);
        // A claim left by a poll that stopped before provisioning began.
        await rt.store
          .updateHost(item.hostName, freeHost(item.id, rt.now()))
          .catch(ignoreMissingHost);
      }
    }
  }
  for (const stored of await rt.store.listBookings()) {
    if (listedIds.has(stored.id) || stored.vanished || isFinished(stored.state)) continue;
    if (isManual(stored.id)) continue;
    const { changed } = await rt.store.updateBooking(stored.id, markVanished);
    if (changed) report.vanished.push(stored.id);
  }
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
  const { changed } = await rt.store.updateBooking(booking.id, refusal(problem));
  if (changed) noteRefused(rt, booking.id, problem, report);
  return true;
}

/** The change that refuses a scheduled booking, its failure recorded as the poll's. */
function refusal(problem: BookingProblem): (current: Booking) => Booking | null {
  return (current) => {
    const input = refusalInput(current);
    const record: FailureRecord = {
      step: "Poll",
      error: "InvalidBooking",
      host: "free",
      field: problem.field,
    };
    return allOf(
      refuseBooking(refusalReason(problem)),
      recordDone(input, FAILURE_RECORD, record, new Date(current.updatedAt)),
    )(current);
  };
}

/** The run a refusal is recorded under: the provision run that never started. */
function refusalInput(booking: Booking): PhaseInput {
  return {
    bookingId: booking.id,
    hostName: booking.hostName,
    phase: "provision",
    generation: booking.provisionGeneration,
  };
}

function isRefusal(booking: Booking): boolean {
  return recordedFailure(booking, "provision")?.step === "Poll";
}

function noteRefused(rt: PollDeps, id: string, problem: BookingProblem, report: PollReport) {
  report.refused.push(id);
  rt.logger.warn(
    { bookingId: id, field: problem.field, reason: problem.reason },
    "booking refused",
  );
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
  const { changed } = await rt.store.updateBooking(booking.id, cancel(reason));
  if (!changed) return;
  report.cancelled.push(booking.id);
  await rt.store
    .updateHost(booking.hostName, freeHost(booking.id, rt.now()))
    .catch(ignoreMissingHost);
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
    const { changed, item } = await rt.store.updateHost(host.name, claimHost(booking.id, rt.now()));
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
  const { changed, item } = await rt.store.updateBooking(booking.id, beginProvisioning);
  if (!changed) return;
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
  await rt.store.updateHost(item.hostName, hostCleaning(item.id)).catch(ignoreMissingHost);
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
      failPhase(phase, generation, reason, cleanup),
      recordDone(input, FAILURE_RECORD, record, rt.now()),
    ),
  );
  if (!changed) return;
  report.recovered.push(booking.id);
  await tellOperatorsOfFailure(rt, input);
}

function ignoreMissingHost(error: unknown): void {
  if (error instanceof NotFoundError) return;
  throw error;
}
