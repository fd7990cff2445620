/**
 * How each workflow ends: a booking that is ready or released, or a failure recorded with its
 * reason and the host freed (never touched) or quarantined (touched, state unknown).
 */
import type { Runtime } from "../app/runtime";
import type { Booking } from "../domain/booking";
import { errorMessage, SupersededError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import { readBooking } from "./checkpoints";
import { imagingConfig, requireCurrentRun } from "./current-run";
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
    // Recorded already (the step is run again after a restart): nothing more to do.
    if (endedAs(booking, input, "failed")) return { state: "failed", host: "unchanged" };
    requireCurrentRun(booking, input);
  } catch (error) {
    if (error instanceof SupersededError) {
      // A newer run or a release owns the booking now; recording this failure would undo it.
      log.info({ reason }, "failure of a superseded run: nothing to record");
      return { state: "superseded", host: "unchanged" };
    }
    throw error;
  }
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
  await rt.store.updateBooking(booking.id, failPhase(input.phase, input.generation, reason));
  log.error({ reason, host: input.hostName, hostOutcome }, `${input.phase} failed`);
  return { state: "failed", host: hostOutcome };
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
