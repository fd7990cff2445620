/**
 * How each workflow ends: a booking that is ready or released, or a failure recorded with its
 * reason and the host freed (never touched) or quarantined (touched, state unknown).
 *
 * A failure is recorded twice over: the whole error on the booking (`failure`: `laas status`, the
 * log, the operators' mail) and, beside it in the run's record, which step failed and the
 * error's name — all the dashboard's note is made from (status-notes.ts), so that no remote
 * stderr, address or directory name reaches the public. The operators are mailed the whole
 * error once per failure.
 */
import type { Runtime } from "../app/runtime";
import type { Booking } from "../domain/booking";
import { errorMessage, SupersededError } from "../errors";
import { renderFailureReport } from "../handover/message";
import type { PhaseInput } from "../ports/engine";
import { settledWithin } from "../time";
import { allOf, once, readBooking, recordDone } from "./checkpoints";
import { imagingConfig, requireCurrentRun } from "./current-run";
import { FAILURE_RECORD, type FailureRecord, failedStep, recordedFailure } from "./failure-record";
import { hasStatusNote, statusNoteFor } from "./status-notes";
import { failPhase, finishPhase, freeHost, quarantineHost } from "./transitions";

/** The run already ended the way this step ends it (the step is run again after a restart). */
function endedAs(booking: Booking, input: PhaseInput, state: Booking["state"]): boolean {
  const generation =
    input.phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  return booking.state === state && generation === input.generation;
}

export async function markReady(rt: Runtime, input: PhaseInput): Promise<{ state: string }> {
  const booking = await readBooking(rt, input.bookingId);
  if (endedAs(booking, input, "ready")) return { state: "ready" };
  requireCurrentRun(booking, input);
  const { item } = await rt.store.updateBooking(
    input.bookingId,
    finishPhase("provision", input.generation),
  );
  rt.logger.info({ bookingId: input.bookingId, host: input.hostName }, "booking ready");
  return { state: item.state };
}

export async function markReleased(rt: Runtime, input: PhaseInput): Promise<{ state: string }> {
  const booking = await readBooking(rt, input.bookingId);
  if (endedAs(booking, input, "released")) return { state: "released" };
  requireCurrentRun(booking, input);
  await rt.store.updateHost(input.hostName, freeHost(input.bookingId));
  const { item } = await rt.store.updateBooking(
    input.bookingId,
    finishPhase("release", input.generation),
  );
  rt.logger.info({ bookingId: input.bookingId, host: input.hostName }, "booking released");
  return { state: item.state };
}

/** The shape Step Functions gives a Catch's ResultPath. */
export interface CaughtError {
  Error: string;
  Cause?: string;
}

export interface RecordFailureInput extends PhaseInput {
  error: CaughtError;
  imaging?: { fogHostId: string };
}

export async function recordFailure(
  rt: Runtime,
  input: RecordFailureInput,
): Promise<{ state: string; host: string }> {
  const reason = describeCaught(input.error);
  const log = rt.logger.child({ bookingId: input.bookingId, phase: input.phase });
  let booking: Booking;
  try {
    booking = await readBooking(rt, input.bookingId);
    // Recorded already (the step is run again after a restart): only the mail may be missing.
    if (endedAs(booking, input, "failed")) {
      await mailOperators(rt, input);
      return { state: "failed", host: "unchanged" };
    }
    requireCurrentRun(booking, input);
  } catch (error) {
    if (error instanceof SupersededError) {
      // A newer run or a release owns the booking now; recording this failure would undo it.
      log.info({ reason }, "failure of a superseded run: nothing to record");
      return { state: "superseded", host: "unchanged" };
    }
    throw error;
  }
  // Read off the run before the failure is written (which ends its wait).
  const step = failedStep(booking, input, input.error.Error, rt.config.handover);
  if (input.imaging) {
    try {
      const imager = rt.imagerFor(imagingConfig(rt, booking, input.phase).fog);
      await imager.cancel(input.imaging.fogHostId);
    } catch (error) {
      log.warn({ err: errorMessage(error) }, "could not cancel the FOG task");
    }
  }
  const host = await rt.store.getHost(input.hostName);
  let hostOutcome = "unchanged";
  if (host && host.bookingId === booking.id) {
    if (host.state === "claimed") {
      await rt.store.updateHost(host.name, freeHost(booking.id));
      hostOutcome = "free";
    } else {
      await rt.store.updateHost(
        host.name,
        quarantineHost(booking.id, `booking ${booking.id} ${input.phase} failed: ${reason}`),
      );
      hostOutcome = "quarantined";
    }
  }
  const record: FailureRecord = { step, error: input.error.Error, host: hostOutcome };
  await rt.store.updateBooking(
    booking.id,
    allOf(
      failPhase(input.phase, input.generation, reason),
      recordDone(input, FAILURE_RECORD, record, rt.now()),
    ),
  );
  log.error({ reason, step, host: input.hostName, hostOutcome }, `${input.phase} failed`);
  await mailOperators(rt, input);
  return { state: "failed", host: hostOutcome };
}

