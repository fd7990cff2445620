/**
 * A booking the lab cannot serve (booking-rules.ts), refused by poll before anything was done for
 * it: when it is first stored, when it is edited into one, or when its user is looked up. Its
 * failure is recorded as the poll's, under the provision run that never started.
 */

import type { Booking } from "../domain/booking";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { type BookingProblem, refusalReason } from "./booking-rules";
import { allOf, recordDone } from "./checkpoints";
import { FAILURE_RECORD, type FailureRecord, recordedFailure } from "./failure-record";
import type { Retention } from "./retention";
import { refuseBooking } from "./transitions";

/** The change that refuses a scheduled booking, its failure recorded as the poll's. */
export function refusal(
  problem: BookingProblem,
  retention: Retention,
): (current: Booking) => Booking | null {
  return (current) => {
    const input = refusalInput(current);
    const record: FailureRecord = {
      step: "Poll",
      error: "InvalidBooking",
      host: "free",
      field: problem.field,
    };
    return allOf(
      refuseBooking(refusalReason(problem), retention),
      recordDone(input, FAILURE_RECORD, record, new Date(current.updatedAt)),
    )(current);
  };
}

/** The run a refusal is recorded under: the provision run that never started. */
export function refusalInput(booking: Booking): PhaseInput {
  return {
    bookingId: booking.id,
    hostName: booking.hostName,
    phase: "provision",
    generation: booking.provisionGeneration,
  };
}

export function isRefusal(booking: Booking): boolean {
  return recordedFailure(booking, "provision")?.step === "Poll";
}

export function noteRefused(
  rt: Pick<Runtime, "logger">,
  id: string,
  problem: BookingProblem,
  report: { refused: string[] },
) {
  report.refused.push(id);
  rt.logger.warn(
    { bookingId: id, field: problem.field, reason: problem.reason },
    "booking refused",
  );
}
