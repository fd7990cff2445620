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

import type { Booking } from "../domain/booking";
import { errorMessage, ignoreNotFound, NotFoundError, SupersededError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { allOf, intentOf, readBooking, recordDone } from "./checkpoints";
import { imagingConfig, requireCurrentRun } from "./current-run";
import { FAILURE_RECORD, type FailureRecord, failedStep } from "./failure-record";
import { START_IMAGING } from "./imaging";
import { mailFailure, mailQuarantine } from "./operator-mail";
import { retentionOf } from "./retention";
import {
  cleanupAfter,
  failPhase,
  finishPhase,
  freeHost,
  type HostOutcome,
  hostAfterFailure,
  hostFailed,
  hostServed,
  runLabel,
} from "./transitions";

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
  // The host served a booking: its failure streak ends.
  await rt.store.updateHost(input.hostName, hostServed(input.bookingId)).catch(ignoreNotFound);
  const { item } = await rt.store.updateBooking(
    input.bookingId,
    finishPhase("provision", input.generation, retentionOf(rt)),
  );
  rt.logger.info({ bookingId: input.bookingId, host: input.hostName }, "booking ready");
  return { state: item.state };
}

export async function markReleased(rt: Runtime, input: PhaseInput): Promise<{ state: string }> {
  const booking = await readBooking(rt, input.bookingId);
  if (endedAs(booking, input, "released")) return { state: "released" };
  requireCurrentRun(booking, input);
  await rt.store.updateHost(input.hostName, freeHost(input.bookingId, rt.now()));
  const { item } = await rt.store.updateBooking(
    input.bookingId,
    finishPhase("release", input.generation, retentionOf(rt)),
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
      await tellOperatorsOfFailure(rt, input);
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
  // StartImaging may have created the deploy task before it failed (its result, and so
  // input.imaging, is then missing): its intent says so, and the host's FOG id names it.
  const fogHostId =
    input.imaging?.fogHostId ??
    (intentOf(booking, input, START_IMAGING).deployRequested === true
      ? ((await rt.store.getHost(input.hostName))?.fogId ?? null)
      : null);
  if (fogHostId !== null) {
    try {
      const imager = rt.imagerFor(imagingConfig(rt, booking, input.phase).fog);
      await imager.cancel(fogHostId);
    } catch (error) {
      log.warn({ err: errorMessage(error) }, "could not cancel the FOG task");
    }
  }
  const hostOutcome = await hostAfterRunFailed(rt, booking, input, reason);
  // A failed cleaning after a failed provision leaves the provision's reason first.
  const failure =
    input.phase === "release" && booking.cleanup === "after-provision" && booking.failure
      ? `${booking.failure}; cleaning the host then failed: ${reason}`
      : reason;
  const cleanup = cleanupAfter(booking, input.phase, hostOutcome);
  const record: FailureRecord = { step, error: input.error.Error, host: hostOutcome, field: null };
  await rt.store.updateBooking(
    booking.id,
    allOf(
      failPhase(input.phase, input.generation, failure, cleanup, retentionOf(rt)),
      recordDone(input, FAILURE_RECORD, record, rt.now()),
    ),
  );
  log.error({ reason, step, host: input.hostName, hostOutcome }, `${input.phase} failed`);
  await tellOperatorsOfFailure(rt, input);
  return { state: "failed", host: hostOutcome };
}

/** The failure, and the quarantine it caused if it did: one mail each, once per run. */
export async function tellOperatorsOfFailure(
  rt: Pick<Runtime, "config" | "mailer" | "store" | "logger" | "now">,
  input: PhaseInput,
): Promise<void> {
  await mailFailure(rt, input);
  const host = await rt.store.getHost(input.hostName);
  const run = runLabel(input.phase, input.generation);
  const quarantinedByThisRun = host?.history.some(
    (event) =>
      event.event === "quarantined" && event.bookingId === input.bookingId && event.run === run,
  );
  if (host && quarantinedByThisRun) await mailQuarantine(rt, input, host);
}

/**
 * What the failure of run `input` does to the host the booking held: freed when never touched,
 * else counted in its streak and cleaned, or quarantined (see transitions.ts hostAfterFailure).
 */
export async function hostAfterRunFailed(
  rt: Pick<Runtime, "store" | "config" | "now">,
  booking: Pick<Booking, "id">,
  input: Pick<PhaseInput, "hostName" | "phase" | "generation">,
  reason: string,
): Promise<HostOutcome> {
  const failure = {
    bookingId: booking.id,
    run: runLabel(input.phase, input.generation),
    reason: `${input.phase} failed: ${reason}`,
  };
  const now = rt.now();
  const limit = rt.config.quarantineAfter;
  try {
    const { changed, item } = await rt.store.updateHost(
      input.hostName,
      hostFailed(failure, limit, now),
    );
    if (!changed) return hostAfterFailure(item, failure, limit, now).outcome;
    if (item.state === "free") return "free";
    return item.state === "quarantined" ? "quarantined" : "cleaning";
  } catch (error) {
    if (error instanceof NotFoundError) return "unchanged";
    throw error;
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