const FAILURE_MAIL = "mailFailure";

/**
 * How long RecordFailure waits for the operators' mail. The step has 60 s (TimeoutSeconds) and is
 * retried when it runs past them: a mail server that hangs must not make a recorded failure look
 * unrecorded (FailureNotRecorded) and cost the booking its dashboard note.
 */
const MAIL_WAIT_MS = 20_000;

/**
 * Mails the operators the failure recorded for the run: booking, host, failed step and the whole
 * error. Once per failure (a step record), and never at the cost of the failure's record: a mail
 * that cannot be sent is logged, and tried again only should RecordFailure run again; one still
 * going after MAIL_WAIT_MS is left to finish on its own.
 */
async function mailOperators(rt: Runtime, input: PhaseInput): Promise<void> {
  const handover = rt.config.handover;
  const mailer = rt.mailer;
  const operators = handover?.email.operators ?? [];
  if (!mailer || operators.length === 0) return;
  const log = rt.logger.child({ bookingId: input.bookingId, phase: input.phase });
  const sending = once(rt, input, FAILURE_MAIL, async (booking) => {
    const recorded = recordedFailure(booking, input.phase);
    const stage = input.phase === "provision" ? "failed" : "release-failed";
    const message = renderFailureReport({
      bookingId: booking.id,
      hostName: booking.hostName,
      phase: input.phase,
      step: recorded?.step ?? "unknown",
      user: booking.user === null ? null : `dashboard user ${booking.user}`,
      installer: booking.installer,
      scenario: booking.scenario,
      host: recorded?.host ?? "unchanged",
      note: hasStatusNote(rt, booking) ? statusNoteFor(booking, stage).content : null,
      error: booking.failure ?? "",
      at: rt.now().toISOString(),
    });
    const sent = await mailer.send({ to: operators, ...message });
    log.info(
      { messageId: sent.messageId, recipients: operators.length },
      "failure mailed to the operators",
    );
    return { messageId: sent.messageId };
  }).catch((error: unknown) => {
    log.error(
      { err: errorMessage(error) },
      "could not mail the failure to the operators (it stays recorded on the booking)",
    );
  });
  if (!(await settledWithin(sending, MAIL_WAIT_MS))) {
    log.warn({ waitedMs: MAIL_WAIT_MS }, "the operators' failure mail is still being sent");
  }
}

export function describeCaught(error: CaughtError): string {
  const cause = error.Cause ?? "";
  // Lambda wraps the error as JSON {"errorType","errorMessage",...}; the local engine passes the
  // message itself.
  try {
    const parsed: unknown = JSON.parse(cause);
    if (parsed && typeof parsed === "object" && "errorMessage" in parsed) {
      return `${error.Error}: ${String((parsed as { errorMessage: unknown }).errorMessage)}`;
    }
  } catch {
    // not JSON: the message as it is
  }
  if (error.Error === "States.Timeout") return "States.Timeout: the step ran past its timeout";
  return cause
    ? `${error.Error}: ${cause.replace(new RegExp(`^${error.Error}: `), "")}`
    : error.Error;
}
